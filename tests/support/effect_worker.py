"""A worker process with one test job kind, `effect`: sleep, then record an effect row.

It runs the real `Worker` (claims, leases, heartbeats, fencing) against the real database; only
the handler is the test's own. Usage: python -m tests.support.effect_worker DATABASE_URL NAME
"""

from __future__ import annotations

import asyncio
import signal
import sys

from sqlalchemy import text

from terraplane.observability.logs import configure_logging
from terraplane.queue.worker import JobContext, Worker
from terraplane.store.database import Database

EFFECTS_DDL = "CREATE TABLE IF NOT EXISTS effects (job_id INTEGER NOT NULL, worker TEXT NOT NULL)"


async def main(url: str, name: str, lease: float, grace: float, poll: float) -> None:
    configure_logging("warning")  # logs go to stderr; stdout is our protocol with the test
    db = Database(url, pool_size=2)

    async def effect(ctx: JobContext) -> dict[str, object]:
        print(f"started {ctx.job.id}", flush=True)
        await asyncio.sleep(float(ctx.job.payload.get("sleep", 0)))
        async with db.write() as conn:
            await conn.execute(
                text("INSERT INTO effects (job_id, worker) VALUES (:j, :w)"),
                {"j": ctx.job.id, "w": name},
            )
        return {"worker": name}

    worker = Worker(
        db, {"effect": effect}, slots=2, lease_seconds=lease, poll_seconds=poll, worker_id=name
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    worker.start()
    print("ready", flush=True)
    await stop.wait()
    await worker.stop(grace)
    await db.dispose()


if __name__ == "__main__":
    poll = float(sys.argv[5]) if len(sys.argv) > 5 else 0.05
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), poll))
