"""Operating the server: health as the database comes and goes, metrics, graceful shutdown, the
embedded default, migrations from many processes at once."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from terraplane.domain.roles import Role
from terraplane.store.migrate import head_revision
from tests.conftest import LiveServer
from tests.support.databases import POSTGRES_URL, postgres_schema, require_postgres
from tests.support.private_postgres import PrivatePostgres
from tests.support.server import ServerProcess, free_port


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    try:
        pg = PrivatePostgres()
    except (RuntimeError, subprocess.CalledProcessError, LookupError) as exc:
        require_postgres()  # fails in CI, where PostgreSQL must be there
        pytest.skip(f"cannot start a private PostgreSQL: {exc}")
    pg.start()
    try:
        yield pg
    finally:
        pg.destroy()


def test_health_follows_the_database(private_postgres: PrivatePostgres, tmp_path: Path) -> None:
    server = ServerProcess(
        database_url=private_postgres.url,
        data_dir=tmp_path / "data",
        env_extra={"TERRAPLANE_DB_PING_TIMEOUT_SECONDS": "1"},
    )
    server.start()
    try:
        assert httpx.get(f"{server.url}/health").json() == {"status": "ok", "database": "ok"}
        private_postgres.stop()
        started = time.monotonic()
        down = httpx.get(f"{server.url}/health", timeout=10)
        assert down.status_code == 503
        assert down.json()["status"] == "unavailable" and down.json()["detail"]
        assert time.monotonic() - started < 5
        private_postgres.start()
        deadline = time.monotonic() + 20
        while httpx.get(f"{server.url}/health", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "health did not recover"
            time.sleep(0.2)
    finally:
        server.stop()


def test_metrics_expose_requests_queue_runs_and_state_operations(live_server: LiveServer) -> None:
    with live_server.client() as client:
        client.post(
            "/api/v1/state/metrics/probe",
            content=json.dumps({"version": 4, "serial": 1, "lineage": "m"}),
        )
        text = httpx.get(f"{live_server.url}/metrics").text
    for name in (
        "terraplane_http_requests_total",
        "terraplane_http_request_duration_seconds",
        "terraplane_queue_depth",
        "terraplane_jobs",
        "terraplane_runs",
        "terraplane_state_operations_total",
    ):
        assert f"# TYPE {name}" in text
    assert 'terraplane_state_operations_total{operation="write",outcome="ok"}' in text
    assert 'route="/api/v1/state/{name:path}"' in text  # templates, never state names
    assert "metrics/probe" not in text


def test_requests_carry_a_request_id(live_server: LiveServer) -> None:
    answer = httpx.get(f"{live_server.url}/health", headers={"X-Request-ID": "abc-123"})
    assert answer.headers["x-request-id"] == "abc-123"
    assert len(httpx.get(f"{live_server.url}/health").headers["x-request-id"]) == 32
    assert '"request_id": "abc-123"' in live_server.process.logs()


def test_sigterm_drains_an_in_flight_request(tmp_path: Path) -> None:
    server = ServerProcess(
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", data_dir=tmp_path / "data"
    ).start()
    from tests.support.server import make_token

    token = make_token(server.database_url, "drain", Role.OPERATOR)
    body = json.dumps({"version": 4, "serial": 1, "lineage": "drain"}).encode()
    head = (
        f"POST /api/v1/state/drain HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(head + body[:10])  # the request is in flight
        time.sleep(0.3)
        server.signal(signal.SIGTERM)
        time.sleep(0.5)
        assert server.proc is not None and server.proc.poll() is None  # still draining
        sock.sendall(body[10:])
        answer = sock.makefile("rb").read().decode()
    assert answer.startswith("HTTP/1.1 200"), answer
    # uvicorn re-raises the signal once drained, so the exit status says "stopped by SIGTERM".
    assert server.proc.wait(timeout=30) in (0, -signal.SIGTERM)
    assert "Traceback" not in server.logs()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/health")


def test_serve_with_no_configuration_uses_sqlite_in_dot_terraplane(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("TERRAPLANE_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "terraplane.cli.main", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
        assert (tmp_path / ".terraplane" / "terraplane.db").exists()
        assert (tmp_path / ".terraplane" / "encryption.key").exists()
        assert httpx.get(f"http://127.0.0.1:{port}/openapi.json").json()["info"]["title"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_many_processes_migrate_postgres_exactly_once() -> None:
    require_postgres()
    with postgres_schema() as url:
        env = {**__import__("os").environ, "TERRAPLANE_DATABASE_URL": url}
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "terraplane.cli.main", "db", "upgrade"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(5)
        ]
        outputs = [p.communicate(timeout=120)[0] for p in procs]
        assert [p.returncode for p in procs] == [0] * 5, outputs
        assert sum("migrated from empty" in o for o in outputs) == 1
        assert sum("up to date" in o for o in outputs) == 4
        schema = url.rsplit("%3D", 1)[1]
        with psycopg.connect(POSTGRES_URL) as conn:
            rows = conn.execute(
                f'SELECT version_num FROM "{schema}".alembic_version'  # noqa: S608
            ).fetchall()
        assert rows == [(head_revision(),)]
