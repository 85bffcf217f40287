"""Rollouts: a blueprint version across a selection of deployments, in waves.

A rollout is driven by `rollout.advance` jobs (one at a time per rollout): each looks at the
current wave, starts deployments up to the wave's concurrency, halts the rollout when failures
reach the threshold, waits out the soak time, and moves on. Deployments report back through
`operation.finished` jobs; their own failures roll back by the deployment's atomic-change rule,
so a halted rollout leaves every failed deployment on its previous version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from terraplane.controlplane.blueprints import get_version
from terraplane.controlplane.deployments import Deployments
from terraplane.controlplane.targets import DeploymentUpdate, check_gate
from terraplane.domain.deployments import DeploymentStatus, OperationStatus
from terraplane.domain.errors import Conflict, NotFound, Unprocessable
from terraplane.domain.roles import Role
from terraplane.domain.rollouts import (
    RolloutStatus,
    TargetStatus,
    WaveSpec,
    plan_waves,
    transition_rollout,
)
from terraplane.governance.tokens import Principal
from terraplane.queue import jobs as jobstore
from terraplane.queue.jobs import Job
from terraplane.queue.worker import JobContext
from terraplane.store.database import Database
from terraplane.store.tables import deployments, rollout_targets, rollouts, tenants
from terraplane.store.types import utcnow
from terraplane.store.upsert import insert_returning

ADVANCE_JOB_KIND = "rollout.advance"


class Selector(BaseModel):
    tenants: list[str] | None = None
    labels: dict[str, str] | None = None
    tier: str | None = None
    environment: str | None = None


class RolloutCreate(BaseModel):
    blueprint: str = Field(min_length=1, max_length=63)
    to_version: str = Field(min_length=1, max_length=64)
    selector: Selector = Field(default_factory=Selector)
    waves: list[WaveSpec] = Field(min_length=1, max_length=100)
    failure_threshold: int = Field(default=1, ge=1)


_OUTCOME = {
    OperationStatus.SUCCEEDED: TargetStatus.SUCCEEDED,
    OperationStatus.FAILED: TargetStatus.FAILED,
    OperationStatus.ROLLED_BACK: TargetStatus.ROLLED_BACK,
}


@dataclass
class Rollouts:
    db: Database
    deployments: Deployments
    chain: list[str]

    async def create(
        self, conn: AsyncConnection, req: RolloutCreate, who: Principal
    ) -> dict[str, Any]:
        version = (await get_version(conn, req.blueprint, req.to_version)).version
        selected = await self._select(conn, req)
        if not selected:
            raise Unprocessable(
                f"the selector matches no deployment that is not already on {version}"
            )
        for environment in sorted({d.environment for d in selected}):
            await check_gate(conn, self.chain, environment, req.blueprint, version, False, who)
        now = utcnow()
        rollout_id = (
            await conn.execute(
                rollouts.insert()
                .values(
                    blueprint=req.blueprint,
                    to_version=version,
                    selector=req.selector.model_dump(exclude_none=True),
                    waves=[w.model_dump(exclude_none=True) for w in req.waves],
                    failure_threshold=req.failure_threshold,
                    status=RolloutStatus.PENDING.value,
                    created_by=who.name,
                    created_at=now,
                    updated_at=now,
                )
                .returning(rollouts.c.id)
            )
        ).scalar_one()
        sizes = plan_waves(len(selected), req.waves)
        position = 0
        for wave, size in enumerate(sizes):
            for dep in selected[position : position + size]:
                added = await insert_returning(
                    conn,
                    rollout_targets,
                    {
                        "rollout_id": rollout_id,
                        "deployment_id": dep.id,
                        "wave": wave,
                        "position": position,
                        "status": TargetStatus.PENDING.value,
                        "active": True,
                    },
                )
                if added is None:  # the caller's transaction rolls the rollout back
                    raise Conflict(f"deployment {dep.id} is already in another active rollout")
                position += 1
        await self._kick(conn, rollout_id)
        return await self.describe(conn, rollout_id)

    async def describe(self, conn: AsyncConnection, rollout_id: int) -> dict[str, Any]:
        r = (await conn.execute(select(rollouts).where(rollouts.c.id == rollout_id))).one_or_none()
        if r is None:
            raise NotFound(f"rollout {rollout_id} does not exist")
        targets = (
            await conn.execute(
                select(rollout_targets)
                .where(rollout_targets.c.rollout_id == rollout_id)
                .order_by(rollout_targets.c.position)
            )
        ).all()
        waves: list[dict[str, Any]] = [
            {**spec, "deployments": [], "statuses": {}} for spec in r.waves
        ]
        for t in targets:
            waves[t.wave]["deployments"].append(t.deployment_id)
            waves[t.wave]["statuses"][str(t.deployment_id)] = t.status
        for index, wave in enumerate(waves):
            wave["status"] = _wave_status(r, index, list(wave["statuses"].values()))
        return {
            "id": r.id,
            "blueprint": r.blueprint,
            "to_version": r.to_version,
            "selector": r.selector,
            "failure_threshold": r.failure_threshold,
            "status": r.status,
            "reason": r.reason,
            "current_wave": r.current_wave,
            "failed": sum(TargetStatus(t.status).failed for t in targets),
            "waves": waves,
            "created_by": r.created_by,
            "created_at": r.created_at.isoformat(),
            "updated_at": r.updated_at.isoformat(),
        }

    async def pause(self, conn: AsyncConnection, rollout_id: int) -> dict[str, Any]:
        r = await self._locked(conn, rollout_id)
        if RolloutStatus(r.status) not in (RolloutStatus.PENDING, RolloutStatus.RUNNING):
            raise Conflict(
                f"rollout {rollout_id} is {r.status}; only a pending or running "
                "rollout can be paused"
            )
        await self._set(conn, r, RolloutStatus.PAUSED)
        return await self.describe(conn, rollout_id)

    async def resume(self, conn: AsyncConnection, rollout_id: int) -> dict[str, Any]:
        r = await self._locked(conn, rollout_id)
        if r.status != RolloutStatus.PAUSED.value:
            raise Conflict(f"rollout {rollout_id} is {r.status}; only a paused one resumes")
        await self._set(conn, r, RolloutStatus.RUNNING)
        await self._kick(conn, rollout_id)
        return await self.describe(conn, rollout_id)

    async def cancel(self, conn: AsyncConnection, rollout_id: int) -> dict[str, Any]:
        r = await self._locked(conn, rollout_id)
        if RolloutStatus(r.status).final:
            raise Conflict(f"rollout {rollout_id} is already {r.status}")
        await self._end(conn, r, RolloutStatus.CANCELLED, "cancelled")
        return await self.describe(conn, rollout_id)

    # -- jobs ----------------------------------------------------------------------------

    async def on_operation_finished(self, ctx: JobContext) -> dict[str, Any] | None:
        op_id, status = int(ctx.job.payload["operation_id"]), ctx.job.payload["status"]
        async with self.db.write() as conn:
            target = (
                await conn.execute(
                    select(rollout_targets).where(rollout_targets.c.operation_id == op_id)
                )
            ).one_or_none()
            if target is None:
                return None
            await conn.execute(
                update(rollout_targets)
                .where(
                    rollout_targets.c.rollout_id == target.rollout_id,
                    rollout_targets.c.deployment_id == target.deployment_id,
                )
                .values(status=_OUTCOME[OperationStatus(status)].value)
            )
            await self._kick(conn, target.rollout_id)
        return {"rollout": target.rollout_id}

    async def on_advance(self, ctx: JobContext) -> dict[str, Any] | None:
        rollout_id = int(ctx.job.payload["rollout_id"])
        async with self.db.write() as conn:
            r = await self._locked(conn, rollout_id)
            status = await self._advance(conn, r)
        return {"rollout": rollout_id, "status": status}

    async def give_up_advance(self, conn: AsyncConnection, job: Job, reason: str) -> None:
        """`rollout.advance` failed for good: the rollout halts, saying why, rather than wait
        for an advance that will never come."""
        await self._halt_for(conn, int(job.payload["rollout_id"]), reason)

    async def give_up_operation_finished(
        self, conn: AsyncConnection, job: Job, reason: str
    ) -> None:
        """`operation.finished` failed for good: the rollout waiting for it halts."""
        target = (
            await conn.execute(
                select(rollout_targets.c.rollout_id).where(
                    rollout_targets.c.operation_id == int(job.payload["operation_id"])
                )
            )
        ).one_or_none()
        if target is not None:
            await self._halt_for(conn, target.rollout_id, reason)

    async def _halt_for(self, conn: AsyncConnection, rollout_id: int, reason: str) -> None:
        r = await self._locked(conn, rollout_id)
        if r.status in (RolloutStatus.PENDING.value, RolloutStatus.RUNNING.value):
            await self._end(
                conn, r, RolloutStatus.HALTED, f"Terraplane could not advance it: {reason}"[:2000]
            )

    async def _advance(self, conn: AsyncConnection, r: Any) -> str:
        if RolloutStatus(r.status).final or r.status == RolloutStatus.PAUSED.value:
            return str(r.status)
        if r.status == RolloutStatus.PENDING.value:
            await self._set(conn, r, RolloutStatus.RUNNING)
        targets = (
            await conn.execute(
                select(rollout_targets)
                .where(rollout_targets.c.rollout_id == r.id)
                .order_by(rollout_targets.c.position)
            )
        ).all()
        failed = sum(TargetStatus(t.status).failed for t in targets)
        if failed >= r.failure_threshold:
            await self._end(
                conn,
                r,
                RolloutStatus.HALTED,
                f"{failed} deployment(s) failed (threshold {r.failure_threshold})",
            )
            return RolloutStatus.HALTED.value
        wave = r.current_wave
        while wave < len(r.waves):
            in_wave = [t for t in targets if t.wave == wave]
            if all(TargetStatus(t.status).done for t in in_wave):
                soak = float(r.waves[wave].get("soak_seconds", 0))
                if soak and in_wave and r.soak_until is None:
                    until = utcnow() + timedelta(seconds=soak)
                    await self._update(conn, r.id, soak_until=until, current_wave=wave)
                    await self._kick(conn, r.id, delay=timedelta(seconds=soak))
                    return RolloutStatus.RUNNING.value
                if r.soak_until is not None and r.soak_until > utcnow():
                    return RolloutStatus.RUNNING.value  # an earlier kick; the delayed one comes
                wave += 1
                await self._update(conn, r.id, current_wave=wave, soak_until=None)
                r = await self._locked(conn, r.id)
                continue
            await self._start_targets(conn, r, in_wave)
            return RolloutStatus.RUNNING.value
        await self._end(conn, r, RolloutStatus.SUCCEEDED, None)
        return RolloutStatus.SUCCEEDED.value

    async def _start_targets(self, conn: AsyncConnection, r: Any, in_wave: list[Any]) -> None:
        limit = int(r.waves[r.current_wave].get("max_concurrency", 1))
        running = sum(t.status == TargetStatus.RUNNING.value for t in in_wave)
        who = Principal(token_id=0, name=f"rollout-{r.id}", role=Role.OPERATOR)
        for t in [t for t in in_wave if t.status == TargetStatus.PENDING.value]:
            if running >= limit:
                break
            try:
                async with conn.begin_nested():
                    op_id = await self.deployments.update(
                        conn, t.deployment_id, DeploymentUpdate(version=r.to_version), who
                    )
                values: dict[str, Any] = {
                    "status": TargetStatus.RUNNING.value,
                    "operation_id": op_id,
                }
                running += 1
            except (Conflict, Unprocessable, NotFound):
                # Busy, gone, or no longer valid: counted as a failure of this rollout.
                values = {"status": TargetStatus.FAILED.value}
            await conn.execute(
                update(rollout_targets)
                .where(
                    rollout_targets.c.rollout_id == r.id,
                    rollout_targets.c.deployment_id == t.deployment_id,
                )
                .values(**values)
            )
            if values["status"] == TargetStatus.FAILED.value:
                await self._kick(conn, r.id)

    # -- internals -----------------------------------------------------------------------

    async def _select(self, conn: AsyncConnection, req: RolloutCreate) -> list[Any]:
        sel = req.selector
        query = (
            select(deployments)
            .join(tenants, tenants.c.name == deployments.c.tenant)
            .where(
                deployments.c.blueprint == req.blueprint,
                deployments.c.status.in_(
                    [
                        DeploymentStatus.SUCCEEDED.value,
                        DeploymentStatus.FAILED.value,
                        DeploymentStatus.ROLLED_BACK.value,
                    ]
                ),
                deployments.c.version != req.to_version,
            )
            .order_by(deployments.c.id)
        )
        if sel.tenants is not None:
            query = query.where(deployments.c.tenant.in_(sel.tenants))
        if sel.tier is not None:
            query = query.where(deployments.c.tier == sel.tier)
        if sel.environment is not None:
            query = query.where(deployments.c.environment == sel.environment)
        rows = (await conn.execute(query.add_columns(tenants.c.labels))).all()
        wanted = sel.labels or {}
        return [r for r in rows if all(r.labels.get(k) == v for k, v in wanted.items())]

    async def _kick(
        self, conn: AsyncConnection, rollout_id: int, delay: timedelta | None = None
    ) -> None:
        await jobstore.enqueue(
            conn,
            ADVANCE_JOB_KIND,
            {"rollout_id": rollout_id},
            exclusive_key=f"rollout:{rollout_id}",
            delay=delay,
            max_attempts=10,
        )

    async def _locked(self, conn: AsyncConnection, rollout_id: int) -> Any:
        r = (
            await conn.execute(
                select(rollouts).where(rollouts.c.id == rollout_id).with_for_update()
            )
        ).one_or_none()
        if r is None:
            raise NotFound(f"rollout {rollout_id} does not exist")
        return r

    async def _set(
        self, conn: AsyncConnection, r: Any, target: RolloutStatus, reason: str | None = None
    ) -> None:
        transition_rollout(RolloutStatus(r.status), target)
        values: dict[str, Any] = {"status": target.value}
        if reason is not None:
            values["reason"] = reason
        await self._update(conn, r.id, **values)

    async def _end(
        self, conn: AsyncConnection, r: Any, target: RolloutStatus, reason: str | None
    ) -> None:
        await self._set(conn, r, target, reason)
        await conn.execute(
            update(rollout_targets)
            .where(
                rollout_targets.c.rollout_id == r.id,
                rollout_targets.c.status == TargetStatus.PENDING.value,
            )
            .values(status=TargetStatus.SKIPPED.value)
        )
        await conn.execute(
            update(rollout_targets).where(rollout_targets.c.rollout_id == r.id).values(active=False)
        )

    async def _update(self, conn: AsyncConnection, rollout_id: int, **values: Any) -> None:
        await conn.execute(
            update(rollouts)
            .where(rollouts.c.id == rollout_id)
            .values(updated_at=utcnow(), **values)
        )


def _wave_status(r: Any, index: int, statuses: list[str]) -> str:
    done = all(TargetStatus(s).done for s in statuses)
    if any(s == TargetStatus.RUNNING.value for s in statuses):
        return "running"
    if statuses and all(s == TargetStatus.SKIPPED.value for s in statuses):
        return "skipped"
    if done and (index < r.current_wave or RolloutStatus(r.status).final):
        return "failed" if any(TargetStatus(s).failed for s in statuses) else "succeeded"
    if done and index == r.current_wave and r.soak_until is not None:
        return "soaking"
    return "pending"
