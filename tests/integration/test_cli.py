"""The command line: tokens end to end, and errors as one sentence, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import LiveServer


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "terraplane.cli.main", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_token_lifecycle(live_server: LiveServer) -> None:
    env = {"TERRAPLANE_DATABASE_URL": live_server.database_url}
    created = cli("token", "create", "--name", "ci-bot", "--role", "operator", "--json", env=env)
    assert created.returncode == 0, created.stderr
    secret = json.loads(created.stdout)["token"]
    headers = {"Authorization": f"Bearer {secret}"}
    assert httpx.get(f"{live_server.url}/api/v1/runs", headers=headers).status_code == 200

    listed = cli("token", "list", "--json", env=env)
    entry = next(t for t in json.loads(listed.stdout) if t["name"] == "ci-bot")
    assert entry["role"] == "operator" and secret not in listed.stdout
    assert entry["last_used_at"] is not None

    duplicate = cli("token", "create", "--name", "ci-bot", "--role", "viewer", env=env)
    assert duplicate.returncode == 1
    assert duplicate.stderr.strip() == "error: a token named 'ci-bot' already exists"

    assert cli("token", "revoke", "ci-bot", env=env).returncode == 0
    # An instance trusts a token it checked for TERRAPLANE_TOKEN_CACHE_SECONDS (5 s by default).
    revoked_at = time.monotonic()
    while (
        refused := httpx.get(f"{live_server.url}/api/v1/runs", headers=headers)
    ).status_code == 200:
        assert time.monotonic() - revoked_at < 5 + 2, "revocation did not take effect"
        time.sleep(0.2)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]


def test_errors_are_one_sentence(tmp_path: Path) -> None:
    cases = [
        ({"TERRAPLANE_DATABASE_URL": "mysql://x/y"}, ["db", "upgrade"], "must start with"),
        (
            {"TERRAPLANE_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
            ["db", "upgrade"],
            "cannot reach the database",
        ),
        (
            {"TERRAPLANE_DATA_DIR": str(tmp_path)},
            ["token", "revoke", "ghost"],
            "no active token named 'ghost'",
        ),
        (
            {"TERRAPLANE_DATA_DIR": str(tmp_path)},
            ["token", "create", "--name", "bad name!", "--role", "admin"],
            "must be 1-128",
        ),
    ]
    for env, args, message in cases:
        if args[0] == "token":
            assert cli("db", "upgrade", env=env).returncode == 0
        result = cli(*args, env=env)
        assert result.returncode == 1, result
        assert message in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_unknown_role_is_a_usage_error() -> None:
    result = cli("token", "create", "--name", "x", "--role", "root")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "root" in result.stderr


def test_a_github_app_key_that_cannot_be_read_is_one_sentence(tmp_path: Path) -> None:
    env = {
        "TERRAPLANE_DATA_DIR": str(tmp_path),
        "TERRAPLANE_GITHUB_APP_ID": "1",
        "TERRAPLANE_GITHUB_PRIVATE_KEY": str(tmp_path / "missing.pem"),
    }
    result = cli("serve", "--port", "1", env=env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: TERRAPLANE_GITHUB_PRIVATE_KEY is neither PEM text nor a readable file "
        "(No such file or directory)"
    )
    (tmp_path / "bad.pem").write_text("not a key")
    result = cli(
        "serve",
        "--port",
        "1",
        env={**env, "TERRAPLANE_GITHUB_PRIVATE_KEY": str(tmp_path / "bad.pem")},
    )
    assert "error: the GitHub App private key is not a PEM private key" in result.stderr
    assert "Traceback" not in result.stderr
