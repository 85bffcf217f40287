"""Drift of PR-automated repositories: the dirspaces of a repository's default branch, checked
on a drift schedule like deployments are.

- A firing of a schedule over a repository is a `drift.repository` job (GitHub and git work):
  it reads the repository's default branch from GitHub, fetches its tip into the host's mirror,
  reads the config and dirspaces there, records them as the repository's workspaces (each with
  the run spec a check uses) and enqueues one `drift.check` per workspace, spread over the
  schedule's window — the same checks deployments get.
- A check is an operation of kind `drift_check` (no deployment; its workspace) with one run: the
  plan a pull request would make of the tip, without hooks, `-lock=false`, no stored plan. It
  is refused while the workspace is being applied, its state is locked or it is already being
  checked. Its result is the workspace's drift status; with `reconcile`, drift found is applied
  (a `reconcile` operation, init-plan-apply of the same tip).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from terraplane.controlplane.drift import enqueue_check
from terraplane.controlplane.operations import record_drift, refuse_if_locked
from terraplane.domain import drift as rules
from terraplane.domain.deployments import DriftStatus, OperationKind, OperationStatus, RunPurpose
from terraplane.domain.errors import Conflict, NotFound
from terraplane.domain.runs import GitSource, RunOperation, RunSpec, RunStatus, WorkflowStep
from terraplane.engine.checkouts import Checkouts
from terraplane.github.api import GitHubApi
from terraplane.github.app import GitHubApp, GitHubError
from terraplane.governance.tokens import Principal
from terraplane.observability.logs import get_logger
from terraplane.pr import snapshot
from terraplane.pr.commands import state_workspace
from terraplane.queue.worker import JobContext, TransientJobError
from terraplane.repoconfig.yamlpos import ConfigError
from terraplane.runs import service as runs
from terraplane.store.database import Database
from terraplane.store.tables import (
    drift_schedules,
    github_repositories,
    operation_runs,
    operations,
    repository_workspaces,
)
from terraplane.store.tables import runs as run_rows
from terraplane.store.types import utcnow
from terraplane.store.upsert import insert_or_ignore

log = get_logger(__name__)

ACTIVE = [OperationStatus.PENDING.value, OperationStatus.RUNNING.value]


@dataclass
class RepositoryDrift:
    db: Database
    checkouts: Checkouts
    github: GitHubApp | None

    # -- a firing: what the default branch holds ------------------------------------------

    async def on_fire(self, ctx: JobContext) -> dict[str, Any] | None:
        """`drift.repository`: the repository's workspaces at its default branch's tip, and
        a check of each, spread over the schedule's window."""
        p = ctx.job.payload
        async with self.db.read() as conn:
            schedule = (
                await conn.execute(
                    select(drift_schedules).where(drift_schedules.c.id == int(p["schedule_id"]))
                )
            ).one_or_none()
            repo = None
            if schedule is not None and schedule.repository:
                repo = (
                    await conn.execute(
                        select(github_repositories).where(
                            github_repositories.c.full_name == schedule.repository
                        )
                    )
                ).one_or_none()
        if schedule is None or not schedule.enabled:
            return {"skipped": "the schedule is gone or disabled"}
        if repo is None:
            log.warning("drift schedule of an unknown repository", repository=schedule.repository)
            return {"skipped": f"the GitHub App has no access to {schedule.repository}"}
        try:
            specs = await self._workspaces(schedule.repository, int(repo.installation_id))
        except GitHubError as exc:
            if exc.transient:
                raise TransientJobError(str(exc)) from exc
            raise
        except ConfigError as exc:
            log.warning("drift: the default branch's config is invalid", error=str(exc))
            return {"skipped": f"the default branch's config is invalid: {exc}"}
        fire_at = datetime.fromisoformat(p["fire_at"])
        deadline = datetime.fromisoformat(p["deadline"])
        span = timedelta(seconds=float(p["window_seconds"]))
        async with self.db.write() as conn:
            await self._record(conn, schedule.repository, specs)
            for (workspace, _), offset in zip(specs, rules.spread(len(specs), span), strict=True):
                await enqueue_check(
                    conn, schedule.id, fire_at, workspace, 1, fire_at + offset, deadline
                )
            await conn.execute(
                update(drift_schedules)
                .where(drift_schedules.c.id == schedule.id)
                .values(last_fired_count=len(specs))
            )
        return {"repository": schedule.repository, "workspaces": len(specs)}

    async def _workspaces(self, repository: str, installation_id: int) -> list[tuple[str, RunSpec]]:
        if self.github is None:
            raise RuntimeError("the GitHub App is not configured: repositories cannot be read")
        api = GitHubApi(self.github, installation_id)
        info = await api.repository(repository)
        branch = info.default_branch
        refspec = f"+refs/heads/{branch}:refs/heads/{branch}"
        token = await self.github.installation_token(installation_id)
        mirror = await self.checkouts.ensure(info.clone_url, [], [refspec], token, refresh=True)
        tip = await snapshot.branch_tip(mirror, branch)
        if tip is None:
            raise GitHubError(404, f"{repository} has no branch {branch!r}")
        snap = await snapshot.read(mirror, tip)
        specs = []
        for d in snap.dirspaces:
            workspace = state_workspace(repository, d.dir, d.workspace)
            spec = RunSpec(
                source=GitSource(
                    repository=repository,
                    clone_url=info.clone_url,
                    installation_id=installation_id,
                    head=tip,
                    refspecs=(refspec,),
                    dir=d.dir,
                ),
                engine=d.engine,
                version=d.engine_version,
                state=workspace,
                state_mode="auto",
                terraform_workspace=d.workspace,
                steps=d.workflow.plan.steps,
                lock_state=False,
                keep_plan=False,
            )
            specs.append((workspace, spec))
        return specs

    async def _record(
        self, conn: AsyncConnection, repository: str, specs: list[tuple[str, RunSpec]]
    ) -> None:
        """The repository's workspaces are now exactly these (dirspaces gone are dropped)."""
        names = [w for w, _ in specs]
        await conn.execute(
            delete(repository_workspaces).where(
                repository_workspaces.c.repository == repository,
                repository_workspaces.c.workspace.not_in(names),
            )
        )
        for workspace, spec in specs:
            source = spec.source
            assert isinstance(source, GitSource)
            values = {
                "repository": repository,
                "dir": source.dir,
                "terraform_workspace": spec.terraform_workspace,
                "spec": spec.model_dump(mode="json"),
                "updated_at": utcnow(),
            }
            if not await insert_or_ignore(
                conn, repository_workspaces, {"workspace": workspace, **values}
            ):
                await conn.execute(
                    update(repository_workspaces)
                    .where(repository_workspaces.c.workspace == workspace)
                    .values(**values)
                )

    # -- a check ------------------------------------------------------------------------

    async def check(
        self,
        conn: AsyncConnection,
        workspace: str,
        who: Principal,
        *,
        refresh_only: bool = False,
        reconcile: bool = False,
    ) -> int:
        """Start a drift check of a repository workspace; its operation's id. 409 while the
        workspace is busy, locked or already being checked."""
        row = (
            await conn.execute(
                select(repository_workspaces).where(repository_workspaces.c.workspace == workspace)
            )
        ).one_or_none()
        if row is None:
            raise NotFound(f"no deployment or repository dirspace has workspace {workspace!r}")
        await self._refuse_busy(conn, workspace)
        spec = RunSpec.model_validate(row.spec).model_copy(update={"refresh_only": refresh_only})
        return await self._start(
            conn, workspace, OperationKind.DRIFT_CHECK, spec, who.name, reconcile=reconcile
        )

    async def _refuse_busy(self, conn: AsyncConnection, workspace: str) -> None:
        checking = (
            await conn.execute(
                select(operations.c.id).where(
                    operations.c.workspace == workspace,
                    operations.c.deployment_id.is_(None),
                    operations.c.status.in_(ACTIVE),
                )
            )
        ).first()
        if checking is not None:
            raise Conflict(f"{workspace} is already being checked (operation {checking.id})")
        writing = (
            await conn.execute(
                select(run_rows.c.id).where(
                    run_rows.c.workspace == workspace,
                    run_rows.c.operation != RunOperation.PLAN.value,
                    run_rows.c.status.in_([RunStatus.QUEUED.value, RunStatus.RUNNING.value]),
                )
            )
        ).first()
        if writing is not None:
            raise Conflict(f"{workspace} is being applied (run {writing.id}); check it later")
        await refuse_if_locked(conn, workspace)

    async def _start(
        self,
        conn: AsyncConnection,
        workspace: str,
        kind: OperationKind,
        spec: RunSpec,
        who: str,
        *,
        reconcile: bool = False,
    ) -> int:
        op_id = (
            await conn.execute(
                operations.insert()
                .values(
                    deployment_id=None,
                    workspace=workspace,
                    kind=kind.value,
                    status=OperationStatus.PENDING.value,
                    created_by=who,
                    created_at=utcnow(),
                    reconcile=reconcile,
                )
                .returning(operations.c.id)
            )
        ).scalar_one()
        drift = kind is OperationKind.DRIFT_CHECK
        run = await runs.create_run(
            conn,
            workspace=workspace,
            operation=RunOperation.PLAN if drift else RunOperation.APPLY,
            spec=spec,
            created_by=who,
        )
        purpose = RunPurpose.DRIFT if drift else RunPurpose.APPLY
        await conn.execute(
            operation_runs.insert().values(run_id=run.id, operation_id=op_id, purpose=purpose.value)
        )
        return int(op_id)

    # -- results ------------------------------------------------------------------------

    async def on_run_finished(self, ctx: JobContext) -> dict[str, Any] | None:
        """A run ended: if it is a repository workspace's check or reconcile, record it."""
        run_id = int(ctx.job.payload["run_id"])
        async with self.db.write() as conn:
            op = (
                await conn.execute(
                    select(operations)
                    .join(operation_runs, operation_runs.c.operation_id == operations.c.id)
                    .where(operation_runs.c.run_id == run_id)
                    .with_for_update(of=operations)
                )
            ).one_or_none()
            if op is None or op.deployment_id is not None:
                return None
            if OperationStatus(op.status).final:
                return {"operation": op.id, "status": op.status}  # a repeated event
            run = await runs.get_run(conn, run_id)
            status = await self._settle(conn, op, run)
        return {"operation": op.id, "status": status.value}

    async def _settle(self, conn: AsyncConnection, op: Any, run: runs.Run) -> OperationStatus:
        ok = run.status is RunStatus.SUCCEEDED
        if op.kind == OperationKind.RECONCILE.value:
            if ok:
                await record_drift(conn, op.workspace, DriftStatus.OK, run)
            return await self._finish(conn, op, ok, run)
        drift = (DriftStatus.DRIFTED if run.has_changes else DriftStatus.OK) if ok else None
        await record_drift(conn, op.workspace, drift or DriftStatus.ERROR, run)
        if drift is DriftStatus.DRIFTED and op.reconcile:
            spec = run.spec.model_copy(
                update={
                    "steps": (*(run.spec.steps or ()), WorkflowStep(kind="apply")),
                    "lock_state": True,
                    "refresh_only": False,
                }
            )
            reconcile = await self._start(
                conn, op.workspace, OperationKind.RECONCILE, spec, op.created_by
            )
            log.info("drift found; reconciling", workspace=op.workspace, operation=reconcile)
        return await self._finish(conn, op, ok, run)

    @staticmethod
    async def _finish(conn: AsyncConnection, op: Any, ok: bool, run: runs.Run) -> OperationStatus:
        status = OperationStatus.SUCCEEDED if ok else OperationStatus.FAILED
        await conn.execute(
            update(operations)
            .where(operations.c.id == op.id)
            .values(
                status=status.value,
                finished_at=utcnow(),
                error=None
                if ok
                else f"run {run.id} {run.status.value}: {run.error or 'see its log'}",
            )
        )
        return status
