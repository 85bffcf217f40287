"""Rollouts: create (202), follow, pause, resume, cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from terraplane.api.auth import require
from terraplane.api.bodies import json_body, parse_body
from terraplane.api.context import AppContext, app_context
from terraplane.controlplane.rollouts import RolloutCreate
from terraplane.domain.roles import Role
from terraplane.governance.tokens import Principal

router = APIRouter(prefix="/api/v1/rollouts", tags=["rollouts"])

Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Ctx = Annotated[AppContext, Depends(app_context)]


@router.post(
    "",
    summary="Start a rollout (202 with the rollout)",
    status_code=202,
    openapi_extra=json_body(RolloutCreate),
)
async def create(request: Request, principal: Operator, ctx: Ctx) -> JSONResponse:
    body = await parse_body(request, RolloutCreate, ctx.settings.request_max_bytes)
    async with ctx.db.write() as conn:
        rollout = await ctx.rollouts.create(conn, body, principal)
    ctx.wake_workers()
    return JSONResponse(rollout, status_code=202)


@router.get("/{rollout_id}", summary="A rollout with its waves")
async def get_one(rollout_id: int, _: Viewer, ctx: Ctx) -> JSONResponse:
    async with ctx.db.read() as conn:
        return JSONResponse(await ctx.rollouts.describe(conn, rollout_id))


@router.post("/{rollout_id}/pause", summary="Start no new deployment; running ones finish")
async def pause(rollout_id: int, _: Operator, ctx: Ctx) -> JSONResponse:
    async with ctx.db.write() as conn:
        return JSONResponse(await ctx.rollouts.pause(conn, rollout_id))


@router.post("/{rollout_id}/resume", summary="Resume a paused rollout")
async def resume(rollout_id: int, _: Operator, ctx: Ctx) -> JSONResponse:
    async with ctx.db.write() as conn:
        rollout = await ctx.rollouts.resume(conn, rollout_id)
    ctx.wake_workers()
    return JSONResponse(rollout)


@router.post("/{rollout_id}/cancel", summary="Cancel: nothing more starts")
async def cancel(rollout_id: int, _: Operator, ctx: Ctx) -> JSONResponse:
    async with ctx.db.write() as conn:
        return JSONResponse(await ctx.rollouts.cancel(conn, rollout_id))
