"""Deployments end to end: real server, workers, terraform and state backend. Creation,
validation, the promotion gate, automatic rollback of a failed change, destroy."""

from __future__ import annotations

import json

from terraplane.domain.roles import Role
from tests.conftest import LiveServer
from tests.support.controlplane import create, wait_operation


def test_create_update_rollback_destroy(live_server: LiveServer, fleet: dict[str, str]) -> None:
    with live_server.client() as client:
        answer = create(client, fleet)
        assert answer.status_code == 202, answer.text
        dep = answer.json()["deployment"]
        assert dep["status"] in ("pending", "applying") and dep["version"] == "1.0.0"
        assert dep["variables"]["api_key"] == "(sensitive)"
        op = wait_operation(client, answer.json()["operation"]["id"])
        assert op["status"] == "succeeded", op
        dep = client.get(f"/api/v1/deployments/{dep['id']}").json()
        assert (dep["status"], dep["version"], dep["workspace"]) == (
            "succeeded",
            "1.0.0",
            f"deployments/{fleet['tenant']}/dev/{fleet['blueprint']}",
        )
        state = json.loads(client.get(f"/api/v1/state/{dep['workspace']}").content)
        assert state["outputs"]["endpoint"]["value"] == f"https://{fleet['tenant']}.example.com"
        log = client.get(f"/api/v1/runs/{op['runs'][0]['id']}/log").text
        assert "sk-very-secret-1" not in log and "deploy check passed" in log

        # A change that fails is rolled back to the last good version and variables.
        broken = client.patch(
            f"/api/v1/deployments/{dep['id']}",
            json={"version": "1.1.0", "variables": {"tenant": fleet["tenant"], "fail": True}},
        )
        assert broken.status_code == 202, broken.text
        assert client.patch(f"/api/v1/deployments/{dep['id']}", json={}).status_code == 409
        op = wait_operation(client, broken.json()["operation"]["id"])
        assert op["status"] == "rolled_back", op
        assert [(r["purpose"], r["status"]) for r in op["runs"]] == [
            ("apply", "failed"),
            ("rollback", "succeeded"),
        ]
        dep = client.get(f"/api/v1/deployments/{dep['id']}").json()
        assert (dep["status"], dep["version"]) == ("rolled_back", "1.0.0")
        assert "fail" not in dep["variables"]
        versions = client.get(f"/api/v1/state/{dep['workspace']}/versions").json()["versions"]
        assert len(versions) >= 3  # nothing was lost: every write is kept

        # A good change.
        good = client.patch(f"/api/v1/deployments/{dep['id']}", json={"version": "1.1.0"})
        assert wait_operation(client, good.json()["operation"]["id"])["status"] == "succeeded"
        assert client.get(f"/api/v1/deployments/{dep['id']}").json()["version"] == "1.1.0"

        # The tenant cannot go while it has a deployment; destroy it.
        assert client.delete(f"/api/v1/tenants/{fleet['tenant']}").status_code == 409
        gone = client.delete(f"/api/v1/deployments/{dep['id']}")
        assert wait_operation(client, gone.json()["operation"]["id"])["status"] == "succeeded"
        assert client.get(f"/api/v1/deployments/{dep['id']}").json()["status"] == "destroyed"
        state = json.loads(client.get(f"/api/v1/state/{dep['workspace']}").content)
        assert state["resources"] == []

        # The tenant's history: every operation, newest first, with every run.
        history = client.get(f"/api/v1/tenants/{fleet['tenant']}/history").json()["operations"]
        assert [h["kind"] for h in history] == ["destroy", "update", "update", "create"]
        assert [r["purpose"] for r in history[2]["runs"]] == ["apply", "rollback"]
        assert client.get("/api/v1/tenants/nobody/history").status_code == 404

        # With only destroyed deployments left, the tenant can go; its history stays readable.
        assert client.delete(f"/api/v1/tenants/{fleet['tenant']}").status_code == 204
        assert client.get(f"/api/v1/tenants/{fleet['tenant']}").status_code == 404
        names = [t["name"] for t in client.get("/api/v1/tenants").json()["tenants"]]
        assert fleet["tenant"] not in names
        kept = client.get(f"/api/v1/tenants/{fleet['tenant']}/history").json()["operations"]
        assert [h["kind"] for h in kept] == ["destroy", "update", "update", "create"]
        assert create(client, fleet).status_code == 404  # no deployments for a deleted tenant

        # The name comes back, and the destroyed deployment starts a new life in its workspace.
        back = client.post("/api/v1/tenants", json={"name": fleet["tenant"], "labels": {"a": "b"}})
        assert back.status_code == 201 and back.json()["labels"] == {"a": "b"}
        again = create(client, fleet)
        assert again.status_code == 202, again.text
        assert again.json()["deployment"]["id"] == dep["id"]
        assert again.json()["deployment"]["last_good_version"] is None
        op = wait_operation(client, again.json()["operation"]["id"])
        assert op["status"] == "succeeded", op
        state = json.loads(client.get(f"/api/v1/state/{dep['workspace']}").content)
        assert state["resources"] != []
        assert client.delete(f"/api/v1/tenants/{fleet['tenant']}").status_code == 409


def test_failed_first_apply_leaves_a_failed_deployment(
    live_server: LiveServer, fleet: dict[str, str]
) -> None:
    with live_server.client() as client:
        answer = create(client, fleet, variables={"tenant": fleet["tenant"], "fail": True})
        op = wait_operation(client, answer.json()["operation"]["id"])
        assert op["status"] == "failed" and "failed" in op["error"]
        dep = client.get(f"/api/v1/deployments/{answer.json()['deployment']['id']}").json()
        assert dep["status"] == "failed"


def test_invalid_requests_change_nothing(live_server: LiveServer, fleet: dict[str, str]) -> None:
    with live_server.client() as client:
        bad = create(client, fleet, variables={"instance_count": "many", "nope": 1})
        assert bad.status_code == 422
        detail = bad.json()["detail"]
        for problem in (
            "nope: no such variable",
            "tenant: required variable is missing",
            "instance_count: expected a number",
        ):
            assert problem in detail
        assert create(client, fleet, version="9.9.9").status_code == 404
        assert create(client, fleet, tenant="no-such-tenant").status_code == 404
        assert create(client, fleet, environment="qa").status_code == 422
        assert create(client, fleet, tier="gold").status_code == 422
        fixed = create(client, fleet, variables={"tenant": "x", "dedicated": True})
        assert fixed.status_code == 422 and "fixed by tier" in fixed.json()["detail"]
        assert (
            client.get("/api/v1/deployments", params={"tenant": fleet["tenant"]}).json()[
                "deployments"
            ]
            == []
        )
        assert client.get("/api/v1/deployments/999999").status_code == 404
        assert client.get("/api/v1/operations/999999").status_code == 404


def test_promotion_gate(live_server: LiveServer, fleet: dict[str, str]) -> None:
    with live_server.client() as client, live_server.client(Role.ADMIN) as admin:
        early = create(client, fleet, environment="staging")
        assert early.status_code == 409 and "has not succeeded in 'dev'" in early.json()["detail"]
        assert create(client, fleet, environment="staging", override_gate=True).status_code == 403
        dev = create(client, fleet)
        assert wait_operation(client, dev.json()["operation"]["id"])["status"] == "succeeded"
        staging = create(client, fleet, environment="staging")
        assert staging.status_code == 202, staging.text
        assert create(client, fleet, environment="staging").status_code == 409  # one per target
        forced = create(admin, fleet, environment="prod", version="1.1.0", override_gate=True)
        assert forced.status_code == 202, forced.text
        op = client.get(f"/api/v1/operations/{forced.json()['operation']['id']}").json()
        assert op["gate_overridden_by"] == "test-admin"
        wait_operation(client, staging.json()["operation"]["id"])
        wait_operation(client, op["id"])
