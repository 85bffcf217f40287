"""Drift: on-demand checks, cron schedules, and the latest result of every workspace."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from terraplane.api.auth import require
from terraplane.api.bodies import json_body, parse_body
from terraplane.api.context import AppContext, app_context
from terraplane.controlplane import operations
from terraplane.controlplane.drift import ScheduleCreate, ScheduleUpdate
from terraplane.domain.roles import Role
from terraplane.governance.tokens import Principal

router = APIRouter(prefix="/api/v1/drift", tags=["drift"])

Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Ctx = Annotated[AppContext, Depends(app_context)]


class DriftCheck(BaseModel):
    workspace: str = Field(min_length=1, max_length=512)
    refresh_only: bool = False
    reconcile: bool = False


@router.post(
    "/checks",
    summary="Check a workspace for drift (202 with an operation)",
    status_code=202,
    openapi_extra=json_body(DriftCheck),
)
async def check(request: Request, principal: Operator, ctx: Ctx) -> JSONResponse:
    """A normal `plan -detailed-exitcode` (or `-refresh-only`) against the workspace's current
    configuration, without the state lock: a deployment's, or a dirspace of a repository's
    default branch (one a repository schedule has seen). 409 while the workspace is busy, its
    state is locked or it is already being checked. With `reconcile`, drift found is applied
    at once."""
    body = await parse_body(request, DriftCheck, ctx.settings.request_max_bytes)
    async with ctx.db.write() as conn:
        op_id = await ctx.drift.check(
            conn,
            body.workspace,
            principal,
            refresh_only=body.refresh_only,
            reconcile=body.reconcile,
        )
    ctx.wake_workers()
    return JSONResponse({"operation": {"id": op_id}}, status_code=202)


@router.get("", summary="Every workspace's latest drift check")
async def list_all(_: Viewer, ctx: Ctx) -> JSONResponse:
    async with ctx.db.read() as conn:
        return JSONResponse({"workspaces": await operations.drift_report(conn)})


@router.post(
    "/schedules",
    summary="Create a cron schedule of drift checks",
    status_code=201,
    openapi_extra=json_body(ScheduleCreate),
)
async def create_schedule(request: Request, principal: Operator, ctx: Ctx) -> JSONResponse:
    """`cron` is five-field cron in UTC. The deployments checked are those of `blueprint` in
    `environment` (either may be left out: all) — or, with `repository` (owner/name), the
    dirspaces of that repository's default branch. Checks are spread over `window_seconds`
    after each firing (default: half the period, at most an hour). `reconcile` applies drift
    found."""
    body = await parse_body(request, ScheduleCreate, ctx.settings.request_max_bytes)
    async with ctx.db.write() as conn:
        schedule = await ctx.drift.create(conn, body, principal)
    return JSONResponse(schedule, status_code=201)


@router.get("/schedules", summary="Every drift schedule")
async def list_schedules(_: Viewer, ctx: Ctx) -> JSONResponse:
    async with ctx.db.read() as conn:
        return JSONResponse({"schedules": await ctx.drift.list_schedules(conn)})


@router.post("/schedules/{name}/run", summary="Fire a drift schedule now", status_code=202)
async def run_schedule(name: str, _: Operator, ctx: Ctx) -> JSONResponse:
    """Its checks start now, spread over its window as usual; the cron firings stay as they
    are. 409 while the schedule is disabled."""
    async with ctx.db.write() as conn:
        schedule = await ctx.drift.run_now(conn, name)
    ctx.wake_workers()
    return JSONResponse(schedule, status_code=202)


@router.get("/schedules/{name}", summary="One drift schedule")
async def get_schedule(name: str, _: Viewer, ctx: Ctx) -> JSONResponse:
    async with ctx.db.read() as conn:
        return JSONResponse(await ctx.drift.get_schedule(conn, name))


@router.patch(
    "/schedules/{name}",
    summary="Change a drift schedule (cron, window, reconcile, refresh_only, enabled)",
    openapi_extra=json_body(ScheduleUpdate),
)
async def update_schedule(name: str, request: Request, _: Operator, ctx: Ctx) -> JSONResponse:
    body = await parse_body(request, ScheduleUpdate, ctx.settings.request_max_bytes)
    async with ctx.db.write() as conn:
        return JSONResponse(await ctx.drift.update(conn, name, body))


@router.delete("/schedules/{name}", summary="Delete a drift schedule")
async def delete_schedule(name: str, _: Operator, ctx: Ctx) -> Response:
    async with ctx.db.write() as conn:
        await ctx.drift.delete(conn, name)
    return Response(status_code=204)
