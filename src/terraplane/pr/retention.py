"""Stored plans are kept for `TERRAPLANE_PLAN_RETENTION_HOURS` (and dropped earlier when their
pull request closes or unlocks): a `pr.plans.expire` job deletes older ones every hour. Each
hour's job has its own idempotency key, so any number of instances schedule it once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from terraplane.queue import jobs as jobstore
from terraplane.queue.worker import JobContext
from terraplane.store.database import Database
from terraplane.store.tables import runs
from terraplane.store.types import utcnow

EXPIRE_JOB_KIND = "pr.plans.expire"


async def schedule_expiry(conn: AsyncConnection, at: datetime) -> None:
    """The expiry job of `at`'s hour, due at `at`."""
    hour = at.replace(minute=0, second=0, microsecond=0)
    await jobstore.enqueue(
        conn,
        EXPIRE_JOB_KIND,
        {},
        idempotency_key=f"plans-expire:{hour.isoformat()}",
        delay=max(timedelta(0), at - utcnow()),
        max_attempts=3,
    )


@dataclass
class PlanRetention:
    db: Database
    retention: timedelta

    async def __call__(self, ctx: JobContext) -> dict[str, Any] | None:
        now = utcnow()
        async with self.db.write() as conn:
            expired = await conn.execute(
                update(runs)
                .where(runs.c.plan_file.is_not(None), runs.c.finished_at < now - self.retention)
                .values(plan_file=None, plan_key_id=None)
                .returning(runs.c.id)
            )
            count = len(expired.all())
            next_hour = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            await schedule_expiry(conn, next_hour)
        return {"expired": count}
