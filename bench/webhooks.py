"""Webhook intake: signed 20 KB `pull_request` deliveries from a second process on loopback.

    python -m bench.webhooks [--clients 4,16] [--seconds 10] [--backends sqlite,postgres]

Each delivery is verified (HMAC-SHA256), stored with its processing job and acknowledged; the
server runs without workers (an API instance), so what is measured is the intake a GitHub
delivery waits for. The baseline, measured in the same run against the same server, is
`GET /health` (one database round trip): the ratio is what intake costs on top of the cheapest
request that touches the database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from tests.support import github_objects as gh
from tests.support.server import ServerProcess

from bench.common import bench_database, median, percentile, row
from terraplane.github.signatures import sign
from terraplane.store.migrate import upgrade

SECRET = "bench-secret"


def pull_request_body(size: int) -> bytes:
    """A real `pull_request` opened payload, its description padded to `size` bytes."""
    repo = gh.repository("acme/infra", 42, "https://github.com/acme/infra.git", "main")
    pull = gh.pull_request(
        repo,
        7,
        title="Resize the web tier",
        author="alice",
        head_ref="resize",
        head_sha="a" * 40,
        base_ref="main",
        base_sha="b" * 40,
    )
    payload: dict[str, Any] = {
        "action": "opened",
        "number": 7,
        "pull_request": pull,
        "repository": repo,
        "sender": pull["user"],
        "installation": gh.installation_payload(4242),
    }
    base = len(json.dumps(payload))
    pull["body"] = "Lorem ipsum dolor sit amet. " * max(0, (size - base) // 28)
    return json.dumps(payload).encode()


async def load(
    url: str, path: str, body: bytes | None, clients: int, seconds: float
) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    signature = sign(body, SECRET) if body is not None else ""
    deadline = time.perf_counter() + seconds

    async def client(http: aiohttp.ClientSession) -> None:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            if body is None:
                request = http.get(path)
            else:
                headers = {
                    "Content-Type": "application/json",
                    "X-GitHub-Event": "pull_request",
                    "X-GitHub-Delivery": str(uuid.uuid4()),
                    "X-Hub-Signature-256": signature,
                }
                request = http.post(path, data=body, headers=headers)
            async with request as answer:
                await answer.read()
                statuses[answer.status] = statuses.get(answer.status, 0) + 1
            latencies.append(time.perf_counter() - t0)

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(url, connector=connector) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return {
        "per_s": len(latencies) / elapsed,
        "p50_ms": median(latencies) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "statuses": statuses,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", default="4,16", help="concurrent senders, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    body = pull_request_body(args.size)
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory() as tmp, bench_database(backend, Path(tmp)) as url:
            if url is None:
                print(row(f"{backend} webhooks", skipped="PostgreSQL not running"))
                continue
            upgrade(url)
            server = ServerProcess(
                database_url=url,
                data_dir=Path(tmp) / "data",
                env_extra={
                    "TERRAPLANE_LOG_LEVEL": "warning",
                    "TERRAPLANE_WORKERS": "0",
                    "TERRAPLANE_GITHUB_WEBHOOK_SECRET": SECRET,
                },
            ).start()
            try:
                for clients in (int(c) for c in args.clients.split(",")):
                    intake = asyncio.run(
                        load(server.url, "/webhooks/github", body, clients, args.seconds)
                    )
                    health = asyncio.run(load(server.url, "/health", None, clients, args.seconds))
                    print(
                        row(
                            f"{backend} {len(body) // 1000} KB x{clients} senders",
                            acks_s=intake["per_s"],
                            p50_ms=intake["p50_ms"],
                            p99_ms=intake["p99_ms"],
                            answers=intake["statuses"],
                        )
                    )
                    print(
                        row(
                            f"{backend} GET /health x{clients} (baseline)",
                            per_s=health["per_s"],
                            p99_ms=health["p99_ms"],
                            ratio=health["per_s"] / max(intake["per_s"], 1e-9),
                        )
                    )
            finally:
                server.stop()


if __name__ == "__main__":
    main()
