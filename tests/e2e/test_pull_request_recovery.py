"""A server killed (SIGKILL) while a pull request's plans run loses nothing: after a restart
every dirspace is planned exactly once, and the pull request gets one comment."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from terraplane.domain.roles import Role
from terraplane.store.migrate import upgrade
from tests.conftest import BACKENDS, LiveServer
from tests.e2e.conftest import PullRequestWorld, pr_server_env
from tests.support.databases import database_url_for
from tests.support.github import GitHubStandIn
from tests.support.server import ServerProcess

SLOW = """\
workflows:
  slow:
    plan:
      steps:
        - run: ["sleep", "4"]
        - init
        - plan
dirs:
  - dir: "stacks/*"
    workflow: slow
"""


@pytest.fixture(params=BACKENDS)
def restartable(
    request: pytest.FixtureRequest, tmp_path: Path, terraform_cli_config: Path
) -> Iterator[tuple[PullRequestWorld, ServerProcess]]:
    github = GitHubStandIn(root=tmp_path / "github").start()
    try:
        with database_url_for(request.param, tmp_path, request.node.nodeid) as url:
            upgrade(url)
            env = {
                **pr_server_env(github, terraform_cli_config),
                "TERRAPLANE_JOB_LEASE_SECONDS": "3",
            }
            process = ServerProcess(database_url=url, data_dir=tmp_path / "data", env_extra=env)
            process.start()
            github.webhook_url = f"{process.url}/webhooks/github"
            try:
                yield PullRequestWorld(github, LiveServer(process, url)), process
            finally:
                process.stop()
    finally:
        github.stop()


def test_plans_complete_exactly_once_after_the_server_is_killed(
    restartable: tuple[PullRequestWorld, ServerProcess],
) -> None:
    world, process = restartable
    gh = world.github
    files = {".terraplane.yml": SLOW}
    files |= {f"stacks/{n}/main.tf": f'resource "null_resource" "{n}" {{}}\n' for n in "abc"}
    repo = "acme/crash"
    gh.create_repo(repo, files)
    gh.repos[repo].collaborators = {"alice": "write"}
    gh.send_installation([repo])
    changed = {f"stacks/{n}/main.tf": f'resource "null_resource" "{n}2" {{}}\n' for n in "abc"}
    gh.branch(repo, "all", changed, "change all three")
    number = gh.open_pull(repo, "all")

    def running() -> bool:
        with world.server.client(Role.VIEWER) as client:
            runs = client.get("/api/v1/runs").json()["runs"]
        return bool(sum(r["status"] == "running" for r in runs) == 3)

    world.wait("three running plans", running, timeout=60)
    process.kill()  # mid-run: terraform and sleep die with it
    time.sleep(1)
    process.start()  # same database, same data directory

    head = str(gh.pull_object(repo, number)["head"]["sha"])
    world.wait(
        "the plan after the restart",
        lambda: gh.latest_statuses(repo, head).get("terraplane/plan") == "success",
        timeout=180,
    )
    with world.server.client(Role.VIEWER) as client:
        runs = client.get("/api/v1/runs").json()["runs"]
        pull = client.get(f"/api/v1/pulls/{repo}/{number}").json()
        logs = [client.get(f"/api/v1/runs/{r['id']}/log").text for r in runs]
    assert sorted(r["status"] for r in runs) == ["succeeded"] * 3  # one run per dirspace
    assert all(f"attempt 2 of run {r['id']}" in log for r, log in zip(runs, logs, strict=True))
    (command,) = pull["commands"]
    assert command["status"] == "succeeded"
    assert sorted(d["run_id"] for d in command["dirspaces"]) == sorted(r["id"] for r in runs)
    assert len(gh.pull_comments(repo, number)) == 1
    assert "3 dirspaces: 3 planned" in gh.pull_comments(repo, number)[0]["body"]
