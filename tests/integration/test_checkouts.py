"""Checkouts from a real git repository: a cached mirror fetched only when a commit is missing,
a worktree per run with the pull request merged into its base, conflicts named, paths that
leave the checkout refused."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from terraplane.engine.checkouts import CheckoutError, Checkouts, git, inside

IDENTITY = ["-c", "user.name=dev", "-c", "user.email=dev@example.com"]
REFSPECS = ["+refs/heads/main:refs/heads/main", "+refs/pull/1/head:refs/pull/1/head"]


def sh(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *IDENTITY, *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def commit(work: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    sh(work, "add", ".")
    sh(work, "commit", "-q", "-m", message)
    return sh(work, "rev-parse", "HEAD")


@pytest.fixture
def origin(tmp_path: Path) -> dict[str, str]:
    """main: base -> main2 (touches network/); refs/pull/1/head: base -> pr (touches stacks/)."""
    bare = tmp_path / "origin.git"
    sh(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    work = tmp_path / "work"
    sh(tmp_path, "clone", "-q", str(bare), str(work))
    base = commit(work, {"stacks/web/main.tf": "# v1\n", "network/main.tf": "# net v1\n"}, "base")
    sh(work, "push", "-q", "origin", "HEAD:main")
    pr = commit(work, {"stacks/web/main.tf": "# v2 from the PR\n"}, "pr")
    sh(work, "push", "-q", "origin", "HEAD:refs/pull/1/head")
    sh(work, "reset", "-q", "--hard", base)
    main2 = commit(work, {"network/main.tf": "# net v2\n"}, "main moves on")
    sh(work, "push", "-q", "origin", "HEAD:main")
    sh(work, "reset", "-q", "--hard", base)
    clash = commit(work, {"network/main.tf": "# net from another PR\n"}, "clash")
    sh(work, "push", "-q", "origin", "HEAD:refs/pull/2/head")
    return {
        "url": bare.as_uri(),
        "bare": str(bare),
        "base": base,
        "pr": pr,
        "main": main2,
        "clash": clash,
    }


async def test_worktree_is_the_pr_merged_into_its_base(
    tmp_path: Path, origin: dict[str, str]
) -> None:
    checkouts = Checkouts(tmp_path / "checkouts")
    mirror = await checkouts.ensure(origin["url"], [origin["pr"], origin["main"]], REFSPECS, None)
    tree = await checkouts.worktree(mirror, origin["pr"], base=origin["main"])
    assert (tree / "stacks/web/main.tf").read_text() == "# v2 from the PR\n"
    assert (tree / "network/main.tf").read_text() == "# net v2\n"  # the base's change too
    parents = (await git("rev-list", "--parents", "-n", "1", "HEAD", cwd=tree)).split()
    assert parents[1:] == [origin["main"], origin["pr"]]

    head_only = await checkouts.worktree(mirror, origin["pr"])
    assert (head_only / "network/main.tf").read_text() == "# net v1\n"
    await checkouts.remove(mirror, tree)
    await checkouts.remove(mirror, head_only)
    assert not tree.exists() and not head_only.exists()


async def test_the_mirror_is_fetched_only_for_missing_commits(
    tmp_path: Path, origin: dict[str, str]
) -> None:
    checkouts = Checkouts(tmp_path / "checkouts")
    await checkouts.ensure(origin["url"], [origin["pr"], origin["main"]], REFSPECS, None)
    with pytest.raises(CheckoutError, match="is not in"):
        await checkouts.ensure(origin["url"], ["0" * 40], REFSPECS, None)
    Path(origin["bare"]).rename(tmp_path / "gone.git")  # origin unreachable from now on
    mirror = await checkouts.ensure(origin["url"], [origin["pr"]], REFSPECS, None)
    assert (await git("cat-file", "-t", origin["pr"], cwd=mirror)).strip() == "commit"
    with pytest.raises(CheckoutError, match=r"fatal: .*does not appear to be a git repository"):
        await checkouts.ensure(origin["url"], [origin["clash"]], REFSPECS, None)


async def test_parallel_worktrees_share_one_mirror(tmp_path: Path, origin: dict[str, str]) -> None:
    checkouts = Checkouts(tmp_path / "checkouts")

    async def one() -> Path:
        mirror = await checkouts.ensure(
            origin["url"], [origin["pr"], origin["main"]], REFSPECS, None
        )
        return await checkouts.worktree(mirror, origin["pr"], base=origin["main"])

    trees = await asyncio.gather(*(one() for _ in range(8)))
    assert len(set(trees)) == 8
    assert all((t / "stacks/web/main.tf").read_text() == "# v2 from the PR\n" for t in trees)
    assert len(list((tmp_path / "checkouts" / "mirrors").glob("*.git"))) == 1


async def test_a_conflicting_pr_is_named_and_leaves_nothing(
    tmp_path: Path, origin: dict[str, str]
) -> None:
    checkouts = Checkouts(tmp_path / "checkouts")
    refspecs = [*REFSPECS, "+refs/pull/2/head:refs/pull/2/head"]
    mirror = await checkouts.ensure(
        origin["url"], [origin["clash"], origin["main"]], refspecs, None
    )
    with pytest.raises(CheckoutError, match="does not merge cleanly into its base"):
        await checkouts.worktree(mirror, origin["clash"], base=origin["main"])
    assert list((tmp_path / "checkouts" / "worktrees").iterdir()) == []


def test_paths_may_not_leave_the_checkout(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    (root / "stacks").mkdir(parents=True)
    (root / "escape").symlink_to("/etc")
    assert inside(root, "stacks") == (root / "stacks").resolve()
    for bad in ("../elsewhere", "escape", "stacks/../../x"):
        with pytest.raises(CheckoutError, match="leaves the checkout"):
            inside(root, bad)
