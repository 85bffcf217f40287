"""A server (with its in-process workers) killed with SIGKILL in the middle of a rollout: after
a restart the interrupted applies resume and the rollout completes; nothing is lost."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, update

from terraplane.domain.roles import Role
from terraplane.store.database import normalize_url
from terraplane.store.migrate import upgrade
from terraplane.store.tables import jobs
from tests.integration.test_rollouts import deploy_fleet, register, wait_rollout
from tests.support.controlplane import wait_operation
from tests.support.modules import EXAMPLE_BLUEPRINT, example_archive
from tests.support.server import ServerProcess, make_token

# 1.1.0's deploy check takes a while, so the kill lands during an apply.
SLOW_CHECK = (
    (EXAMPLE_BLUEPRINT / "main.tf")
    .read_text()
    .replace("echo 'deploy check passed'", "sleep 4 && echo 'deploy check passed'")
)


def test_rollout_survives_a_killed_server(
    database_url: str, tmp_path: Path, terraform_cli_config: Path
) -> None:
    upgrade(database_url)
    env = {"TF_CLI_CONFIG_FILE": str(terraform_cli_config), "TERRAPLANE_JOB_LEASE_SECONDS": "3"}
    server = ServerProcess(
        database_url=database_url, data_dir=tmp_path / "a", env_extra=env
    ).start()
    token = make_token(database_url, "crash", Role.OPERATOR)
    client = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    )
    names = [f"crash{i}" for i in range(4)]
    try:
        assert client.post("/api/v1/blueprints", json={"name": "crashy"}).status_code == 201
        register(client, "crashy", "1.0.0", example_archive())
        register(client, "crashy", "1.1.0", example_archive(**{"main.tf": SLOW_CHECK}))
        ids = deploy_fleet(client, "crashy", names)
        rollout = client.post(
            "/api/v1/rollouts",
            json={
                "blueprint": "crashy",
                "to_version": "1.1.0",
                "waves": [{"percent": 100, "max_concurrency": 2}],
            },
        ).json()
        deadline = time.monotonic() + 60
        while "running" not in json.dumps(client.get(f"/api/v1/rollouts/{rollout['id']}").json()):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(1.5)  # terraform is inside its apply now
        server.kill()
    finally:
        client.close()

    # The same host comes back: same data directory, so the same generated encryption key.
    restarted = ServerProcess(
        database_url=database_url, data_dir=tmp_path / "a", env_extra=env
    ).start()
    try:
        with httpx.Client(
            base_url=restarted.url, timeout=60, headers={"Authorization": f"Bearer {token}"}
        ) as client:
            done = wait_rollout(client, rollout["id"], ("succeeded", "halted", "cancelled"))
            assert done["status"] == "succeeded", done
            for dep_id in ids.values():
                dep = client.get(f"/api/v1/deployments/{dep_id}").json()
                assert (dep["version"], dep["status"]) == ("1.1.0", "succeeded")
                state = json.loads(client.get(f"/api/v1/state/{dep['workspace']}").content)
                assert {r["name"] for r in state["resources"]} == {
                    "instance",
                    "database",
                    "deploy_check",
                }
                lock = client.get(f"/api/v1/state/{dep['workspace']}/lock").json()
                assert lock["locked"] is False
            # The killed attempts' provider plugins were stopped when the runs resumed.
            # (A provider of a run that just finished may take a moment to exit; an orphan
            # of a killed attempt would not: its `sleep 60` outlives this wait.)
            deadline = time.monotonic() + 10
            while _processes_working_in(tmp_path / "a" / "runs") and time.monotonic() < deadline:
                time.sleep(0.2)
            assert _processes_working_in(tmp_path / "a" / "runs") == []
            attempts = [
                run["started_at"]
                for op in client.get(f"/api/v1/tenants/{names[0]}/history").json()["operations"]
                for run in op["runs"]
            ]
            assert attempts  # the history survived the crash too
    finally:
        restarted.stop()


def _slow_deployment_applying(client: httpx.Client, name: str) -> dict[str, Any]:
    """A deployment of a blueprint whose apply takes a while, once terraform is inside that
    apply (holding the state's lock); the creation's answer."""
    assert client.post("/api/v1/blueprints", json={"name": name}).status_code == 201
    register(client, name, "1.0.0", example_archive(**{"main.tf": SLOW_CHECK}))
    assert client.post("/api/v1/tenants", json={"name": name}).status_code == 201
    created = client.post(
        "/api/v1/deployments",
        json={
            "tenant": name,
            "environment": "dev",
            "blueprint": name,
            "version": "1.0.0",
            "tier": "free",
            "variables": {"tenant": name},
        },
    )
    assert created.status_code == 202, created.text
    deadline = time.monotonic() + 60
    while not any(
        r["status"] == "running" and r["started_at"]
        for r in client.get("/api/v1/runs").json()["runs"]
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(1.5)  # inside terraform's apply
    answer: dict[str, Any] = created.json()
    return answer


def _wait_deployment(client: httpx.Client, dep_id: int, status: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (found := client.get(f"/api/v1/deployments/{dep_id}").json())["status"] != status:
        assert time.monotonic() < deadline, found
        time.sleep(0.3)


def _processes_working_in(directory: Path) -> list[int]:
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if os.readlink(proc / "cwd").startswith(str(directory.resolve())):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_a_run_handed_back_at_shutdown_resumes_on_restart(
    database_url: str, tmp_path: Path, terraform_cli_config: Path
) -> None:
    """SIGTERM with no grace left hands a running apply back to the queue (not counted as an
    attempt); the restarted server resumes it — with new state credentials — to the end."""
    upgrade(database_url)
    env = {
        "TF_CLI_CONFIG_FILE": str(terraform_cli_config),
        "TERRAPLANE_SHUTDOWN_GRACE_SECONDS": "0",
    }
    server = ServerProcess(database_url=database_url, data_dir=tmp_path / "a", env_extra=env)
    server.start()
    token = make_token(database_url, "handback", Role.OPERATOR)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
        dep_id = _slow_deployment_applying(client, "handback")["deployment"]["id"]
    server.stop()  # SIGTERM: the run is handed back

    restarted = ServerProcess(database_url=database_url, data_dir=tmp_path / "a", env_extra=env)
    restarted.start()
    try:
        with httpx.Client(base_url=restarted.url, headers=headers, timeout=60) as client:
            _wait_deployment(client, dep_id, "succeeded", 120)
            (run,) = client.get("/api/v1/runs").json()["runs"]
            log = client.get(f"/api/v1/runs/{run['id']}/log").text
            assert run["status"] == "succeeded"
            assert "the worker stopped; another worker will resume this run" in log
            assert log.count("Apply complete!") == 1
    finally:
        restarted.stop()


def test_a_run_whose_workers_keep_dying_fails_and_frees_its_deployment(
    database_url: str, tmp_path: Path, terraform_cli_config: Path
) -> None:
    """A run whose worker dies on its last allowed attempt is given up, not left `running`:
    the run fails with the reason, the state lock its dead attempt held is released, the
    deployment's operation settles, and the deployment takes changes again."""
    upgrade(database_url)
    env = {"TF_CLI_CONFIG_FILE": str(terraform_cli_config), "TERRAPLANE_JOB_LEASE_SECONDS": "3"}
    server = ServerProcess(database_url=database_url, data_dir=tmp_path / "a", env_extra=env)
    server.start()
    token = make_token(database_url, "doomed", Role.OPERATOR)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
        created = _slow_deployment_applying(client, "doomed")
        dep = created["deployment"]
        assert client.get(f"/api/v1/state/{dep['workspace']}/lock").json()["locked"] is True
    server.kill()
    # That was the last attempt the run's job was allowed (as if its workers had died before).
    engine = create_engine(normalize_url(database_url, asynchronous=False))
    with engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.kind == "run").values(attempts=jobs.c.max_attempts))
    engine.dispose()

    restarted = ServerProcess(database_url=database_url, data_dir=tmp_path / "a", env_extra=env)
    restarted.start()
    try:
        with httpx.Client(base_url=restarted.url, headers=headers, timeout=60) as client:
            _wait_deployment(client, dep["id"], "failed", 60)
            (run,) = client.get("/api/v1/runs").json()["runs"]
            assert run["status"] == "failed" and "gave up" in run["error"], run
            op = client.get(f"/api/v1/operations/{created['operation']['id']}").json()
            assert op["status"] == "failed" and "gave up" in op["error"], op
            assert client.get(f"/api/v1/state/{dep['workspace']}/lock").json()["locked"] is False
            again = client.patch(f"/api/v1/deployments/{dep['id']}", json={"version": "1.0.0"})
            assert again.status_code == 202, again.text
            assert wait_operation(client, again.json()["operation"]["id"])["status"] == "succeeded"
    finally:
        restarted.stop()
