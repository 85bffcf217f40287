"""Deployments: tenant x environment x blueprint version x tier x variables, each its own
workspace with its state in Terraplane's backend.

Every change is an operation whose runs go through the queue. When a run ends, the
`run.finished` job (written with the run's final status) brings the news here: the deployment
records success, or a failed apply starts a rollback run to the last good version and variables
(S3), so a deployment never stays in an unknown state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from terraplane.controlplane.blueprints import get_version
from terraplane.controlplane.operations import (
    record_drift,
    refuse_if_locked,
    started_runs,
)
from terraplane.controlplane.targets import (
    DeploymentCreate,
    DeploymentUpdate,
    Target,
    check_gate,
    resolve_target,
    variables_ad,
    workspace_name,
)
from terraplane.controlplane.tenants import get_tenant
from terraplane.domain.deployments import (
    DeploymentStatus,
    DriftStatus,
    OperationKind,
    OperationStatus,
    RunPurpose,
    transition_deployment,
)
from terraplane.domain.errors import Conflict, NotFound
from terraplane.domain.roles import Role
from terraplane.domain.runs import BlueprintSource, RunOperation, RunSpec, RunStatus
from terraplane.governance.tokens import Principal
from terraplane.observability.logs import get_logger
from terraplane.queue import jobs as jobstore
from terraplane.queue.jobs import Job
from terraplane.queue.worker import JobContext
from terraplane.runs import service as runs
from terraplane.store.database import Database
from terraplane.store.encryption import Keyring, open_json, seal_json
from terraplane.store.tables import (
    blueprint_versions,
    deployments,
    operation_runs,
    operations,
    promotions,
)
from terraplane.store.types import utcnow
from terraplane.store.upsert import insert_or_ignore, insert_returning

log = get_logger(__name__)

REDACTED = "(sensitive)"
OPERATION_FINISHED_JOB_KIND = "operation.finished"


@dataclass
class Deployments:
    db: Database
    keyring: Keyring
    chain: list[str]
    rollback_on_failure: bool = True

    async def create(
        self, conn: AsyncConnection, req: DeploymentCreate, who: Principal
    ) -> tuple[dict[str, Any], int]:
        await get_tenant(conn, req.tenant, lock=True)
        target = await resolve_target(conn, req.blueprint, req.version, req.tier, req.variables)
        override = await check_gate(
            conn, self.chain, req.environment, req.blueprint, target.version, req.override_gate, who
        )
        workspace = workspace_name(req.tenant, req.environment, req.blueprint)
        now = utcnow()
        values = {
            "tier": req.tier,
            "status": DeploymentStatus.PENDING.value,
            "version": target.version,
            "variables": seal_json(self.keyring, target.variables, variables_ad(workspace)),
            "created_by": who.name,
            "created_at": now,
            "updated_at": now,
        }
        dep = await insert_returning(
            conn,
            deployments,
            {
                "tenant": req.tenant,
                "environment": req.environment,
                "blueprint": req.blueprint,
                "workspace": workspace,
                **values,
            },
        )
        if dep is None:
            # A destroyed deployment of this target starts a new life: same id, workspace and
            # history; nothing to roll back to until its first apply succeeds.
            dep = (
                await conn.execute(
                    update(deployments)
                    .where(
                        deployments.c.workspace == workspace,
                        deployments.c.status == DeploymentStatus.DESTROYED.value,
                    )
                    .values(good_version=None, good_variables=None, **values)
                    .returning(deployments)
                )
            ).one_or_none()
        if dep is None:
            raise Conflict(
                f"tenant {req.tenant!r} already has a {req.blueprint!r} deployment "
                f"in {req.environment!r}"
            )
        op_id = await self._start(conn, dep, OperationKind.CREATE, target, who, override)
        return await self.describe(conn, dep.id), op_id

    async def update(
        self, conn: AsyncConnection, deployment_id: int, req: DeploymentUpdate, who: Principal
    ) -> int:
        dep = await self._locked(conn, deployment_id)
        self._idle(dep)
        current = open_json(self.keyring, dep.variables, variables_ad(dep.workspace))
        version = req.version or dep.version
        tier_fixed = set(
            (await get_version(conn, dep.blueprint, version))
            .tiers.get(dep.tier, {})
            .get("variables", {})
        )
        user_vars = {k: v for k, v in current.items() if k not in tier_fixed}
        if req.variables is not None:
            user_vars = req.variables
        target = await resolve_target(conn, dep.blueprint, version, dep.tier, user_vars)
        override = (
            await check_gate(
                conn, self.chain, dep.environment, dep.blueprint, target.version, False, who
            )
            if req.version
            else None
        )
        await self._set_status(conn, dep, DeploymentStatus.APPLYING)
        return await self._start(conn, dep, OperationKind.UPDATE, target, who, override)

    async def destroy(self, conn: AsyncConnection, deployment_id: int, who: Principal) -> int:
        dep = await self._locked(conn, deployment_id)
        self._idle(dep)
        if dep.status == DeploymentStatus.DESTROYED.value:
            raise Conflict(f"deployment {deployment_id} is already destroyed")
        target = await self._stored_target(conn, dep, dep.version, dep.variables)
        await self._set_status(conn, dep, DeploymentStatus.DESTROYING)
        return await self._start(conn, dep, OperationKind.DESTROY, target, who, None)

    async def check_drift(
        self,
        conn: AsyncConnection,
        workspace: str,
        who: Principal,
        *,
        refresh_only: bool = False,
        reconcile: bool = False,
    ) -> int:
        """A plan that only looks (-lock=false). 409 while the deployment is busy, its state is
        locked (someone is applying out of band) or another check of it is under way: a
        workspace is never checked twice at once. With `reconcile`, drift found is applied."""
        found = (
            await conn.execute(select(deployments.c.id).where(deployments.c.workspace == workspace))
        ).scalar_one_or_none()
        if found is None:
            raise NotFound(f"no deployment has workspace {workspace!r}")
        dep = await self._locked(conn, found)
        if dep.status == DeploymentStatus.DESTROYED.value:
            raise Conflict(f"deployment {dep.id} is destroyed; there is nothing to check")
        if DeploymentStatus(dep.status).busy:
            raise Conflict(f"deployment {dep.id} is {dep.status}; check it when it is done")
        checking = (
            await conn.execute(
                select(operations.c.id).where(
                    operations.c.deployment_id == dep.id,
                    operations.c.kind == OperationKind.DRIFT_CHECK.value,
                    operations.c.status.in_(
                        [OperationStatus.PENDING.value, OperationStatus.RUNNING.value]
                    ),
                )
            )
        ).first()
        if checking is not None:
            raise Conflict(f"{workspace} is already being checked (operation {checking.id})")
        await refuse_if_locked(conn, workspace)
        target = await self._stored_target(conn, dep, dep.version, dep.variables)
        return await self._start(
            conn,
            dep,
            OperationKind.DRIFT_CHECK,
            target,
            who,
            None,
            reconcile=reconcile,
            refresh_only=refresh_only,
        )

    async def describe(self, conn: AsyncConnection, deployment_id: int) -> dict[str, Any]:
        found = await self._describe(conn, deployments.c.id == deployment_id)
        if not found:
            raise NotFound(f"deployment {deployment_id} does not exist")
        return found[0]

    async def list_deployments(
        self, conn: AsyncConnection, tenant: str | None
    ) -> list[dict[str, Any]]:
        return await self._describe(conn, deployments.c.tenant == tenant if tenant else None)

    async def _describe(self, conn: AsyncConnection, where: Any) -> list[dict[str, Any]]:
        """The deployments `where` selects, in three queries however many there are."""
        query = select(deployments).order_by(deployments.c.id)
        if where is not None:
            query = query.where(where)
        deps = (await conn.execute(query)).all()
        if not deps:
            return []
        schemas = await conn.execute(
            select(
                blueprint_versions.c.blueprint,
                blueprint_versions.c.version,
                blueprint_versions.c.variables,
            ).where(
                blueprint_versions.c.blueprint.in_({d.blueprint for d in deps}),
                blueprint_versions.c.version.in_({d.version for d in deps}),
            )
        )
        sensitive = {
            (r.blueprint, r.version): {v["name"] for v in r.variables if v.get("sensitive")}
            for r in schemas
        }
        started = await started_runs(
            conn, [d.id for d in deps if d.status == DeploymentStatus.PENDING.value]
        )
        return [
            self._json(d, sensitive.get((d.blueprint, d.version), set()), started) for d in deps
        ]

    def _json(self, dep: Any, sensitive: set[str], started: set[int]) -> dict[str, Any]:
        variables = open_json(self.keyring, dep.variables, variables_ad(dep.workspace))
        status = dep.status
        if status == DeploymentStatus.PENDING.value and dep.id in started:
            status = DeploymentStatus.APPLYING.value
        return {
            "id": dep.id,
            "tenant": dep.tenant,
            "environment": dep.environment,
            "blueprint": dep.blueprint,
            "version": dep.version,
            "tier": dep.tier,
            "status": status,
            "workspace": dep.workspace,
            "variables": {k: REDACTED if k in sensitive else v for k, v in variables.items()},
            "last_good_version": dep.good_version,
            "created_at": dep.created_at.isoformat(),
            "updated_at": dep.updated_at.isoformat(),
        }

    async def on_run_finished(self, ctx: JobContext) -> dict[str, Any] | None:
        """The `run.finished` job: settle the operation the run belonged to, if any."""
        run_id = int(ctx.job.payload["run_id"])
        async with self.db.write() as conn:
            op = await _operation_of_run(conn, run_id)
            if op is None:
                return None
            if op.deployment_id is None:
                return None  # a repository's drift check: not a deployment's
            if OperationStatus(op.status).final:
                return {"operation": op.id, "status": op.status}  # a repeated event
            run = await runs.get_run(conn, run_id)
            dep = await self._locked(conn, op.deployment_id)
            status = await self._settle(conn, dep, op, RunPurpose(op.purpose), run)
        return {"operation": op.id, "status": status.value}

    async def give_up_run_finished(self, conn: AsyncConnection, job: Job, reason: str) -> None:
        """`run.finished` failed for good: the run's operation fails, saying why, and so does
        its deployment if the operation kept it busy, so that neither is left waiting (and a
        rollout waiting for the operation hears of it)."""
        run_id = int(job.payload["run_id"])
        op = await _operation_of_run(conn, run_id)
        if op is None or op.deployment_id is None or OperationStatus(op.status).final:
            return
        dep = await self._locked(conn, op.deployment_id)
        if DeploymentStatus(dep.status).busy:
            await self._set_status(conn, dep, DeploymentStatus.FAILED)
        await self._finish_op(
            conn,
            op,
            OperationStatus.FAILED,
            f"Terraplane could not settle run {run_id}: {reason}"[:2000],
        )

    async def _settle(
        self, conn: AsyncConnection, dep: Any, op: Any, purpose: RunPurpose, run: runs.Run
    ) -> OperationStatus:
        ok = run.status is RunStatus.SUCCEEDED
        if purpose is RunPurpose.DRIFT:
            return await self._record_drift(conn, dep, op, run)
        if ok and op.kind == OperationKind.RECONCILE.value:
            # The apply made the infrastructure match the configuration again.
            await record_drift(conn, dep.workspace, DriftStatus.OK, run)
        if ok and purpose is RunPurpose.DESTROY:
            await self._set_status(conn, dep, DeploymentStatus.DESTROYED)
            return await self._finish_op(conn, op, OperationStatus.SUCCEEDED)
        if ok and purpose is RunPurpose.APPLY:
            await self._set_status(
                conn,
                dep,
                DeploymentStatus.SUCCEEDED,
                version=op.target_version,
                variables=op.target_variables,
                good_version=op.target_version,
                good_variables=op.target_variables,
            )
            await insert_or_ignore(
                conn,
                promotions,
                {
                    "blueprint": dep.blueprint,
                    "version": op.target_version,
                    "environment": dep.environment,
                    "first_succeeded_at": utcnow(),
                },
            )
            return await self._finish_op(conn, op, OperationStatus.SUCCEEDED)
        if ok:  # a rollback that worked
            await self._set_status(
                conn,
                dep,
                DeploymentStatus.ROLLED_BACK,
                version=dep.good_version,
                variables=dep.good_variables,
            )
            return await self._finish_op(
                conn,
                op,
                OperationStatus.ROLLED_BACK,
                f"the apply failed; rolled back to {dep.good_version}",
            )
        # A reconcile re-applies the last good version itself: nothing to roll back to.
        if (
            purpose is RunPurpose.APPLY
            and self.rollback_on_failure
            and dep.good_version
            and op.kind != OperationKind.RECONCILE.value
        ):
            good = await self._stored_target(conn, dep, dep.good_version, dep.good_variables)
            await self._set_status(conn, dep, DeploymentStatus.APPLYING)
            await self._add_run(conn, dep, op.id, RunPurpose.ROLLBACK, good, op.created_by)
            await conn.execute(
                update(operations)
                .where(operations.c.id == op.id)
                .values(
                    error=f"run {run.id} {run.status.value}: {run.error or 'see its log'}; "
                    f"rolling back to {dep.good_version}"
                )
            )
            return OperationStatus.RUNNING
        await self._set_status(conn, dep, DeploymentStatus.FAILED)
        return await self._finish_op(
            conn,
            op,
            OperationStatus.FAILED,
            f"run {run.id} {run.status.value}: {run.error or 'see its log'}",
        )

    async def _record_drift(
        self, conn: AsyncConnection, dep: Any, op: Any, run: runs.Run
    ) -> OperationStatus:
        if run.status is RunStatus.SUCCEEDED:
            status = DriftStatus.DRIFTED if run.has_changes else DriftStatus.OK
        else:
            status = DriftStatus.ERROR
        await record_drift(conn, dep.workspace, status, run)
        if status is DriftStatus.DRIFTED and op.reconcile:
            target = await self._stored_target(conn, dep, dep.version, dep.variables)
            await self._set_status(conn, dep, DeploymentStatus.APPLYING)
            who = Principal(token_id=0, name=op.created_by, role=Role.OPERATOR)
            reconcile_op = await self._start(conn, dep, OperationKind.RECONCILE, target, who, None)
            log.info("drift found; reconciling", workspace=dep.workspace, operation=reconcile_op)
            return await self._finish_op(conn, op, OperationStatus.SUCCEEDED)
        if status is DriftStatus.ERROR:
            return await self._finish_op(
                conn,
                op,
                OperationStatus.FAILED,
                f"the drift check (run {run.id}) {run.status.value}",
            )
        return await self._finish_op(conn, op, OperationStatus.SUCCEEDED)

    # -- internals -----------------------------------------------------------------------

    async def _stored_target(
        self, conn: AsyncConnection, dep: Any, version: str, sealed: bytes
    ) -> Target:
        """A version and sealed variables the deployment already ran, ready to apply again."""
        variables = open_json(self.keyring, sealed, variables_ad(dep.workspace))
        row = await get_version(conn, dep.blueprint, version)
        return Target(version, variables, [v["name"] for v in row.variables if v.get("sensitive")])

    async def _start(
        self,
        conn: AsyncConnection,
        dep: Any,
        kind: OperationKind,
        target: Target,
        who: Principal,
        override: str | None,
        *,
        reconcile: bool = False,
        refresh_only: bool = False,
    ) -> int:
        op_id = (
            await conn.execute(
                operations.insert()
                .values(
                    deployment_id=dep.id,
                    workspace=dep.workspace,
                    kind=kind.value,
                    status=OperationStatus.PENDING.value,
                    target_version=target.version,
                    target_variables=seal_json(
                        self.keyring, target.variables, variables_ad(dep.workspace)
                    ),
                    gate_overridden_by=override,
                    created_by=who.name,
                    created_at=utcnow(),
                    reconcile=reconcile,
                )
                .returning(operations.c.id)
            )
        ).scalar_one()
        purpose = {
            OperationKind.DESTROY: RunPurpose.DESTROY,
            OperationKind.DRIFT_CHECK: RunPurpose.DRIFT,
        }.get(kind, RunPurpose.APPLY)
        await self._add_run(conn, dep, op_id, purpose, target, who.name, refresh_only)
        return int(op_id)

    async def _add_run(
        self,
        conn: AsyncConnection,
        dep: Any,
        op_id: int,
        purpose: RunPurpose,
        target: Target,
        who: str,
        refresh_only: bool = False,
    ) -> None:
        spec = RunSpec(
            source=BlueprintSource(blueprint=dep.blueprint, version=target.version),
            variables=target.variables,
            sensitive_variables=target.sensitive,
            state=dep.workspace,
            lock_state=purpose is not RunPurpose.DRIFT,
            keep_plan=purpose is not RunPurpose.DRIFT,
            refresh_only=refresh_only,
        )
        operation = {
            RunPurpose.DESTROY: RunOperation.DESTROY,
            RunPurpose.DRIFT: RunOperation.PLAN,
        }.get(purpose, RunOperation.APPLY)
        run = await runs.create_run(
            conn, workspace=dep.workspace, operation=operation, spec=spec, created_by=who
        )
        await conn.execute(
            operation_runs.insert().values(run_id=run.id, operation_id=op_id, purpose=purpose.value)
        )

    async def _locked(self, conn: AsyncConnection, deployment_id: int) -> Any:
        dep = (
            await conn.execute(
                select(deployments).where(deployments.c.id == deployment_id).with_for_update()
            )
        ).one_or_none()
        if dep is None:
            raise NotFound(f"deployment {deployment_id} does not exist")
        return dep

    @staticmethod
    def _idle(dep: Any) -> None:
        if DeploymentStatus(dep.status).busy:
            raise Conflict(f"deployment {dep.id} is {dep.status}; wait for its operation")

    async def _set_status(
        self, conn: AsyncConnection, dep: Any, target: DeploymentStatus, **values: Any
    ) -> None:
        transition_deployment(DeploymentStatus(dep.status), target)
        await conn.execute(
            update(deployments)
            .where(deployments.c.id == dep.id)
            .values(status=target.value, updated_at=utcnow(), **values)
        )

    async def _finish_op(
        self, conn: AsyncConnection, op: Any, status: OperationStatus, error: str | None = None
    ) -> OperationStatus:
        await conn.execute(
            update(operations)
            .where(operations.c.id == op.id)
            .values(status=status.value, finished_at=utcnow(), error=error or op.error)
        )
        if op.kind in (OperationKind.DRIFT_CHECK.value, OperationKind.RECONCILE.value):
            return status  # no rollout drives checks: nobody waits to hear of their end
        # Outbox again: whoever drives this operation (a rollout) hears of its end.
        await jobstore.enqueue(
            conn,
            OPERATION_FINISHED_JOB_KIND,
            {"operation_id": op.id, "status": status.value},
            idempotency_key=f"operation-finished:{op.id}",
            max_attempts=10,
        )
        return status


async def _operation_of_run(conn: AsyncConnection, run_id: int) -> Any:
    """The operation a run belongs to, with the run's `purpose` in it; None for a run that is
    no operation's."""
    return (
        await conn.execute(
            select(operations, operation_runs.c.purpose)
            .join(operation_runs, operation_runs.c.operation_id == operations.c.id)
            .where(operation_runs.c.run_id == run_id)
        )
    ).one_or_none()
