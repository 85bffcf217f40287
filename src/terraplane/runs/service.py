"""Create, read and cancel runs. Creating a run enqueues its job in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from terraplane.domain.errors import NotFound
from terraplane.domain.runs import RunOperation, RunSpec, RunStatus, transition_run
from terraplane.engine.binaries import validate_engine
from terraplane.queue import jobs as jobstore
from terraplane.store.tables import jobs, runs
from terraplane.store.types import utcnow

RUN_JOB_KIND = "run"
RUN_FINISHED_JOB_KIND = "run.finished"


def workspace_exclusive_key(workspace: str) -> str:
    return f"workspace:{workspace}"


@dataclass(frozen=True)
class Run:
    id: int
    workspace: str
    operation: RunOperation
    status: RunStatus
    spec: RunSpec
    job_id: int | None
    cancel_requested: bool
    exit_code: int | None
    has_changes: bool | None
    plan_summary: dict[str, Any] | None
    # Whether the run's plan file is kept (for an apply of exactly this plan).
    plan_stored: bool
    error: str | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "workspace": self.workspace,
            "operation": self.operation.value,
            "status": self.status.value,
            "engine": self.spec.engine,
            "engine_version": self.spec.version,
            "state": self.spec.state,
            "cancel_requested": self.cancel_requested,
            "exit_code": self.exit_code,
            "has_changes": self.has_changes,
            "plan_summary": self.plan_summary,
            "plan_stored": self.plan_stored,
            "error": self.error,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


def _run(row: Any) -> Run:
    m = row._mapping
    return Run(
        id=m["id"],
        workspace=m["workspace"],
        operation=RunOperation(m["operation"]),
        status=RunStatus(m["status"]),
        spec=RunSpec.model_validate(m["spec"]),
        job_id=m["job_id"],
        cancel_requested=bool(m["cancel_requested"]),
        exit_code=m["exit_code"],
        has_changes=m["has_changes"],
        plan_summary=m["plan_summary"],
        plan_stored=m["plan_file"] is not None,
        error=m["error"],
        created_by=m["created_by"],
        created_at=m["created_at"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
    )


async def create_run(
    conn: AsyncConnection,
    *,
    workspace: str,
    operation: RunOperation,
    spec: RunSpec,
    created_by: str,
    idempotency_key: str | None = None,
) -> Run:
    """Record a run and enqueue the job that executes it. Runs that write, or that take the
    state's lock (a pull request's plan does), are exclusive per workspace: the queue never
    runs two of them at once, on any number of workers, so a second plan waits for the first
    instead of failing on its state lock. Runs that only look (drift checks) are not."""
    validate_engine(spec.engine, spec.version)
    if idempotency_key is not None:
        existing = (
            await conn.execute(
                select(runs)
                .join(jobs, jobs.c.id == runs.c.job_id)
                .where(jobs.c.idempotency_key == idempotency_key)
            )
        ).one_or_none()
        if existing is not None:
            return _run(existing)
    row = (
        await conn.execute(
            runs.insert()
            .values(
                workspace=workspace,
                operation=operation.value,
                status=RunStatus.QUEUED.value,
                spec=spec.model_dump(mode="json"),
                created_by=created_by,
                created_at=utcnow(),
            )
            .returning(runs)
        )
    ).one()
    job = await jobstore.enqueue(
        conn,
        RUN_JOB_KIND,
        {"run_id": row.id},
        idempotency_key=idempotency_key,
        exclusive_key=(
            workspace_exclusive_key(workspace) if operation.writes or spec.lock_state else None
        ),
        max_attempts=3,
    )
    row = (
        await conn.execute(
            update(runs).where(runs.c.id == row.id).values(job_id=job.id).returning(runs)
        )
    ).one()
    return _run(row)


async def get_run(conn: AsyncConnection, run_id: int) -> Run:
    row = (await conn.execute(select(runs).where(runs.c.id == run_id))).one_or_none()
    if row is None:
        raise NotFound(f"run {run_id} does not exist")
    return _run(row)


async def list_runs(
    conn: AsyncConnection, workspace: str | None = None, limit: int = 100
) -> list[Run]:
    query = select(runs).order_by(runs.c.id.desc()).limit(limit)
    if workspace is not None:
        query = query.where(runs.c.workspace == workspace)
    return [_run(r) for r in (await conn.execute(query)).all()]


async def set_status(conn: AsyncConnection, run: Run, target: RunStatus, **values: Any) -> Run:
    """The one place a run's status changes; the transition is checked first."""
    transition_run(run.status, target)
    now = utcnow()
    if target is RunStatus.RUNNING:
        values.setdefault("started_at", now)
    if target.final:
        values.setdefault("finished_at", now)
    row = (
        await conn.execute(
            update(runs)
            .where(runs.c.id == run.id, runs.c.status == run.status.value)
            .values(status=target.value, **values)
            .returning(runs)
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"run {run.id} changed status concurrently")
    if target.final:
        # The outbox: whoever waits for this run (a deployment's operation, a pull request)
        # hears of it through a job written in the same transaction as the status.
        await jobstore.enqueue(
            conn,
            RUN_FINISHED_JOB_KIND,
            {"run_id": run.id},
            idempotency_key=f"run-finished:{run.id}",
            exclusive_key=f"run-events:{run.workspace}",
            max_attempts=10,
        )
    return _run(row)


async def request_cancel(conn: AsyncConnection, run_id: int) -> Run:
    """Queued runs are cancelled at once; running ones are interrupted by their worker."""
    run = await get_run(conn, run_id)
    if run.status is RunStatus.QUEUED:
        return await set_status(conn, run, RunStatus.CANCELLED, cancel_requested=True)
    if run.status is RunStatus.RUNNING:
        row = (
            await conn.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(cancel_requested=True)
                .returning(runs)
            )
        ).one()
        return _run(row)
    return run


async def count_by_status(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(select(runs.c.status, func.count()).group_by(runs.c.status))
    return {status: int(n) for status, n in rows.all()}


async def store_plan(conn: AsyncConnection, run_id: int, key_id: str, blob: bytes) -> None:
    await conn.execute(
        update(runs).where(runs.c.id == run_id).values(plan_key_id=key_id, plan_file=blob)
    )
