"""Driving a command to its end: `pr.advance` starts the runs its layers and parallelism allow
and settles it once every dirspace is final; `run.finished` brings each run's end back here.

Each dirspace's run is created with an idempotency key, so a repeated advance never runs a
dirspace twice. A merge's apply lets go of the pull request (locks, plans) when it ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from terraplane.domain.commands import CommandKind
from terraplane.domain.pullrequests import (
    CommandStatus,
    DirspaceStatus,
    Trigger,
    command_outcome,
    startable,
)
from terraplane.domain.runs import RunOperation, RunSpec, RunStatus
from terraplane.pr import closing, commands
from terraplane.pr.pulls import get_pull
from terraplane.queue.jobs import Job
from terraplane.queue.worker import JobContext
from terraplane.runs import service as runs
from terraplane.store.database import Database
from terraplane.store.tables import pr_dirspaces

SKIPPED_MESSAGE = "not run: a dirspace it depends on (an earlier depends_on layer) did not succeed"


def _run_status(status: RunStatus) -> DirspaceStatus:
    return {
        RunStatus.SUCCEEDED: DirspaceStatus.SUCCEEDED,
        RunStatus.CANCELLED: DirspaceStatus.CANCELLED,
    }.get(status, DirspaceStatus.FAILED)


@dataclass
class CommandDriver:
    db: Database

    async def on_advance(self, ctx: JobContext) -> dict[str, Any] | None:
        command_id = int(ctx.job.payload["command_id"])
        async with self.db.write() as conn:
            command, rows = await commands.load(conn, command_id, for_update=True)
            if command.status.final:
                return {"command": command_id, "status": command.status.value}
            start, skip = startable(
                [r.layer for r in rows], [r.status for r in rows], command.parallelism
            )
            for i in skip:
                await commands.set_dirspace(
                    conn, rows[i], DirspaceStatus.SKIPPED, message=SKIPPED_MESSAGE
                )
            operation = (
                RunOperation.APPLY if command.kind is CommandKind.APPLY else RunOperation.PLAN
            )
            for i in start:
                row = rows[i]
                run = await runs.create_run(
                    conn,
                    workspace=row.state_workspace,
                    operation=operation,
                    spec=RunSpec.model_validate(row.spec),
                    created_by=command.requested_by,
                    idempotency_key=f"pr-run:{command.id}:{row.position}",
                )
                await commands.set_dirspace(conn, row, DirspaceStatus.RUNNING, run_id=run.id)
            command, rows = await commands.load(conn, command_id)
            outcome = command_outcome(r.status for r in rows)
            if outcome is not None:
                await commands.finish(conn, command, outcome)
                if command.trigger is Trigger.MERGE:
                    pull = await get_pull(conn, command.pull_request_id)
                    await closing.let_go(conn, pull, f"#{pull.number} merged")
            if start or skip or outcome is not None:
                await commands.changed(conn, command)
        return {
            "command": command_id,
            "started": len(start),
            "status": (outcome or CommandStatus.RUNNING).value,
        }

    async def on_run_finished(self, ctx: JobContext) -> dict[str, Any] | None:
        """A run ended: if it is a pull request's, record it and move its command on."""
        run_id = int(ctx.job.payload["run_id"])
        async with self.db.write() as conn:
            return await self._record_run(conn, run_id, None)

    async def give_up_run_finished(self, conn: AsyncConnection, job: Job, reason: str) -> None:
        """`run.finished` failed for good: the dirspace fails, saying why, and its command
        moves on rather than wait for it (and its comment says so)."""
        await self._record_run(
            conn,
            int(job.payload["run_id"]),
            f"Terraplane could not record this run's result: {reason}"[:2000],
        )

    async def _record_run(
        self, conn: AsyncConnection, run_id: int, gave_up: str | None
    ) -> dict[str, Any] | None:
        found = (
            await conn.execute(
                select(pr_dirspaces.c.command_id).where(pr_dirspaces.c.run_id == run_id)
            )
        ).scalar_one_or_none()
        if found is None:
            return None
        command, rows = await commands.load(conn, found, for_update=True)
        row = next(r for r in rows if r.run_id == run_id)
        if row.status.final:
            return {"command": command.id, "status": row.status.value}  # a repeated event
        if gave_up is None:
            run = await runs.get_run(conn, run_id)
            target = _run_status(run.status)
            message = run.error if target is not DirspaceStatus.SUCCEEDED else None
        else:
            target, message = DirspaceStatus.FAILED, gave_up
        await commands.set_dirspace(conn, row, target, message=message)
        await commands.enqueue_advance(conn, command.id, f"run-{run_id}")
        await commands.changed(conn, command)
        return {"command": command.id, "dirspace": row.label, "status": target.value}
