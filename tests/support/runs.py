"""Create runs the way the PR and control-plane use cases do, and wait for them over the API."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from terraplane.domain.runs import RunOperation, RunSpec
from terraplane.runs.service import create_run
from terraplane.store.database import Database


def submit_run(database_url: str, workspace: str, operation: RunOperation, spec: RunSpec) -> int:
    async def work() -> int:
        db = Database(database_url, pool_size=1)
        try:
            async with db.write() as conn:
                run = await create_run(
                    conn, workspace=workspace, operation=operation, spec=spec, created_by="test"
                )
            return run.id
        finally:
            await db.dispose()

    return asyncio.run(work())


def wait_for_run(
    client: httpx.Client,
    run_id: int,
    timeout: float = 120,
    until: tuple[str, ...] = ("succeeded", "failed", "cancelled"),
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run: dict[str, Any] = client.get(f"/api/v1/runs/{run_id}").json()
        if run["status"] in until:
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not reach {until}: {run}")


def run_log(client: httpx.Client, run_id: int) -> str:
    return client.get(f"/api/v1/runs/{run_id}/log").text
