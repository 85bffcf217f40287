"""Stored plans expire: the hourly job deletes plans older than the retention and schedules
its next hour once, however many instances ask."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from terraplane.domain.runs import DirectorySource, RunOperation, RunSpec, RunStatus
from terraplane.pr.retention import EXPIRE_JOB_KIND, PlanRetention, schedule_expiry
from terraplane.queue import jobs as q
from terraplane.queue.worker import JobContext
from terraplane.runs import service
from terraplane.store.database import Database
from terraplane.store.tables import jobs, runs
from terraplane.store.types import utcnow


async def finished_plan(db: Database, age: timedelta) -> int:
    async with db.write() as conn:
        run = await service.create_run(
            conn,
            workspace=f"w-{age.total_seconds()}",
            operation=RunOperation.PLAN,
            spec=RunSpec(source=DirectorySource(path="/nowhere")),
            created_by="test",
        )
        await service.store_plan(conn, run.id, "k1", b"encrypted plan")
        run = await service.set_status(conn, run, RunStatus.RUNNING)
        await service.set_status(conn, run, RunStatus.SUCCEEDED)
        await conn.execute(
            update(runs).where(runs.c.id == run.id).values(finished_at=utcnow() - age)
        )
    return run.id


async def test_old_plans_are_deleted_and_the_next_hour_is_scheduled(db: Database) -> None:
    old = await finished_plan(db, timedelta(hours=30))
    recent = await finished_plan(db, timedelta(hours=1))
    async with db.write() as conn:
        await schedule_expiry(conn, utcnow())
        await schedule_expiry(conn, utcnow())  # a second instance starting: no second job
    job = await q.claim_next(db, "w", [EXPIRE_JOB_KIND], timedelta(seconds=30))
    assert job is not None
    assert await q.claim_next(db, "w", [EXPIRE_JOB_KIND], timedelta(seconds=30)) is None

    result = await PlanRetention(db, timedelta(hours=24))(JobContext(job=job, db=db))
    assert result == {"expired": 1}
    async with db.read() as conn:
        assert not (await service.get_run(conn, old)).plan_stored
        assert (await service.get_run(conn, recent)).plan_stored
        queued = (
            (
                await conn.execute(
                    select(jobs.c.run_after).where(
                        jobs.c.kind == EXPIRE_JOB_KIND, jobs.c.status == "queued"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert len(queued) == 1 and queued[0] > utcnow()  # the next hour's
