"""A module's variable schema (from its `variable` blocks) and checking values against it.

Type expressions are Terraform's: `string`, `number`, `bool`, `any`, `list(T)`, `set(T)`,
`map(T)`, `tuple([T, ...])`, `object({name = T, ...})`, and `optional(T)` inside objects.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel


class VariableSpec(BaseModel):
    name: str
    type: str = "any"
    default: Any = None
    required: bool = True
    sensitive: bool = False
    description: str | None = None


_CALL = re.compile(r"^(list|set|map|tuple|object|optional)\((.*)\)$", re.S)


def check_value(type_expr: str, value: Any, where: str) -> list[str]:
    """Every way `value` fails to fit `type_expr`; empty when it fits."""
    t = re.sub(r"\s+", " ", type_expr.strip())
    if t.startswith("${") and t.endswith("}"):
        t = t[2:-1].strip()
    if t in ("any", ""):
        return []
    if t == "string":
        ok = isinstance(value, str | int | float) and not isinstance(value, bool)
        return [] if ok else [f"{where}: expected a string"]
    if t == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if isinstance(value, str):
            ok = _is_number(value)
        return [] if ok else [f"{where}: expected a number"]
    if t == "bool":
        return [] if isinstance(value, bool) else [f"{where}: expected true or false"]
    match = _CALL.match(t)
    if not match:
        return []  # an expression we do not model: Terraform itself will check it
    kind, inner = match.group(1), match.group(2).strip()
    if kind == "optional":
        return [] if value is None else check_value(_split_args(inner)[0], value, where)
    if kind in ("list", "set"):
        if not isinstance(value, list):
            return [f"{where}: expected a {kind}"]
        return [e for i, v in enumerate(value) for e in check_value(inner, v, f"{where}[{i}]")]
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{where}: expected a map"]
        return [e for k, v in value.items() for e in check_value(inner, v, f"{where}.{k}")]
    if kind == "tuple":
        types = _split_args(inner.strip("[]"))
        if not isinstance(value, list) or len(value) != len(types):
            return [f"{where}: expected a tuple of {len(types)} elements"]
        return [
            e
            for i, (tt, v) in enumerate(zip(types, value, strict=True))
            for e in check_value(tt, v, f"{where}[{i}]")
        ]
    if not isinstance(value, dict):
        return [f"{where}: expected an object"]
    errors = []
    for attr in _split_args(inner.strip("{}")):
        name, _, attr_type = attr.partition("=")
        name, attr_type = name.strip().strip('"'), attr_type.strip()
        if name not in value:
            if not attr_type.startswith("optional("):
                errors.append(f"{where}.{name}: required attribute is missing")
            continue
        errors += check_value(attr_type, value[name], f"{where}.{name}")
    return errors


def validate_variables(schema: list[VariableSpec], values: dict[str, Any]) -> list[str]:
    """Every problem with `values` against the schema: unknown names, missing required ones,
    values of the wrong type. Empty when they are all right."""
    known = {v.name: v for v in schema}
    errors = [f"{name}: no such variable in the blueprint" for name in values if name not in known]
    for spec in schema:
        if spec.name not in values:
            if spec.required:
                errors.append(f"{spec.name}: required variable is missing")
            continue
        errors += check_value(spec.type, values[spec.name], spec.name)
    return errors


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _split_args(text: str) -> list[str]:
    """Split on top-level commas (and newlines, as object type bodies allow)."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch in ",\n" and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    parts.append("".join(current).strip())
    return [p for p in parts if p]
