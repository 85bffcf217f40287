"""Pull requests Terraplane acts on, their commands and dirspaces; dirspace locks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse

from terraplane.api.auth import require
from terraplane.api.context import AppContext, app_context
from terraplane.domain.roles import Role
from terraplane.governance.tokens import Principal
from terraplane.pr import closing, commands, locks
from terraplane.pr.commands import CommandRow, DirspaceRow
from terraplane.pr.pulls import find_pull, list_pulls

router = APIRouter(prefix="/api/v1", tags=["pull requests"])

Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
Ctx = Annotated[AppContext, Depends(app_context)]
Repository = Annotated[str, Query(max_length=256, description="owner/name")]


def dirspace_json(row: DirspaceRow) -> dict[str, Any]:
    return {
        "dir": row.dir,
        "workspace": row.workspace,
        "name": row.name,
        "state": row.state_workspace,
        "layer": row.layer,
        "status": row.status.value,
        "run_id": row.run_id,
        "plan_run_id": row.plan_run_id,
        "message": row.message,
    }


def command_json(command: CommandRow, rows: list[DirspaceRow]) -> dict[str, Any]:
    return {
        "id": command.id,
        "kind": command.kind.value,
        "trigger": command.trigger.value,
        "text": command.text,
        "head_sha": command.head_sha,
        "requested_by": command.requested_by,
        "status": command.status.value,
        "message": command.message,
        "comment_ids": command.comment_ids,
        "created_at": command.created_at.isoformat(),
        "finished_at": command.finished_at.isoformat() if command.finished_at else None,
        "dirspaces": [dirspace_json(r) for r in rows],
    }


@router.get("/pulls", summary="Pull requests, most recently updated first")
async def pulls(
    _: Viewer,
    ctx: Ctx,
    repository: Repository | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONResponse:
    async with ctx.db.read() as conn:
        found = await list_pulls(conn, repository, limit)
    return JSONResponse({"pulls": [p.as_json() for p in found]})


@router.get("/pulls/{owner}/{name}/{number}", summary="A pull request and its commands")
async def pull(
    owner: Annotated[str, Path(max_length=128)],
    name: Annotated[str, Path(max_length=128)],
    number: Annotated[int, Path(ge=1)],
    _: Viewer,
    ctx: Ctx,
) -> JSONResponse:
    async with ctx.db.read() as conn:
        found = await find_pull(conn, f"{owner}/{name}", number)
        history = []
        for command in await commands.list_commands(conn, found.id):
            rows = (await commands.load(conn, command.id))[1]
            history.append(command_json(command, rows))
    return JSONResponse({**found.as_json(), "commands": history})


@router.get("/locks", summary="Dirspace locks held by pull requests")
async def list_locks(_: Viewer, ctx: Ctx, repository: Repository | None = None) -> JSONResponse:
    async with ctx.db.read() as conn:
        found = await locks.list_locks(conn, repository)
    return JSONResponse({"locks": [lock.as_json() for lock in found]})


@router.delete("/locks/{lock_id}", summary="Release a dirspace lock (admin)")
async def release_lock(lock_id: int, who: Admin, ctx: Ctx) -> JSONResponse:
    """The lock is gone at once; pull requests it blocked are planned again."""
    async with ctx.db.write() as conn:
        lock = await locks.release(conn, lock_id)
        await closing.unblock(conn, [lock], f"lock released by {who.name}")
    ctx.wake_workers()
    return JSONResponse(lock.as_json())
