"""State backend use cases. Each public method is one transaction."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from terraplane.domain.errors import Conflict, Forbidden, Locked, NotFound, PayloadTooLarge
from terraplane.domain.roles import Role
from terraplane.domain.state import (
    StateDocument,
    StateHead,
    WriteOutcome,
    check_state_write,
    parse_state_document,
    validate_state_name,
    with_serial,
)
from terraplane.governance.tokens import Principal
from terraplane.observability.metrics import STATE_OPERATIONS
from terraplane.statebackend import statements as sql
from terraplane.store.database import Database
from terraplane.store.encryption import Keyring, compress
from terraplane.store.tables import state_versions, states
from terraplane.store.types import utcnow
from terraplane.store.upsert import insert_or_ignore


@dataclass(frozen=True)
class StateVersion:
    state_name: str
    version: int
    serial: int
    lineage: str
    sha256: str
    size: int
    created_by: str
    created_at: datetime
    reason: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "serial": self.serial,
            "lineage": self.lineage,
            "sha256": self.sha256,
            "size": self.size,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "reason": self.reason,
        }


def _associated(name: str, version: int) -> bytes:
    # Binds each ciphertext to its row: a blob copied to another state or version fails to open.
    return f"state:{name}:{version}".encode()


def _version(row: Row[Any]) -> StateVersion:
    m = row._mapping
    return StateVersion(
        state_name=m["state_name"],
        version=m["version"],
        serial=m["serial"],
        lineage=m["lineage"],
        sha256=m["sha256"],
        size=m["size"],
        created_by=m["created_by"],
        created_at=m["created_at"],
        reason=m["reason"],
    )


class StateBackend:
    def __init__(self, db: Database, keyring: Keyring, max_bytes: int) -> None:
        self.db = db
        self.keyring = keyring
        self.max_bytes = max_bytes

    # -- reads ---------------------------------------------------------------------------

    async def read_current(self, name: str) -> bytes | None:
        validate_state_name(name)
        async with self.db.read() as conn:
            row = (await conn.execute(sql.READ_CURRENT, {"name": name})).one_or_none()
        STATE_OPERATIONS.labels("read", "ok" if row else "empty").inc()
        if row is None:
            return None
        return await _off_loop(
            len(row.ciphertext),
            self.keyring.decrypt,
            row.key_id,
            row.ciphertext,
            _associated(name, row.version),
        )

    async def list_versions(self, name: str) -> list[StateVersion]:
        validate_state_name(name)
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(state_versions)
                    .where(state_versions.c.state_name == name)
                    .order_by(state_versions.c.version)
                )
            ).all()
        if not rows:
            raise NotFound(f"state {name!r} has no versions")
        return [_version(r) for r in rows]

    async def read_version(self, name: str, serial: int) -> tuple[StateVersion, bytes]:
        """The newest version stored with `serial` and its content."""
        validate_state_name(name)
        async with self.db.read() as conn:
            row = await self._version_by_serial(conn, name, serial)
        return _version(row), self.keyring.decrypt(
            row.key_id, row.ciphertext, _associated(name, row.version)
        )

    async def lock_holder(self, name: str) -> dict[str, Any] | None:
        validate_state_name(name)
        async with self.db.read() as conn:
            row = (
                await conn.execute(select(states.c.lock_info).where(states.c.name == name))
            ).one_or_none()
        return row.lock_info if row else None

    # -- writes --------------------------------------------------------------------------

    async def write(
        self, name: str, body: bytes, lock_id: str | None, who: Principal
    ) -> StateVersion | None:
        """Store `body` as the next version; None when it repeats the current one exactly."""
        validate_state_name(name)
        self._check_size(body)
        doc, sha, compressed = await _off_loop(len(body), _digest, body)
        async with self.db.write() as conn:
            head_row = await self._head_for_update(conn, name)
            try:
                outcome = check_state_write(_head(head_row), lock_id, doc, sha)
            except Conflict:
                STATE_OPERATIONS.labels("write", "conflict").inc()
                raise
            if outcome is WriteOutcome.UNCHANGED:
                STATE_OPERATIONS.labels("write", "unchanged").inc()
                return None
            version = await self._append(
                conn,
                head_row,
                compressed,
                len(body),
                doc.serial,
                doc.lineage,
                sha,
                who.name,
                None,
            )
        STATE_OPERATIONS.labels("write", "ok").inc()
        return version

    async def rollback(self, name: str, serial: int, who: Principal) -> StateVersion:
        """Copy the version with `serial` forward as a new version (history is kept)."""
        validate_state_name(name)
        async with self.db.write() as conn:
            head_row = await self._head_for_update(conn, name)
            if head_row.lock_id is not None:
                raise Conflict(f"state {name!r} is locked ({head_row.lock_id}); unlock it first")
            old = await self._version_by_serial(conn, name, serial)
            content = self.keyring.decrypt(
                old.key_id, old.ciphertext, _associated(name, old.version)
            )
            new_serial = (head_row.serial if head_row.serial is not None else serial) + 1
            body = with_serial(content, new_serial)
            version = await self._append(
                conn,
                head_row,
                compress(body),
                len(body),
                new_serial,
                old.lineage,
                hashlib.sha256(body).hexdigest(),
                who.name,
                f"rollback to serial {serial}",
            )
        STATE_OPERATIONS.labels("rollback", "ok").inc()
        return version

    async def lock(self, name: str, info: dict[str, Any], who: Principal) -> None:
        """Take the lock; raise Locked with the holder's information when someone has it."""
        validate_state_name(name)
        async with self.db.write() as conn:
            await self._ensure_head(conn, name)
            taken = (
                await conn.execute(
                    update(states)
                    .where(states.c.name == name, states.c.lock_id.is_(None))
                    .values(
                        lock_id=info["ID"], lock_info=info, locked_by=who.name, locked_at=utcnow()
                    )
                    .returning(states.c.name)
                )
            ).one_or_none()
            if taken is None:
                holder = (
                    await conn.execute(
                        select(states.c.lock_id, states.c.lock_info).where(states.c.name == name)
                    )
                ).one()
                if holder.lock_id != info["ID"]:
                    STATE_OPERATIONS.labels("lock", "locked").inc()
                    raise Locked(
                        f"state {name!r} is locked by {holder.lock_id}",
                        holder.lock_info or {"ID": holder.lock_id},
                    )
        STATE_OPERATIONS.labels("lock", "ok").inc()

    async def unlock(self, name: str, lock_id: str | None, who: Principal) -> None:
        """Release the lock. Without a lock id this is a force-unlock, for admins only."""
        validate_state_name(name)
        if lock_id is None and not who.role.allows(Role.ADMIN):
            raise Forbidden("force-unlock (an unlock without the lock ID) needs an admin token")
        async with self.db.write() as conn:
            row = (
                await conn.execute(
                    select(states.c.lock_id, states.c.lock_info).where(states.c.name == name)
                )
            ).one_or_none()
            if row is None or row.lock_id is None:
                STATE_OPERATIONS.labels("unlock", "not_locked").inc()
                return
            if lock_id is not None and lock_id != row.lock_id:
                STATE_OPERATIONS.labels("unlock", "mismatch").inc()
                raise Locked(
                    f"lock ID {lock_id} does not hold the lock on {name!r}",
                    row.lock_info or {"ID": row.lock_id},
                )
            await conn.execute(
                update(states)
                .where(states.c.name == name)
                .values(
                    lock_id=None,
                    lock_info=None,
                    locked_by=None,
                    locked_at=None,
                    updated_at=utcnow(),
                )
            )
        STATE_OPERATIONS.labels("unlock", "forced" if lock_id is None else "ok").inc()

    async def delete(self, name: str) -> None:
        """Empty the state (Terraform's DELETE). Its history stays listable for audit."""
        validate_state_name(name)
        async with self.db.write() as conn:
            row = await self._head_for_update(conn, name, create=False)
            if row is None or row.serial is None:
                raise NotFound(f"state {name!r} does not exist")
            if row.lock_id is not None:
                raise Conflict(f"state {name!r} is locked ({row.lock_id}); unlock it first")
            await conn.execute(
                update(states)
                .where(states.c.name == name)
                .values(lineage=None, serial=None, sha256=None, updated_at=utcnow())
            )
        STATE_OPERATIONS.labels("delete", "ok").inc()

    # -- internals -----------------------------------------------------------------------

    def _check_size(self, body: bytes) -> None:
        if len(body) > self.max_bytes:
            raise PayloadTooLarge(
                f"state is {len(body)} bytes; the limit is {self.max_bytes} "
                "(TERRAPLANE_STATE_MAX_BYTES)"
            )

    async def _ensure_head(self, conn: AsyncConnection, name: str) -> None:
        now = utcnow()
        await insert_or_ignore(conn, states, {"name": name, "created_at": now, "updated_at": now})

    async def _head_for_update(self, conn: AsyncConnection, name: str, create: bool = True) -> Any:
        """The head row, locked until the transaction ends; created first when `create`.

        One statement either way: an upsert that touches the row takes its lock just as
        `SELECT ... FOR UPDATE` does, and saves a round trip on every write.
        """
        if not create:
            query = select(states).where(states.c.name == name).with_for_update()
            return (await conn.execute(query)).one_or_none()
        return (await conn.execute(sql.HEAD_UPSERT, {"name": name, "now": utcnow()})).one()

    async def _version_by_serial(self, conn: AsyncConnection, name: str, serial: int) -> Any:
        row = (
            await conn.execute(
                select(state_versions)
                .where(state_versions.c.state_name == name, state_versions.c.serial == serial)
                .order_by(state_versions.c.version.desc())
                .limit(1)
            )
        ).one_or_none()
        if row is None:
            raise NotFound(f"state {name!r} has no version with serial {serial}")
        return row

    async def _append(
        self,
        conn: AsyncConnection,
        head: Any,
        compressed: bytes,
        size: int,
        serial: int,
        lineage: str,
        sha: str,
        who: str,
        reason: str | None,
    ) -> StateVersion:
        number = head.current_version + 1
        kid, blob = self.keyring.seal(compressed, _associated(head.name, number))
        now = utcnow()
        row = (
            await conn.execute(
                sql.INSERT_VERSION,
                {
                    "state_name": head.name,
                    "version": number,
                    "serial": serial,
                    "lineage": lineage,
                    "sha256": sha,
                    "size": size,
                    "key_id": kid,
                    "ciphertext": blob,
                    "created_by": who,
                    "reason": reason,
                    "created_at": now,
                },
            )
        ).one()
        await conn.execute(
            sql.ADVANCE_HEAD,
            {
                "p_name": head.name,
                "p_lineage": lineage,
                "p_serial": serial,
                "p_sha256": sha,
                "p_version": number,
                "p_now": now,
            },
        )
        return _version(row)


# Above this size, parsing, hashing, compressing and decrypting run in a thread: a 5 MB state
# costs tens of milliseconds of CPU, which would stall every other request on the event loop.
OFF_LOOP_BYTES = 256 * 1024
T = TypeVar("T")


async def _off_loop(size: int, func: Callable[..., T], *args: Any) -> T:
    if size > OFF_LOOP_BYTES:
        return await asyncio.to_thread(func, *args)
    return func(*args)


def _digest(body: bytes) -> tuple[StateDocument, str, bytes]:
    return parse_state_document(body), hashlib.sha256(body).hexdigest(), compress(body)


def _head(row: Any) -> StateHead:
    return StateHead(lineage=row.lineage, serial=row.serial, sha256=row.sha256, lock_id=row.lock_id)
