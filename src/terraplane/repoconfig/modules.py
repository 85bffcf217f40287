"""The local module graph of a checkout, from the `source` of HCL `module` blocks, and the
dirspaces a change affects.

Only local sources (`./…`, `../…`) are edges: a change to a module directory affects every
dirspace that uses it, directly or through other modules. A source that would leave the
repository is ignored. Sources are found by `hclscan` (fast enough for monorepos with thousands
of directories); files without the word `module` are not even scanned.
"""

from __future__ import annotations

import bisect
import posixpath
from collections.abc import Iterable, Mapping
from pathlib import Path

from terraplane.domain.globs import glob_match, literal_prefix
from terraplane.repoconfig.dirspaces import TERRAFORM_SUFFIXES, Dirspace, terraform_dirs
from terraplane.repoconfig.hclscan import module_sources


def terraform_files(files: Iterable[str]) -> list[str]:
    """The files whose text the module graph needs (Terraform files in Terraform dirs)."""
    paths = list(files)
    dirs = terraform_dirs(paths)
    return [
        p for p in paths if p.endswith(TERRAFORM_SUFFIXES) and (posixpath.dirname(p) or ".") in dirs
    ]


def read_terraform_files(checkout: Path, files: Iterable[str]) -> dict[str, str]:
    """`terraform_files` read from a checkout on disk (unreadable ones are left out)."""
    texts = {}
    for path in terraform_files(files):
        try:
            texts[path] = (checkout / path).read_text(errors="replace")
        except OSError:
            continue
    return texts


def module_graph(texts: Mapping[str, str]) -> dict[str, set[str]]:
    """Directory -> the local module directories its module blocks use, from the text of the
    checkout's Terraform files (`terraform_files`)."""
    graph: dict[str, set[str]] = {}
    for path, text in texts.items():
        if "module" not in text:
            continue
        directory = posixpath.dirname(path) or "."
        for source in module_sources(text, path.endswith(".json")):
            if not source.startswith(("./", "../")):
                continue
            target = posixpath.normpath(posixpath.join(directory, source))
            if target == ".." or target.startswith("../") or target == directory:
                continue
            graph.setdefault(directory, set()).add(target)
    return graph


def module_dirs(graph: dict[str, set[str]]) -> set[str]:
    """Every directory used as a local module by another one."""
    return {target for targets in graph.values() for target in targets}


def closure(graph: dict[str, set[str]], directory: str) -> set[str]:
    """The module directories `directory` uses, transitively (cycles are harmless)."""
    seen: set[str] = set()
    stack = list(graph.get(directory, ()))
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(graph.get(current, ()))
    return seen


class ChangedFiles:
    """Changed paths, sorted, so a pattern looks only at the paths that start with its literal
    prefix instead of at all of them (2,000 changed files x 5,000 dirspaces stays fast)."""

    def __init__(self, paths: Iterable[str]) -> None:
        self.paths = sorted(set(paths))
        self.dirs = {posixpath.dirname(p) or "." for p in self.paths}

    def starting_with(self, prefix: str) -> list[str]:
        lo = bisect.bisect_left(self.paths, prefix)
        hi = bisect.bisect_left(self.paths, prefix + "\U0010ffff")
        return self.paths[lo:hi]

    def touch(self, dirspace: Dirspace) -> bool:
        """Whether a changed path matches the dirspace's `when_modified` patterns (in order,
        `!` patterns excluding what earlier ones matched)."""
        verdict: dict[str, bool] = {}
        for pattern in dirspace.when_modified:
            negate = pattern.startswith("!")
            full = posixpath.normpath(posixpath.join(dirspace.dir, pattern.removeprefix("!")))
            for path in self.starting_with(literal_prefix(full)):
                if glob_match(full, path):
                    verdict[path] = not negate
        return any(verdict.values())


def affected(
    dirspaces: list[Dirspace], changed: Iterable[str] | ChangedFiles, graph: dict[str, set[str]]
) -> list[Dirspace]:
    """The dirspaces a change to `changed` touches: through their `when_modified` patterns, or
    because a file of a local module they use (transitively) changed."""
    files = changed if isinstance(changed, ChangedFiles) else ChangedFiles(changed)
    closures: dict[str, set[str]] = {}
    result = []
    for dirspace in dirspaces:
        if dirspace.dir not in closures:
            closures[dirspace.dir] = closure(graph, dirspace.dir)
        if closures[dirspace.dir] & files.dirs or files.touch(dirspace):
            result.append(dirspace)
    return result
