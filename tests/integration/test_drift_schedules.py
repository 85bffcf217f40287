"""Scheduled drift detection with the real server, workers, terraform and state backend:
schedules fire on cron and on demand, spread their checks over a window, skip a locked
workspace and retry it, and reconcile drift when asked to."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from tests.conftest import LiveServer
from tests.support.controlplane import create, wait_operation


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := probe():
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def drift_rows(client: httpx.Client) -> dict[str, dict[str, Any]]:
    return {r["workspace"]: r for r in client.get("/api/v1/drift").json()["workspaces"]}


def drift_ops(client: httpx.Client, tenant: str, kind: str = "drift_check") -> list[dict[str, Any]]:
    history = client.get(f"/api/v1/tenants/{tenant}/history").json()["operations"]
    return [op for op in history if op["kind"] == kind]


def remove_database(client: httpx.Client, workspace: str) -> None:
    """An out-of-band change: `terraform state rm` through the backend."""
    state = json.loads(client.get(f"/api/v1/state/{workspace}").content)
    state["resources"] = [r for r in state["resources"] if r["name"] != "database"]
    state["serial"] += 1
    answer = client.post(f"/api/v1/state/{workspace}", content=json.dumps(state))
    assert answer.status_code == 200


def test_schedule_validation_and_lifecycle(live_server: LiveServer, fleet: dict[str, str]) -> None:
    with live_server.client() as client, live_server.client(role=None) as anonymous:
        base = {"name": f"s-{uuid.uuid4().hex[:6]}", "cron": "0 3 * * *"}
        for body, status, problem in [
            ({**base, "cron": "0 3 * *"}, 422, "five fields"),
            ({**base, "cron": "0 25 * * *"}, 422, "not a valid cron"),
            ({**base, "blueprint": "no-such-blueprint"}, 404, "no-such-blueprint"),
            ({**base, "environment": "qa"}, 422, "'qa' is not one of"),
            ({**base, "window_seconds": -5}, 422, "window_seconds"),
            ({**base, "name": "Bad Name!"}, 422, "name"),
        ]:
            answer = client.post("/api/v1/drift/schedules", json=body)
            assert answer.status_code == status, (body, answer.text)
            assert problem in answer.json()["detail"]
        assert client.get(f"/api/v1/drift/schedules/{base['name']}").status_code == 404
        assert anonymous.post("/api/v1/drift/schedules", json=base).status_code == 401

        made = client.post(
            "/api/v1/drift/schedules", json={**base, "blueprint": fleet["blueprint"]}
        )
        assert made.status_code == 201, made.text
        schedule = made.json()
        assert schedule["cron"] == "0 3 * * *" and schedule["enabled"]
        fire = datetime.fromisoformat(schedule["next_fire_at"])
        assert (fire.hour, fire.minute, fire.utcoffset().total_seconds()) == (3, 0, 0)  # type: ignore[union-attr]
        assert client.post("/api/v1/drift/schedules", json=base).status_code == 409

        path = f"/api/v1/drift/schedules/{base['name']}"
        changed = client.patch(path, json={"cron": "30 * * * *", "reconcile": True})
        assert changed.status_code == 200, changed.text
        assert datetime.fromisoformat(changed.json()["next_fire_at"]).minute == 30
        assert changed.json()["reconcile"] is True
        assert client.patch(path, json={"cron": "nope"}).status_code == 422
        assert client.get(path).json()["cron"] == "30 * * * *"  # the bad change changed nothing
        disabled = client.patch(path, json={"enabled": False}).json()
        assert disabled["enabled"] is False and disabled["next_fire_at"] is None
        assert client.post(f"{path}/run").status_code == 409
        names = [s["name"] for s in client.get("/api/v1/drift/schedules").json()["schedules"]]
        assert base["name"] in names
        assert client.delete(path).status_code == 204
        assert client.get(path).status_code == 404
        assert client.delete(path).status_code == 404


def test_scheduled_checks_spread_skip_locked_and_reconcile(
    live_server: LiveServer, fleet: dict[str, str]
) -> None:
    with live_server.client() as client:
        # A schedule on the real clock, firing every minute over an environment with nothing
        # in it: proven at the end of the test, after up to a minute has passed anyway.
        ticker = f"tick-{uuid.uuid4().hex[:6]}"
        assert (
            client.post(
                "/api/v1/drift/schedules",
                json={
                    "name": ticker,
                    "cron": "* * * * *",
                    "blueprint": fleet["blueprint"],
                    "environment": "prod",
                },
            ).status_code
            == 201
        )

        second = f"t-{uuid.uuid4().hex[:6]}"
        assert client.post("/api/v1/tenants", json={"name": second}).status_code == 201
        tenants = sorted([fleet["tenant"], second])
        answers = [
            create(
                client,
                {**fleet, "tenant": t},
                variables={"tenant": t, "api_key": "sk-very-secret-1"},
            )
            for t in tenants
        ]
        for answer in answers:
            op = wait_operation(client, answer.json()["operation"]["id"])
            assert op["status"] == "succeeded", op
        first_ws, second_ws = (a.json()["deployment"]["workspace"] for a in answers)

        remove_database(client, first_ws)
        lock = {"ID": "out-of-band", "Operation": "OperationTypeApply", "Who": "alice@laptop"}
        answer = client.request("LOCK", f"/api/v1/state/{second_ws}", content=json.dumps(lock))
        assert answer.status_code == 200

        name = f"nightly-{uuid.uuid4().hex[:6]}"
        body = {
            "name": name,
            "cron": "0 3 * * *",
            "blueprint": fleet["blueprint"],
            "environment": "dev",
            "window_seconds": 4,
        }
        assert client.post("/api/v1/drift/schedules", json=body).status_code == 201
        path = f"/api/v1/drift/schedules/{name}"
        assert client.post(f"{path}/run").status_code == 202

        rows = wait_for(
            "the drifted workspace to be checked",
            lambda: (r := drift_rows(client))[first_ws]["status"] != "never_run" and r,
        )
        assert rows[first_ws]["status"] == "drifted"
        fired = client.get(path).json()
        assert fired["last_fired_count"] == 2 and fired["last_fired_at"]

        # The locked workspace is skipped and retried (every second here), never checked
        # while the lock is held.
        time.sleep(6)
        assert drift_rows(client)[second_ws]["status"] == "never_run"
        assert drift_ops(client, tenants[1]) == []
        answer = client.request("UNLOCK", f"/api/v1/state/{second_ws}", content=json.dumps(lock))
        assert answer.status_code == 200
        wait_for(
            "the unlocked workspace to be checked",
            lambda: drift_rows(client)[second_ws]["status"] == "ok",
        )
        assert len(drift_ops(client, tenants[1])) == 1  # checked once, not once per retry
        assert client.get(f"/api/v1/deployments/{answers[0].json()['deployment']['id']}").json()[
            "status"
        ] == ("succeeded")  # a check changes nothing

        # Both free: the checks start spread over the 4-second window, not all at once.
        before = {t: len(drift_ops(client, t)) for t in tenants}
        assert client.post(f"{path}/run").status_code == 202
        wait_for(
            "both checks of the second firing",
            lambda: all(len(drift_ops(client, t)) == before[t] + 1 for t in tenants),
        )
        starts = [datetime.fromisoformat(drift_ops(client, t)[0]["created_at"]) for t in tenants]
        # Due 2 s apart; each is picked up within a poll interval (0.5 s on SQLite) of its time.
        assert (starts[1] - starts[0]).total_seconds() >= 1.0, starts

        # Reconcile: the schedule applies the drift it finds; the deployment is whole again.
        assert client.patch(path, json={"reconcile": True}).status_code == 200
        for t in tenants:
            for op in drift_ops(client, t):
                wait_operation(client, op["id"])
        assert client.post(f"{path}/run").status_code == 202
        reconciled = wait_for(
            "the reconcile operation", lambda: drift_ops(client, tenants[0], "reconcile")
        )
        assert wait_operation(client, reconciled[0]["id"])["status"] == "succeeded"
        assert drift_rows(client)[first_ws]["status"] == "ok"
        state = json.loads(client.get(f"/api/v1/state/{first_ws}").content)
        assert "database" in {r["name"] for r in state["resources"]}
        assert drift_ops(client, tenants[1], "reconcile") == []  # nothing drifted there

        # The cron schedule fired on its own, and its next firing moved on.
        tick = wait_for(
            "the every-minute schedule to fire",
            lambda: (
                (s := client.get(f"/api/v1/drift/schedules/{ticker}").json())["last_fired_at"] and s
            ),
            timeout=90,
        )
        assert tick["last_fired_count"] == 0
        assert datetime.fromisoformat(tick["next_fire_at"]) > datetime.fromisoformat(
            tick["last_fired_at"]
        )
        for schedule in (name, ticker):
            assert client.delete(f"/api/v1/drift/schedules/{schedule}").status_code == 204
