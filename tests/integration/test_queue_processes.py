"""The queue with real worker processes: no job runs twice, a SIGKILLed worker loses nothing,
SIGTERM lets a job finish or hands it back."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from terraplane.domain.jobs import JobStatus
from terraplane.queue import jobs as q
from terraplane.store.database import Database
from tests.support.effect_worker import EFFECTS_DDL

ROOT = Path(__file__).resolve().parents[2]


class Workers:
    def __init__(self, url: str) -> None:
        self.url = url
        self.procs: dict[str, subprocess.Popen[str]] = {}

    def start(
        self, name: str, lease: float = 2.0, grace: float = 10.0, poll: float = 0.05
    ) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.effect_worker",
                self.url,
                name,
                str(lease),
                str(grace),
                str(poll),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        self.procs[name] = proc
        return proc

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def workers(database_url: str) -> Iterator[Workers]:
    w = Workers(database_url)
    yield w
    w.stop_all()


async def prepare(db: Database, jobs: int, sleep: float) -> list[int]:
    async with db.write() as conn:
        await conn.execute(text(EFFECTS_DDL))
        return [(await q.enqueue(conn, "effect", {"sleep": sleep})).id for _ in range(jobs)]


async def wait_until(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached in time")


async def statuses(db: Database, ids: list[int]) -> list[q.Job]:
    async with db.read() as conn:
        return [job for i in ids if (job := await q.get_job(conn, i)) is not None]


async def effects(db: Database) -> list[tuple[int, str]]:
    async with db.read() as conn:
        rows = await conn.execute(text("SELECT job_id, worker FROM effects ORDER BY job_id"))
        return [(int(r[0]), str(r[1])) for r in rows]


async def test_three_workers_never_run_the_same_job(db: Database, workers: Workers) -> None:
    # Each job takes a moment, so no single worker can drain the queue before the others start.
    ids = await prepare(db, 150, 0.05)
    for name in ("a", "b", "c"):
        workers.start(name)

    async def all_done() -> bool:
        return all(j.status is JobStatus.SUCCEEDED for j in await statuses(db, ids))

    await wait_until(all_done)
    done = await effects(db)
    assert sorted(j for j, _ in done) == sorted(ids)  # each exactly once
    assert len({w for _, w in done}) >= 2  # the work was really shared


async def test_sigkilled_worker_loses_nothing(db: Database, workers: Workers) -> None:
    [job_id] = await prepare(db, 1, 3)
    first = workers.start("doomed", lease=2.0)

    async def claimed() -> bool:
        [job] = await statuses(db, [job_id])
        return job.status is JobStatus.RUNNING

    await wait_until(claimed)
    first.send_signal(signal.SIGKILL)
    first.wait()
    workers.start("survivor", lease=2.0)

    async def done() -> bool:
        [job] = await statuses(db, [job_id])
        return job.status.final

    await wait_until(done)
    [job] = await statuses(db, [job_id])
    assert job.status is JobStatus.SUCCEEDED and job.attempts == 2
    assert await effects(db) == [(job_id, "survivor")]


async def test_sigterm_lets_a_running_job_finish(db: Database, workers: Workers) -> None:
    [job_id] = await prepare(db, 1, 1.5)
    proc = workers.start("graceful", grace=30)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == f"started {job_id}"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    [job] = await statuses(db, [job_id])
    assert job.status is JobStatus.SUCCEEDED
    assert await effects(db) == [(job_id, "graceful")]


async def test_sigterm_past_the_grace_period_hands_the_job_back(
    db: Database, workers: Workers
) -> None:
    [job_id] = await prepare(db, 1, 30)
    proc = workers.start("impatient", grace=0.5)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == f"started {job_id}"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    [job] = await statuses(db, [job_id])
    assert job.status is JobStatus.QUEUED and job.attempts == 0 and job.lease_owner is None
    assert await effects(db) == []


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_postgres_wakes_idle_workers_on_other_processes(
    db: Database, workers: Workers
) -> None:
    """Cross-process wake-up is PostgreSQL's NOTIFY (SQLite polls)."""
    await prepare(db, 0, 0)
    workers.start("listener", poll=60)  # it would not poll again within this test
    await asyncio.sleep(0.5)  # let it finish its first (empty) poll and listen
    [job_id] = await prepare(db, 1, 0)

    async def done() -> bool:
        [job] = await statuses(db, [job_id])
        return job.status is JobStatus.SUCCEEDED

    await wait_until(done, timeout=10)
