"""Drift: on-demand checks and the latest result of every workspace."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from terraplane.api.auth import require
from terraplane.api.bodies import parse_body
from terraplane.api.context import AppContext, app_context
from terraplane.controlplane import operations
from terraplane.domain.roles import Role
from terraplane.governance.tokens import Principal

router = APIRouter(prefix="/api/v1/drift", tags=["drift"])

Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Ctx = Annotated[AppContext, Depends(app_context)]


class DriftCheck(BaseModel):
    workspace: str = Field(min_length=1, max_length=512)


@router.post(
    "/checks", summary="Check a workspace for drift (202 with an operation)", status_code=202
)
async def check(request: Request, principal: Operator, ctx: Ctx) -> JSONResponse:
    """A normal `plan -detailed-exitcode` against the workspace's current configuration, without
    the state lock. 409 while the workspace is busy."""
    body = await parse_body(request, DriftCheck, ctx.settings.request_max_bytes)
    async with ctx.db.write() as conn:
        op_id = await ctx.deployments.check_drift(conn, body.workspace, principal)
    ctx.wake_workers()
    return JSONResponse({"operation": {"id": op_id}}, status_code=202)


@router.get("", summary="Every workspace's latest drift check")
async def list_all(_: Viewer, ctx: Ctx) -> JSONResponse:
    async with ctx.db.read() as conn:
        return JSONResponse({"workspaces": await operations.drift_report(conn)})
