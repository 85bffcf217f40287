"""Variable schemas: Terraform type expressions checked against values; semver ordering."""

from __future__ import annotations

import pytest

from terraplane.domain.blueprints import version_sort_key
from terraplane.domain.errors import Unprocessable
from terraplane.domain.variables import VariableSpec, check_value, validate_variables


@pytest.mark.parametrize(
    "type_expr,value,ok",
    [
        ("string", "x", True),
        ("string", 3, True),
        ("string", True, False),
        ("number", 3.5, True),
        ("number", "12", True),
        ("number", "twelve", False),
        ("bool", False, True),
        ("bool", "true", False),
        ("list(string)", ["a", "b"], True),
        ("list(number)", [1, "x"], False),
        ("set(string)", "a", False),
        ("map(number)", {"a": 1}, True),
        ("map(number)", {"a": "no"}, False),
        ("${map(string)}", {"a": "b"}, True),
        ("object({name = string, size = optional(number)})", {"name": "a"}, True),
        ("object({name = string, size = optional(number)})", {"size": 1}, False),
        ("tuple([string, number])", ["a", 1], True),
        ("tuple([string, number])", ["a"], False),
        ("any", {"whatever": [1]}, True),
    ],
)
def test_type_checks(type_expr: str, value: object, ok: bool) -> None:
    assert (check_value(type_expr, value, "v") == []) is ok


def test_validate_lists_every_problem() -> None:
    schema = [
        VariableSpec(name="tenant", type="string"),
        VariableSpec(name="size", type="number", default=1, required=False),
    ]
    errors = validate_variables(schema, {"size": "big", "colour": "red"})
    assert errors == [
        "colour: no such variable in the blueprint",
        "tenant: required variable is missing",
        "size: expected a number",
    ]


def test_versions_sort_as_semver() -> None:
    ordered = ["0.9.0", "1.0.0-rc.1", "1.0.0", "1.2.0", "1.10.0", "10.0.0"]
    assert sorted(ordered, key=version_sort_key) == ordered
    for bad in ("1.0", "v1.0.0", "1.0.0.0", "01.0.0", ""):
        with pytest.raises(Unprocessable):
            version_sort_key(bad)
