"""Tenants: the customers a vendor provisions infrastructure for.

Deleting a tenant is refused while it has a deployment that is not destroyed. A deleted tenant's
row stays, marked `deleted_at`, because its destroyed deployments and their operations, runs and
logs are history that must remain readable (`GET /tenants/{name}/history` still answers);
everything else treats it as gone, and creating the name again brings it back with new labels.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from terraplane.domain.blueprints import validate_name
from terraplane.domain.deployments import DeploymentStatus
from terraplane.domain.errors import Conflict, NotFound, Unprocessable
from terraplane.store.tables import deployments, tenants
from terraplane.store.types import utcnow
from terraplane.store.upsert import insert_returning

MAX_LABELS = 64


def validate_labels(labels: dict[str, Any]) -> dict[str, str]:
    if len(labels) > MAX_LABELS:
        raise Unprocessable(f"a tenant has at most {MAX_LABELS} labels")
    bad = [
        k
        for k, v in labels.items()
        if not isinstance(v, str) or not k or len(k) > 63 or len(v) > 256
    ]
    if bad:
        raise Unprocessable(f"labels must map names (1-63 chars) to strings: {', '.join(bad)}")
    return dict(labels)


def tenant_json(row: Any) -> dict[str, Any]:
    return {
        "name": row.name,
        "labels": row.labels,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


async def create_tenant(conn: AsyncConnection, name: str, labels: dict[str, Any]) -> dict[str, Any]:
    validate_name("tenant", name)
    values = validate_labels(labels)
    now = utcnow()
    row = await insert_returning(
        conn, tenants, {"name": name, "labels": values, "created_at": now, "updated_at": now}
    )
    if row is None:  # the name exists: bring it back if it was deleted
        row = (
            await conn.execute(
                update(tenants)
                .where(tenants.c.name == name, tenants.c.deleted_at.is_not(None))
                .values(labels=values, created_at=now, updated_at=now, deleted_at=None)
                .returning(tenants)
            )
        ).one_or_none()
    if row is None:
        raise Conflict(f"tenant {name!r} already exists")
    return tenant_json(row)


async def get_tenant(
    conn: AsyncConnection, name: str, *, include_deleted: bool = False, lock: bool = False
) -> dict[str, Any]:
    """`lock`: hold the row (PostgreSQL) so a concurrent delete waits for this transaction."""
    query = select(tenants).where(tenants.c.name == name)
    if not include_deleted:
        query = query.where(tenants.c.deleted_at.is_(None))
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).one_or_none()
    if row is None:
        raise NotFound(f"tenant {name!r} does not exist")
    return tenant_json(row)


async def list_tenants(
    conn: AsyncConnection, labels: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    rows = (
        await conn.execute(
            select(tenants).where(tenants.c.deleted_at.is_(None)).order_by(tenants.c.name)
        )
    ).all()
    wanted = labels or {}
    return [tenant_json(r) for r in rows if all(r.labels.get(k) == v for k, v in wanted.items())]


async def set_labels(conn: AsyncConnection, name: str, labels: dict[str, Any]) -> dict[str, Any]:
    row = (
        await conn.execute(
            update(tenants)
            .where(tenants.c.name == name, tenants.c.deleted_at.is_(None))
            .values(labels=validate_labels(labels), updated_at=utcnow())
            .returning(tenants)
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"tenant {name!r} does not exist")
    return tenant_json(row)


async def delete_tenant(conn: AsyncConnection, name: str) -> None:
    await get_tenant(conn, name, lock=True)
    live = (
        await conn.execute(
            select(deployments.c.id, deployments.c.status)
            .where(
                deployments.c.tenant == name,
                deployments.c.status != DeploymentStatus.DESTROYED.value,
            )
            .order_by(deployments.c.id)
        )
    ).all()
    if live:
        listed = ", ".join(f"{r.id} ({r.status})" for r in live[:10])
        more = f" and {len(live) - 10} more" if len(live) > 10 else ""
        raise Conflict(f"tenant {name!r} still has deployments: {listed}{more}; destroy them first")
    now = utcnow()
    await conn.execute(
        update(tenants).where(tenants.c.name == name).values(deleted_at=now, updated_at=now)
    )
