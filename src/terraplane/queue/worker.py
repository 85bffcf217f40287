"""The worker loop: claim, run the handler for the job's kind, heartbeat, finish.

A process runs one `Worker`. Its slots are divided into lanes, each claiming only its own job
kinds: terraform runs take minutes and are bounded by the machine, while the bookkeeping jobs
that follow them (settling an operation, advancing a rollout, firing a schedule) take
milliseconds and must neither wait behind a long queue of runs nor hold a run's slot. On stop
the worker claims nothing more, lets running jobs finish within the grace period, then cancels
the rest and hands them back to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from terraplane.observability.logs import get_logger
from terraplane.observability.metrics import JOBS_PROCESSED
from terraplane.queue import jobs as jobstore
from terraplane.queue.jobs import Job
from terraplane.store.database import Database

log = get_logger(__name__)


class TransientJobError(Exception):
    """Raised by a handler for a failure worth retrying (network, busy resource)."""


class LeaseLost(Exception):
    """The job is no longer this worker's: another one took it over after its lease."""


@dataclass
class JobContext:
    job: Job
    db: Database
    # Set when the job must stop early: the lease was lost or the worker is shutting down.
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    lease_lost: bool = False
    # The handler completed the job in its own last transaction (see `complete_in`).
    completed: bool = False
    # Gives the job's slot to the next job before this one has finished (a run calls it once
    # terraform is done, so its bookkeeping overlaps the next run's start). Idempotent.
    release_slot: Callable[[], None] = lambda: None
    # For a handler that takes its slot itself (`takes_its_slot`): waits until the job holds
    # one. Raises SlotWithdrawn when the worker began to stop meanwhile.
    take_slot: Callable[[], Awaitable[None]] = field(default=lambda: _no_wait())


async def _no_wait() -> None:
    return None


class SlotWithdrawn(Exception):
    """A job claimed ahead of a free slot got its slot only after the worker began to stop:
    it goes back to the queue (not counted as an attempt) for another worker."""


class _Slot:
    """One of a lane's slots, held by one job, released at most once."""

    def __init__(self, gate: asyncio.Semaphore) -> None:
        self.gate = gate
        self.held = False

    async def acquire(self) -> None:
        await self.gate.acquire()
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.gate.release()


async def complete_in(conn: AsyncConnection, ctx: JobContext, result: dict[str, Any]) -> None:
    """Complete the job in the caller's transaction, atomically with the handler's last
    writes (and one transaction cheaper). Raises LeaseLost, rolling those writes back, when
    the job is no longer this worker's."""
    if not await jobstore.complete(conn, ctx.job, result):
        raise LeaseLost(f"job {ctx.job.id} was taken over by another worker")
    ctx.completed = True


Handler = Callable[[JobContext], Coroutine[Any, Any, dict[str, Any] | None]]


def fan_out(*handlers: Handler) -> Handler:
    """One job kind with several subscribers, called in turn. Each must be idempotent: a
    retried job calls them all again."""

    async def handle(ctx: JobContext) -> dict[str, Any] | None:
        results: dict[str, Any] = {}
        for handler in handlers:
            results.update(await handler(ctx) or {})
        return results or None

    return handle


class GroupCommit:
    """Records job completions of one worker in shared transactions.

    Completions that arrive while a commit is in flight go together in the next one, so under
    load a worker pays one BEGIN/COMMIT for many jobs instead of one each; when idle, a
    completion is committed at once. A job's slot stays busy until its completion is committed.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._pending: list[tuple[Job, dict[str, Any] | None, asyncio.Future[bool]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def complete(self, job: Job, result: dict[str, Any] | None) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((job, result, future))
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._flush_forever())
        return await future

    async def _flush_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            if not batch:
                continue
            try:
                async with self.db.write() as conn:
                    outcomes = await jobstore.complete_many(conn, [(j, r) for j, r, _ in batch])
            except Exception as exc:  # each waiting job handles the error as its own
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, _, future), ok in zip(batch, outcomes, strict=True):
                if not future.done():  # its job was cancelled meanwhile (shutdown)
                    future.set_result(ok)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


@dataclass
class Lane:
    """Slots that claim only `kinds`.

    A lane claims one job more than it has slots: that job waits for a slot with its lease
    held (and renewed), so a slot that frees starts its next job at once instead of after a
    claim's round trips (measured: ~15 ms per run under load, a fifth of a fleet rollout's
    orchestration overhead).
    """

    name: str
    kinds: list[str]
    slots: int
    prefetch: int = 1
    running: dict[asyncio.Task[None], JobContext] = field(default_factory=dict)
    slot_free: asyncio.Event = field(default_factory=asyncio.Event)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    gate: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.gate = asyncio.Semaphore(self.slots)

    @property
    def capacity(self) -> int:
        return self.slots + self.prefetch


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    def __init__(
        self,
        db: Database,
        handlers: dict[str, Handler],
        *,
        slots: int = 4,
        lanes: list[tuple[str, list[str], int]] | None = None,
        lease_seconds: float = 30.0,
        poll_seconds: float = 0.5,
        worker_id: str | None = None,
        give_up: dict[str, jobstore.GiveUp] | None = None,
    ) -> None:
        """`lanes`: (name, kinds, slots) each; by default one lane of `slots` for every kind
        in `handlers`. Every handled kind must be in exactly one lane. `give_up`: per kind,
        what to do when a job of it fails for good (`jobstore.GiveUp`)."""
        self.db = db
        self.handlers = handlers
        self.give_up = give_up or {}
        spec = lanes if lanes is not None else [("jobs", sorted(handlers), slots)]
        self.lanes = [Lane(name, kinds, n) for name, kinds, n in spec if n > 0 and kinds]
        claimed = [k for lane in self.lanes for k in lane.kinds]
        if sorted(claimed) != sorted(handlers):
            raise ValueError(f"lanes {spec} must cover each job kind {sorted(handlers)} once")
        self.lease = timedelta(seconds=lease_seconds)
        self.poll_seconds = poll_seconds
        self.worker_id = worker_id or new_worker_id()
        self._stopping = False
        self._loop_tasks: list[asyncio.Task[None]] = []
        self._listen_task: asyncio.Task[None] | None = None
        self._completions = GroupCommit(db)

    @property
    def _running(self) -> dict[asyncio.Task[None], JobContext]:
        return {t: c for lane in self.lanes for t, c in lane.running.items()}

    def wake(self) -> None:
        """Look for work now instead of at the next poll (call after committing a job)."""
        for lane in self.lanes:
            lane.wake.set()

    def start(self) -> None:
        self._loop_tasks = [
            asyncio.create_task(self.run(lane), name=f"worker {self.worker_id} {lane.name}")
            for lane in self.lanes
        ]
        if self.db.is_postgres:
            self._listen_task = asyncio.create_task(self._listen(), name="job notifications")

    async def _listen(self) -> None:
        """Wake on PostgreSQL notifications of new jobs (from any instance); polling remains
        the fallback, so a lost connection delays work by at most one poll interval."""
        dsn = self.db.url.set(drivername="postgresql").render_as_string(hide_password=False)
        failures = 0
        while not self._stopping:
            try:
                async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {jobstore.NOTIFY_CHANNEL}")
                    failures = 0
                    async for _ in conn.notifies():
                        self.wake()
            except psycopg.Error as exc:
                failures += 1
                log.warning("job notifications lost; polling meanwhile", error=str(exc)[:200])
                await asyncio.sleep(min(30.0, 2**failures))

    async def run(self, lane: Lane) -> None:
        log.info(
            "worker started",
            worker_id=self.worker_id,
            lane=lane.name,
            slots=lane.slots,
            kinds=lane.kinds,
        )
        failures = 0
        while not self._stopping:
            if len(lane.running) >= lane.capacity:
                lane.slot_free.clear()
                await lane.slot_free.wait()
                continue
            try:
                claimed = await jobstore.claim_batch(
                    self.db,
                    self.worker_id,
                    lane.kinds,
                    self.lease,
                    lane.capacity - len(lane.running),
                    self.give_up,
                )
                failures = 0
            except (OperationalError, DBAPIError, OSError) as exc:
                failures += 1
                log.warning("claim failed; database unavailable?", error=str(exc)[:300])
                await asyncio.sleep(min(10.0, self.poll_seconds * 2**failures))
                continue
            except Exception:
                # Anything else (a pool timeout, a driver bug) must not end the loop: a worker
                # whose loop died would look alive while it claims nothing, ever again.
                failures += 1
                log.exception("claim failed unexpectedly; retrying")
                await asyncio.sleep(min(10.0, self.poll_seconds * 2**failures))
                continue
            if not claimed:
                lane.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lane.wake.wait(), self.poll_seconds)
                continue
            for job in claimed:
                ctx = JobContext(job=job, db=self.db)
                task = asyncio.create_task(self._execute(lane, ctx), name=f"job {job.id}")
                lane.running[task] = ctx
                task.add_done_callback(functools.partial(self._on_done, lane))

    def _on_done(self, lane: Lane, task: asyncio.Task[None]) -> None:
        lane.running.pop(task, None)
        lane.slot_free.set()
        # A finished job often enqueued the next step (a run's result, a command's runs):
        # the other lanes look now rather than at their next poll (SQLite has no NOTIFY).
        for other in self.lanes:
            if other is not lane:
                other.wake.set()

    async def stop(self, grace_seconds: float) -> None:
        """Claim nothing more; give running jobs `grace_seconds`, then cancel and hand back."""
        self._stopping = True
        for lane in self.lanes:
            lane.wake.set()
            lane.slot_free.set()
        if self._loop_tasks:
            await asyncio.gather(*self._loop_tasks)
        if self._listen_task is not None:
            self._listen_task.cancel()
            await asyncio.gather(self._listen_task, return_exceptions=True)
        running = self._running
        if running:
            log.info("waiting for running jobs", count=len(running), grace=grace_seconds)
            _done, pending = await asyncio.wait(list(running), timeout=grace_seconds)
            for task in pending:
                running[task].stop_requested.set()
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        await self._completions.close()
        log.info("worker stopped", worker_id=self.worker_id)

    async def _handle(self, ctx: JobContext, slot: _Slot) -> dict[str, Any] | None:
        """The job's handler, once the job has a slot; or at once, for a handler that
        `takes_its_slot` after work that needs none (a run's preparation: it then overlaps
        the runs holding the slots, instead of adding to each slot's time)."""

        async def take_slot() -> None:
            await slot.acquire()
            if self._stopping:
                raise SlotWithdrawn

        handler = self.handlers[ctx.job.kind]
        if getattr(handler, "takes_its_slot", False):
            ctx.take_slot = take_slot
        else:
            await take_slot()
        return await handler(ctx)

    async def _execute(self, lane: Lane, ctx: JobContext) -> None:
        job = ctx.job
        slot = _Slot(lane.gate)
        ctx.release_slot = slot.release
        work: asyncio.Task[dict[str, Any] | None] = asyncio.create_task(self._handle(ctx, slot))
        beat = asyncio.create_task(self._heartbeat(ctx, work))
        outcome = "succeeded"
        try:
            result = await asyncio.shield(work)
            finished = ctx.completed or await self._completions.complete(job, result)
            outcome = "succeeded" if finished else "lost"
        except asyncio.CancelledError:
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            if ctx.lease_lost:
                outcome = "lost"  # another worker owns the job now; record nothing
            else:
                # Shutdown past the grace period: hand the job back for another worker.
                outcome = "released"
                await asyncio.shield(self._finish(jobstore.release, job))
        except SlotWithdrawn:
            outcome = "released"  # claimed ahead, never ran: another worker takes it
            await self._finish(jobstore.release, job)
        except LeaseLost:
            outcome = "lost"  # the handler's last transaction rolled back; nothing recorded
        except TransientJobError as exc:
            outcome = "retried"
            await self._finish(
                jobstore.fail, job, str(exc), transient=True, give_up=self.give_up.get(job.kind)
            )
        except Exception as exc:  # a handler bug must fail its job, not kill the worker
            outcome = "failed"
            log.exception("job failed", job_id=job.id, kind=job.kind)
            await self._finish(
                jobstore.fail,
                job,
                f"{type(exc).__name__}: {exc}",
                transient=False,
                give_up=self.give_up.get(job.kind),
            )
        finally:
            slot.release()
            beat.cancel()
            await asyncio.gather(beat, return_exceptions=True)
            JOBS_PROCESSED.labels(job.kind, outcome).inc()

    async def _finish(
        self, action: Callable[..., Awaitable[bool]], job: Job, *args: Any, **kwargs: Any
    ) -> None:
        try:
            async with self.db.write() as conn:
                await action(conn, job, *args, **kwargs)
        except (OperationalError, DBAPIError, OSError) as exc:
            # The lease will expire and another worker will take the job over.
            log.error("could not record job outcome", job_id=job.id, error=str(exc)[:300])

    async def _heartbeat(self, ctx: JobContext, work: asyncio.Task[Any]) -> None:
        interval = self.lease.total_seconds() / 3
        while not work.done():
            await asyncio.sleep(interval)
            try:
                async with self.db.write() as conn:
                    held = await jobstore.heartbeat(conn, ctx.job, self.lease)
            except (OperationalError, DBAPIError, OSError) as exc:
                log.warning("heartbeat failed", job_id=ctx.job.id, error=str(exc)[:300])
                continue
            if not held and ctx.completed:
                return  # the handler's last transaction just completed it
            if not held:
                log.warning("lease lost; stopping job", job_id=ctx.job.id)
                ctx.lease_lost = True
                ctx.stop_requested.set()
                work.cancel()
                return
