"""Deployments and their operations (asynchronous: 202 with an operation to poll)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from terraplane.api.auth import require
from terraplane.api.bodies import json_body, parse_body
from terraplane.api.context import AppContext, app_context
from terraplane.controlplane import operations
from terraplane.controlplane.targets import DeploymentCreate, DeploymentUpdate
from terraplane.domain.roles import Role
from terraplane.governance.tokens import Principal

router = APIRouter(prefix="/api/v1", tags=["deployments"])

Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Ctx = Annotated[AppContext, Depends(app_context)]


def accepted(ctx: AppContext, body: dict[str, object]) -> JSONResponse:
    ctx.wake_workers()
    return JSONResponse(body, status_code=202)


@router.post(
    "/deployments",
    summary="Create a deployment (202 with its operation)",
    status_code=202,
    openapi_extra=json_body(DeploymentCreate),
)
async def create(request: Request, principal: Operator, ctx: Ctx) -> JSONResponse:
    body = await parse_body(request, DeploymentCreate, ctx.settings.request_max_bytes)
    async with ctx.db.write() as conn:
        deployment, op_id = await ctx.deployments.create(conn, body, principal)
    return accepted(ctx, {"deployment": deployment, "operation": {"id": op_id}})


@router.get("/deployments", summary="List deployments")
async def list_all(
    _: Viewer, ctx: Ctx, tenant: Annotated[str | None, Query(max_length=63)] = None
) -> JSONResponse:
    async with ctx.db.read() as conn:
        return JSONResponse({"deployments": await ctx.deployments.list_deployments(conn, tenant)})


@router.get("/deployments/{deployment_id}", summary="One deployment")
async def get_one(deployment_id: int, _: Viewer, ctx: Ctx) -> JSONResponse:
    async with ctx.db.read() as conn:
        return JSONResponse(await ctx.deployments.describe(conn, deployment_id))


@router.patch(
    "/deployments/{deployment_id}",
    summary="Change version and/or variables (202)",
    status_code=202,
    openapi_extra=json_body(DeploymentUpdate),
)
async def update(
    deployment_id: int, request: Request, principal: Operator, ctx: Ctx
) -> JSONResponse:
    body = await parse_body(request, DeploymentUpdate, ctx.settings.request_max_bytes)
    async with ctx.db.write() as conn:
        op_id = await ctx.deployments.update(conn, deployment_id, body, principal)
    return accepted(ctx, {"operation": {"id": op_id}})


@router.delete(
    "/deployments/{deployment_id}", summary="Destroy a deployment (202)", status_code=202
)
async def destroy(deployment_id: int, principal: Operator, ctx: Ctx) -> JSONResponse:
    async with ctx.db.write() as conn:
        op_id = await ctx.deployments.destroy(conn, deployment_id, principal)
    return accepted(ctx, {"operation": {"id": op_id}})


@router.get("/operations/{operation_id}", summary="An operation, with its runs")
async def operation(operation_id: int, _: Viewer, ctx: Ctx) -> JSONResponse:
    async with ctx.db.read() as conn:
        return JSONResponse(await operations.describe_operation(conn, operation_id))
