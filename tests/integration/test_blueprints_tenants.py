"""Blueprints (uploaded and from git), tenants and environments through the real server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from terraplane.domain.roles import Role
from tests.conftest import LiveServer
from tests.support.modules import EXAMPLE_BLUEPRINT, example_archive, git_repo, tar_gz

TIERS = {
    "free": {"variables": {"dedicated": False}},
    "pro": {"variables": {"dedicated": True, "instance_count": 3}},
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def upload(
    client: httpx.Client,
    blueprint: str,
    version: str,
    archive: bytes,
    tiers: dict[str, object] | None = None,
) -> httpx.Response:
    return client.post(
        f"/api/v1/blueprints/{blueprint}/versions",
        files={"archive": ("module.tar.gz", archive, "application/gzip")},
        data={"metadata": json.dumps({"version": version, "tiers": tiers or {}})},
    )


def test_uploaded_version_exposes_its_variable_schema(live_server: LiveServer) -> None:
    name = unique("webapp")
    with live_server.client() as client:
        created = client.post("/api/v1/blueprints", json={"name": name})
        assert created.status_code == 201 and created.json()["versions"] == []
        answer = upload(client, name, "1.0.0", example_archive(), TIERS)
        assert answer.status_code == 201, answer.text
        version = answer.json()
        by_name = {v["name"]: v for v in version["variables"]}
        assert by_name["tenant"] == {
            "name": "tenant",
            "type": "string",
            "default": None,
            "required": True,
            "sensitive": False,
            "description": "The tenant this stack belongs to.",
        }
        assert by_name["instance_count"]["default"] == 1
        assert by_name["api_key"]["sensitive"] is True and not by_name["api_key"]["required"]
        assert version["tiers"]["pro"]["variables"]["instance_count"] == 3
        fetched = client.get(f"/api/v1/blueprints/{name}/versions/1.0.0").json()
        assert fetched == version
        again = upload(client, name, "1.0.0", example_archive())
        assert again.status_code == 409 and "immutable" in again.json()["detail"]


def test_latest_is_the_highest_release(live_server: LiveServer) -> None:
    name = unique("sorted")
    with live_server.client() as client:
        client.post("/api/v1/blueprints", json={"name": name})
        for v in ("1.9.0", "1.10.0", "2.0.0-rc.1"):
            assert upload(client, name, v, example_archive()).status_code == 201
        assert (
            client.get(f"/api/v1/blueprints/{name}/versions/latest").json()["version"] == "1.10.0"
        )
        assert client.get(f"/api/v1/blueprints/{name}").json()["versions"] == [
            "1.9.0",
            "1.10.0",
            "2.0.0-rc.1",
        ]


def test_git_source_is_fetched_once_with_its_commit(
    live_server: LiveServer, tmp_path: Path
) -> None:
    files = {f"modules/webapp/{p.name}": p.read_text() for p in EXAMPLE_BLUEPRINT.glob("*.tf")}
    url = git_repo(tmp_path / "repo", {**files, "README.md": "x"}, "v1.2.0")
    name = unique("fromgit")
    with live_server.client() as client:
        client.post("/api/v1/blueprints", json={"name": name})
        answer = client.post(
            f"/api/v1/blueprints/{name}/versions",
            json={
                "version": "1.2.0",
                "source": {"git": {"url": url, "path": "modules/webapp", "ref": "v1.2.0"}},
            },
        )
        assert answer.status_code == 201, answer.text
        source = answer.json()["source"]["git"]
        assert source["ref"] == "v1.2.0" and len(source["commit"]) == 40
        assert {v["name"] for v in answer.json()["variables"]} >= {"tenant", "fail"}
        for bad, message in (
            ({"url": url, "path": "modules/webapp", "ref": "no-such-tag"}, "could not fetch"),
            ({"url": url, "path": "../../etc", "ref": "v1.2.0"}, "not a directory inside"),
            ({"url": "--upload-pack=evil", "path": ".", "ref": "v1.2.0"}, "must be an"),
            ({"url": url, "path": ".", "ref": "--evil"}, "not a branch"),
        ):
            refused = client.post(
                f"/api/v1/blueprints/{name}/versions",
                json={"version": "9.9.9", "source": {"git": bad}},
            )
            assert refused.status_code == 422 and message in refused.json()["detail"], refused.text
        assert client.get(f"/api/v1/blueprints/{name}").json()["versions"] == ["1.2.0"]


def test_bad_versions_are_refused_and_nothing_is_stored(
    live_server: LiveServer, tmp_path: Path
) -> None:
    name = unique("strict")
    traversal = tar_gz({"main.tf": 'variable "x" {}\n', "../escaped.tf": "oops"})
    cases: list[tuple[Callable[..., httpx.Response], tuple[Any, ...], int, str]] = [
        (upload, ("not-semver", example_archive()), 422, "semantic version"),
        (upload, ("1.0.0", b"not a tarball"), 422, "not a usable .tar.gz"),
        (upload, ("1.0.0", traversal), 422, "archive"),
        (upload, ("1.0.0", tar_gz({"README.md": "no module"})), 422, "no .tf files"),
        (upload, ("1.0.0", tar_gz({"main.tf": "variable {"})), 422, "not valid HCL"),
        (
            upload,
            ("1.0.0", example_archive(), {"pro": {"variables": {"nope": 1}}}),
            422,
            "no such variable",
        ),
        (
            upload,
            ("1.0.0", example_archive(), {"pro": {"variables": {"dedicated": "yes"}}}),
            422,
            "expected true or false",
        ),
    ]
    with live_server.client() as client:
        client.post("/api/v1/blueprints", json={"name": name})
        for func, args, status, message in cases:
            answer = func(client, name, *args)
            assert answer.status_code == status, answer.text
            assert message in answer.json()["detail"], answer.text
        assert client.get(f"/api/v1/blueprints/{name}").json()["versions"] == []
        assert client.get(f"/api/v1/blueprints/{name}/versions/1.0.0").status_code == 404
        assert client.get("/api/v1/blueprints/nope/versions/1.0.0").status_code == 404
        assert upload(client, "no-such-blueprint", "1.0.0", example_archive()).status_code == 404
        assert client.post("/api/v1/blueprints", json={"name": "Bad Name"}).status_code == 422
        assert client.post("/api/v1/blueprints", json={"name": name}).status_code == 409
    assert not (tmp_path.parent / "escaped.tf").exists()
    with live_server.client(Role.VIEWER) as viewer:
        assert viewer.post("/api/v1/blueprints", json={"name": unique("v")}).status_code == 403


def test_tenants_and_labels(live_server: LiveServer) -> None:
    a, b = unique("acme"), unique("globex")
    with live_server.client() as client:
        assert (
            client.post("/api/v1/tenants", json={"name": a, "labels": {"plan": "pro"}}).status_code
            == 201
        )
        assert client.post("/api/v1/tenants", json={"name": b}).status_code == 201
        assert client.post("/api/v1/tenants", json={"name": a}).status_code == 409
        assert (
            client.post("/api/v1/tenants", json={"name": "x", "labels": {"a": 1}}).status_code
            == 422
        )
        pro = client.get("/api/v1/tenants", params={"label": "plan=pro"}).json()["tenants"]
        assert [t["name"] for t in pro] == [a]
        patched = client.patch(f"/api/v1/tenants/{b}", json={"labels": {"plan": "pro"}})
        assert patched.json()["labels"] == {"plan": "pro"}
        assert client.delete(f"/api/v1/tenants/{b}").status_code == 204
        assert client.get(f"/api/v1/tenants/{b}").status_code == 404
        assert client.delete(f"/api/v1/tenants/{b}").status_code == 404


def test_environment_chain(live_server: LiveServer) -> None:
    with live_server.client(Role.VIEWER) as client:
        chain = client.get("/api/v1/environments").json()["environments"]
    assert [(e["name"], e["previous"]) for e in chain] == [
        ("dev", None),
        ("staging", "dev"),
        ("prod", "staging"),
    ]
