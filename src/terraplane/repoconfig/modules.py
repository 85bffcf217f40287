"""The local module graph of a checkout, from the `source` of HCL `module` blocks.

Only local sources (`./…`, `../…`) are edges: a change to a module directory affects every
dirspace that uses it, directly or through other modules. A source that would leave the
repository is ignored. Files without the word `module` are not parsed (most are not), which
keeps a monorepo with thousands of files fast.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import hcl2

from terraplane.repoconfig.dirspaces import TERRAFORM_SUFFIXES, Dirspace, terraform_dirs


def _unquote(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def module_sources(text: str, json_syntax: bool) -> list[str]:
    """The `source` of every module block in one file (unparseable files have none: terraform
    will say what is wrong with them when it runs)."""
    try:
        document = json.loads(text) if json_syntax else hcl2.loads(text)
    except Exception:  # python-hcl2 raises lark's exceptions, among others
        return []
    blocks = document.get("module") if isinstance(document, dict) else None
    if isinstance(blocks, dict):  # JSON syntax: {"module": {"name": {...}}}
        blocks = [blocks]
    sources = []
    for block in blocks if isinstance(blocks, list) else []:
        if not isinstance(block, dict):
            continue
        for body in block.values():
            source = _unquote(body.get("source")) if isinstance(body, dict) else None
            if source:
                sources.append(source)
    return sources


def module_graph(checkout: Path, files: Iterable[str]) -> dict[str, set[str]]:
    """Directory -> the local module directories its module blocks use."""
    paths = list(files)
    dirs = terraform_dirs(paths)
    graph: dict[str, set[str]] = {}
    for path in paths:
        if not path.endswith(TERRAFORM_SUFFIXES):
            continue
        directory = posixpath.dirname(path) or "."
        if directory not in dirs:
            continue
        try:
            text = (checkout / path).read_text(errors="replace")
        except OSError:
            continue
        if "module" not in text:
            continue
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


def affected(
    dirspaces: list[Dirspace], changed: Iterable[str], graph: dict[str, set[str]]
) -> list[Dirspace]:
    """The dirspaces a change to `changed` touches: through their `when_modified` patterns, or
    because a file of a local module they use (transitively) changed."""
    changed = list(changed)
    changed_dirs = {posixpath.dirname(path) or "." for path in changed}
    result = []
    for dirspace in dirspaces:
        if any(dirspace.modified_by(path) for path in changed) or (
            closure(graph, dirspace.dir) & changed_dirs
        ):
            result.append(dirspace)
    return result
