"""A fast scan of Terraform files for the two facts Terraplane needs before running anything:
the `source` of `module` blocks and whether a root module declares a backend.

A full HCL parser (python-hcl2) takes ~5 ms for a small file, so a monorepo with thousands of
directories would take many seconds per pull request. This scanner uses regular expressions
over the layout `terraform fmt` produces (and virtually all Terraform code has): top-level blocks
start at the beginning of a line, and a block's body runs until the next top-level block.
Comments are removed first. JSON syntax (`.tf.json`) is parsed exactly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

# Whole-line comments only: `/*` and `//` also occur inside strings (IAM ARNs, URLs).
_COMMENTS = re.compile(r"^[ \t]*/\*.*?\*/|^[ \t]*(?:#|//)[^\n]*", re.S | re.M)
_TOP_BLOCK = re.compile(
    r'^([A-Za-z_][\w-]*)((?:[ \t]+(?:"[^"\n]*"|[A-Za-z_][\w-]*))*)[ \t]*\{', re.M
)
_LABEL = re.compile(r'"([^"\n]*)"|([A-Za-z_][\w-]*)')
_SOURCE = re.compile(r'(?<![\w.-])source[ \t]*=[ \t]*"([^"\n]*)"')
_BACKEND = re.compile(r'(?<![\w.-])(?:backend[ \t]+"[^"\n]+"|cloud)[ \t]*\{')


def _blocks(text: str) -> Iterator[tuple[str, list[str], str]]:
    """Top-level blocks: (type, labels, body text up to the next top-level block)."""
    text = _COMMENTS.sub("", text)
    matches = list(_TOP_BLOCK.finditer(text))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        labels = [a or b for a, b in _LABEL.findall(match.group(2))]
        yield match.group(1), labels, text[match.end() : end]


def _json_blocks(text: str, kind: str) -> list[Any]:
    try:
        document = json.loads(text)
    except ValueError:
        return []
    value = document.get(kind) if isinstance(document, dict) else None
    return value if isinstance(value, list) else [value] if value is not None else []


def module_sources(text: str, json_syntax: bool = False) -> list[str]:
    """The `source` of every module block in one file."""
    if json_syntax:
        sources = []
        for group in _json_blocks(text, "module"):
            for body in group.values() if isinstance(group, dict) else ():
                for item in body if isinstance(body, list) else [body]:
                    if isinstance(item, dict) and isinstance(item.get("source"), str):
                        sources.append(item["source"])
        return sources
    if "module" not in text:
        return []
    found = []
    for kind, _labels, body in _blocks(text):
        if kind == "module" and (source := _SOURCE.search(body)):
            found.append(source.group(1))
    return found


def declares_backend(text: str, json_syntax: bool = False) -> bool:
    """Whether one file's `terraform` block declares a `backend` or `cloud` block."""
    if json_syntax:
        return any(
            isinstance(block, dict) and ("backend" in block or "cloud" in block)
            for block in _json_blocks(text, "terraform")
        )
    if "terraform" not in text:
        return False
    return any(
        kind == "terraform" and _BACKEND.search(body) is not None
        for kind, _labels, body in _blocks(text)
    )
