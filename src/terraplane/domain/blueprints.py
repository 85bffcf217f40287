"""Blueprint versions (semver) and tiers."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field

from terraplane.domain.errors import Unprocessable
from terraplane.domain.variables import VariableSpec, validate_variables

_SEMVER = re.compile(
    r"^(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})(?:-([0-9A-Za-z.-]{1,40}))?$"
)
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def validate_name(kind: str, name: str) -> str:
    if not _NAME.match(name):
        raise Unprocessable(
            f"{kind} name {name!r} must be 1-63 lowercase letters, digits or '-', "
            "starting with a letter or digit"
        )
    return name


def version_sort_key(version: str) -> str:
    """A text key that sorts versions as semver does (a pre-release before its release)."""
    match = _SEMVER.match(version)
    if not match:
        raise Unprocessable(f"version {version!r} is not a semantic version like 1.4.0")
    major, minor, patch, pre = match.groups()
    release = f"{int(major):09d}.{int(minor):09d}.{int(patch):09d}"
    return f"{release}-{pre}" if pre else f"{release}~"


class Tier(BaseModel):
    """A tier fixes some of a blueprint's variables (for example shared vs dedicated)."""

    variables: dict[str, Any] = Field(default_factory=dict)


def validate_tiers(schema: list[VariableSpec], tiers: dict[str, Tier]) -> None:
    problems = []
    for tier_name, tier in tiers.items():
        if not _NAME.match(tier_name):
            problems.append(f"tier {tier_name!r}: not a valid name")
        known = {v.name: v for v in schema}
        subset = [known[n] for n in tier.variables if n in known]
        for error in validate_variables(subset, tier.variables):
            problems.append(f"tier {tier_name}: {error}")
    if problems:
        raise Unprocessable("invalid tiers: " + "; ".join(problems))
