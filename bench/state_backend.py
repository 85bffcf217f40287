"""State backend under 50 concurrent clients, against writing the same bytes straight into the
same database in the same run.

    python -m bench.state_backend [--clients 50] [--seconds 10]

Each client owns one state and writes it with an increasing serial (as `terraform apply` does),
then reads it back. The baseline inserts the same bytes, from the same number of concurrent
tasks, into a plain table of the same database through the same driver: the ratio is what the
backend costs on top of storing the bytes (HTTP, auth, checks, versioning, encryption).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from sqlalchemy import Column, Integer, LargeBinary, MetaData, Table
from sqlalchemy.dialects import postgresql
from tests.support.server import ServerProcess, make_token

from bench.common import bench_database, percentile, row
from terraplane.domain.roles import Role
from terraplane.store.database import Database
from terraplane.store.migrate import upgrade


def state_body(serial: int, lineage: str, size: int) -> bytes:
    # Realistic-ish: resource JSON compresses, but not to nothing (random-looking ids).
    import hashlib

    filler, total, i = [], 0, 0
    while total < size:
        digest = hashlib.sha256(f"{lineage}-{i}".encode()).hexdigest()
        filler.append(f'{{"id": "{digest}", "name": "resource-{i}", "tags": {{"env": "prod"}}}}')
        total += len(filler[-1])
        i += 1
    doc = {
        "version": 4,
        "serial": serial,
        "lineage": lineage,
        "resources": [],
        "padding": "[" + ",".join(filler) + "]",
    }
    return json.dumps(doc).encode()


async def backend_run(
    urls: list[str], token: str, clients: int, seconds: float, size: int
) -> dict[str, float]:
    """A write phase (each client its own state, serial + 1 per write), then a read phase."""
    # aiohttp, not httpx: on two cores the client shares the CPU with the server and the
    # database, and httpx's pool costs several times more CPU per request.
    import aiohttp

    template = state_body(1, "x", size)
    names = [f"bench-{i}-{time.time_ns()}" for i in range(clients)]
    write_lat: list[float] = []
    read_lat: list[float] = []
    errors = 0
    headers = {"Authorization": f"Bearer {token}"}
    sessions = [
        aiohttp.ClientSession(url, headers=headers, connector=aiohttp.TCPConnector(limit=clients))
        for url in urls
    ]

    async def phase(op: str) -> float:
        nonlocal errors
        deadline = time.perf_counter() + seconds

        async def client(i: int) -> None:
            nonlocal errors
            http = sessions[i % len(sessions)]
            name = names[i]
            head = template.replace(b'"lineage": "x"', f'"lineage": "{name}"'.encode())
            serial = 1000 if op == "read" else 0
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                if op == "write":
                    serial += 1
                    body = head.replace(b'"serial": 1,', f'"serial": {serial},'.encode(), 1)
                    async with http.post(f"/api/v1/state/bench/{name}", data=body) as answer:
                        await answer.read()
                        errors += answer.status != 200
                    write_lat.append(time.perf_counter() - t0)
                else:
                    async with http.get(f"/api/v1/state/bench/{name}") as answer:
                        await answer.read()
                        errors += answer.status != 200
                    read_lat.append(time.perf_counter() - t0)

        started = time.perf_counter()
        await asyncio.gather(*(client(i) for i in range(clients)))
        return time.perf_counter() - started

    try:
        write_elapsed = await phase("write")
        read_elapsed = await phase("read")
    finally:
        for session in sessions:
            await session.close()
    return {
        "writes_s": len(write_lat) / write_elapsed,
        "reads_s": len(read_lat) / read_elapsed,
        "write_p99_ms": percentile(write_lat, 99) * 1000,
        "read_p99_ms": percentile(read_lat, 99) * 1000,
        "errors": float(errors),
    }


async def baseline_run(url: str, clients: int, seconds: float, size: int) -> dict[str, float]:
    """The same bytes into a plain table, one INSERT per write, same concurrency."""
    db = Database(url, pool_size=clients)
    table = Table(
        "bench_raw",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("body", LargeBinary().with_variant(postgresql.BYTEA(), "postgresql")),
    )
    async with db.write() as conn:
        await conn.run_sync(table.metadata.create_all)
    body = state_body(1, "x", size)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            async with db.write() as conn:
                await conn.execute(table.insert().values(body=body))
            latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    await db.dispose()
    return {"writes_s": len(latencies) / elapsed, "write_p99_ms": percentile(latencies, 99) * 1000}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument(
        "--servers",
        type=int,
        default=1,
        help="server processes sharing the database (PostgreSQL scale-out)",
    )
    args = parser.parse_args()
    for backend in args.backends.split(","):
        for label, size, seconds in (
            ("10KB", 10_000, args.seconds),
            ("5MB", 5_000_000, args.seconds),
        ):
            with tempfile.TemporaryDirectory() as tmp, bench_database(backend, Path(tmp)) as url:
                if url is None:
                    print(row(f"{backend} {label}", skipped="PostgreSQL not running"))
                    continue
                upgrade(url)
                count = args.servers if backend == "postgres" else 1
                servers = [
                    ServerProcess(
                        database_url=url,
                        data_dir=Path(tmp) / "data",
                        env_extra={"TERRAPLANE_LOG_LEVEL": "warning", "TERRAPLANE_WORKERS": "0"},
                    ).start()
                    for _ in range(count)
                ]
                try:
                    token = make_token(url, "bench", Role.OPERATOR)
                    result = asyncio.run(
                        backend_run([s.url for s in servers], token, args.clients, seconds, size)
                    )
                finally:
                    for server in servers:
                        server.stop()
                base = asyncio.run(baseline_run(url, args.clients, seconds, size))
                print(
                    row(
                        f"{backend} {label} backend x{count}",
                        writes_s=result["writes_s"],
                        reads_s=result["reads_s"],
                        write_p99_ms=result["write_p99_ms"],
                        read_p99_ms=result["read_p99_ms"],
                        errors=int(result["errors"]),
                    )
                )
                print(
                    row(
                        f"{backend} {label} raw insert",
                        writes_s=base["writes_s"],
                        write_p99_ms=base["write_p99_ms"],
                        overhead_ratio=base["writes_s"] / max(result["writes_s"], 1e-9),
                    )
                )


if __name__ == "__main__":
    main()
