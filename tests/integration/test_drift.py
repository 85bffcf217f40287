"""Drift checks: a plan that only looks; detected after an out-of-band change to the state,
cleared by reconciling (re-applying the deployment)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.conftest import LiveServer
from tests.support.controlplane import create, wait_operation


def drift_row(client: httpx.Client, workspace: str) -> dict[str, object]:
    rows = client.get("/api/v1/drift").json()["workspaces"]
    return next(r for r in rows if r["workspace"] == workspace)


def check(client: httpx.Client, workspace: str, **options: bool) -> dict[str, Any]:
    answer = client.post("/api/v1/drift/checks", json={"workspace": workspace, **options})
    assert answer.status_code == 202, answer.text
    return wait_operation(client, answer.json()["operation"]["id"])


def test_drift_detected_and_reconciled(live_server: LiveServer, fleet: dict[str, str]) -> None:
    with live_server.client() as client:
        answer = create(client, fleet)
        assert wait_operation(client, answer.json()["operation"]["id"])["status"] == "succeeded"
        dep = answer.json()["deployment"]
        workspace = dep["workspace"]
        assert drift_row(client, workspace)["status"] == "never_run"

        first = client.post("/api/v1/drift/checks", json={"workspace": workspace})
        again = client.post("/api/v1/drift/checks", json={"workspace": workspace})
        assert again.status_code == 409 and "already being checked" in again.json()["detail"]
        op = wait_operation(client, first.json()["operation"]["id"])
        assert op["status"] == "succeeded" and op["kind"] == "drift_check"
        assert drift_row(client, workspace)["status"] == "ok"
        log = client.get(f"/api/v1/runs/{op['runs'][0]['id']}/log").text
        assert "-lock=false" in log  # a check never takes the state lock

        # Out of band: someone removes a resource from the state (terraform state rm).
        state = json.loads(client.get(f"/api/v1/state/{workspace}").content)
        state["resources"] = [r for r in state["resources"] if r["name"] != "database"]
        state["serial"] += 1
        assert (
            client.post(f"/api/v1/state/{workspace}", content=json.dumps(state)).status_code == 200
        )

        op = check(client, workspace)
        row = drift_row(client, workspace)
        assert op["status"] == "succeeded" and row["status"] == "drifted", (op, row)
        assert row["checked_at"] and row["run_id"] == op["runs"][0]["id"]
        status = client.get(f"/api/v1/deployments/{dep['id']}").json()["status"]
        assert status == "succeeded"  # a check changes nothing

        # A refresh-only check sees the change too.
        op = check(client, workspace, refresh_only=True)
        log = client.get(f"/api/v1/runs/{op['runs'][0]['id']}/log").text
        assert "-refresh-only" in log and drift_row(client, workspace)["status"] == "drifted"

        # A check that reconciles: the drift it finds is applied in a reconcile operation.
        check(client, workspace, reconcile=True)
        history = client.get(f"/api/v1/tenants/{fleet['tenant']}/history").json()["operations"]
        reconcile = next(h for h in history if h["kind"] == "reconcile")
        assert wait_operation(client, reconcile["id"])["status"] == "succeeded"
        assert drift_row(client, workspace)["status"] == "ok"
        check(client, workspace)
        assert drift_row(client, workspace)["status"] == "ok"

        assert client.post("/api/v1/drift/checks", json={"workspace": "nope"}).status_code == 404
        assert client.post("/api/v1/drift/checks", json={}).status_code == 422
