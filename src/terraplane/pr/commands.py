"""Commands and their dirspaces: rows, state changes, and the jobs that follow them.

Every change to what a command shows bumps its `version` and enqueues a `pr.feedback` job for
that version (idempotency key), in the same transaction; the feedback job posts the newest
state, so bursts of changes collapse into few GitHub calls. Progress is driven by `pr.advance`
jobs, one at a time per command (exclusive key).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from terraplane.domain.commands import CommandKind
from terraplane.domain.errors import NotFound
from terraplane.domain.pullrequests import (
    CommandStatus,
    DirspaceStatus,
    Trigger,
    transition_command,
    transition_dirspace,
)
from terraplane.domain.runs import RunSpec
from terraplane.domain.state import RESERVED_SEGMENTS
from terraplane.pr.pulls import Pull
from terraplane.queue import jobs as jobstore
from terraplane.store.tables import pr_commands, pr_dirspaces
from terraplane.store.types import utcnow

ADVANCE_JOB_KIND = "pr.advance"
FEEDBACK_JOB_KIND = "pr.feedback"
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$")


def _segment(text: str) -> str:
    """A state-name segment for `text`: itself when it is one, else a readable form made unique
    by a hash of the original."""
    if _SEGMENT.match(text) and text not in RESERVED_SEGMENTS:
        return text
    readable = re.sub(r"[^A-Za-z0-9._-]", "-", text)[:80].strip("-._") or "x"
    return f"{readable}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def state_workspace(repository: str, dir: str, workspace: str) -> str:
    """The run workspace and state name of a pull-request dirspace:
    `github/OWNER/REPO/DIR.../ws.WORKSPACE` (the last segment is always the workspace)."""
    dir_segments = [] if dir == "." else [_segment(part) for part in dir.split("/")]
    owner, _, name = repository.partition("/")
    parts = ["github", _segment(owner), _segment(name), *dir_segments, _segment(f"ws.{workspace}")]
    return "/".join(parts)


@dataclass(frozen=True)
class DirspaceRow:
    command_id: int
    position: int
    dir: str
    workspace: str
    name: str | None
    state_workspace: str
    layer: int
    status: DirspaceStatus
    spec: dict[str, Any]
    run_id: int | None
    plan_run_id: int | None
    message: str | None
    posted_status: str | None

    @property
    def label(self) -> str:
        """How comments and statuses name it: its configured name, else its directory (and
        workspace, outside `default`)."""
        if self.name:
            return self.name
        return self.dir if self.workspace == "default" else f"{self.dir} ({self.workspace})"


@dataclass(frozen=True)
class CommandRow:
    id: int
    pull_request_id: int
    kind: CommandKind
    trigger: Trigger
    text: str
    head_sha: str
    requested_by: str
    status: CommandStatus
    message: str | None
    parallelism: int
    comment_ids: list[int]
    version: int
    posted_version: int
    created_at: datetime
    finished_at: datetime | None


def _command(row: Any) -> CommandRow:
    m = row._mapping
    values = {k: m[k] for k in CommandRow.__dataclass_fields__}
    values.update(
        kind=CommandKind(m["kind"]),
        trigger=Trigger(m["trigger"]),
        status=CommandStatus(m["status"]),
        comment_ids=list(m["comment_ids"] or []),
    )
    return CommandRow(**values)


def _dirspace(row: Any) -> DirspaceRow:
    m = row._mapping
    values = {k: m[k] for k in DirspaceRow.__dataclass_fields__}
    values["status"] = DirspaceStatus(m["status"])
    return DirspaceRow(**values)


@dataclass
class NewDirspace:
    dir: str
    workspace: str
    name: str | None
    layer: int = 0
    spec: RunSpec | None = None
    status: DirspaceStatus = DirspaceStatus.PENDING
    message: str | None = None
    plan_run_id: int | None = None
    state_workspace: str = ""


@dataclass
class NewCommand:
    kind: CommandKind
    trigger: Trigger
    text: str
    head_sha: str
    requested_by: str
    status: CommandStatus = CommandStatus.RUNNING
    message: str | None = None
    parallelism: int = 1
    dirspaces: list[NewDirspace] = field(default_factory=list)


async def create_command(conn: AsyncConnection, pull: Pull, new: NewCommand) -> CommandRow:
    """Record a command and its dirspaces; enqueue its first advance and its first feedback."""
    status = new.status
    if status is CommandStatus.RUNNING and all(d.status.final for d in new.dirspaces):
        status = CommandStatus.FAILED if new.dirspaces else CommandStatus.SUCCEEDED
    now = utcnow()
    row = (
        await conn.execute(
            pr_commands.insert()
            .values(
                pull_request_id=pull.id,
                kind=new.kind.value,
                trigger=new.trigger.value,
                text=new.text[:4000],
                head_sha=new.head_sha,
                requested_by=new.requested_by,
                status=status.value,
                message=new.message,
                parallelism=new.parallelism,
                comment_ids=[],
                version=1,
                posted_version=0,
                created_at=now,
                finished_at=now if status.final else None,
            )
            .returning(pr_commands)
        )
    ).one()
    command = _command(row)
    if new.dirspaces:
        await conn.execute(
            pr_dirspaces.insert(),
            [
                {
                    "command_id": command.id,
                    "position": i,
                    "dir": d.dir,
                    "workspace": d.workspace,
                    "name": d.name,
                    "state_workspace": d.state_workspace
                    or state_workspace(pull.repository, d.dir, d.workspace),
                    "layer": d.layer,
                    "status": d.status.value,
                    "spec": d.spec.model_dump(mode="json") if d.spec else {},
                    "run_id": None,
                    "plan_run_id": d.plan_run_id,
                    "message": d.message,
                    "posted_status": None,
                }
                for i, d in enumerate(new.dirspaces)
            ],
        )
    if status is CommandStatus.RUNNING:
        await enqueue_advance(conn, command.id, "start")
    await enqueue_feedback(conn, command.id, command.version)
    return command


async def enqueue_advance(conn: AsyncConnection, command_id: int, cause: str) -> None:
    await jobstore.enqueue(
        conn,
        ADVANCE_JOB_KIND,
        {"command_id": command_id},
        idempotency_key=f"pr-advance:{command_id}:{cause}",
        exclusive_key=f"pr-command:{command_id}",
        max_attempts=10,
    )


async def enqueue_feedback(conn: AsyncConnection, command_id: int, version: int) -> None:
    await jobstore.enqueue(
        conn,
        FEEDBACK_JOB_KIND,
        {"command_id": command_id, "version": version},
        idempotency_key=f"pr-feedback:{command_id}:{version}",
        exclusive_key=f"pr-feedback:{command_id}",
        max_attempts=8,
    )


async def load(
    conn: AsyncConnection, command_id: int, *, for_update: bool = False
) -> tuple[CommandRow, list[DirspaceRow]]:
    query = select(pr_commands).where(pr_commands.c.id == command_id)
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).one_or_none()
    if row is None:
        raise NotFound(f"command {command_id} does not exist")
    dirspaces = (
        await conn.execute(
            select(pr_dirspaces)
            .where(pr_dirspaces.c.command_id == command_id)
            .order_by(pr_dirspaces.c.position)
        )
    ).all()
    return _command(row), [_dirspace(d) for d in dirspaces]


async def list_commands(conn: AsyncConnection, pull_id: int) -> list[CommandRow]:
    rows = await conn.execute(
        select(pr_commands)
        .where(pr_commands.c.pull_request_id == pull_id)
        .order_by(pr_commands.c.id)
    )
    return [_command(r) for r in rows.all()]


async def set_dirspace(
    conn: AsyncConnection, row: DirspaceRow, target: DirspaceStatus, **values: Any
) -> None:
    transition_dirspace(row.status, target)
    await conn.execute(
        update(pr_dirspaces)
        .where(
            pr_dirspaces.c.command_id == row.command_id,
            pr_dirspaces.c.position == row.position,
        )
        .values(status=target.value, **values)
    )


async def changed(conn: AsyncConnection, command: CommandRow) -> int:
    """Something the command shows changed: a new version, and feedback for it."""
    version = (
        await conn.execute(
            update(pr_commands)
            .where(pr_commands.c.id == command.id)
            .values(version=pr_commands.c.version + 1)
            .returning(pr_commands.c.version)
        )
    ).scalar_one()
    await enqueue_feedback(conn, command.id, version)
    return int(version)


async def finish(
    conn: AsyncConnection, command: CommandRow, status: CommandStatus, message: str | None = None
) -> None:
    transition_command(command.status, status)
    await conn.execute(
        update(pr_commands)
        .where(pr_commands.c.id == command.id)
        .values(status=status.value, finished_at=utcnow(), message=message or command.message)
    )


async def record_posted(
    conn: AsyncConnection,
    command_id: int,
    version: int,
    comment_ids: list[int],
    statuses: dict[int, str],
) -> None:
    """What GitHub now shows for the command: its comments and dirspace statuses."""
    await conn.execute(
        update(pr_commands)
        .where(pr_commands.c.id == command_id, pr_commands.c.posted_version < version)
        .values(posted_version=version, comment_ids=comment_ids)
    )
    for position, status in statuses.items():
        await conn.execute(
            update(pr_dirspaces)
            .where(pr_dirspaces.c.command_id == command_id, pr_dirspaces.c.position == position)
            .values(posted_status=status)
        )
