"""Scheduled drift detection: cron schedules over the deployments a blueprint/environment
selects, fired through the job queue so any number of instances cooperate and a restart loses
nothing.

- A schedule's next firing is one delayed `drift.fire` job (idempotency key: schedule + time).
  The firing enqueues one delayed `drift.check` job per selected workspace, spread evenly over
  the window, and the next firing, all in one transaction: exactly once, whichever instance
  runs it. A firing that was missed while no instance ran happens once, late; the next one is
  computed from the present (no burst of catch-up firings).
- `schedules.next_fire_at` names the current firing; a `drift.fire` job for any other time (the
  schedule was changed or disabled meanwhile) is stale and does nothing.
- A `drift.check` starts a drift-check operation through `check` — a deployment's
  (`Deployments.check_drift`) or a repository workspace's (`RepositoryChecks`, from
  pull-request automation) — which refuses a busy workspace, a locked state or a check already
  under way. Refused checks are retried every `retry` until the schedule's next firing, then
  skipped.
- A schedule over a repository (the dirspaces of its default branch) fires a
  `drift.repository` job instead, which reads the branch (GitHub and git work) and enqueues
  the checks itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel, Field
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from terraplane.controlplane.blueprints import get_blueprint
from terraplane.controlplane.deployments import Deployments
from terraplane.domain import drift as rules
from terraplane.domain.deployments import DeploymentStatus
from terraplane.domain.errors import Conflict, NotFound, TerraplaneError, Unprocessable
from terraplane.domain.roles import Role
from terraplane.governance.tokens import Principal
from terraplane.observability.logs import get_logger
from terraplane.queue import jobs as jobstore
from terraplane.queue.worker import JobContext
from terraplane.store.database import Database
from terraplane.store.tables import deployments, drift_schedules, github_repositories
from terraplane.store.types import utcnow
from terraplane.store.upsert import insert_returning

log = get_logger(__name__)

FIRE_JOB_KIND = "drift.fire"
CHECK_JOB_KIND = "drift.check"
REPOSITORY_JOB_KIND = "drift.repository"
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,127}$"


class RepositoryChecks(Protocol):
    """Drift checks of repository workspaces (pull-request automation provides them)."""

    async def check(
        self,
        conn: AsyncConnection,
        workspace: str,
        who: Principal,
        *,
        refresh_only: bool = False,
        reconcile: bool = False,
    ) -> int: ...


class ScheduleCreate(BaseModel):
    name: str = Field(pattern=NAME_PATTERN)
    cron: str = Field(min_length=1, max_length=128)
    blueprint: str | None = None
    environment: str | None = None
    # Or: the dirspaces of a repository's default branch (owner/name).
    repository: str | None = Field(default=None, max_length=256)
    window_seconds: int | None = None
    reconcile: bool = False
    refresh_only: bool = False
    enabled: bool = True


class ScheduleUpdate(BaseModel):
    cron: str | None = Field(default=None, min_length=1, max_length=128)
    window_seconds: int | None = None
    reconcile: bool | None = None
    refresh_only: bool | None = None
    enabled: bool | None = None


def _describe(row: Any) -> dict[str, Any]:
    return {
        "name": row.name,
        "cron": row.cron,
        "blueprint": row.blueprint,
        "environment": row.environment,
        "repository": row.repository,
        "window_seconds": row.window_seconds,
        "reconcile": row.reconcile,
        "refresh_only": row.refresh_only,
        "enabled": row.enabled,
        "next_fire_at": row.next_fire_at.isoformat() if row.next_fire_at else None,
        "last_fired_at": row.last_fired_at.isoformat() if row.last_fired_at else None,
        "last_fired_count": row.last_fired_count,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
    }


@dataclass
class DriftScheduler:
    db: Database
    deployments: Deployments
    chain: list[str]
    retry: timedelta
    repositories: RepositoryChecks | None = None

    async def check(
        self,
        conn: AsyncConnection,
        workspace: str,
        who: Principal,
        *,
        refresh_only: bool = False,
        reconcile: bool = False,
    ) -> int:
        """Start a drift check of any workspace: a deployment's or a repository's."""
        try:
            return await self.deployments.check_drift(
                conn, workspace, who, refresh_only=refresh_only, reconcile=reconcile
            )
        except NotFound:
            if self.repositories is None:
                raise
        return await self.repositories.check(
            conn, workspace, who, refresh_only=refresh_only, reconcile=reconcile
        )

    # -- schedules ----------------------------------------------------------------------

    async def create(
        self, conn: AsyncConnection, req: ScheduleCreate, who: Principal
    ) -> dict[str, Any]:
        cron = rules.validate_cron(req.cron)
        rules.validate_window(req.window_seconds)
        if req.repository is not None:
            if req.blueprint is not None or req.environment is not None:
                raise Unprocessable(
                    "a schedule checks a repository or deployments (blueprint, environment), "
                    "not both"
                )
            known = (
                await conn.execute(
                    select(github_repositories.c.id).where(
                        github_repositories.c.full_name == req.repository
                    )
                )
            ).first()
            if known is None:
                raise NotFound(
                    f"repository {req.repository!r} is not one the GitHub App is installed on"
                )
        if req.blueprint is not None:
            await get_blueprint(conn, req.blueprint)
        if req.environment is not None and req.environment not in self.chain:
            raise Unprocessable(
                f"environment {req.environment!r} is not one of {', '.join(self.chain)}"
            )
        now = utcnow()
        row = await insert_returning(
            conn,
            drift_schedules,
            {
                "name": req.name,
                "cron": cron,
                "blueprint": req.blueprint,
                "environment": req.environment,
                "repository": req.repository,
                "window_seconds": req.window_seconds,
                "reconcile": req.reconcile,
                "refresh_only": req.refresh_only,
                "enabled": req.enabled,
                "created_by": who.name,
                "created_at": now,
            },
        )
        if row is None:
            raise Conflict(f"a drift schedule named {req.name!r} already exists")
        return await self._plan_next(conn, row, now)

    async def update(self, conn: AsyncConnection, name: str, req: ScheduleUpdate) -> dict[str, Any]:
        row = await self._get(conn, name, lock=True)
        values = req.model_dump(exclude_unset=True)
        if "cron" in values:
            if values["cron"] is None:
                raise Unprocessable("cron cannot be null")
            values["cron"] = rules.validate_cron(values["cron"])
        if "window_seconds" in values:
            rules.validate_window(values["window_seconds"])
        for flag in ("reconcile", "refresh_only", "enabled"):
            if flag in values and values[flag] is None:
                raise Unprocessable(f"{flag} must be true or false")
        if values:
            await conn.execute(
                update(drift_schedules).where(drift_schedules.c.id == row.id).values(**values)
            )
        row = await self._get(conn, name)
        return await self._plan_next(conn, row, utcnow())

    async def delete(self, conn: AsyncConnection, name: str) -> None:
        row = await self._get(conn, name, lock=True)
        # Its pending jobs find no schedule and do nothing.
        await conn.execute(delete(drift_schedules).where(drift_schedules.c.id == row.id))

    async def run_now(self, conn: AsyncConnection, name: str) -> dict[str, Any]:
        """Fire the schedule at once, besides its cron firings (which stay as they are)."""
        row = await self._get(conn, name)
        if not row.enabled:
            raise Conflict(f"drift schedule {name!r} is disabled; enable it first")
        now = utcnow()
        await jobstore.enqueue(
            conn,
            FIRE_JOB_KIND,
            {"schedule_id": row.id, "fire_at": now.isoformat(), "manual": True},
            idempotency_key=f"drift-fire:{row.id}:manual:{now.isoformat()}",
            max_attempts=10,
        )
        return _describe(row)

    async def get_schedule(self, conn: AsyncConnection, name: str) -> dict[str, Any]:
        return _describe(await self._get(conn, name))

    async def list_schedules(self, conn: AsyncConnection) -> list[dict[str, Any]]:
        rows = await conn.execute(select(drift_schedules).order_by(drift_schedules.c.name))
        return [_describe(r) for r in rows.all()]

    async def _get(self, conn: AsyncConnection, name: str, *, lock: bool = False) -> Any:
        query = select(drift_schedules).where(drift_schedules.c.name == name)
        row = (await conn.execute(query.with_for_update() if lock else query)).one_or_none()
        if row is None:
            raise NotFound(f"drift schedule {name!r} does not exist")
        return row

    async def _plan_next(self, conn: AsyncConnection, row: Any, after: datetime) -> dict[str, Any]:
        """Record the next firing (none while disabled) and enqueue its job."""
        fire_at = rules.next_fire(row.cron, after) if row.enabled else None
        await conn.execute(
            update(drift_schedules)
            .where(drift_schedules.c.id == row.id)
            .values(next_fire_at=fire_at)
        )
        if fire_at is not None:
            await jobstore.enqueue(
                conn,
                FIRE_JOB_KIND,
                {"schedule_id": row.id, "fire_at": fire_at.isoformat()},
                idempotency_key=f"drift-fire:{row.id}:{fire_at.isoformat()}",
                delay=fire_at - utcnow(),
                max_attempts=10,
            )
        return _describe(await self._get(conn, row.name))

    # -- jobs ---------------------------------------------------------------------------

    async def on_fire(self, ctx: JobContext) -> dict[str, Any] | None:
        """`drift.fire`: enqueue the schedule's checks, spread over its window, and the next
        firing (unless this is a manual firing, which leaves the cron timing alone)."""
        schedule_id = int(ctx.job.payload["schedule_id"])
        fire_at = datetime.fromisoformat(ctx.job.payload["fire_at"])
        manual = bool(ctx.job.payload.get("manual"))
        async with self.db.write() as conn:
            row = (
                await conn.execute(
                    select(drift_schedules)
                    .where(drift_schedules.c.id == schedule_id)
                    .with_for_update()
                )
            ).one_or_none()
            if row is None or not row.enabled or (not manual and row.next_fire_at != fire_at):
                return {"stale": True}
            now = utcnow()
            next_fire = rules.next_fire(row.cron, max(now, fire_at))
            span = rules.window(row.cron, fire_at, row.window_seconds)
            if row.repository is not None:
                # Which workspaces is a question for git and GitHub: another job's work.
                await jobstore.enqueue(
                    conn,
                    REPOSITORY_JOB_KIND,
                    {
                        "schedule_id": row.id,
                        "fire_at": fire_at.isoformat(),
                        "deadline": next_fire.isoformat(),
                        "window_seconds": span.total_seconds(),
                    },
                    idempotency_key=f"drift-repository:{row.id}:{fire_at.isoformat()}:{manual}",
                    max_attempts=6,
                )
                await conn.execute(
                    update(drift_schedules)
                    .where(drift_schedules.c.id == row.id)
                    .values(last_fired_at=now)
                )
                if not manual:
                    await self._plan_next(conn, row, max(now, fire_at))
                return {"schedule": row.name, "repository": row.repository}
            query = select(deployments.c.workspace).where(
                deployments.c.status != DeploymentStatus.DESTROYED.value
            )
            if row.blueprint is not None:
                query = query.where(deployments.c.blueprint == row.blueprint)
            if row.environment is not None:
                query = query.where(deployments.c.environment == row.environment)
            workspaces = list(
                (await conn.execute(query.order_by(deployments.c.workspace))).scalars()
            )
            # Checks refused for a busy workspace are retried until the next cron firing.
            for workspace, offset in zip(
                workspaces, rules.spread(len(workspaces), span), strict=True
            ):
                await enqueue_check(
                    conn, row.id, fire_at, workspace, 1, fire_at + offset, next_fire
                )
            await conn.execute(
                update(drift_schedules)
                .where(drift_schedules.c.id == row.id)
                .values(last_fired_at=now, last_fired_count=len(workspaces))
            )
            if not manual:
                await self._plan_next(conn, row, max(now, fire_at))
        log.info("drift schedule fired", schedule=row.name, workspaces=len(workspaces))
        return {"schedule": row.name, "workspaces": len(workspaces)}

    async def on_check(self, ctx: JobContext) -> dict[str, Any] | None:
        """`drift.check`: start one workspace's check, or try again later when it is busy."""
        p = ctx.job.payload
        workspace = str(p["workspace"])
        async with self.db.write() as conn:
            row = (
                await conn.execute(
                    select(drift_schedules).where(drift_schedules.c.id == int(p["schedule_id"]))
                )
            ).one_or_none()
            if row is None or not row.enabled:
                return {"workspace": workspace, "skipped": "the schedule is gone or disabled"}
            who = Principal(token_id=0, name=f"drift-schedule:{row.name}", role=Role.OPERATOR)
            try:
                async with conn.begin_nested():
                    op_id = await self.check(
                        conn,
                        workspace,
                        who,
                        refresh_only=row.refresh_only,
                        reconcile=row.reconcile,
                    )
            except NotFound:
                return {"workspace": workspace, "skipped": "the workspace is gone"}
            except TerraplaneError as exc:  # busy, locked, already being checked
                retry_at = utcnow() + self.retry
                deadline = datetime.fromisoformat(p["deadline"])
                if retry_at >= deadline:
                    log.warning(
                        "drift check skipped",
                        workspace=workspace,
                        reason=str(exc),
                        attempts=p["attempt"],
                    )
                    return {"workspace": workspace, "skipped": str(exc)}
                await enqueue_check(
                    conn,
                    row.id,
                    datetime.fromisoformat(p["fire_at"]),
                    workspace,
                    int(p["attempt"]) + 1,
                    retry_at,
                    deadline,
                )
                return {"workspace": workspace, "retry_at": retry_at.isoformat(), "why": str(exc)}
        return {"workspace": workspace, "operation": op_id}


async def enqueue_check(
    conn: AsyncConnection,
    schedule_id: int,
    fire_at: datetime,
    workspace: str,
    attempt: int,
    start_at: datetime,
    deadline: datetime,
) -> None:
    """One workspace's check for one firing, due at `start_at` (retried until `deadline`)."""
    await jobstore.enqueue(
        conn,
        CHECK_JOB_KIND,
        {
            "schedule_id": schedule_id,
            "fire_at": fire_at.isoformat(),
            "workspace": workspace,
            "attempt": attempt,
            "deadline": deadline.isoformat(),
        },
        idempotency_key=f"drift-check:{schedule_id}:{fire_at.isoformat()}:{workspace}:{attempt}",
        delay=max(timedelta(0), start_at - utcnow()),
        max_attempts=10,
    )
