"""Dirspace locks: a dirspace is planned and applied by one pull request at a time.

A lock is taken with `INSERT … ON CONFLICT DO NOTHING` and then read back, so two pull requests
racing for one dirspace (on any number of instances) see one winner. It is held until the pull
request is merged or closed, `terraplane unlock` is commented, or an admin deletes it. (That
applies of one dirspace never overlap is the run queue's guarantee, not the lock's.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from terraplane.domain.errors import NotFound
from terraplane.domain.pullrequests import DirspaceStatus
from terraplane.pr.commands import NewDirspace
from terraplane.pr.pulls import Pull
from terraplane.repoconfig.model import LockPolicy
from terraplane.store.tables import dirspace_locks
from terraplane.store.types import utcnow
from terraplane.store.upsert import insert_or_ignore


@dataclass(frozen=True)
class Lock:
    id: int
    repository: str
    dir: str
    workspace: str
    pull_request_id: int
    pull_number: int
    locked_by: str
    locked_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "repository": self.repository,
            "dir": self.dir,
            "workspace": self.workspace,
            "pull_request": self.pull_number,
            "locked_by": self.locked_by,
            "locked_at": self.locked_at.isoformat(),
        }


def _lock(row: Any) -> Lock:
    m = row._mapping
    return Lock(**{k: m[k] for k in Lock.__dataclass_fields__})


async def acquire(conn: AsyncConnection, pull: Pull, dir: str, workspace: str, who: str) -> Lock:
    """Take the dirspace's lock for `pull`, or find who holds it. The returned lock is held by
    `pull` when `lock.pull_request_id == pull.id`."""
    await insert_or_ignore(
        conn,
        dirspace_locks,
        {
            "repository": pull.repository,
            "dir": dir,
            "workspace": workspace,
            "pull_request_id": pull.id,
            "pull_number": pull.number,
            "locked_by": who,
            "locked_at": utcnow(),
        },
    )
    row = (
        await conn.execute(
            select(dirspace_locks).where(
                dirspace_locks.c.repository == pull.repository,
                dirspace_locks.c.dir == dir,
                dirspace_locks.c.workspace == workspace,
            )
        )
    ).one()
    return _lock(row)


async def holder(conn: AsyncConnection, repository: str, dir: str, workspace: str) -> Lock | None:
    row = (
        await conn.execute(
            select(dirspace_locks).where(
                dirspace_locks.c.repository == repository,
                dirspace_locks.c.dir == dir,
                dirspace_locks.c.workspace == workspace,
            )
        )
    ).one_or_none()
    return _lock(row) if row is not None else None


async def release_pull(conn: AsyncConnection, pull_id: int) -> list[Lock]:
    """Release every lock the pull request holds; returns them."""
    rows = (
        await conn.execute(
            delete(dirspace_locks)
            .where(dirspace_locks.c.pull_request_id == pull_id)
            .returning(dirspace_locks)
        )
    ).all()
    return [_lock(r) for r in rows]


async def release(conn: AsyncConnection, lock_id: int) -> Lock:
    row = (
        await conn.execute(
            delete(dirspace_locks).where(dirspace_locks.c.id == lock_id).returning(dirspace_locks)
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"lock {lock_id} does not exist")
    return _lock(row)


async def list_locks(conn: AsyncConnection, repository: str | None = None) -> list[Lock]:
    query = select(dirspace_locks).order_by(dirspace_locks.c.repository, dirspace_locks.c.dir)
    if repository is not None:
        query = query.where(dirspace_locks.c.repository == repository)
    return [_lock(r) for r in (await conn.execute(query)).all()]


async def lock_for_plan(
    conn: AsyncConnection, pull: Pull, new: list[NewDirspace], who: str
) -> None:
    """Strict locking: each dirspace to plan is locked to this pull request, or, when another
    one holds it, not planned (blocked, naming the holder)."""
    for d in new:
        lock = await acquire(conn, pull, d.dir, d.workspace, who)
        if lock.pull_request_id != pull.id:
            d.status = DirspaceStatus.BLOCKED
            d.message = (
                f"locked by #{lock.pull_number} (@{lock.locked_by}) until it is merged or "
                "closed, or someone comments `terraplane unlock` there"
            )


async def check_for_apply(
    conn: AsyncConnection, pull: Pull, new: list[NewDirspace], policy: LockPolicy, who: str
) -> bool:
    """Before an apply: every dirspace must be locked to this pull request (strict), or
    lockable now (apply). Marks the ones that are not; True when any is not."""
    refused = False
    for d in new:
        if d.status.final:
            continue  # nothing to apply there
        if policy is LockPolicy.STRICT:
            lock = await holder(conn, pull.repository, d.dir, d.workspace)
        else:
            lock = await acquire(conn, pull, d.dir, d.workspace, who)
        if lock is None:
            d.status = DirspaceStatus.SKIPPED
            d.message = "not locked to this pull request (unlocked since its plan): plan again"
            refused = True
        elif lock.pull_request_id != pull.id:
            d.status = DirspaceStatus.SKIPPED
            d.message = f"locked by #{lock.pull_number} (@{lock.locked_by})"
            refused = True
    return refused
