"""Queue throughput and claim latency with real worker processes on PostgreSQL.

    python -m bench.queue [--jobs 5000] [--workers 4] [--backend postgres]

No-op jobs are enqueued first, then N worker processes (the real `Worker`: claims, leases,
heartbeats, fenced completion) drain them. Throughput is jobs completed per second between the
first claim and the last completion (database timestamps); latency is from a job's claim to its
handler starting.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from bench.common import bench_database, median, percentile, row
from terraplane.observability.logs import configure_logging
from terraplane.queue import jobs as q
from terraplane.queue.worker import JobContext, Worker
from terraplane.store.database import Database
from terraplane.store.migrate import upgrade
from terraplane.store.tables import jobs
from terraplane.store.types import utcnow


async def worker_main(url: str, name: str, slots: int) -> None:
    configure_logging("warning")
    db = Database(url, pool_size=4)
    latencies: list[float] = []

    async def noop(ctx: JobContext) -> None:
        assert ctx.job.claimed_at is not None
        latencies.append((utcnow() - ctx.job.claimed_at).total_seconds())

    worker = Worker(db, {"noop": noop}, slots=slots, poll_seconds=0.05, worker_id=name)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    worker.start()
    print("ready", flush=True)
    await stop.wait()
    await worker.stop(10)
    await db.dispose()
    print(json.dumps(latencies), flush=True)


async def enqueue(url: str, count: int) -> None:
    db = Database(url)
    async with db.write() as conn:
        for _ in range(count):
            await q.enqueue(conn, "noop", {})
    await db.dispose()


async def progress(url: str) -> tuple[int, float | None]:
    db = Database(url, pool_size=1)
    async with db.read() as conn:
        done, first, last = (
            await conn.execute(
                select(
                    func.count(), func.min(jobs.c.started_at), func.max(jobs.c.finished_at)
                ).where(jobs.c.status == "succeeded")
            )
        ).one()
    await db.dispose()
    span = (last - first).total_seconds() if first and last else None
    return int(done), span


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--backend", default="postgres")
    parser.add_argument("--worker", nargs=2, metavar=("URL", "NAME"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(worker_main(args.worker[0], args.worker[1], args.slots))
        return
    with tempfile.TemporaryDirectory() as tmp, bench_database(args.backend, Path(tmp)) as url:
        if url is None:
            print(row("queue", skipped="PostgreSQL not running"))
            return
        upgrade(url)
        asyncio.run(enqueue(url, args.jobs))
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.queue",
                    "--slots",
                    str(args.slots),
                    "--worker",
                    url,
                    f"w{i}",
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            for i in range(args.workers)
        ]
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 300
        while (done := asyncio.run(progress(url)))[0] < args.jobs:
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        latencies: list[float] = []
        for p in procs:
            p.send_signal(signal.SIGTERM)
            out, _ = p.communicate(timeout=60)
            latencies += json.loads(out.strip().splitlines()[-1])
        completed, span = done
        print(
            row(
                f"queue {args.backend} {args.workers} workers",
                jobs=completed,
                jobs_per_s=completed / span if span else 0.0,
                claim_to_start_median_ms=median(latencies) * 1000,
                claim_to_start_p99_ms=percentile(latencies, 99) * 1000,
            )
        )


if __name__ == "__main__":
    main()
