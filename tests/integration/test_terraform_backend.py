"""The http state backend with the real terraform CLI as its client, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import uuid
from pathlib import Path

import httpx
import pytest

from terraplane.domain.roles import Role
from tests.conftest import LiveServer
from tests.support.terraform import NULL_MODULE, TerraformClient, backend_block


def new_workspace(
    tmp_path: Path,
    server: LiveServer,
    cli_config: Path,
    role: Role = Role.OPERATOR,
    name: str | None = None,
) -> tuple[TerraformClient, str]:
    name = name or f"team/{uuid.uuid4().hex[:10]}"
    workdir = tmp_path / name.replace("/", "_")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "main.tf").write_text(backend_block(server.url, name) + NULL_MODULE)
    tf = TerraformClient(workdir, cli_config, server.tokens[role])
    init = tf.init()
    assert init.returncode == 0, init.stdout + init.stderr
    return tf, name


def ok(result: object) -> None:
    assert result.returncode == 0, result.stdout + result.stderr  # type: ignore[attr-defined]


def test_apply_cycles_store_every_version_exactly(
    live_server: LiveServer, tmp_path: Path, terraform_cli_config: Path
) -> None:
    tf, name = new_workspace(tmp_path, live_server, terraform_cli_config)
    ok(tf("apply", "-auto-approve", "-input=false", "-var", "value=one"))
    ok(tf("apply", "-auto-approve", "-input=false", "-var", "value=two"))
    ok(tf("destroy", "-auto-approve", "-input=false", "-var", "value=two"))
    with live_server.client(Role.VIEWER) as client:
        versions = client.get(f"/api/v1/state/{name}/versions").json()["versions"]
        assert [v["serial"] for v in versions] == sorted(v["serial"] for v in versions)
        assert len(versions) >= 3
        for v in versions:
            body = client.get(f"/api/v1/state/{name}/versions/{v['serial']}").content
            assert hashlib.sha256(body).hexdigest() == v["sha256"] and len(body) == v["size"]
        current = client.get(f"/api/v1/state/{name}")
    pulled = tf("state", "pull")
    ok(pulled)
    assert json.loads(pulled.stdout) == json.loads(current.content)
    assert json.loads(current.content)["resources"] == []  # destroyed
    assert versions[-1]["created_by"] == "test-operator"


def test_concurrent_applies_one_wins_the_other_names_the_holder(
    live_server: LiveServer, tmp_path: Path, terraform_cli_config: Path
) -> None:
    tf, name = new_workspace(tmp_path, live_server, terraform_cli_config)
    ok(tf("apply", "-auto-approve", "-input=false"))
    # A second checkout of the same configuration, as a colleague would have.
    other_dir = tmp_path / "colleague"
    other_dir.mkdir()
    (other_dir / "main.tf").write_text(
        (tf.workdir / "main.tf").read_text() + '\nresource "null_resource" "slow" {\n'
        '  provisioner "local-exec" { command = "sleep 4" }\n}\n'
    )
    other = TerraformClient(other_dir, terraform_cli_config, live_server.tokens[Role.OPERATOR])
    ok(other.init())
    slow = other.popen("apply", "-auto-approve", "-input=false")
    with live_server.client() as client:
        holder = _wait_for_lock(client, name)
    fast = tf("apply", "-auto-approve", "-input=false", "-var", "value=changed")
    slow_out, _ = slow.communicate(timeout=120)
    assert slow.returncode == 0, slow_out
    assert fast.returncode != 0
    assert "Error acquiring the state lock" in fast.stderr
    # Every Terraform version names the holder's lock ID; newer ones print who and what too.
    assert holder["ID"] in fast.stderr and holder["Operation"] == "OperationTypeApply"
    with live_server.client(Role.VIEWER) as client:
        assert client.get(f"/api/v1/state/{name}/lock").json() == {
            "name": name,
            "locked": False,
            "lock": None,
        }


def _wait_for_lock(client: httpx.Client, name: str) -> dict[str, str]:
    """Wait until someone holds the lock (looking, not touching); return their lock info."""
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = client.get(f"/api/v1/state/{name}/lock").json()
        if status["locked"]:
            return dict(status["lock"])
        time.sleep(0.05)
    raise AssertionError("the slow apply never took the lock")


def test_force_unlock_needs_an_admin(
    live_server: LiveServer, tmp_path: Path, terraform_cli_config: Path
) -> None:
    tf, name = new_workspace(tmp_path, live_server, terraform_cli_config)
    ok(tf("apply", "-auto-approve", "-input=false"))
    with live_server.client() as client:
        held = client.request(
            "LOCK",
            f"/api/v1/state/{name}",
            content=json.dumps({"ID": "stuck-lock", "Who": "crashed-ci"}),
        )
        assert held.status_code == 200
    refused = tf("force-unlock", "-force", "stuck-lock")
    assert refused.returncode != 0
    admin_dir = tmp_path / "admin"
    admin_dir.mkdir()
    (admin_dir / "main.tf").write_text((tf.workdir / "main.tf").read_text())
    admin = TerraformClient(admin_dir, terraform_cli_config, live_server.tokens[Role.ADMIN])
    ok(admin.init())
    ok(admin("force-unlock", "-force", "stuck-lock"))
    ok(tf("apply", "-auto-approve", "-input=false", "-var", "value=after-unlock"))


def test_foreign_lineage_and_stale_serial_are_refused(
    live_server: LiveServer, tmp_path: Path, terraform_cli_config: Path
) -> None:
    tf, name = new_workspace(tmp_path, live_server, terraform_cli_config)
    ok(tf("apply", "-auto-approve", "-input=false"))
    ok(tf("apply", "-auto-approve", "-input=false", "-var", "value=two"))
    with live_server.client() as client:
        before = client.get(f"/api/v1/state/{name}/versions").json()["versions"]
        current = json.loads(client.get(f"/api/v1/state/{name}").content)
    foreign = {**current, "lineage": str(uuid.uuid4()), "serial": current["serial"] + 5}
    (tf.workdir / "foreign.tfstate").write_text(json.dumps(foreign))
    pushed = tf("state", "push", "-force", "foreign.tfstate")
    assert pushed.returncode != 0
    stale = {**current, "serial": current["serial"] - 1, "outputs": {}}
    with live_server.client() as client:
        answer = client.post(f"/api/v1/state/{name}", content=json.dumps(stale))
        assert (
            answer.status_code == 409 and "older than the current serial" in answer.json()["detail"]
        )
        after = client.get(f"/api/v1/state/{name}/versions").json()["versions"]
        assert after == before
        assert json.loads(client.get(f"/api/v1/state/{name}").content) == current


def test_rollback_then_plan_shows_the_rolled_back_state(
    live_server: LiveServer, tmp_path: Path, terraform_cli_config: Path
) -> None:
    tf, name = new_workspace(tmp_path, live_server, terraform_cli_config)
    ok(tf("apply", "-auto-approve", "-input=false", "-var", "value=one"))
    with live_server.client() as client:
        first_serial = client.get(f"/api/v1/state/{name}/versions").json()["versions"][-1]["serial"]
    ok(tf("apply", "-auto-approve", "-input=false", "-var", "value=two"))
    with live_server.client() as client:
        rolled = client.post(f"/api/v1/state/{name}/rollback", json={"serial": first_serial})
        assert rolled.status_code == 201, rolled.text
    plan = tf("plan", "-input=false", "-detailed-exitcode", "-var", "value=one")
    assert plan.returncode == 0, plan.stdout + plan.stderr  # state matches value=one again
    plan_two = tf("plan", "-input=false", "-detailed-exitcode", "-var", "value=two")
    assert plan_two.returncode == 2
    output = tf("output", "-raw", "value")
    assert output.stdout.strip() == "one"


def _basic(token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"x:{token}".encode()).decode()}


@pytest.mark.parametrize(
    "method,path,body,headers_role,status",
    [
        ("POST", "/api/v1/state/bad-input", b"{not json", Role.OPERATOR, 400),
        ("POST", "/api/v1/state/bad-input", b'{"serial": 1}', Role.OPERATOR, 422),
        ("POST", "/api/v1/state/bad..name/x y", b"{}", Role.OPERATOR, 400),
        ("GET", "/api/v1/state/a/%2e%2e/b", None, Role.OPERATOR, 400),
        ("POST", "/api/v1/state/versions", b"{}", Role.OPERATOR, 400),
        ("POST", "/api/v1/state/bad-input", b"{}", None, 401),
        ("POST", "/api/v1/state/bad-input", b"{}", Role.VIEWER, 403),
        ("DELETE", "/api/v1/state/bad-input", None, Role.OPERATOR, 403),
        ("LOCK", "/api/v1/state/bad-input", b"{}", Role.OPERATOR, 400),
        ("LOCK", "/api/v1/state/bad-input", b"[1]", Role.OPERATOR, 400),
        ("POST", "/api/v1/state/bad-input/rollback", b'{"serial": -1}', Role.OPERATOR, 422),
        ("POST", "/api/v1/state/bad-input/rollback", b'{"serial": 7}', Role.OPERATOR, 404),
        ("GET", "/api/v1/state/bad-input/versions/3", None, Role.VIEWER, 404),
        ("GET", "/api/v1/state/never-written", None, Role.VIEWER, 404),
    ],
)
def test_bad_input_gets_a_4xx_that_names_the_problem(
    live_server: LiveServer,
    method: str,
    path: str,
    body: bytes | None,
    headers_role: Role | None,
    status: int,
) -> None:
    with live_server.client(headers_role) as client:
        answer = client.request(method, path, content=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["detail"]


def test_wrong_token_is_401_and_basic_auth_works(live_server: LiveServer) -> None:
    name = f"auth/{uuid.uuid4().hex[:8]}"
    doc = json.dumps({"version": 4, "serial": 1, "lineage": "l", "resources": []})
    with httpx.Client(base_url=live_server.url) as client:
        wrong = client.post(f"/api/v1/state/{name}", content=doc, headers=_basic("tp_wrong"))
        assert wrong.status_code == 401 and "WWW-Authenticate" in wrong.headers
        right = client.post(
            f"/api/v1/state/{name}", content=doc, headers=_basic(live_server.tokens[Role.OPERATOR])
        )
        assert right.status_code == 200
        basic_elsewhere = client.get("/api/v1/runs", headers=_basic(live_server.tokens[Role.ADMIN]))
        assert basic_elsewhere.status_code == 401


def test_oversized_state_is_413_and_nothing_is_written(live_server: LiveServer) -> None:
    name = f"big/{uuid.uuid4().hex[:8]}"
    big = json.dumps({"version": 4, "serial": 1, "lineage": "l", "pad": "x" * (9 * 1024 * 1024)})
    with live_server.client() as client:
        answer = client.post(f"/api/v1/state/{name}", content=big)
        assert answer.status_code == 413 and "limit" in answer.json()["detail"]
        assert client.get(f"/api/v1/state/{name}").status_code == 404


def test_damaged_upload_is_refused(live_server: LiveServer) -> None:
    name = f"md5/{uuid.uuid4().hex[:8]}"
    doc = json.dumps({"version": 4, "serial": 1, "lineage": "l"}).encode()
    wrong_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()  # noqa: S324
    with live_server.client() as client:
        answer = client.post(
            f"/api/v1/state/{name}", content=doc, headers={"Content-MD5": wrong_md5}
        )
        assert answer.status_code == 400 and "Content-MD5" in answer.json()["detail"]
        assert client.get(f"/api/v1/state/{name}").status_code == 404


def test_concurrent_raw_lockers_exactly_one_wins(live_server: LiveServer) -> None:
    name = f"race/{uuid.uuid4().hex[:8]}"
    results: list[int] = []

    def locker(i: int) -> None:
        with live_server.client() as client:
            results.append(
                client.request(
                    "LOCK", f"/api/v1/state/{name}", content=json.dumps({"ID": f"id-{i}"})
                ).status_code
            )

    threads = [threading.Thread(target=locker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200] + [423] * 15


def test_scoped_token_reaches_only_its_state(live_server: LiveServer) -> None:
    import asyncio
    from datetime import timedelta

    from terraplane.governance.tokens import create_token
    from terraplane.store.database import Database

    async def scoped() -> str:
        db = Database(live_server.database_url, pool_size=1)
        try:
            async with db.write() as conn:
                secret, _ = await create_token(
                    conn,
                    f"scoped-{uuid.uuid4().hex[:6]}",
                    Role.OPERATOR,
                    state_scope="only/this",
                    ttl=timedelta(minutes=5),
                )
            return secret
        finally:
            await db.dispose()

    token = asyncio.run(scoped())
    doc = json.dumps({"version": 4, "serial": 1, "lineage": "l"})
    with httpx.Client(base_url=live_server.url, headers=_basic(token)) as client:
        assert client.post("/api/v1/state/only/this", content=doc).status_code == 200
        other = client.post("/api/v1/state/some/other", content=doc)
        assert other.status_code == 403 and "only/this" in other.json()["detail"]
