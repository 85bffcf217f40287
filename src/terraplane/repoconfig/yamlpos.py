"""YAML with positions: plain Python values plus the line of every mapping key and item, so a
validation error can say where it is."""

from __future__ import annotations

from typing import Any

import yaml

Path = tuple[str | int, ...]


class ConfigError(Exception):
    """One problem in a config file, as `file:line: problem`."""

    def __init__(self, file: str, line: int | None, problem: str) -> None:
        self.file, self.line, self.problem = file, line, problem
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {problem}")


def load(text: str, file: str) -> tuple[Any, dict[Path, int]]:
    """The document's value and a map from each value's path to its 1-based line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(file, line, f"not valid YAML: {exc.problem}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(file, None, f"not valid YAML: {exc}") from exc
    lines: dict[Path, int] = {}
    if node is None:
        return None, lines
    return _value(node, (), lines, file), lines


def _value(node: yaml.Node, path: Path, lines: dict[Path, int], file: str) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(file, key_node.start_mark.line + 1, "keys must be plain text")
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`
                sources = (
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                for source in sources:
                    value = _value(source, path, lines, file)
                    if not isinstance(value, dict):
                        raise ConfigError(
                            file, key_node.start_mark.line + 1, "'<<' must merge a mapping"
                        )
                    merged = {**value, **merged}
                continue
            key = str(key_node.value)
            if key in result:
                raise ConfigError(file, key_node.start_mark.line + 1, f"duplicate key {key!r}")
            result[key] = _value(value_node, (*path, key), lines, file)
            lines[(*path, key)] = key_node.start_mark.line + 1
        lines[path] = node.start_mark.line + 1  # a merged anchor must not move it
        return {**merged, **result}
    if isinstance(node, yaml.SequenceNode):
        return [_value(item, (*path, i), lines, file) for i, item in enumerate(node.value)]
    # A scalar: let YAML's safe resolver type it (int, bool, null, str).
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def line_of(lines: dict[Path, int], loc: tuple[Any, ...]) -> int | None:
    """The line of the deepest known prefix of a validation error's location."""
    path: Path = tuple(p for p in loc if isinstance(p, str | int))
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())
