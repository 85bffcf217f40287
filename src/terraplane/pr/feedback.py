"""The `pr.feedback` job: make GitHub show a command as it is now.

The summary comment is created once and then edited in place (split over several comments
above GitHub's size limit; surplus parts deleted); each dirspace gets a commit status
`terraplane/plan: DIR` (or `apply`), posted only when it changes, and the command an overall
`terraplane/plan` (or `terraplane/apply`). Comment ids are recorded as soon as they exist, so a
retried job edits instead of posting twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from terraplane.domain.commands import CommandKind
from terraplane.domain.pullrequests import CommandStatus, DirspaceStatus
from terraplane.github.api import GitHubApi
from terraplane.github.app import GitHubApp, GitHubError
from terraplane.github.markdown import split_markdown
from terraplane.pr import commands
from terraplane.pr.commands import CommandRow, DirspaceRow
from terraplane.pr.pulls import Pull, get_pull
from terraplane.pr.render import MAX_LOG_TAIL, RunView, render
from terraplane.queue.worker import JobContext, TransientJobError
from terraplane.runs.logs import read_log_tail
from terraplane.store.database import Database
from terraplane.store.tables import pr_commands, runs

_STATE = {
    DirspaceStatus.PENDING: "pending",
    DirspaceStatus.RUNNING: "pending",
    DirspaceStatus.SUCCEEDED: "success",
    DirspaceStatus.FAILED: "failure",
    DirspaceStatus.CANCELLED: "error",
    DirspaceStatus.SKIPPED: "error",
    DirspaceStatus.BLOCKED: "failure",
}


def overall_state(command: CommandRow) -> str:
    if command.status is CommandStatus.RUNNING:
        return "pending"
    return "success" if command.status is CommandStatus.SUCCEEDED else "failure"


def _description(command: CommandRow, rows: list[DirspaceRow]) -> str:
    if not rows:
        return command.message.splitlines()[0][:140] if command.message else "no dirspaces changed"
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status.value] = counts.get(row.status.value, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in counts.items())


@dataclass
class Feedback:
    db: Database
    github: GitHubApp | None
    base_url: str

    def run_link(self, run_id: int) -> str:
        return f"{self.base_url}/api/v1/runs/{run_id}/log"

    async def __call__(self, ctx: JobContext) -> dict[str, Any] | None:
        if self.github is None:
            raise RuntimeError("the GitHub App is not configured: comments cannot be posted")
        command_id = int(ctx.job.payload["command_id"])
        async with self.db.read() as conn:
            command, rows = await commands.load(conn, command_id)
            if command.posted_version >= command.version:
                return {"command": command_id, "posted": command.posted_version}
            pull = await get_pull(conn, command.pull_request_id)
            views = await _run_views(conn, rows)
        if pull.installation_id is None:
            raise RuntimeError(f"{pull.repository} has no GitHub App installation on record")
        api = GitHubApi(self.github, pull.installation_id)
        try:
            comment_ids = await self._comment(api, pull, command, rows, views)
            posted = await self._statuses(api, pull, command, rows)
        except GitHubError as exc:
            if exc.transient:
                raise TransientJobError(str(exc)) from exc
            raise
        async with self.db.write() as conn:
            await commands.record_posted(conn, command.id, command.version, comment_ids, posted)
        return {"command": command_id, "posted": command.version, "comments": len(comment_ids)}

    async def _comment(
        self,
        api: GitHubApi,
        pull: Pull,
        command: CommandRow,
        rows: list[DirspaceRow],
        views: dict[int, RunView],
    ) -> list[int]:
        body = render(command, rows, views, self.run_link)
        if body is None:
            return command.comment_ids
        parts = split_markdown(body)
        ids: list[int] = []
        for i, part in enumerate(parts):
            if i < len(command.comment_ids) and await api.update_comment(
                pull.repository, command.comment_ids[i], part
            ):
                ids.append(command.comment_ids[i])
                continue
            ids.append(await api.create_comment(pull.repository, pull.number, part))
            await self._remember(command.id, ids + command.comment_ids[len(ids) :])
        for surplus in command.comment_ids[len(parts) :]:
            await api.delete_comment(pull.repository, surplus)
        return ids

    async def _remember(self, command_id: int, comment_ids: list[int]) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                update(pr_commands)
                .where(pr_commands.c.id == command_id)
                .values(comment_ids=comment_ids)
            )

    async def _statuses(
        self, api: GitHubApi, pull: Pull, command: CommandRow, rows: list[DirspaceRow]
    ) -> dict[int, str]:
        if command.kind not in (CommandKind.PLAN, CommandKind.APPLY):
            return {}
        prefix = f"terraplane/{command.kind.value}"
        posted: dict[int, str] = {}
        for row in rows:
            state = _STATE[row.status]
            if row.posted_status == state:
                continue
            await api.set_status(
                pull.repository,
                command.head_sha,
                context=f"{prefix}: {row.label}",
                state=state,
                description=(row.message or row.status.value)[:140],
                target_url=self.run_link(row.run_id) if row.run_id else None,
            )
            posted[row.position] = state
        if command.posted_version == 0 or command.status.final:
            await api.set_status(
                pull.repository,
                command.head_sha,
                context=prefix,
                state=overall_state(command),
                description=_description(command, rows),
            )
        return posted


async def _run_views(conn: Any, rows: list[DirspaceRow]) -> dict[int, RunView]:
    ids = [r.run_id for r in rows if r.run_id is not None]
    if not ids:
        return {}
    found = await conn.execute(
        select(
            runs.c.id,
            runs.c.status,
            runs.c.has_changes,
            runs.c.plan_summary,
            runs.c.plan_text,
            runs.c.error,
        ).where(runs.c.id.in_(ids))
    )
    views = {}
    for r in found.all():
        shown = r.status in ("failed", "cancelled") or (r.status == "succeeded" and not r.plan_text)
        tail = await read_log_tail(conn, r.id, MAX_LOG_TAIL) if shown else None
        views[r.id] = RunView(r.status, r.has_changes, r.plan_summary, r.plan_text, r.error, tail)
    return views
