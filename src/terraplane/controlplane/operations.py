"""Reading operations: one operation with its runs, a tenant's history, drift results."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from terraplane.domain.deployments import DeploymentStatus, DriftStatus, OperationStatus
from terraplane.domain.errors import NotFound
from terraplane.domain.runs import RunStatus
from terraplane.runs import service as runs
from terraplane.store.tables import deployments, drift_results, operation_runs, operations


async def tenant_history(conn: AsyncConnection, tenant: str) -> list[dict[str, Any]]:
    """Every operation on the tenant's deployments, newest first, each with its runs."""
    ids = (
        (
            await conn.execute(
                select(operations.c.id)
                .join(deployments, deployments.c.id == operations.c.deployment_id)
                .where(deployments.c.tenant == tenant)
                .order_by(operations.c.id.desc())
            )
        )
        .scalars()
        .all()
    )
    return [await describe_operation(conn, op_id) for op_id in ids]


async def describe_operation(conn: AsyncConnection, operation_id: int) -> dict[str, Any]:
    op = (
        await conn.execute(select(operations).where(operations.c.id == operation_id))
    ).one_or_none()
    if op is None:
        raise NotFound(f"operation {operation_id} does not exist")
    links = (
        await conn.execute(
            select(operation_runs)
            .where(operation_runs.c.operation_id == operation_id)
            .order_by(operation_runs.c.run_id)
        )
    ).all()
    run_list = []
    for link in links:
        run = await runs.get_run(conn, link.run_id)
        run_list.append({**run.as_json(), "purpose": link.purpose})
    status = op.status
    if status == OperationStatus.PENDING.value and any(r["status"] != "queued" for r in run_list):
        status = OperationStatus.RUNNING.value
    return {
        "id": op.id,
        "deployment_id": op.deployment_id,
        "kind": op.kind,
        "status": status,
        "target_version": op.target_version,
        "gate_overridden_by": op.gate_overridden_by,
        "error": op.error,
        "created_by": op.created_by,
        "created_at": op.created_at.isoformat(),
        "finished_at": op.finished_at.isoformat() if op.finished_at else None,
        "runs": run_list,
    }


async def drift_report(conn: AsyncConnection) -> list[dict[str, Any]]:
    """One row per live deployment workspace: its latest drift check."""
    rows = (
        await conn.execute(
            select(
                deployments.c.workspace,
                drift_results.c.status,
                drift_results.c.checked_at,
                drift_results.c.run_id,
            )
            .select_from(
                deployments.outerjoin(
                    drift_results, drift_results.c.workspace == deployments.c.workspace
                )
            )
            .where(deployments.c.status != DeploymentStatus.DESTROYED.value)
            .order_by(deployments.c.workspace)
        )
    ).all()
    return [
        {
            "workspace": r.workspace,
            "status": r.status or DriftStatus.NEVER_RUN.value,
            "checked_at": r.checked_at.isoformat() if r.checked_at else None,
            "run_id": r.run_id,
        }
        for r in rows
    ]


async def active_run_started(conn: AsyncConnection, deployment_id: int) -> bool:
    latest = (
        await conn.execute(
            select(operation_runs.c.run_id)
            .join(operations, operations.c.id == operation_runs.c.operation_id)
            .where(operations.c.deployment_id == deployment_id)
            .order_by(operation_runs.c.run_id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if latest is None:
        return False
    return (await runs.get_run(conn, latest)).status is not RunStatus.QUEUED
