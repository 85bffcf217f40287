"""A pull request's changed files: GitHub's files API followed page by page (over real HTTP to
the stand-in), and git's diff beyond the API's 3,000-file cap."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from terraplane.engine.checkouts import Checkouts
from terraplane.github.app import GitHubApp
from terraplane.pr.changes import (
    changed_files_from_api,
    changed_files_from_git,
    listed_by_api,
)
from tests.support.github import GitHubStandIn

IDENTITY = ["-c", "user.name=dev", "-c", "user.email=dev@example.com"]


@pytest.fixture
async def app(github: GitHubStandIn) -> AsyncIterator[GitHubApp]:
    client = GitHubApp(github.app_id, github.private_key_pem, github.url)
    try:
        yield client
    finally:
        await client.close()


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *IDENTITY, *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


async def test_files_come_from_every_page(app: GitHubApp, github: GitHubStandIn) -> None:
    names = [f"stacks/s{i:03d}/main.tf" for i in range(250)]
    github.pull_files[("acme/infra", 7)] = names
    assert listed_by_api(len(names))
    files = await changed_files_from_api(app, 1, "acme/infra", 7)
    assert files == sorted(names)
    pages = [path for method, path, _ in github.requests if method == "GET"]
    assert len(pages) == 3 and "per_page=100" in pages[0]


async def test_beyond_the_api_cap_files_come_from_git(
    tmp_path: Path, app: GitHubApp, github: GitHubStandIn
) -> None:
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(bare), str(work))
    (work / "README.md").write_text("base\n")
    (work / "old").mkdir()
    (work / "old/moved.tf").write_text("# moved\n")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "base")
    base = git(work, "rev-parse", "HEAD")
    git(work, "push", "-q", "origin", "HEAD:main")
    names = [f"stacks/s{i:04d}/main.tf" for i in range(3500)]
    for name in names:
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text("# new\n")
    git(work, "mv", "old", "new")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "a huge PR")
    head = git(work, "rev-parse", "HEAD")
    git(work, "push", "-q", "origin", "HEAD:refs/pull/9/head")

    github.pull_files[("acme/infra", 9)] = names
    api_only = await changed_files_from_api(app, 1, "acme/infra", 9)
    assert len(api_only) == 3000  # what the API gives: truncated
    assert listed_by_api(3000) and not listed_by_api(3502)

    mirror = await Checkouts(tmp_path / "checkouts").ensure(
        bare.as_uri(),
        [base, head],
        ["+refs/heads/main:refs/heads/main", "+refs/pull/9/head:refs/pull/9/head"],
        None,
    )
    files = await changed_files_from_git(mirror, base, head)
    assert len(files) == 3502 and "old/moved.tf" in files and "new/moved.tf" in files
