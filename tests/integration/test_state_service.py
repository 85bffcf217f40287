"""The state backend's rules under concurrency, on real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select

from terraplane.domain.errors import Conflict, Forbidden, Locked
from terraplane.domain.roles import Role
from terraplane.governance.tokens import Principal
from terraplane.statebackend.service import StateBackend
from terraplane.store.database import Database
from terraplane.store.encryption import Keyring
from terraplane.store.tables import state_versions

OPERATOR = Principal(token_id=1, name="op", role=Role.OPERATOR)
ADMIN = Principal(token_id=2, name="admin", role=Role.ADMIN)


def state(serial: int, lineage: str = "lin-1", marker: str = "") -> bytes:
    return json.dumps(
        {
            "version": 4,
            "serial": serial,
            "lineage": lineage,
            "outputs": {"marker": {"value": marker, "type": "string"}},
            "resources": [],
        }
    ).encode()


@pytest.fixture
def backend(db: Database) -> StateBackend:
    return StateBackend(db, Keyring(secrets.token_bytes(32)), max_bytes=1024 * 1024)


async def test_only_one_of_many_concurrent_lockers_wins(backend: StateBackend) -> None:
    async def lock(i: int) -> str:
        try:
            await backend.lock("app", {"ID": f"lock-{i}", "Who": f"user{i}"}, OPERATOR)
            return f"lock-{i}"
        except Locked as exc:
            return f"refused by {exc.holder['ID']}"

    outcomes = await asyncio.gather(*(lock(i) for i in range(12)))
    winners = [o for o in outcomes if not o.startswith("refused")]
    assert len(winners) == 1
    assert all(o == f"refused by {winners[0]}" for o in outcomes if o.startswith("refused"))
    assert (await backend.lock_holder("app") or {})["ID"] == winners[0]


async def test_concurrent_writers_of_one_serial_store_exactly_one(backend: StateBackend) -> None:
    await backend.write("app", state(1), None, OPERATOR)

    async def write(i: int) -> bool:
        try:
            await backend.write("app", state(2, marker=str(i)), None, OPERATOR)
            return True
        except Conflict:
            return False

    results = await asyncio.gather(*(write(i) for i in range(10)))
    assert results.count(True) == 1
    assert [v.serial for v in await backend.list_versions("app")] == [1, 2]


async def test_locked_state_takes_writes_only_from_the_holder(backend: StateBackend) -> None:
    await backend.lock("app", {"ID": "L"}, OPERATOR)
    with pytest.raises(Conflict):
        await backend.write("app", state(1), None, OPERATOR)
    with pytest.raises(Conflict):
        await backend.write("app", state(1), "other", OPERATOR)
    await backend.write("app", state(1), "L", OPERATOR)
    with pytest.raises(Locked):
        await backend.unlock("app", "other", OPERATOR)
    with pytest.raises(Forbidden):
        await backend.unlock("app", None, OPERATOR)
    await backend.unlock("app", None, ADMIN)
    assert await backend.lock_holder("app") is None


async def test_rejected_writes_change_nothing(backend: StateBackend) -> None:
    await backend.write("app", state(3), None, OPERATOR)
    for bad in (state(2), state(4, lineage="foreign"), state(3, marker="different")):
        with pytest.raises(Conflict):
            await backend.write("app", bad, None, OPERATOR)
    versions = await backend.list_versions("app")
    assert [v.serial for v in versions] == [3]
    assert await backend.read_current("app") == state(3)


async def test_repeat_of_the_current_state_adds_no_version(backend: StateBackend) -> None:
    await backend.write("app", state(1), None, OPERATOR)
    assert await backend.write("app", state(1), None, OPERATOR) is None
    assert len(await backend.list_versions("app")) == 1


async def test_rollback_copies_forward_and_keeps_history(backend: StateBackend) -> None:
    for serial, marker in ((1, "first"), (2, "second"), (3, "third")):
        await backend.write("app", state(serial, marker=marker), None, OPERATOR)
    version = await backend.rollback("app", 1, OPERATOR)
    assert version.serial == 4 and version.reason == "rollback to serial 1"
    current = json.loads(await backend.read_current("app") or b"")
    assert current["serial"] == 4 and current["outputs"]["marker"]["value"] == "first"
    assert [v.serial for v in await backend.list_versions("app")] == [1, 2, 3, 4]
    await backend.lock("app", {"ID": "L"}, OPERATOR)
    with pytest.raises(Conflict, match="locked"):
        await backend.rollback("app", 2, OPERATOR)


async def test_no_state_value_reaches_the_database_in_clear(
    backend: StateBackend, db: Database, database_url: str, tmp_path: Path
) -> None:
    marker = "tf-secret-" + secrets.token_hex(8)
    await backend.write("app", state(1, marker=marker), None, OPERATOR)
    await backend.write("app", state(2, marker=marker), None, OPERATOR)
    async with db.read() as conn:
        blobs = (await conn.execute(select(state_versions.c.ciphertext))).scalars().all()
    assert len(blobs) == 2 and all(marker.encode() not in bytes(b) for b in blobs)
    if db.is_postgres:
        dump = _postgres_rows(database_url)
    else:
        await db.dispose()  # checkpoint the WAL into the file so every byte is on disk
        dump = b"".join(p.read_bytes() for p in tmp_path.glob("terraplane.db*"))
    assert marker.encode() not in dump


def _postgres_rows(url: str) -> bytes:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT * FROM state_versions").fetchall()
        heads = conn.execute("SELECT * FROM states").fetchall()
    return (repr(rows) + repr(heads)).encode()
