"""From config and a checkout's file list to dirspaces; from changed files to the affected ones.

Paths are repository-relative POSIX paths. Globs: `*` and `?` stay within one path segment,
`**` spans any number of them. `when_modified` patterns are relative to the dirspace's
directory (`../modules/**/*.tf` reaches a sibling), applied in order, and a pattern starting
with `!` excludes what earlier ones matched, as in `.gitignore`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass

from terraplane.domain.globs import glob_match, has_glob
from terraplane.domain.pullrequests import Requirement
from terraplane.repoconfig.model import DEFAULT_WHEN_MODIFIED, RepoConfig, Workflow
from terraplane.repoconfig.yamlpos import ConfigError

TERRAFORM_SUFFIXES = (".tf", ".tf.json")


def terraform_dirs(files: Iterable[str]) -> set[str]:
    """Directories that hold Terraform files (not inside hidden directories like .terraform)."""
    found = set()
    for path in files:
        if path.endswith(TERRAFORM_SUFFIXES):
            directory = posixpath.dirname(path) or "."
            if not any(part.startswith(".") for part in directory.split("/") if part != "."):
                found.add(directory)
    return found


@dataclass(frozen=True)
class Dirspace:
    dir: str
    workspace: str
    name: str | None
    tags: tuple[str, ...]
    when_modified: tuple[str, ...]
    workflow: Workflow
    engine: str
    engine_version: str | None
    apply_requirements: tuple[Requirement, ...]
    depends_on: tuple[str, ...]
    autoplan: bool

    @property
    def key(self) -> str:
        return f"{self.dir}:{self.workspace}"

    @property
    def label(self) -> str:
        return self.name or self.key


DEFAULT_WORKFLOW = Workflow()


def expand(
    config: RepoConfig, files: Iterable[str], modules: set[str] | None = None
) -> list[Dirspace]:
    """Every dirspace the config describes in a checkout holding `files`. Without `dirs` in
    the config, every Terraform directory that is not a local module of another one."""
    tf_dirs = terraform_dirs(files)
    file = config.source
    result: dict[str, Dirspace] = {}

    def add(dirspace: Dirspace) -> None:
        if dirspace.key in result:
            raise ConfigError(file, None, f"dirspace {dirspace.key} is configured twice")
        result[dirspace.key] = dirspace

    if config.dirs is None:
        for directory in sorted(tf_dirs - (modules or set())):
            add(
                Dirspace(
                    dir=directory,
                    workspace="default",
                    name=None,
                    tags=(),
                    when_modified=DEFAULT_WHEN_MODIFIED,
                    workflow=DEFAULT_WORKFLOW,
                    engine=config.engine,
                    engine_version=config.engine_version,
                    apply_requirements=config.apply_requirements,
                    depends_on=(),
                    autoplan=config.autoplan.enabled,
                )
            )
        return list(result.values())
    for entry in config.dirs:
        if has_glob(entry.dir):
            matches = sorted(d for d in tf_dirs if glob_match(entry.dir, d))
        elif entry.dir in tf_dirs:
            matches = [entry.dir]
        else:
            raise ConfigError(file, None, f"dir {entry.dir!r} holds no Terraform files")
        if entry.name and len(matches) * len(entry.workspaces) > 1:
            raise ConfigError(
                file,
                None,
                f"name {entry.name!r} would name {len(matches) * len(entry.workspaces)} "
                f"dirspaces ({entry.dir!r}); give a name only to one directory and workspace",
            )
        workflow = config.workflows[entry.workflow] if entry.workflow else DEFAULT_WORKFLOW
        for directory in matches:
            for workspace in entry.workspaces:
                add(
                    Dirspace(
                        dir=directory,
                        workspace=workspace,
                        name=entry.name,
                        tags=entry.tags,
                        when_modified=entry.when_modified,
                        workflow=workflow,
                        engine=entry.engine or config.engine,
                        engine_version=entry.engine_version or config.engine_version,
                        apply_requirements=(
                            entry.apply_requirements
                            if entry.apply_requirements is not None
                            else config.apply_requirements
                        ),
                        depends_on=entry.depends_on,
                        autoplan=(
                            entry.autoplan
                            if entry.autoplan is not None
                            else config.autoplan.enabled
                        ),
                    )
                )
    _check_depends_on(list(result.values()), file)
    return list(result.values())


def _check_depends_on(dirspaces: list[Dirspace], file: str) -> None:
    known = {d.label for d in dirspaces} | {d.key for d in dirspaces} | {d.dir for d in dirspaces}
    for d in dirspaces:
        for target in d.depends_on:
            if target not in known:
                raise ConfigError(
                    file, None, f"{d.label} depends on {target!r}, which is no dirspace here"
                )
    try:
        layers(dirspaces)
    except ValueError as exc:
        raise ConfigError(file, None, str(exc)) from exc


def _targets(d: Dirspace, dirspaces: list[Dirspace]) -> list[Dirspace]:
    return [
        o
        for o in dirspaces
        if o is not d and any(t in (o.label, o.key, o.dir) for t in d.depends_on)
    ]


def layers(dirspaces: list[Dirspace]) -> list[list[Dirspace]]:
    """`depends_on` as ordered layers: each layer depends only on earlier ones. Dependencies
    on dirspaces outside `dirspaces` are ignored (they are not part of this command). A cycle
    is a ValueError."""
    remaining = list(dirspaces)
    done: set[str] = set()
    result: list[list[Dirspace]] = []
    while remaining:
        ready = [d for d in remaining if all(o.key in done for o in _targets(d, dirspaces))]
        if not ready:
            names = ", ".join(sorted(d.label for d in remaining))
            raise ValueError(f"depends_on has a cycle among {names}")
        result.append(ready)
        done |= {d.key for d in ready}
        remaining = [d for d in remaining if d.key not in done]
    return result
