"""Path globs over repository-relative POSIX paths.

`*` and `?` stay within one path segment; `**` spans any number of them (`a/**/x.tf` matches
`a/x.tf` and `a/b/c/x.tf`). Used by repository config (`dirs`, `when_modified`) and by tag
queries (`dir:stacks/*`).
"""

from __future__ import annotations

import functools
import re

GLOB_CHARS = "*?"


@functools.lru_cache(maxsize=8192)
def glob_regex(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def glob_match(pattern: str, path: str) -> bool:
    return glob_regex(pattern).match(path) is not None


def has_glob(pattern: str) -> bool:
    return any(c in pattern for c in GLOB_CHARS)


def literal_prefix(pattern: str) -> str:
    """The part of `pattern` before its first glob character: every path it matches starts
    with this (used to narrow candidates before matching)."""
    cut = min((i for i, c in enumerate(pattern) if c in GLOB_CHARS), default=len(pattern))
    return pattern[:cut]
