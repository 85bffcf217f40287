"""Enqueue, claim, heartbeat and finish jobs. Every function runs in the caller's transaction,
except `claim_next` which owns its own (a claim must commit before work starts)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, and_, bindparam, exists, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from terraplane.domain.jobs import JobStatus, retry_delay_seconds
from terraplane.observability.logs import get_logger
from terraplane.store.database import Database
from terraplane.store.tables import jobs
from terraplane.store.types import utcnow
from terraplane.store.upsert import insert_returning

NOTIFY_CHANNEL = "terraplane_jobs"
GAVE_UP_LOST = "gave up: its worker stopped answering on the last allowed attempt"
log = get_logger(__name__)


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    payload: dict[str, Any]
    status: JobStatus
    attempts: int
    max_attempts: int
    exclusive_key: str | None
    claim_token: str | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    # When this worker claimed it (set by the claim, not stored).
    claimed_at: datetime | None = None


GiveUp = Callable[[AsyncConnection, "Job", str], Awaitable[None]]
"""What a job kind does when the queue fails its job for good (the handler's error, retries
exhausted, or a worker that died on the last allowed attempt), in the transaction that fails
it: whatever waited for that job (a run's deployment, a rollout) must not wait forever."""


def give_up_all(*hooks: GiveUp) -> GiveUp:
    """One kind's give-up with several subscribers (as `worker.fan_out` has handlers), each in
    its own savepoint."""

    async def give_up(conn: AsyncConnection, job: Job, reason: str) -> None:
        for hook in hooks:
            await _give_up(conn, job, reason, hook)

    return give_up


async def _give_up(conn: AsyncConnection, job: Job, reason: str, give_up: GiveUp | None) -> None:
    """Run `give_up` in a savepoint: if it fails too, the job still fails (a hook that raised
    would otherwise roll the failure back and the job would come back, forever)."""
    if give_up is None:
        return
    try:
        async with conn.begin_nested():
            await give_up(conn, job, reason)
    except Exception:
        log.exception("giving up on a job failed", job_id=job.id, kind=job.kind)


def _job(row: Any) -> Job:
    m = row._mapping
    return Job(
        id=m["id"],
        kind=m["kind"],
        payload=m["payload"],
        status=JobStatus(m["status"]),
        attempts=m["attempts"],
        max_attempts=m["max_attempts"],
        exclusive_key=m["exclusive_key"],
        claim_token=m["claim_token"],
        lease_owner=m["lease_owner"],
        lease_expires_at=m["lease_expires_at"],
    )


async def enqueue(
    conn: AsyncConnection,
    kind: str,
    payload: dict[str, Any],
    *,
    idempotency_key: str | None = None,
    exclusive_key: str | None = None,
    priority: int = 100,
    max_attempts: int = 3,
    delay: timedelta | None = None,
) -> Job:
    """Add a job; with an idempotency key already used, return the existing job instead."""
    now = utcnow()
    values = {
        "kind": kind,
        "payload": payload,
        "status": JobStatus.QUEUED.value,
        "idempotency_key": idempotency_key,
        "exclusive_key": exclusive_key,
        "priority": priority,
        "attempts": 0,
        "max_attempts": max_attempts,
        "run_after": now + delay if delay else now,
        "created_at": now,
    }
    if conn.dialect.name == "postgresql":
        # Delivered when the transaction commits: workers on every instance wake at once.
        await conn.execute(
            text("SELECT pg_notify(:channel, :kind)"), {"channel": NOTIFY_CHANNEL, "kind": kind}
        )
    if idempotency_key is None:
        row = (await conn.execute(jobs.insert().values(values).returning(jobs))).one()
        return _job(row)
    row = await insert_returning(conn, jobs, values)
    if row is None:  # the key was used: that job is the one
        row = (
            await conn.execute(select(jobs).where(jobs.c.idempotency_key == idempotency_key))
        ).one()
    return _job(row)


def _build_claimable() -> Any:
    """Runnable jobs of some kinds (queued and due, or running with an expired lease) whose
    exclusive key is free. Built once: `now`, `kinds` and `limit` are bound per claim."""
    other = jobs.alias("other")
    now: Any = bindparam("c_now")
    holder_running = exists().where(
        other.c.exclusive_key == jobs.c.exclusive_key,
        other.c.status == JobStatus.RUNNING.value,
        other.c.id != jobs.c.id,
    )
    return (
        select(jobs.c.id, jobs.c.exclusive_key)
        .where(
            jobs.c.kind.in_(bindparam("c_kinds", expanding=True)),
            or_(
                and_(jobs.c.status == JobStatus.QUEUED.value, jobs.c.run_after <= now),
                and_(jobs.c.status == JobStatus.RUNNING.value, jobs.c.lease_expires_at < now),
            ),
            or_(jobs.c.exclusive_key.is_(None), ~holder_running),
        )
        .order_by(jobs.c.priority, jobs.c.id)
        .limit(bindparam("c_limit", type_=Integer))
        .with_for_update(skip_locked=True, of=jobs)
    )


_CLAIMABLE = _build_claimable()


async def claim_next(
    db: Database, worker_id: str, kinds: list[str], lease: timedelta
) -> Job | None:
    """Claim the next runnable job, or a running one whose lease expired; None when idle."""
    claimed = await claim_batch(db, worker_id, kinds, lease, 1)
    return claimed[0] if claimed else None


async def claim_batch(
    db: Database,
    worker_id: str,
    kinds: list[str],
    lease: timedelta,
    limit: int,
    give_up: Mapping[str, GiveUp] | None = None,
) -> list[Job]:
    """Claim up to `limit` jobs in one transaction (never two with one exclusive key).

    A job whose lease expired after its last allowed attempt is failed here, not re-run, and
    its kind's `give_up` runs.
    """
    while True:
        try:
            async with db.write() as conn:
                now = utcnow()
                candidates = (
                    await conn.execute(
                        _CLAIMABLE, {"c_now": now, "c_kinds": kinds, "c_limit": limit}
                    )
                ).all()
                if not candidates:
                    return []
                ids, keys = [], set()
                for job_id, key in candidates:
                    if key is None or key not in keys:
                        ids.append(job_id)
                        keys.add(key)
                rows = (
                    await conn.execute(
                        update(jobs)
                        .where(jobs.c.id.in_(ids))
                        .values(
                            status=JobStatus.RUNNING.value,
                            lease_owner=worker_id,
                            claim_token=str(uuid.uuid4()),
                            lease_expires_at=now + lease,
                            attempts=jobs.c.attempts + 1,
                            started_at=func.coalesce(jobs.c.started_at, now),
                        )
                        .returning(jobs)
                    )
                ).all()
                claimed = [replace(_job(r), claimed_at=now) for r in rows]
                exhausted = [j.id for j in claimed if j.attempts > j.max_attempts]
                if exhausted:
                    await conn.execute(
                        update(jobs)
                        .where(jobs.c.id.in_(exhausted))
                        .values(
                            status=JobStatus.FAILED.value,
                            finished_at=now,
                            lease_owner=None,
                            claim_token=None,
                            lease_expires_at=None,
                            last_error=GAVE_UP_LOST,
                        )
                    )
                    for job in claimed:
                        if job.id in exhausted:
                            await _give_up(conn, job, GAVE_UP_LOST, (give_up or {}).get(job.kind))
                alive = sorted((j for j in claimed if j.id not in exhausted), key=lambda j: j.id)
                if alive:
                    return alive
        except IntegrityError:
            # Another worker claimed a job with the same exclusive key between our select and
            # update (the partial unique index refused ours). Look again, one at a time.
            limit = 1


# The per-job statements are built once, with bind parameters: constructing and compiling a
# statement per call costs more CPU than the round trip, and a worker issues them per job.
_OWNED = and_(
    jobs.c.id == bindparam("j_id"),
    jobs.c.claim_token == bindparam("j_token"),
    jobs.c.status == JobStatus.RUNNING.value,
)
_UNCLAIMED = {"lease_owner": None, "claim_token": None, "lease_expires_at": None}
_HEARTBEAT = update(jobs).where(_OWNED).values(lease_expires_at=bindparam("j_until"))
_FINISH = (
    update(jobs)
    .where(_OWNED)
    .values(
        status=bindparam("j_status"),
        finished_at=bindparam("j_now"),
        result=bindparam("j_result"),
        last_error=bindparam("j_error"),
        **_UNCLAIMED,
    )
)
_REQUEUE = (
    update(jobs)
    .where(_OWNED)
    .values(
        status=JobStatus.QUEUED.value,
        run_after=bindparam("j_after"),
        last_error=bindparam("j_error"),
        attempts=jobs.c.attempts - bindparam("j_refund"),
        **_UNCLAIMED,
    )
)


async def _owned_update(conn: AsyncConnection, stmt: Any, job: Job, **params: Any) -> bool:
    result = await conn.execute(stmt, {"j_id": job.id, "j_token": job.claim_token, **params})
    return bool(result.rowcount)


async def heartbeat(conn: AsyncConnection, job: Job, lease: timedelta) -> bool:
    """Extend the lease; False when the claim was lost (another worker took the job over)."""
    return await _owned_update(conn, _HEARTBEAT, job, j_until=utcnow() + lease)


async def complete(conn: AsyncConnection, job: Job, result: dict[str, Any] | None = None) -> bool:
    """Mark the job succeeded; False when this worker no longer held it (nothing changed)."""
    return await _owned_update(
        conn,
        _FINISH,
        job,
        j_status=JobStatus.SUCCEEDED.value,
        j_now=utcnow(),
        j_result=result,
        j_error=None,
    )


async def complete_many(
    conn: AsyncConnection, finished: list[tuple[Job, dict[str, Any] | None]]
) -> list[bool]:
    """`complete` for several jobs in the caller's one transaction (a worker's group commit)."""
    return [await complete(conn, job, result) for job, result in finished]


async def fail(
    conn: AsyncConnection,
    job: Job,
    error: str,
    *,
    transient: bool,
    give_up: GiveUp | None = None,
) -> bool:
    """Retry a transient failure with backoff while attempts remain; otherwise fail for good
    and run `give_up`."""
    if transient and job.attempts < job.max_attempts:
        delay = timedelta(seconds=retry_delay_seconds(job.attempts))
        return await _owned_update(
            conn, _REQUEUE, job, j_after=utcnow() + delay, j_error=error[:4000], j_refund=0
        )
    failed = await _owned_update(
        conn,
        _FINISH,
        job,
        j_status=JobStatus.FAILED.value,
        j_now=utcnow(),
        j_result=None,
        j_error=error[:4000],
    )
    if failed:
        await _give_up(conn, job, error, give_up)
    return failed


async def release(conn: AsyncConnection, job: Job) -> bool:
    """Hand a job back untouched (a worker shutting down): it does not count as an attempt."""
    return await _owned_update(conn, _REQUEUE, job, j_after=utcnow(), j_error=None, j_refund=1)


async def get_job(conn: AsyncConnection, job_id: int) -> Job | None:
    row = (await conn.execute(select(jobs).where(jobs.c.id == job_id))).one_or_none()
    return _job(row) if row else None


async def counts_by_status(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(select(jobs.c.status, func.count()).group_by(jobs.c.status))
    return {status: int(n) for status, n in rows.all()}


async def queued_by_kind(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(
        select(jobs.c.kind, func.count())
        .where(jobs.c.status == JobStatus.QUEUED.value)
        .group_by(jobs.c.kind)
    )
    return {kind: int(n) for kind, n in rows.all()}
