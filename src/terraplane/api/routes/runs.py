"""Runs: status, plan summary, a log that can be tailed, cancellation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, PlainTextResponse

from terraplane.api.auth import require
from terraplane.api.context import AppContext, app_context
from terraplane.domain.roles import Role
from terraplane.governance.tokens import Principal
from terraplane.runs import service
from terraplane.runs.logs import read_log

router = APIRouter(prefix="/api/v1/runs", tags=["runs"])

Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Ctx = Annotated[AppContext, Depends(app_context)]


@router.get("", summary="List runs, newest first")
async def list_runs(
    _: Viewer,
    ctx: Ctx,
    workspace: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONResponse:
    async with ctx.db.read() as conn:
        found = await service.list_runs(conn, workspace, limit)
    return JSONResponse({"runs": [r.as_json() for r in found]})


@router.get("/{run_id}", summary="One run")
async def get_run(run_id: int, _: Viewer, ctx: Ctx) -> JSONResponse:
    async with ctx.db.read() as conn:
        run = await service.get_run(conn, run_id)
    return JSONResponse(run.as_json())


@router.get(
    "/{run_id}/log", summary="The run's log from `offset` on", response_class=PlainTextResponse
)
async def get_log(
    run_id: int, _: Viewer, ctx: Ctx, offset: Annotated[int, Query(ge=0)] = 0
) -> PlainTextResponse:
    """Poll with the `X-Next-Offset` of the previous answer to tail a running run."""
    async with ctx.db.read() as conn:
        run = await service.get_run(conn, run_id)
        part = await read_log(conn, run_id, offset)
    return PlainTextResponse(
        part.text,
        headers={
            "X-Next-Offset": str(part.next_offset),
            "X-Run-Status": run.status.value,
        },
    )


@router.post("/{run_id}/cancel", summary="Cancel a queued or running run")
async def cancel_run(run_id: int, _: Operator, ctx: Ctx) -> JSONResponse:
    async with ctx.db.write() as conn:
        run = await service.request_cancel(conn, run_id)
    return JSONResponse(run.as_json())
