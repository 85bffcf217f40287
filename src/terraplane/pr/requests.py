"""The `pr.request` job: turn a request about a pull request into a command.

Requests come from webhooks (autoplan, a comment, a merge) and from released locks. The job
does the slow, outside work first, without a transaction: it reads the pull request from
GitHub, checks the commenter's permission, fetches the repository into the host's mirror and
reads the config and dirspaces at the head. Then, in one transaction, it records the command,
its dirspaces and locks, and the jobs that run and report them.

One request per pull request runs at a time (exclusive key); a request for a head that is no
longer the pull request's head is dropped (the newer push has its own).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from terraplane.domain.commands import (
    USAGE,
    Command,
    CommandKind,
    InvalidCommand,
    parse_command,
)
from terraplane.domain.pullrequests import CommandStatus, PullState, Trigger
from terraplane.engine.checkouts import CheckoutError, Checkouts
from terraplane.github.api import WRITE_PERMISSIONS, GitHubApi, PullRequest
from terraplane.github.app import GitHubApp, GitHubError
from terraplane.observability.logs import get_logger
from terraplane.pr import closing, commands, locks, snapshot
from terraplane.pr.changes import (
    changed_files_from_api,
    changed_files_from_git,
    listed_by_api,
)
from terraplane.pr.commands import NewCommand
from terraplane.pr.planning import apply_dirspaces, plan_dirspaces
from terraplane.pr.pulls import Pull, pull_values, save_pull
from terraplane.queue.worker import JobContext, TransientJobError
from terraplane.repoconfig.model import LockPolicy
from terraplane.repoconfig.modules import affected
from terraplane.repoconfig.yamlpos import ConfigError
from terraplane.store.database import Database

log = get_logger(__name__)

EXTRA_ARGS_REFUSED = (
    "Extra terraform arguments (`-- ...`) are not allowed here: the repository config must set "
    "`allow_extra_args: true`."
)


@dataclass
class Request:
    kind: str  # autoplan | comment | merge | unblocked
    repository: str
    number: int
    installation_id: int
    clone_url: str
    requested_by: str
    head_sha: str | None = None
    body: str = ""
    dirspaces: tuple[tuple[str, str], ...] = ()

    @property
    def trigger(self) -> Trigger:
        return {"comment": Trigger.COMMENT, "merge": Trigger.MERGE}.get(self.kind, Trigger.AUTOPLAN)

    @classmethod
    def from_payload(cls, p: dict[str, Any]) -> Request:
        return cls(
            kind=str(p["kind"]),
            repository=str(p["repository"]),
            number=int(p["number"]),
            installation_id=int(p["installation_id"]),
            clone_url=str(p["clone_url"]),
            requested_by=str(p.get("requested_by") or ""),
            head_sha=p.get("head_sha"),
            body=str(p.get("body") or ""),
            dirspaces=tuple((str(d), str(w)) for d, w in p.get("dirspaces") or ()),
        )


@dataclass
class RequestProcessor:
    db: Database
    checkouts: Checkouts
    github: GitHubApp | None

    async def __call__(self, ctx: JobContext) -> dict[str, Any] | None:
        if self.github is None:
            raise RuntimeError(
                "the GitHub App is not configured: set TERRAPLANE_GITHUB_APP_ID and "
                "TERRAPLANE_GITHUB_PRIVATE_KEY"
            )
        request = Request.from_payload(ctx.job.payload)
        api = GitHubApi(self.github, request.installation_id)
        last_try = ctx.job.attempts >= ctx.job.max_attempts
        try:
            return await self._handle(request, api)
        except GitHubError as exc:
            if exc.transient and not last_try:
                raise TransientJobError(str(exc)) from exc
            raise
        except CheckoutError as exc:
            # Fetching may fail for a while (the network, GitHub): retried, then reported.
            if not last_try:
                raise TransientJobError(str(exc)) from exc
            return await self._errored(request, api, f"The repository could not be read: {exc}")

    async def _handle(self, request: Request, api: GitHubApi) -> dict[str, Any] | None:
        pr = await api.pull(request.repository, request.number)
        async with self.db.write() as conn:
            pull = await save_pull(
                conn,
                request.repository,
                request.number,
                pull_values(pr, request.clone_url, request.installation_id),
            )
        if request.kind == "autoplan":
            if request.head_sha and request.head_sha != pull.head_sha:
                return {"skipped": f"head moved on to {pull.head_sha[:12]}"}
            return await self._plan(request, api, pull, pr, None, Trigger.AUTOPLAN)
        if request.kind == "unblocked":
            return await self._plan(request, api, pull, pr, None, Trigger.AUTOPLAN)
        if request.kind == "merge":
            return await self._merged(request, api, pull)
        return await self._comment(request, api, pull, pr)

    async def _comment(
        self, request: Request, api: GitHubApi, pull: Pull, pr: PullRequest
    ) -> dict[str, Any]:
        try:
            command = parse_command(request.body)
        except InvalidCommand as exc:
            return await self._record(
                pull, CommandKind.HELP, request, CommandStatus.REFUSED, f"{exc}\n\n{USAGE}"
            )
        if command.kind is CommandKind.HELP:
            return await self._record(pull, command.kind, request, CommandStatus.SUCCEEDED, USAGE)
        permission = await api.permission(pull.repository, request.requested_by)
        if permission not in WRITE_PERMISSIONS:
            return await self._record(
                pull,
                command.kind,
                request,
                CommandStatus.REFUSED,
                f"@{request.requested_by} needs write access to {pull.repository} to run "
                f"`terraplane {command.kind.value}` (they have {permission}).",
            )
        if pull.state is not PullState.OPEN:
            return await self._record(
                pull, command.kind, request, CommandStatus.REFUSED, "the pull request is closed"
            )
        if command.kind is CommandKind.UNLOCK:
            async with self.db.write() as conn:
                released = await closing.let_go(conn, pull, f"unlock by {request.requested_by}")
                names = ", ".join(f"`{lk.dir}` ({lk.workspace})" for lk in released) or "none"
                await commands.create_command(
                    conn,
                    pull,
                    NewCommand(
                        kind=command.kind,
                        trigger=Trigger.COMMENT,
                        text=command.text,
                        head_sha=pull.head_sha,
                        requested_by=request.requested_by,
                        status=CommandStatus.SUCCEEDED,
                        message=f"Released {len(released)} lock(s): {names}. "
                        "The plans of this pull request are discarded.",
                    ),
                )
            return {"unlocked": len(released)}
        busy = await self._applying(pull)
        if busy is not None:
            return await self._record(
                pull,
                command.kind,
                request,
                CommandStatus.REFUSED,
                f"An apply of this pull request is running (`terraplane {busy.text}`); "
                "comment again when it is done.",
            )
        if command.kind is CommandKind.PLAN:
            return await self._plan(request, api, pull, pr, command, Trigger.COMMENT)
        return await self._apply(request, api, pull, pr, command, Trigger.COMMENT)

    async def _snapshot(
        self, request: Request, api: GitHubApi, pull: Pull, kind: CommandKind, text: str
    ) -> snapshot.Snapshot | dict[str, Any]:
        """The head's snapshot, or the recorded errored command when it cannot be read."""
        if pull.fork:
            return await self._record(
                pull,
                kind,
                request,
                CommandStatus.REFUSED,
                "Terraplane does not run pull requests from forks: their code would run with "
                "this repository's credentials.",
                text,
            )
        token = await api.app.installation_token(request.installation_id)
        try:
            return await snapshot.take(self.checkouts, pull.commit, token)
        except ConfigError as exc:
            return await self._record(
                pull,
                kind,
                request,
                CommandStatus.ERRORED,
                f"The repository configuration is invalid, so nothing ran:\n\n```\n{exc}\n```",
                text,
            )

    async def _plan(
        self,
        request: Request,
        api: GitHubApi,
        pull: Pull,
        pr: PullRequest,
        command: Command | None,
        trigger: Trigger,
    ) -> dict[str, Any]:
        text = command.text if command else "plan"
        wants_changes = request.kind != "unblocked" and not (command and command.filtered)
        # The files API answers while the mirror fetches (beyond its cap, git answers later).
        api_files = (
            asyncio.create_task(
                changed_files_from_api(
                    api.app, request.installation_id, pull.repository, pull.number
                )
            )
            if wants_changes and listed_by_api(pr.changed_files)
            else None
        )
        try:
            return await self._plan_head(request, api, pull, command, trigger, text, api_files)
        finally:
            if api_files is not None and not api_files.done():
                api_files.cancel()

    async def _plan_head(
        self,
        request: Request,
        api: GitHubApi,
        pull: Pull,
        command: Command | None,
        trigger: Trigger,
        text: str,
        api_files: asyncio.Task[list[str]] | None,
    ) -> dict[str, Any]:
        snap = await self._snapshot(request, api, pull, CommandKind.PLAN, text)
        if isinstance(snap, dict):
            return snap
        config = snap.config
        if request.kind == "autoplan" and pull.draft and not config.autoplan.draft_pull_requests:
            return {"skipped": "draft pull request"}
        if command is not None and command.extra_args and not config.allow_extra_args:
            return await self._record(
                pull, CommandKind.PLAN, request, CommandStatus.REFUSED, EXTRA_ARGS_REFUSED, text
            )
        if request.kind == "unblocked":
            selected = [d for d in snap.dirspaces if (d.dir, d.workspace) in request.dirspaces]
        elif command is not None and command.filtered:
            selected = [d for d in snap.dirspaces if command.selects(d)]
            if not selected:
                return await self._record(
                    pull,
                    CommandKind.PLAN,
                    request,
                    CommandStatus.REFUSED,
                    f"No dirspace matches `{command.text}`.",
                    text,
                )
        else:
            changed = (
                await api_files
                if api_files is not None
                else await changed_files_from_git(
                    snap.mirror, snap.base or pull.base_sha, pull.head_sha
                )
            )
            selected = affected(snap.dirspaces, changed, snap.graph)
            if trigger is Trigger.AUTOPLAN:
                selected = [d for d in selected if d.autoplan]
        new = plan_dirspaces(pull, snap, selected, command, request.requested_by)
        async with self.db.write() as conn:
            if config.lock_policy is LockPolicy.STRICT:
                await locks.lock_for_plan(conn, pull, new, request.requested_by)
            cmd = await commands.create_command(
                conn,
                pull,
                NewCommand(
                    kind=CommandKind.PLAN,
                    trigger=trigger,
                    text=text,
                    head_sha=pull.head_sha,
                    requested_by=request.requested_by,
                    parallelism=config.parallelism.plan,
                    dirspaces=new,
                ),
            )
        return {"command": cmd.id, "dirspaces": len(new)}

    async def _apply(
        self,
        request: Request,
        api: GitHubApi,
        pull: Pull,
        pr: PullRequest,
        command: Command | None,
        trigger: Trigger,
    ) -> dict[str, Any]:
        text = command.text if command else "apply (on merge)"
        snap = await self._snapshot(request, api, pull, CommandKind.APPLY, text)
        if isinstance(snap, dict):
            return snap
        if command is not None and command.extra_args and not snap.config.allow_extra_args:
            return await self._record(
                pull, CommandKind.APPLY, request, CommandStatus.REFUSED, EXTRA_ARGS_REFUSED, text
            )
        planned = await apply_dirspaces(self.db, api, pull, pr, snap, command, trigger)
        if isinstance(planned, str) and trigger is Trigger.MERGE:
            async with self.db.write() as conn:  # nothing was waiting: just let go
                await closing.let_go(conn, pull, f"#{pull.number} merged")
            return {"released": True}
        if isinstance(planned, str):
            return await self._record(
                pull, CommandKind.APPLY, request, CommandStatus.REFUSED, planned, text
            )
        new, refused = planned
        async with self.db.write() as conn:
            if not refused and snap.config.lock_policy is not LockPolicy.NONE:
                refused = await locks.check_for_apply(
                    conn, pull, new, snap.config.lock_policy, request.requested_by
                )
            cmd = await commands.create_command(
                conn,
                pull,
                NewCommand(
                    kind=CommandKind.APPLY,
                    trigger=trigger,
                    text=text,
                    head_sha=pull.head_sha,
                    requested_by=request.requested_by,
                    status=CommandStatus.REFUSED if refused else CommandStatus.RUNNING,
                    message="Nothing was applied: a requirement is not met for "
                    f"{len([d for d in new if d.message])} dirspace(s)."
                    if refused
                    else None,
                    parallelism=snap.config.parallelism.apply,
                    dirspaces=new,
                ),
            )
            if trigger is Trigger.MERGE and cmd.status.final:
                await closing.let_go(conn, pull, f"#{pull.number} merged")
        return {"command": cmd.id, "refused": refused}

    async def _applying(self, pull: Pull) -> commands.CommandRow | None:
        """The pull request's apply that is still running, if any."""
        async with self.db.read() as conn:
            for command in reversed(await commands.list_commands(conn, pull.id)):
                if command.kind is CommandKind.APPLY and not command.status.final:
                    return command
        return None

    async def _merged(self, request: Request, api: GitHubApi, pull: Pull) -> dict[str, Any]:
        """A merged pull request: its plans are applied when `apply_on_merge` is set (the
        locks are released when that apply ends); otherwise it lets go at once."""
        if not pull.fork:
            token = await api.app.installation_token(request.installation_id)
            try:
                snap = await snapshot.take(self.checkouts, pull.commit, token)
            except ConfigError:
                snap = None
            if snap is not None and snap.config.apply_on_merge:
                pr = await api.pull(pull.repository, pull.number)
                return await self._apply(request, api, pull, pr, None, Trigger.MERGE)
        async with self.db.write() as conn:
            released = await closing.let_go(conn, pull, f"#{pull.number} merged")
        return {"released": len(released)}

    async def _record(
        self,
        pull: Pull,
        kind: CommandKind,
        request: Request,
        status: CommandStatus,
        message: str,
        text: str | None = None,
    ) -> dict[str, Any]:
        """A command that runs nothing, with the message its comment shows."""
        async with self.db.write() as conn:
            cmd = await commands.create_command(
                conn,
                pull,
                NewCommand(
                    kind=kind,
                    trigger=request.trigger,
                    text=text if text is not None else request.body.strip().split("\n")[0][:200],
                    head_sha=pull.head_sha,
                    requested_by=request.requested_by,
                    status=status,
                    message=message,
                ),
            )
        return {"command": cmd.id, "status": status.value}

    async def _errored(self, request: Request, api: GitHubApi, message: str) -> dict[str, Any]:
        """The last attempt could not read the repository: say so on the pull request."""
        pr = await api.pull(request.repository, request.number)
        async with self.db.write() as conn:
            pull = await save_pull(
                conn,
                request.repository,
                request.number,
                pull_values(pr, request.clone_url, request.installation_id),
            )
        try:
            kind = parse_command(request.body).kind if request.kind == "comment" else None
        except InvalidCommand:
            kind = None
        return await self._record(
            pull, kind or CommandKind.PLAN, request, CommandStatus.ERRORED, message
        )
