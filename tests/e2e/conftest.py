"""The whole server against the GitHub stand-in: webhooks in, GitHub API calls out, real git
repositories and real terraform."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from terraplane.store.migrate import upgrade
from tests.conftest import BACKENDS, LiveServer
from tests.support.databases import database_url_for
from tests.support.github import GitHubStandIn
from tests.support.server import ServerProcess


@dataclass
class PullRequestWorld:
    github: GitHubStandIn
    server: LiveServer

    def wait(self, what: str, check: Callable[[], Any], timeout: float = 180) -> Any:
        """Poll until `check()` is truthy; its value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}")


def pr_server_env(github: GitHubStandIn, cli_config: Path) -> dict[str, str]:
    return {
        "TF_CLI_CONFIG_FILE": str(cli_config),
        "TERRAPLANE_GITHUB_APP_ID": github.app_id,
        "TERRAPLANE_GITHUB_PRIVATE_KEY": github.private_key_pem,
        "TERRAPLANE_GITHUB_API_URL": github.url,
        "TERRAPLANE_GITHUB_WEBHOOK_SECRET": github.webhook_secret,
        "TERRAPLANE_JOB_POLL_SECONDS": "0.2",
        # No cached principals: a credential that is no longer valid (a plan run's, recorded
        # in its saved plan) must fail here as it would minutes later in production.
        "TERRAPLANE_TOKEN_CACHE_SECONDS": "0",
    }


@pytest.fixture(scope="module", params=BACKENDS)
def world(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    terraform_cli_config: Path,
) -> Iterator[PullRequestWorld]:
    tmp = tmp_path_factory.mktemp(f"pr-{request.param}")
    github = GitHubStandIn(root=tmp / "github").start()
    try:
        with database_url_for(request.param, tmp, request.node.nodeid) as url:
            upgrade(url)
            process = ServerProcess(
                database_url=url,
                data_dir=tmp / "data",
                env_extra=pr_server_env(github, terraform_cli_config),
            ).start()
            github.webhook_url = f"{process.url}/webhooks/github"
            try:
                yield PullRequestWorld(github, LiveServer(process, url))
            finally:
                process.stop()
    finally:
        github.stop()
