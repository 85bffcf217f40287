"""Git checkouts for pull-request runs: one cached mirror per repository on each host, and a
worktree per run (no full clone per dirspace).

- The mirror is fetched only when a commit a run needs is missing, under a per-repository file
  lock, so the dirspaces of one pull request planned on one host fetch once.
- A worktree is the pull request merged into its base (the default, as the merge will be) or
  its head alone; a merge that conflicts is an error naming both commits.
- Credentials reach git through its environment (`GIT_CONFIG_*`), never its argument list, and
  git never prompts.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

from terraplane.engine.plugin_cache import file_lock

GIT_TIMEOUT_SECONDS = 600.0
MERGE_IDENTITY = {
    "GIT_AUTHOR_NAME": "Terraplane",
    "GIT_AUTHOR_EMAIL": "terraplane@localhost",
    "GIT_COMMITTER_NAME": "Terraplane",
    "GIT_COMMITTER_EMAIL": "terraplane@localhost",
}


class CheckoutError(Exception):
    """A checkout could not be made; the message says why in one sentence."""


def _git_env(token: str | None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GIT_", "TERRAPLANE_")) and k != "SSH_AUTH_SOCK"
    }
    env.update(GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="/bin/true", LC_ALL="C")
    if token:
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        env.update(
            GIT_CONFIG_COUNT="1",
            GIT_CONFIG_KEY_0="http.extraHeader",
            GIT_CONFIG_VALUE_0=f"Authorization: Basic {basic}",
        )
    return env


async def git(
    *args: str,
    cwd: Path | None = None,
    token: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> str:
    """Run git with an argument list; its output, or CheckoutError with git's own message."""
    proc = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=cwd,
        env={**_git_env(token), **(extra_env or {})},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), GIT_TIMEOUT_SECONDS)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise CheckoutError(
            f"git {args[0]} did not finish in {GIT_TIMEOUT_SECONDS:.0f} s"
        ) from None
    if proc.returncode != 0:
        lines = [line.strip() for line in err.decode(errors="replace").splitlines() if line.strip()]
        first = next((x for x in lines if x.startswith(("fatal:", "error:"))), None)
        message = first or (lines[-1] if lines else f"exit code {proc.returncode}")
        raise CheckoutError(f"git {args[0]} failed: {message}")
    return out.decode(errors="replace")


class Checkouts:
    def __init__(self, root: Path) -> None:
        self.root = root

    def mirror_path(self, clone_url: str) -> Path:
        digest = hashlib.sha256(clone_url.encode()).hexdigest()[:16]
        name = clone_url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git") or "repo"
        return self.root / "mirrors" / f"{name}-{digest}.git"

    async def _has_commits(self, mirror: Path, shas: Sequence[str]) -> bool:
        """Whether the mirror holds every commit (one git process for all of them)."""
        try:
            out = await cat_file(mirror, "--batch-check", [f"{sha}^{{commit}}" for sha in shas])
        except CheckoutError:
            return False
        lines = out.decode(errors="replace").splitlines()
        return len(lines) == len(shas) and all(line.split()[1:2] == ["commit"] for line in lines)

    async def ensure(
        self,
        clone_url: str,
        shas: Sequence[str],
        refspecs: Sequence[str],
        token: str | None,
        *,
        refresh: bool = False,
    ) -> Path:
        """The mirror of `clone_url`, holding every commit in `shas` (fetched when missing, or
        always with `refresh`, to bring branches up to date)."""
        mirror = self.mirror_path(clone_url)
        async with file_lock(mirror.with_suffix(".lock")):
            if not (mirror / "HEAD").exists():
                shutil.rmtree(mirror, ignore_errors=True)
                mirror.parent.mkdir(parents=True, exist_ok=True)
                await git("init", "--bare", "--quiet", str(mirror))
                await git("remote", "add", "origin", clone_url, cwd=mirror)
            if not refresh and await self._has_commits(mirror, shas):
                return mirror
            await git(
                "fetch",
                "--quiet",
                "--no-tags",
                "--prune",
                "origin",
                *refspecs,
                cwd=mirror,
                token=token,
            )
            if not await self._has_commits(mirror, shas):
                # A force-push moved the ref since the event: ask for the commits themselves.
                try:
                    await git(
                        "fetch", "--quiet", "--no-tags", "origin", *shas, cwd=mirror, token=token
                    )
                except CheckoutError as exc:
                    raise CheckoutError(
                        f"commit {', '.join(s[:12] for s in shas)} is not in {clone_url}: {exc}"
                    ) from exc
        return mirror

    async def worktree(
        self, mirror: Path, head: str, base: str | None = None, path: Path | None = None
    ) -> Path:
        """A fresh worktree of `head` (at `path`, or a new directory), merged into `base` when
        given."""
        path = path or self.root / "worktrees" / uuid.uuid4().hex
        path.parent.mkdir(parents=True, exist_ok=True)
        async with file_lock(mirror.with_suffix(".lock")):
            add = ("worktree", "add", "--detach", "--quiet", str(path), base or head)
            try:
                await git(*add, cwd=mirror)
            except CheckoutError:
                # A worktree whose directory was deleted without git (a finished run's) still
                # holds its name; prune those, then try again.
                await git("worktree", "prune", cwd=mirror)
                await git(*add, cwd=mirror)
        if base is not None:
            try:
                await git(
                    "merge",
                    "--no-ff",
                    "--no-edit",
                    "--quiet",
                    head,
                    cwd=path,
                    extra_env=MERGE_IDENTITY,
                )
            except CheckoutError as exc:
                await self.remove(mirror, path)
                raise CheckoutError(
                    f"the pull request ({head[:12]}) does not merge cleanly into its base "
                    f"({base[:12]})"
                ) from exc
        return path

    async def remove(self, mirror: Path, path: Path) -> None:
        async with file_lock(mirror.with_suffix(".lock")):
            try:
                await git("worktree", "remove", "--force", str(path), cwd=mirror)
            except CheckoutError:
                await asyncio.to_thread(shutil.rmtree, path, True)
                await git("worktree", "prune", cwd=mirror)


def inside(root: Path, relative: str) -> Path:
    """`root / relative`, refused when it (following symlinks) leaves `root`."""
    target = (root / relative).resolve()
    if not target.is_relative_to(root.resolve()):
        raise CheckoutError(f"{relative!r} leaves the checkout")
    return target


async def list_tree(mirror: Path, commit: str) -> dict[str, str]:
    """Every file in `commit`'s tree: path -> blob id."""
    out = await git("ls-tree", "-r", "-z", "--full-tree", commit, cwd=mirror)
    tree: dict[str, str] = {}
    for entry in out.split("\0"):
        meta, tab, path = entry.partition("\t")
        fields = meta.split()
        if tab and len(fields) == 3 and fields[1] == "blob":
            tree[path] = fields[2]
    return tree


async def read_blobs(mirror: Path, blobs: dict[str, str]) -> dict[str, str]:
    """The text of each path's blob (path -> blob id, as `list_tree` gives), read by one
    `git cat-file --batch` process however many there are. Asking by blob id, not by
    `commit:path`, matters: a path lookup walks the trees, and a directory with thousands of
    entries made that seconds long."""
    if not blobs:
        return {}
    paths = list(blobs)
    out = await cat_file(mirror, "--batch", [blobs[p] for p in paths])
    texts: dict[str, str] = {}
    pos = 0
    for path in paths:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        pos = end + 1
        if len(header) < 3 or header[-1] == b"missing":
            continue
        size = int(header[2])
        texts[path] = out[pos : pos + size].decode(errors="replace")
        pos += size + 1
    return texts


async def cat_file(mirror: Path, mode: str, objects: Sequence[str]) -> bytes:
    """`git cat-file --batch` (or `--batch-check`) of `objects`, in one process."""
    proc = await asyncio.create_subprocess_exec(
        "git",
        "cat-file",
        mode,
        "--buffer",  # no flush per object: much faster for thousands of them
        cwd=mirror,
        env=_git_env(None),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    request = "".join(f"{name}\n" for name in objects).encode()
    out, err = await asyncio.wait_for(proc.communicate(request), GIT_TIMEOUT_SECONDS)
    if proc.returncode != 0:
        raise CheckoutError(f"git cat-file failed: {err.decode(errors='replace').strip()}")
    return out
