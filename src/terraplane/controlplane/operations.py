"""Reading operations: one operation with its runs, a tenant's history, drift results."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from terraplane.domain.deployments import DeploymentStatus, DriftStatus, OperationStatus
from terraplane.domain.errors import Conflict, NotFound
from terraplane.domain.runs import RunStatus
from terraplane.runs import service as runs
from terraplane.store.tables import (
    deployments,
    drift_results,
    operation_runs,
    operations,
    repository_workspaces,
    states,
)
from terraplane.store.tables import runs as runs_table
from terraplane.store.types import utcnow
from terraplane.store.upsert import insert_or_ignore


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
        "workspace": op.workspace,
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
    """One row per live workspace — deployments' and repositories' default branches' — with
    its latest drift check."""
    report: list[dict[str, Any]] = []
    for source in (
        select(deployments.c.workspace).where(
            deployments.c.status != DeploymentStatus.DESTROYED.value
        ),
        select(repository_workspaces.c.workspace),
    ):
        live = source.subquery()
        rows = await conn.execute(
            select(live.c.workspace, drift_results.c.status, drift_results.c.checked_at)
            .add_columns(drift_results.c.run_id)
            .select_from(
                live.outerjoin(drift_results, drift_results.c.workspace == live.c.workspace)
            )
        )
        report.extend(
            {
                "workspace": r.workspace,
                "status": r.status or DriftStatus.NEVER_RUN.value,
                "checked_at": r.checked_at.isoformat() if r.checked_at else None,
                "run_id": r.run_id,
            }
            for r in rows.all()
        )
    return sorted(report, key=lambda r: r["workspace"])


async def started_runs(conn: AsyncConnection, deployment_ids: list[int]) -> set[int]:
    """Those of the deployments whose latest run has started (left the queue)."""
    if not deployment_ids:
        return set()
    latest = (
        select(
            operations.c.deployment_id.label("deployment_id"),
            func.max(operation_runs.c.run_id).label("run_id"),
        )
        .join(operations, operations.c.id == operation_runs.c.operation_id)
        .where(operations.c.deployment_id.in_(deployment_ids))
        .group_by(operations.c.deployment_id)
        .subquery()
    )
    rows = await conn.execute(
        select(latest.c.deployment_id)
        .join(runs_table, runs_table.c.id == latest.c.run_id)
        .where(runs_table.c.status != RunStatus.QUEUED.value)
    )
    return set(rows.scalars())


async def record_drift(
    conn: AsyncConnection, workspace: str, status: DriftStatus, run: runs.Run
) -> None:
    """The workspace's latest drift result."""
    values = {
        "status": status.value,
        "run_id": run.id,
        "summary": run.plan_summary,
        "checked_at": utcnow(),
    }
    if not await insert_or_ignore(conn, drift_results, {"workspace": workspace, **values}):
        await conn.execute(
            update(drift_results).where(drift_results.c.workspace == workspace).values(**values)
        )


async def refuse_if_locked(conn: AsyncConnection, workspace: str) -> None:
    """409 naming the holder when the workspace's state is locked: someone is applying (out
    of band, maybe), and a drift check then would report half an apply."""
    lock = (
        await conn.execute(
            select(states.c.lock_id, states.c.lock_info).where(states.c.name == workspace)
        )
    ).one_or_none()
    if lock is not None and lock.lock_id is not None:
        holder = lock.lock_info or {}
        raise Conflict(
            f"the state of {workspace} is locked by {holder.get('Who') or 'someone'} "
            f"(lock {lock.lock_id}); check it when it is free"
        )
