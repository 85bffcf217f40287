"""Runs executed by a real server's in-process workers with the real terraform binary, their
state in Terraplane's own backend: plan, apply, logs, redaction, cancel and timeout."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from terraplane.domain.roles import Role
from terraplane.domain.runs import DirectorySource, RunOperation, RunSpec
from tests.conftest import LiveServer
from tests.support.runs import run_log, submit_run, wait_for_run
from tests.support.terraform import NULL_MODULE

SLOW_MODULE = """
resource "null_resource" "slow" {
  provisioner "local-exec" {
    command = "echo started-slow && sleep 60"
  }
}
"""

ECHO_MODULE = """
variable "api_key" {
  type = string
}

resource "null_resource" "echo" {
  provisioner "local-exec" {
    command = "echo the key is ${var.api_key}"
  }
}
"""


def module(tmp_path: Path, body: str) -> Path:
    path = tmp_path / f"module-{uuid.uuid4().hex[:6]}"
    path.mkdir()
    (path / "main.tf").write_text(body)
    return path


def spec(path: Path, **kwargs: Any) -> RunSpec:
    return RunSpec(
        source=DirectorySource(path=str(path)), state=f"runs/{uuid.uuid4().hex[:8]}", **kwargs
    )


def test_plan_then_apply_then_plan_again(live_server: LiveServer, tmp_path: Path) -> None:
    s = spec(module(tmp_path, NULL_MODULE), variables={"value": "v1"})
    url = live_server.database_url
    with live_server.client(Role.VIEWER) as client:
        plan = wait_for_run(client, submit_run(url, "ws-a", RunOperation.PLAN, s))
        assert plan["status"] == "succeeded", run_log(client, plan["id"])
        assert plan["has_changes"] is True
        assert plan["plan_summary"]["add"] == 1
        assert plan["plan_summary"]["resources"] == [
            {"address": "null_resource.item", "actions": ["create"]}
        ]
        log = run_log(client, plan["id"])
        assert "terraform init" in log and "Plan: 1 to add" in log
        assert client.get(f"/api/v1/state/{s.state}").status_code == 404  # a plan writes none

        apply = wait_for_run(client, submit_run(url, "ws-a", RunOperation.APPLY, s))
        assert apply["status"] == "succeeded", run_log(client, apply["id"])
        state = json.loads(client.get(f"/api/v1/state/{s.state}").content)
        assert [r["type"] for r in state["resources"]] == ["null_resource"]
        assert state["outputs"]["value"]["value"] == "v1"

        again = wait_for_run(client, submit_run(url, "ws-a", RunOperation.PLAN, s))
        assert again["status"] == "succeeded" and again["has_changes"] is False

        destroy = wait_for_run(client, submit_run(url, "ws-a", RunOperation.DESTROY, s))
        assert destroy["status"] == "succeeded", run_log(client, destroy["id"])
        assert json.loads(client.get(f"/api/v1/state/{s.state}").content)["resources"] == []
        # The run's short-lived backend token is revoked when the run ends.
        with live_server.client(Role.ADMIN) as admin:
            names = [t["name"] for t in admin.get("/api/v1/tokens").json()["tokens"]]
        assert not [n for n in names if n.startswith(f"run-{apply['id']}-")]


def test_sensitive_values_never_reach_the_log(live_server: LiveServer, tmp_path: Path) -> None:
    secret = f"sk-{uuid.uuid4().hex}"
    s = spec(
        module(tmp_path, ECHO_MODULE),
        variables={"api_key": secret},
        sensitive_variables=["api_key"],
    )
    with live_server.client(Role.VIEWER) as client:
        run = wait_for_run(
            client, submit_run(live_server.database_url, "ws-secret", RunOperation.APPLY, s)
        )
        log = run_log(client, run["id"])
        listing = client.get(f"/api/v1/runs/{run['id']}").text
    assert run["status"] == "succeeded", log
    assert "the key is ***" in log
    assert secret not in log and secret not in listing


def test_cancel_interrupts_terraform_and_releases_the_lock(
    live_server: LiveServer, tmp_path: Path
) -> None:
    s = spec(module(tmp_path, SLOW_MODULE))
    run_id = submit_run(live_server.database_url, "ws-cancel", RunOperation.APPLY, s)
    with live_server.client() as client:
        deadline = time.monotonic() + 60
        while "started-slow" not in run_log(client, run_id):
            assert time.monotonic() < deadline, run_log(client, run_id)
            time.sleep(0.2)
        assert client.post(f"/api/v1/runs/{run_id}/cancel").status_code == 200
        run = wait_for_run(client, run_id, timeout=60)
        log = run_log(client, run_id)
        assert run["status"] == "cancelled", log
        assert "Interrupt received" in log
        # Terraform stopped cleanly: the state lock it held is released.
        probe = client.request("LOCK", f"/api/v1/state/{s.state}", content='{"ID": "probe"}')
        assert probe.status_code == 200, probe.text


def test_timeout_stops_the_run(live_server: LiveServer, tmp_path: Path) -> None:
    s = spec(module(tmp_path, SLOW_MODULE), timeout_seconds=8)
    with live_server.client() as client:
        run = wait_for_run(
            client,
            submit_run(live_server.database_url, "ws-timeout", RunOperation.APPLY, s),
            timeout=90,
        )
    assert run["status"] == "failed" and run["error"] == "the run exceeded its timeout"


def test_log_can_be_tailed_by_offset(live_server: LiveServer, tmp_path: Path) -> None:
    s = spec(module(tmp_path, NULL_MODULE))
    with live_server.client(Role.VIEWER) as client:
        run = wait_for_run(
            client, submit_run(live_server.database_url, "ws-tail", RunOperation.PLAN, s)
        )
        whole = client.get(f"/api/v1/runs/{run['id']}/log")
        end = int(whole.headers["X-Next-Offset"])
        assert end == len(whole.text)
        pieces, offset = [], 0
        for step in (7, 100, 1000):
            part = client.get(f"/api/v1/runs/{run['id']}/log", params={"offset": offset})
            pieces.append(part.text[:step])
            offset += len(part.text[:step])
        rest = client.get(f"/api/v1/runs/{run['id']}/log", params={"offset": offset})
        assert "".join(pieces) + rest.text == whole.text
        assert client.get(f"/api/v1/runs/{run['id']}/log", params={"offset": end}).text == ""
