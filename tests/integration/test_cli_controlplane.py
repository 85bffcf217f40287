"""The control-plane commands against a real server: JSON for scripts, exit codes, errors."""

from __future__ import annotations

import json
import uuid

from terraplane.domain.roles import Role
from tests.conftest import LiveServer
from tests.integration.test_cli import cli
from tests.support.modules import EXAMPLE_BLUEPRINT


def test_first_tenant_deployment_from_the_cli(live_server: LiveServer) -> None:
    env = {"TERRAPLANE_URL": live_server.url, "TERRAPLANE_TOKEN": live_server.tokens[Role.OPERATOR]}
    suffix = uuid.uuid4().hex[:6]
    blueprint, tenant = f"cli-{suffix}", f"acme-{suffix}"

    def ok(*args: str) -> str:
        result = cli(*args, env=env)
        assert result.returncode == 0, result.stderr
        return result.stdout

    ok("blueprint", "create", blueprint)
    pushed = ok(
        "blueprint",
        "push",
        blueprint,
        "1.0.0",
        "--dir",
        str(EXAMPLE_BLUEPRINT),
        "--tiers",
        '{"free": {"variables": {"dedicated": false}}}',
    )
    assert "registered" in pushed and "tenant" in pushed
    assert "tenant: string (required)" in ok("blueprint", "show", blueprint, "1.0.0")
    ok("tenant", "create", tenant, "--label", "region=eu")
    op = json.loads(
        ok(
            "deployment",
            "create",
            "--tenant",
            tenant,
            "--env",
            "dev",
            "--blueprint",
            blueprint,
            "--version",
            "1.0.0",
            "--tier",
            "free",
            "--var",
            f"tenant={tenant}",
            "--var",
            "instance_count=2",
            "--wait",
            "--json",
        )
    )
    assert op["status"] == "succeeded" and op["runs"][0]["plan_summary"]["add"] == 4
    dep_id = op["deployment_id"]
    assert "succeeded" in ok("deployment", "show", str(dep_id))
    drift = json.loads(
        ok("drift", "check", f"deployments/{tenant}/dev/{blueprint}", "--wait", "--json")
    )
    assert drift["status"] == "succeeded"
    assert f"ok         deployments/{tenant}/dev/{blueprint}" in ok("drift", "list")

    failed = cli(
        "deployment",
        "update",
        str(dep_id),
        "--var",
        f"tenant={tenant}",
        "--var",
        "fail=true",
        "--wait",
        env=env,
    )
    assert failed.returncode == 3 and "rolled_back" in failed.stdout

    missing = cli(
        "deployment",
        "create",
        "--tenant",
        tenant,
        "--env",
        "dev",
        "--blueprint",
        blueprint,
        "--version",
        "7.7.7",
        env=env,
    )
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert missing.stderr.strip().endswith("has no version 7.7.7")
    anonymous = cli("tenant", "list", env={"TERRAPLANE_TOKEN": "", "TERRAPLANE_URL": "x"})
    assert anonymous.returncode == 1 and "no API token" in anonymous.stderr
