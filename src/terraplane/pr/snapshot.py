"""What a commit holds, as Terraplane needs it to decide: its repository config, its
dirspaces and the local module graph, read from the host's mirror of the repository without a
checkout (`git ls-tree` and one `git cat-file --batch`). For a pull request's head, and for a
default branch's tip (drift checks of repositories)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from terraplane.engine.checkouts import CheckoutError, Checkouts, git, list_tree, read_blobs
from terraplane.repoconfig.dirspaces import Dirspace, expand
from terraplane.repoconfig.model import (
    ATLANTIS_FILES,
    TERRAPLANE_FILES,
    RepoConfig,
    parse_repo_config,
)
from terraplane.repoconfig.modules import module_dirs, module_graph, terraform_files


@dataclass(frozen=True)
class Commit:
    """Where a commit comes from: the repository, the refs to fetch, the commit itself, and
    the branch whose tip it is merged into (if any)."""

    clone_url: str
    head: str
    refspecs: tuple[str, ...]
    base_ref: str | None = None


@dataclass(frozen=True)
class Snapshot:
    mirror: Path
    head: str
    # The tip of the base branch now (what the head is merged into), when it could be read.
    base: str | None
    files: list[str]
    config: RepoConfig
    dirspaces: list[Dirspace]
    graph: dict[str, set[str]]

    def find(self, dir: str, workspace: str) -> Dirspace | None:
        return next((d for d in self.dirspaces if d.dir == dir and d.workspace == workspace), None)


async def branch_tip(mirror: Path, branch: str) -> str | None:
    try:
        return (await git("rev-parse", f"refs/heads/{branch}^{{commit}}", cwd=mirror)).strip()
    except CheckoutError:
        return None


async def fetch(checkouts: Checkouts, commit: Commit, token: str | None) -> tuple[Path, str | None]:
    """The mirror holding the commit, fetched afresh so the base branch's tip is current;
    returns it and that tip."""
    mirror = await checkouts.ensure(
        commit.clone_url, [commit.head], commit.refspecs, token, refresh=True
    )
    base = await branch_tip(mirror, commit.base_ref) if commit.base_ref else None
    return mirror, base


async def take(checkouts: Checkouts, commit: Commit, token: str | None) -> Snapshot:
    """The snapshot of the commit. Raises ConfigError for a broken config and CheckoutError
    when the repository cannot be read."""
    mirror, base = await fetch(checkouts, commit, token)
    return await read(mirror, commit.head, base)


async def read(mirror: Path, head: str, base: str | None = None) -> Snapshot:
    """The snapshot of a commit the mirror holds."""
    tree = await list_tree(mirror, head)
    files = list(tree)
    config_files = [f for f in (*TERRAPLANE_FILES, *ATLANTIS_FILES) if f in tree]
    wanted = [*config_files, *terraform_files(files)]
    texts = await read_blobs(mirror, {path: tree[path] for path in wanted})
    config = parse_repo_config({f: texts[f] for f in config_files if f in texts})
    graph = module_graph(texts)
    dirspaces = expand(config, files, module_dirs(graph))
    return Snapshot(mirror, head, base, files, config, dirspaces, graph)
