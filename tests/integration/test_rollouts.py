"""Rollouts across a fleet: waves that complete, a halt at the failure threshold with rollback
of the failed deployments, pause/resume/cancel, and one active rollout per deployment."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx

from tests.conftest import LiveServer
from tests.support.controlplane import wait_operation
from tests.support.modules import EXAMPLE_BLUEPRINT, example_archive

TIERS = {"free": {"variables": {"dedicated": False}}, "pro": {"variables": {"dedicated": True}}}
# Version 1.2.0 breaks for tenants whose name starts with "bad" (regexall works on 1.0 too).
BREAKS_FOR_BAD = (
    (EXAMPLE_BLUEPRINT / "main.tf")
    .read_text()
    .replace('var.fail ? "echo', 'var.fail || length(regexall("^bad", var.tenant)) > 0 ? "echo')
)


def register(client: httpx.Client, blueprint: str, version: str, archive: bytes) -> None:
    answer = client.post(
        f"/api/v1/blueprints/{blueprint}/versions",
        files={"archive": ("m.tar.gz", archive, "application/gzip")},
        data={"metadata": json.dumps({"version": version, "tiers": TIERS})},
    )
    assert answer.status_code == 201, answer.text


def deploy_fleet(client: httpx.Client, blueprint: str, names: list[str]) -> dict[str, int]:
    ops, ids = [], {}
    for i, name in enumerate(names):
        group = "bad" if name.startswith("bad") else "good"
        assert (
            client.post(
                "/api/v1/tenants", json={"name": name, "labels": {"group": group}}
            ).status_code
            == 201
        )
        answer = client.post(
            "/api/v1/deployments",
            json={
                "tenant": name,
                "environment": "dev",
                "blueprint": blueprint,
                "version": "1.0.0",
                "tier": "pro" if i % 2 else "free",
                "variables": {"tenant": name},
            },
        )
        assert answer.status_code == 202, answer.text
        ids[name] = answer.json()["deployment"]["id"]
        ops.append(answer.json()["operation"]["id"])
    for op in ops:
        assert wait_operation(client, op)["status"] == "succeeded"
    return ids


def wait_rollout(
    client: httpx.Client, rollout_id: int, until: tuple[str, ...], timeout: float = 240
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rollout: dict[str, Any] = client.get(f"/api/v1/rollouts/{rollout_id}").json()
        if rollout["status"] in until:
            return rollout
        time.sleep(0.25)
    raise AssertionError(f"rollout {rollout_id} did not reach {until}: {rollout}")


def versions(client: httpx.Client, ids: dict[str, int]) -> dict[str, tuple[str, str]]:
    out = {}
    for name, dep_id in ids.items():
        dep = client.get(f"/api/v1/deployments/{dep_id}").json()
        out[name] = (dep["version"], dep["status"])
    return out


def test_rollouts_across_twenty_tenants(live_server: LiveServer) -> None:
    suffix = uuid.uuid4().hex[:5]
    blueprint = f"fleet-{suffix}"
    names = [f"bad{i}-{suffix}" for i in range(2)] + [f"good{i}-{suffix}" for i in range(18)]
    with live_server.client() as client:
        assert client.post("/api/v1/blueprints", json={"name": blueprint}).status_code == 201
        register(client, blueprint, "1.0.0", example_archive())
        register(client, blueprint, "1.1.0", example_archive())
        register(client, blueprint, "1.2.0", example_archive(**{"main.tf": BREAKS_FOR_BAD}))
        ids = deploy_fleet(client, blueprint, names)

        # v1.0.0 -> v1.1.0 for the good tenants: a canary, then half, then the rest.
        started = client.post(
            "/api/v1/rollouts",
            json={
                "blueprint": blueprint,
                "to_version": "1.1.0",
                "selector": {"labels": {"group": "good"}},
                "failure_threshold": 1,
                "waves": [
                    {"count": 1},
                    {"percent": 50, "max_concurrency": 4},
                    {"percent": 100, "max_concurrency": 6},
                ],
            },
        )
        assert started.status_code == 202, started.text
        assert [len(w["deployments"]) for w in started.json()["waves"]] == [1, 8, 9]
        done = wait_rollout(client, started.json()["id"], ("succeeded", "halted", "cancelled"))
        assert done["status"] == "succeeded", done
        assert [w["status"] for w in done["waves"]] == ["succeeded"] * 3
        now = versions(client, ids)
        assert {now[n] for n in names if n.startswith("good")} == {("1.1.0", "succeeded")}
        assert {now[n] for n in names if n.startswith("bad")} == {("1.0.0", "succeeded")}

        # v1.2.0 breaks the bad tenants (first in line): the canary wave fails twice, the
        # rollout halts, both roll back, and nobody else is touched.
        halting = client.post(
            "/api/v1/rollouts",
            json={
                "blueprint": blueprint,
                "to_version": "1.2.0",
                "failure_threshold": 2,
                "waves": [
                    {"count": 2, "max_concurrency": 2},
                    {"percent": 100, "max_concurrency": 8},
                ],
            },
        )
        assert halting.status_code == 202, halting.text
        halted = wait_rollout(client, halting.json()["id"], ("succeeded", "halted", "cancelled"))
        assert halted["status"] == "halted" and "threshold 2" in halted["reason"]
        assert [w["status"] for w in halted["waves"]] == ["failed", "skipped"]
        now = versions(client, ids)
        assert {now[n] for n in names if n.startswith("bad")} == {("1.0.0", "rolled_back")}
        assert {now[n] for n in names if n.startswith("good")} == {("1.1.0", "succeeded")}

        # Rolling back is a rollout to the previous version.
        back = client.post(
            "/api/v1/rollouts",
            json={
                "blueprint": blueprint,
                "to_version": "1.0.0",
                "selector": {"tier": "pro"},
                "waves": [{"percent": 100, "max_concurrency": 8}],
            },
        )
        assert wait_rollout(client, back.json()["id"], ("succeeded", "halted"))["status"] == (
            "succeeded"
        )
        now = versions(client, ids)
        assert {now[n][0] for i, n in enumerate(names) if i % 2} == {"1.0.0"}


def test_pause_resume_cancel_and_one_rollout_per_deployment(live_server: LiveServer) -> None:
    suffix = uuid.uuid4().hex[:5]
    blueprint = f"ctl-{suffix}"
    names = [f"t{i}-{suffix}" for i in range(3)]
    with live_server.client() as client:
        assert client.post("/api/v1/blueprints", json={"name": blueprint}).status_code == 201
        for version in ("1.0.0", "1.1.0", "1.2.0"):
            register(client, blueprint, version, example_archive())
        ids = deploy_fleet(client, blueprint, names)
        spec = {
            "blueprint": blueprint,
            "to_version": "1.1.0",
            "waves": [{"count": 1, "soak_seconds": 4}, {"percent": 100, "max_concurrency": 2}],
        }
        rollout = client.post("/api/v1/rollouts", json=spec).json()
        clash = client.post("/api/v1/rollouts", json={**spec, "to_version": "1.2.0"})
        assert clash.status_code == 409 and "another active rollout" in clash.json()["detail"]

        soaking = wait_rollout_wave(client, rollout["id"], "soaking")
        paused = client.post(f"/api/v1/rollouts/{rollout['id']}/pause")
        assert paused.status_code == 200 and paused.json()["status"] == "paused"
        assert client.post(f"/api/v1/rollouts/{rollout['id']}/pause").status_code == 409
        time.sleep(5)  # past the soak: a paused rollout starts nothing
        held = client.get(f"/api/v1/rollouts/{rollout['id']}").json()
        assert held["status"] == "paused" and held["waves"][1]["status"] == "pending", soaking
        assert client.post(f"/api/v1/rollouts/{rollout['id']}/resume").status_code == 200
        done = wait_rollout(client, rollout["id"], ("succeeded", "halted", "cancelled"))
        assert done["status"] == "succeeded"
        assert {v for v, _ in versions(client, ids).values()} == {"1.1.0"}

        cancelled = client.post(
            "/api/v1/rollouts",
            json={
                **spec,
                "to_version": "1.2.0",
                "waves": [{"count": 1, "soak_seconds": 30}, {"percent": 100}],
            },
        ).json()
        answer = client.post(f"/api/v1/rollouts/{cancelled['id']}/cancel")
        assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
        for action in ("pause", "resume", "cancel"):
            assert client.post(f"/api/v1/rollouts/{cancelled['id']}/{action}").status_code == 409
        final = client.get(f"/api/v1/rollouts/{cancelled['id']}").json()
        assert final["waves"][-1]["status"] == "skipped"
        assert (
            client.post("/api/v1/rollouts", json={**spec, "to_version": "9.9.9"}).status_code == 404
        )
        assert client.post("/api/v1/rollouts", json={**spec, "waves": []}).status_code == 422
        assert client.get("/api/v1/rollouts/999999").status_code == 404


def wait_rollout_wave(
    client: httpx.Client, rollout_id: int, status: str, timeout: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rollout: dict[str, Any] = client.get(f"/api/v1/rollouts/{rollout_id}").json()
        if rollout["waves"][0]["status"] == status:
            return rollout
        time.sleep(0.1)
    raise AssertionError(f"wave 0 of rollout {rollout_id} never became {status}: {rollout}")
