"""A run's working directory, made from its source: a directory (copied), a blueprint version
(unpacked from the database once per host, then copied) or a git commit (a worktree of the
host's mirror of the repository, the pull request merged into its base).

The directory is `runs_dir/{run}-{attempt}`. A directory of an earlier attempt of the same run
on this host means that attempt's worker died: its leftover processes are stopped and the
directory is removed first.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from pathlib import Path

from sqlalchemy import select

from terraplane.domain.runs import BlueprintSource, DirectorySource, GitSource, RunSpec
from terraplane.engine.archives import unpack_cached
from terraplane.engine.checkouts import CheckoutError, Checkouts, inside
from terraplane.engine.process import kill_orphans
from terraplane.github.app import GitHubApp
from terraplane.observability.logs import get_logger
from terraplane.store.database import Database
from terraplane.store.tables import blueprint_versions

log = get_logger(__name__)

PGID_FILE = ".terraplane-pgid"


class RunSources:
    def __init__(
        self,
        db: Database,
        runs_dir: Path,
        modules_dir: Path,
        checkouts: Checkouts,
        github: GitHubApp | None,
    ) -> None:
        self.db = db
        self.runs_dir = runs_dir
        self.modules_dir = modules_dir
        self.checkouts = checkouts
        self.github = github
        self._archive_sha: dict[tuple[str, str], str] = {}

    async def prepare(self, spec: RunSpec, run_id: int, workdir: Path) -> Path:
        """Make `workdir` from the run's source; returns the module's directory in it."""
        await asyncio.to_thread(_clear_earlier_attempts, self.runs_dir, run_id, workdir)
        source = spec.source
        if isinstance(source, GitSource):
            return await self._worktree(source, workdir)
        origin = (
            Path(source.path)
            if isinstance(source, DirectorySource)
            else await self._blueprint_dir(source)
        )
        await asyncio.to_thread(_copy_module, origin, workdir)
        return workdir

    async def discard(self, spec: RunSpec, workdir: Path) -> None:
        """Remove a run's directory (a worktree through git, so its mirror forgets it)."""
        source = spec.source
        if isinstance(source, GitSource):
            mirror = self.checkouts.mirror_path(source.clone_url)
            try:
                await self.checkouts.remove(mirror, workdir)
                return
            except CheckoutError as exc:
                log.warning("could not remove a worktree", path=str(workdir), error=str(exc))
        await asyncio.to_thread(shutil.rmtree, workdir, True)

    async def _worktree(self, source: GitSource, workdir: Path) -> Path:
        token = None
        if source.installation_id is not None and self.github is not None:
            token = await self.github.installation_token(source.installation_id)
        wanted = [source.head, *([source.base] if source.base else [])]
        mirror = await self.checkouts.ensure(source.clone_url, wanted, source.refspecs, token)
        await asyncio.to_thread(shutil.rmtree, workdir, True)
        await self.checkouts.worktree(mirror, source.head, source.base, path=workdir)
        module_dir = inside(workdir, source.dir)
        if not module_dir.is_dir():
            raise FileNotFoundError(f"{source.dir} is not a directory in {source.head[:12]}")
        return module_dir

    async def _blueprint_dir(self, source: BlueprintSource) -> Path:
        # Versions are immutable: once unpacked here, a version needs no database read.
        known = self._archive_sha.get((source.blueprint, source.version))
        if known is not None and (self.modules_dir / known).is_dir():
            return self.modules_dir / known
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(blueprint_versions.c.archive, blueprint_versions.c.archive_sha256).where(
                        blueprint_versions.c.blueprint == source.blueprint,
                        blueprint_versions.c.version == source.version,
                    )
                )
            ).one_or_none()
        if row is None:
            raise FileNotFoundError(f"blueprint {source.blueprint} {source.version} does not exist")
        path = await asyncio.to_thread(
            unpack_cached, row.archive, row.archive_sha256, self.modules_dir
        )
        self._archive_sha[(source.blueprint, source.version)] = row.archive_sha256
        return path


def _clear_earlier_attempts(runs_dir: Path, run_id: int, current: Path) -> None:
    """An earlier attempt's directory on this host means its worker died: stop the provider
    processes its terraform left behind, then remove the directory."""
    for old in runs_dir.glob(f"{run_id}-*"):
        if old == current:
            continue
        pgid_file = old / PGID_FILE
        with contextlib.suppress(OSError, ValueError):
            killed = kill_orphans(old, int(pgid_file.read_text()))
            if killed:
                log.warning(
                    "stopped processes left by a dead attempt",
                    run_id=run_id,
                    directory=str(old),
                    processes=killed,
                )
        shutil.rmtree(old, ignore_errors=True)


def _copy_module(source: Path, workdir: Path) -> None:
    if not source.is_dir():
        raise FileNotFoundError(f"run source {source} is not a directory")
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        source,
        workdir,
        symlinks=True,
        ignore=shutil.ignore_patterns(".terraform", "*.tfstate", "*.tfstate.backup", ".git"),
    )
