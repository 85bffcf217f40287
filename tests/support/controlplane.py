"""Control-plane helpers for tests: a blueprint with a tenant, deployments, waiting."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx

from tests.support.modules import example_archive

FINAL = ("succeeded", "failed", "rolled_back")
TIERS = {
    "free": {"variables": {"dedicated": False}},
    "pro": {"variables": {"dedicated": True, "instance_count": 2}},
}


def wait_operation(client: httpx.Client, op_id: int, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        op: dict[str, Any] = client.get(f"/api/v1/operations/{op_id}").json()
        if op["status"] in FINAL:
            return op
        time.sleep(0.2)
    raise AssertionError(f"operation {op_id} did not finish: {op}")


def make_fleet(client: httpx.Client) -> dict[str, str]:
    """A blueprint with versions 1.0.0 and 1.1.0, and a tenant."""
    blueprint, tenant = f"web-{uuid.uuid4().hex[:6]}", f"t-{uuid.uuid4().hex[:6]}"
    assert client.post("/api/v1/blueprints", json={"name": blueprint}).status_code == 201
    for version in ("1.0.0", "1.1.0"):
        answer = client.post(
            f"/api/v1/blueprints/{blueprint}/versions",
            files={"archive": ("m.tar.gz", example_archive(), "application/gzip")},
            data={"metadata": json.dumps({"version": version, "tiers": TIERS})},
        )
        assert answer.status_code == 201, answer.text
    assert client.post("/api/v1/tenants", json={"name": tenant}).status_code == 201
    return {"blueprint": blueprint, "tenant": tenant}


def create(client: httpx.Client, fleet: dict[str, str], **body: Any) -> httpx.Response:
    payload = {
        "tenant": fleet["tenant"],
        "environment": "dev",
        "blueprint": fleet["blueprint"],
        "version": "1.0.0",
        "tier": "free",
        "variables": {"tenant": fleet["tenant"], "api_key": "sk-very-secret-1"},
        **body,
    }
    return client.post("/api/v1/deployments", json=payload)
