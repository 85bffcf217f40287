"""Tenants: the customers a vendor provisions infrastructure for."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from terraplane.domain.blueprints import validate_name
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
    now = utcnow()
    row = await insert_returning(
        conn,
        tenants,
        {"name": name, "labels": validate_labels(labels), "created_at": now, "updated_at": now},
    )
    if row is None:
        raise Conflict(f"tenant {name!r} already exists")
    return tenant_json(row)


async def get_tenant(conn: AsyncConnection, name: str) -> dict[str, Any]:
    row = (await conn.execute(select(tenants).where(tenants.c.name == name))).one_or_none()
    if row is None:
        raise NotFound(f"tenant {name!r} does not exist")
    return tenant_json(row)


async def list_tenants(
    conn: AsyncConnection, labels: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    rows = (await conn.execute(select(tenants).order_by(tenants.c.name))).all()
    wanted = labels or {}
    return [tenant_json(r) for r in rows if all(r.labels.get(k) == v for k, v in wanted.items())]


async def set_labels(conn: AsyncConnection, name: str, labels: dict[str, Any]) -> dict[str, Any]:
    row = (
        await conn.execute(
            update(tenants)
            .where(tenants.c.name == name)
            .values(labels=validate_labels(labels), updated_at=utcnow())
            .returning(tenants)
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"tenant {name!r} does not exist")
    return tenant_json(row)


async def delete_tenant(conn: AsyncConnection, name: str) -> None:
    await get_tenant(conn, name)
    used = (
        await conn.execute(select(deployments.c.id).where(deployments.c.tenant == name).limit(1))
    ).first()
    if used is not None:
        raise Conflict(f"tenant {name!r} still has deployments; destroy them first")
    await conn.execute(delete(tenants).where(tenants.c.name == name))
