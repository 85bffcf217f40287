"""What a deployment change applies: requests, the checked version + variables, the gate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from terraplane.controlplane.blueprints import get_version
from terraplane.domain.errors import Conflict, Forbidden, Unprocessable
from terraplane.domain.roles import Role
from terraplane.domain.variables import VariableSpec, validate_variables
from terraplane.governance.tokens import Principal
from terraplane.store.tables import promotions


class DeploymentCreate(BaseModel):
    tenant: str = Field(min_length=1, max_length=63)
    environment: str = Field(min_length=1, max_length=64)
    blueprint: str = Field(min_length=1, max_length=63)
    version: str = Field(default="latest", min_length=1, max_length=64)
    tier: str = Field(default="default", min_length=1, max_length=63)
    variables: dict[str, Any] = Field(default_factory=dict)
    override_gate: bool = False


class DeploymentUpdate(BaseModel):
    version: str | None = Field(default=None, max_length=64)
    variables: dict[str, Any] | None = None


@dataclass(frozen=True)
class Target:
    """A checked version + variables to apply."""

    version: str
    variables: dict[str, Any]
    sensitive: list[str]


def workspace_name(tenant: str, environment: str, blueprint: str) -> str:
    return f"deployments/{tenant}/{environment}/{blueprint}"


def variables_ad(workspace: str) -> bytes:
    return f"variables:{workspace}".encode()


async def resolve_target(
    conn: AsyncConnection, blueprint: str, version: str, tier: str, variables: dict[str, Any]
) -> Target:
    """The version row and the merged, validated variables (422 listing every problem)."""
    row = await get_version(conn, blueprint, version)
    tiers: dict[str, Any] = row.tiers
    if tiers and tier not in tiers:
        raise Unprocessable(f"tier {tier!r} is not one of {', '.join(sorted(tiers))}")
    fixed = tiers.get(tier, {}).get("variables", {}) if tiers else {}
    clashes = sorted(set(fixed) & set(variables))
    if clashes:
        raise Unprocessable(f"variables fixed by tier {tier!r} cannot be set: {', '.join(clashes)}")
    schema = [VariableSpec.model_validate(v) for v in row.variables]
    merged = {**variables, **fixed}
    problems = validate_variables(schema, merged)
    if problems:
        raise Unprocessable("invalid variables: " + "; ".join(problems))
    return Target(row.version, merged, [v.name for v in schema if v.sensitive])


async def check_gate(
    conn: AsyncConnection,
    chain: list[str],
    environment: str,
    blueprint: str,
    version: str,
    override: bool,
    who: Principal,
) -> str | None:
    """409 unless the version succeeded in the previous environment; an admin may override
    (returned, to be recorded)."""
    if environment not in chain:
        raise Unprocessable(f"environment {environment!r} is not one of {', '.join(chain)}")
    index = chain.index(environment)
    if index == 0:
        return None
    previous = chain[index - 1]
    passed = (
        await conn.execute(
            select(promotions.c.version).where(
                promotions.c.blueprint == blueprint,
                promotions.c.version == version,
                promotions.c.environment == previous,
            )
        )
    ).one_or_none()
    if passed is not None:
        return None
    if not override:
        raise Conflict(
            f"{blueprint} {version} has not succeeded in {previous!r} yet; promote it "
            "there first (or an admin may set override_gate)"
        )
    if not who.role.allows(Role.ADMIN):
        raise Forbidden("override_gate needs an admin token")
    return who.name
