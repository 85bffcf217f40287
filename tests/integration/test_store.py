"""Storage helpers on real SQLite and PostgreSQL."""

from __future__ import annotations

from terraplane.store.database import Database
from terraplane.store.tables import drift_results
from terraplane.store.types import utcnow
from terraplane.store.upsert import insert_or_ignore


async def test_insert_or_ignore_reports_whether_it_inserted(db: Database) -> None:
    row = {"workspace": "w", "status": "ok", "checked_at": utcnow()}
    async with db.write() as conn:
        assert await insert_or_ignore(conn, drift_results, row) is True
        assert await insert_or_ignore(conn, drift_results, row) is False


async def test_duplicates_refused_under_concurrent_writes_never_lock_out_writers(
    db: Database,
) -> None:
    """A duplicate insert is refused without a failing statement: on SQLite a statement that
    failed inside a write transaction left other writers locked out until the busy timeout."""
    import asyncio

    from terraplane.controlplane.tenants import create_tenant
    from terraplane.domain.errors import Conflict

    async with db.write() as conn:
        await create_tenant(conn, "taken", {})
    stop = asyncio.Event()
    written = 0

    async def writer(i: int) -> None:
        nonlocal written
        while not stop.is_set():
            async with db.write() as conn:
                await create_tenant(conn, f"w{i}-{written}", {})
            written += 1

    writers = [asyncio.create_task(writer(i)) for i in range(4)]
    refused = 0
    for _ in range(100):
        try:
            async with db.write() as conn:
                await create_tenant(conn, "taken", {})
        except Conflict:
            refused += 1
    stop.set()
    await asyncio.gather(*writers)  # a locked-out writer would raise OperationalError here
    assert refused == 100 and written > 0
