"""Shared fixtures: databases (SQLite and PostgreSQL), a real server, the terraform CLI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from terraplane.domain.roles import Role
from terraplane.store.database import Database
from terraplane.store.migrate import upgrade
from tests.support.controlplane import make_fleet
from tests.support.databases import SKIPPED_POSTGRES, database_url_for
from tests.support.github import GitHubStandIn
from tests.support.server import ServerProcess, make_token
from tests.support.terraform import build_provider_mirror

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url_for(request.param, tmp_path, request.node.nodeid) as url:
        yield url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    upgrade(database_url)
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def github(tmp_path: Path) -> Iterator[GitHubStandIn]:
    """The local GitHub stand-in, on a free port for one test."""
    standin = GitHubStandIn(root=tmp_path / "github").start()
    try:
        yield standin
    finally:
        standin.stop()


@pytest.fixture(scope="session")
def terraform_cli_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_provider_mirror(tmp_path_factory.mktemp("terraform"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failing test that used a live server gets the tail of that server's log in its
    report: the server runs in another process, and its log is the only record of why."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if not report.failed:
        return
    for value in getattr(item, "funcargs", {}).values():
        server = getattr(value, "server", value)
        if isinstance(server, LiveServer):
            tail = "\n".join(server.process.logs().splitlines()[-200:])
            report.sections.append(("server log (last 200 lines)", tail))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SKIPPED_POSTGRES:
        terminalreporter.write_line(
            f"WARNING: PostgreSQL was not reachable: {len(SKIPPED_POSTGRES)} PostgreSQL "
            "tests did NOT run. Start PostgreSQL (see README) to run them.",
            red=True,
            bold=True,
        )


class LiveServer:
    """A running `terraplane serve` with one token per role."""

    def __init__(self, process: ServerProcess, database_url: str) -> None:
        self.process = process
        self.url = process.url
        self.database_url = database_url
        self.tokens = {role: make_token(database_url, f"test-{role.value}", role) for role in Role}

    def client(self, role: Role | None = Role.OPERATOR) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


@pytest.fixture(scope="module", params=BACKENDS)
def live_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    terraform_cli_config: Path,
) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp(f"server-{request.param}")
    with database_url_for(request.param, tmp, request.node.nodeid) as url:
        upgrade(url)
        process = ServerProcess(
            database_url=url,
            data_dir=tmp / "data",
            env_extra={
                "TF_CLI_CONFIG_FILE": str(terraform_cli_config),
                "TERRAPLANE_STATE_MAX_BYTES": str(8 * 1024 * 1024),
                "TERRAPLANE_DRIFT_RETRY_SECONDS": "1",
                "TERRAPLANE_GITHUB_WEBHOOK_SECRET": "old-secret,new-secret",
                "TERRAPLANE_GITHUB_WEBHOOK_MAX_BYTES": str(256 * 1024),
            },
        ).start()
        try:
            yield LiveServer(process, url)
        finally:
            process.stop()


@pytest.fixture
def fleet(live_server: LiveServer) -> dict[str, str]:
    """A blueprint with versions 1.0.0 and 1.1.0 (two tiers), and a tenant."""
    with live_server.client() as client:
        return make_fleet(client)
