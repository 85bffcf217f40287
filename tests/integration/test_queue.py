"""The job queue on real SQLite and PostgreSQL: claims, leases, fencing, retries, exclusivity."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from terraplane.domain.jobs import JobStatus
from terraplane.queue import jobs as q
from terraplane.store.database import Database
from terraplane.store.tables import jobs
from terraplane.store.types import utcnow

LEASE = timedelta(seconds=30)


async def expire_lease(db: Database, job_id: int) -> None:
    async with db.write() as conn:
        await conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )


async def test_idempotency_key_enqueues_once(db: Database) -> None:
    async with db.write() as conn:
        first = await q.enqueue(conn, "k", {"n": 1}, idempotency_key="event-1")
        again = await q.enqueue(conn, "k", {"n": 2}, idempotency_key="event-1")
    assert again.id == first.id and again.payload == {"n": 1}


async def test_concurrent_claims_never_share_a_job(db: Database) -> None:
    async with db.write() as conn:
        for i in range(40):
            await q.enqueue(conn, "k", {"i": i})

    async def claimer(name: str) -> list[int]:
        got = []
        while (job := await q.claim_next(db, name, ["k"], LEASE)) is not None:
            got.append(job.id)
        return got

    results = await asyncio.gather(*(claimer(f"w{i}") for i in range(6)))
    claimed = [j for r in results for j in r]
    assert len(claimed) == 40 and len(set(claimed)) == 40


async def test_only_handled_kinds_are_claimed(db: Database) -> None:
    async with db.write() as conn:
        await q.enqueue(conn, "other", {})
    assert await q.claim_next(db, "w", ["k"], LEASE) is None


async def test_exclusive_key_runs_one_at_a_time(db: Database) -> None:
    async with db.write() as conn:
        a = await q.enqueue(conn, "k", {}, exclusive_key="workspace:x")
        await q.enqueue(conn, "k", {}, exclusive_key="workspace:x")
        c = await q.enqueue(conn, "k", {}, exclusive_key="workspace:y")
    first = await q.claim_next(db, "w1", ["k"], LEASE)
    second = await q.claim_next(db, "w2", ["k"], LEASE)
    assert first is not None and first.id == a.id
    assert second is not None and second.id == c.id  # x is busy; y is free
    assert await q.claim_next(db, "w3", ["k"], LEASE) is None
    async with db.write() as conn:
        assert await q.complete(conn, first)
    third = await q.claim_next(db, "w3", ["k"], LEASE)
    assert third is not None and third.exclusive_key == "workspace:x"


async def test_concurrent_claims_respect_exclusive_keys(db: Database) -> None:
    async with db.write() as conn:
        for _ in range(10):
            await q.enqueue(conn, "k", {}, exclusive_key="workspace:same")
    claims = await asyncio.gather(*(q.claim_next(db, f"w{i}", ["k"], LEASE) for i in range(8)))
    assert len([c for c in claims if c is not None]) == 1


async def test_expired_lease_is_reclaimed_and_the_old_claim_is_fenced(db: Database) -> None:
    async with db.write() as conn:
        await q.enqueue(conn, "k", {})
    old = await q.claim_next(db, "dead-worker", ["k"], LEASE)
    assert old is not None
    assert await q.claim_next(db, "w2", ["k"], LEASE) is None  # lease still valid
    await expire_lease(db, old.id)
    new = await q.claim_next(db, "w2", ["k"], LEASE)
    assert new is not None and new.id == old.id and new.attempts == 2
    async with db.write() as conn:
        assert not await q.heartbeat(conn, old, LEASE)
        assert not await q.complete(conn, old, {"by": "dead"})
        assert await q.complete(conn, new, {"by": "w2"})
        job = await q.get_job(conn, new.id)
    assert job is not None and job.status is JobStatus.SUCCEEDED


async def test_transient_failure_retries_with_backoff_then_fails(db: Database) -> None:
    async with db.write() as conn:
        await q.enqueue(conn, "k", {}, max_attempts=2)
    job = await q.claim_next(db, "w", ["k"], LEASE)
    assert job is not None
    async with db.write() as conn:
        assert await q.fail(conn, job, "network down", transient=True)
    assert await q.claim_next(db, "w", ["k"], LEASE) is None  # backing off
    async with db.write() as conn:
        await conn.execute(update(jobs).values(run_after=utcnow()))
    job = await q.claim_next(db, "w", ["k"], LEASE)
    assert job is not None and job.attempts == 2
    async with db.write() as conn:
        await q.fail(conn, job, "network down again", transient=True)
        final = await q.get_job(conn, job.id)
    assert final is not None and final.status is JobStatus.FAILED


async def test_permanent_failure_is_not_retried(db: Database) -> None:
    async with db.write() as conn:
        await q.enqueue(conn, "k", {})
    job = await q.claim_next(db, "w", ["k"], LEASE)
    assert job is not None
    async with db.write() as conn:
        await q.fail(conn, job, "bad input", transient=False)
        final = await q.get_job(conn, job.id)
    assert final is not None and final.status is JobStatus.FAILED


async def test_released_job_is_claimable_without_spending_an_attempt(db: Database) -> None:
    async with db.write() as conn:
        await q.enqueue(conn, "k", {})
    job = await q.claim_next(db, "w", ["k"], LEASE)
    assert job is not None
    async with db.write() as conn:
        assert await q.release(conn, job)
    again = await q.claim_next(db, "w", ["k"], LEASE)
    assert again is not None and again.attempts == 1


async def test_lease_expired_past_max_attempts_fails_the_job(db: Database) -> None:
    async with db.write() as conn:
        await q.enqueue(conn, "k", {}, max_attempts=1)
    job = await q.claim_next(db, "w", ["k"], LEASE)
    assert job is not None
    await expire_lease(db, job.id)
    assert await q.claim_next(db, "w", ["k"], LEASE) is None
    async with db.read() as conn:
        final = await q.get_job(conn, job.id)
    assert final is not None and final.status is JobStatus.FAILED


async def test_a_handler_completes_its_job_atomically_with_its_writes(db: Database) -> None:
    from terraplane.queue.worker import JobContext, LeaseLost, complete_in

    async with db.write() as conn:
        await q.enqueue(conn, "k", {"n": 1})
        await q.enqueue(conn, "k", {"n": 2})
    first = await q.claim_next(db, "w1", ["k"], LEASE)
    assert first is not None
    ctx = JobContext(job=first, db=db)
    async with db.write() as conn:
        await q.enqueue(conn, "follow-up", {"of": first.id})
        await complete_in(conn, ctx, {"ok": True})
    async with db.read() as conn:
        done = await q.get_job(conn, first.id)
        assert done is not None and done.status is JobStatus.SUCCEEDED and ctx.completed
        assert (await q.queued_by_kind(conn)).get("follow-up") == 1

    # A worker whose job was taken over records nothing: its last transaction rolls back.
    second = await q.claim_next(db, "w1", ["k"], LEASE)
    assert second is not None
    await expire_lease(db, second.id)
    assert await q.claim_next(db, "w2", ["k"], LEASE) is not None  # w2 owns it now
    stale = JobContext(job=second, db=db)
    with pytest.raises(LeaseLost):
        async with db.write() as conn:
            await q.enqueue(conn, "follow-up", {"of": second.id})
            await complete_in(conn, stale, {"ok": True})
    async with db.read() as conn:
        taken = await q.get_job(conn, second.id)
        assert taken is not None and taken.status is JobStatus.RUNNING
        assert taken.lease_owner == "w2" and not stale.completed
        assert (await q.queued_by_kind(conn)).get("follow-up") == 1  # the stale one rolled back


async def test_a_lane_claims_one_ahead_and_a_slot_can_be_handed_on_early(db: Database) -> None:
    """One slot: at most one handler runs at a time, a second job is claimed (its lease held)
    while it waits, and a handler that releases its slot lets the next start before it ends."""
    from terraplane.queue.worker import JobContext, Worker

    async with db.write() as conn:
        for i in range(3):
            await q.enqueue(conn, "k", {"i": i})
    events: list[str] = []
    first_may_end = asyncio.Event()

    async def handler(ctx: JobContext) -> dict[str, object]:
        i = ctx.job.payload["i"]
        events.append(f"start {i}")
        if i == 0:
            async with db.read() as conn:
                claimed = (
                    await conn.execute(
                        select(jobs.c.id).where(jobs.c.status == JobStatus.RUNNING.value)
                    )
                ).all()
            events.append(f"running {len(claimed)}")  # this one and the one claimed ahead
            ctx.release_slot()  # the work that needed the slot is done
            await first_may_end.wait()
        events.append(f"end {i}")
        if i == 1:
            first_may_end.set()
        return {}

    worker = Worker(db, {"k": handler}, slots=1, poll_seconds=0.05)
    worker.start()
    try:
        for _ in range(200):
            if events.count("end 0") + events.count("end 1") + events.count("end 2") == 3:
                break
            await asyncio.sleep(0.05)
    finally:
        await worker.stop(5)
    assert events[:3] == ["start 0", "running 2", "start 1"]  # 1 started before 0 ended
    assert events.index("end 1") < events.index("end 0")
    assert sorted(e for e in events if e.startswith("end")) == ["end 0", "end 1", "end 2"]


async def test_giving_up_on_a_job_tells_its_kind_in_the_same_transaction(db: Database) -> None:
    """A job that fails for good — its handler's error, or its worker dying on the last allowed
    attempt — runs its kind's give-up hook where the failure is written; a hook that fails
    too does not keep the job alive."""
    from terraplane.queue.worker import JobContext, Worker

    async with db.write() as conn:
        broken = await q.enqueue(conn, "broken", {"n": 1})
        orphan = await q.enqueue(conn, "orphan", {"n": 2}, max_attempts=1)
        worse = await q.enqueue(conn, "worse", {"n": 3})
    heard: list[tuple[int, str]] = []

    async def record(conn: AsyncConnection, job: q.Job, reason: str) -> None:
        heard.append((job.id, reason))
        await q.enqueue(conn, "heard", {"of": job.id})

    async def fail_too(conn: AsyncConnection, job: q.Job, reason: str) -> None:
        await q.enqueue(conn, "heard", {"of": job.id})
        raise RuntimeError("the hook is broken too")

    async def handler(ctx: JobContext) -> dict[str, object]:
        raise ValueError(f"bug in {ctx.job.kind}")

    # The orphan's worker "dies" holding it on its only attempt.
    claimed = await q.claim_next(db, "dead", ["orphan"], LEASE)
    assert claimed is not None and claimed.id == orphan.id
    await expire_lease(db, orphan.id)

    worker = Worker(
        db,
        {"broken": handler, "orphan": handler, "worse": handler},
        slots=2,
        poll_seconds=0.05,
        give_up={"broken": record, "orphan": record, "worse": fail_too},
    )
    worker.start()
    try:
        for _ in range(200):
            async with db.read() as conn:
                states = [(await q.get_job(conn, j.id)) for j in (broken, orphan, worse)]
            if all(s is not None and s.status is JobStatus.FAILED for s in states):
                break
            await asyncio.sleep(0.05)
    finally:
        await worker.stop(5)
    assert all(s is not None and s.status is JobStatus.FAILED for s in states)
    assert sorted(heard) == [(broken.id, "ValueError: bug in broken"), (orphan.id, q.GAVE_UP_LOST)]
    async with db.read() as conn:
        follow_ups = (
            await conn.execute(select(jobs.c.payload).where(jobs.c.kind == "heard"))
        ).scalars()
        # The broken hook's write rolled back with its savepoint; the others committed.
        assert sorted(p["of"] for p in follow_ups) == [broken.id, orphan.id]


async def test_a_handler_that_takes_its_slot_prepares_while_the_slots_are_busy(
    db: Database,
) -> None:
    """One slot, held by the first job: the job claimed ahead does the work that needs no slot
    meanwhile and starts the rest only when the slot frees. A worker that stops before that
    hands the prepared job back untouched (no attempt spent)."""
    from terraplane.queue.worker import JobContext, Worker

    async with db.write() as conn:
        first = await q.enqueue(conn, "k", {"i": 0})
        second = await q.enqueue(conn, "k", {"i": 1})
    events: list[str] = []
    release_first = asyncio.Event()

    class Handler:
        takes_its_slot = True

        async def __call__(self, ctx: JobContext) -> dict[str, object]:
            i = ctx.job.payload["i"]
            events.append(f"prepared {i}")
            await ctx.take_slot()
            events.append(f"slot {i}")
            if i == 0:
                await release_first.wait()
            events.append(f"end {i}")
            return {}

    worker = Worker(db, {"k": Handler()}, slots=1, poll_seconds=0.05)
    worker.start()
    try:
        for _ in range(200):
            if "prepared 1" in events:
                break
            await asyncio.sleep(0.05)
        assert events == ["prepared 0", "slot 0", "prepared 1"]  # 1 waits for the slot
        release_first.set()
        for _ in range(200):
            if "end 1" in events:
                break
            await asyncio.sleep(0.05)
    finally:
        await worker.stop(5)
    assert events == ["prepared 0", "slot 0", "prepared 1", "end 0", "slot 1", "end 1"]
    async with db.read() as conn:
        done = [await q.get_job(conn, j.id) for j in (first, second)]
    assert all(j is not None and j.status is JobStatus.SUCCEEDED for j in done)

    # Stopping while a prepared job waits for the slot hands it back.
    async with db.write() as conn:
        await q.enqueue(conn, "k", {"i": 0})
        waiting = await q.enqueue(conn, "k", {"i": 1})
    events.clear()
    release_first.clear()
    worker = Worker(db, {"k": Handler()}, slots=1, poll_seconds=0.05)
    worker.start()
    for _ in range(200):
        if "prepared 1" in events:
            break
        await asyncio.sleep(0.05)
    stopping = asyncio.create_task(worker.stop(5))
    await asyncio.sleep(0.1)
    release_first.set()
    await stopping
    assert "slot 1" not in events and "end 0" in events
    async with db.read() as conn:
        back = await q.get_job(conn, waiting.id)
    assert back is not None and back.status is JobStatus.QUEUED and back.attempts == 0
