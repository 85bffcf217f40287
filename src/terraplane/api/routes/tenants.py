"""Tenants and the environment chain."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from terraplane.api.auth import require
from terraplane.api.bodies import json_body, parse_body
from terraplane.api.context import AppContext, app_context
from terraplane.controlplane import operations
from terraplane.controlplane import tenants as service
from terraplane.domain.roles import Role
from terraplane.governance.tokens import Principal

router = APIRouter(prefix="/api/v1", tags=["tenants"])

Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Ctx = Annotated[AppContext, Depends(app_context)]


class TenantCreate(BaseModel):
    name: str = Field(min_length=1, max_length=63)
    labels: dict[str, Any] = Field(default_factory=dict)


class TenantUpdate(BaseModel):
    labels: dict[str, Any]


@router.post(
    "/tenants", summary="Create a tenant", status_code=201, openapi_extra=json_body(TenantCreate)
)
async def create(request: Request, _: Operator, ctx: Ctx) -> JSONResponse:
    body = await parse_body(request, TenantCreate, ctx.settings.request_max_bytes)
    async with ctx.db.write() as conn:
        tenant = await service.create_tenant(conn, body.name, body.labels)
    return JSONResponse(tenant, status_code=201)


@router.get("/tenants", summary="List tenants; `?label=key=value` filters (repeatable)")
async def list_all(request: Request, _: Viewer, ctx: Ctx) -> JSONResponse:
    wanted = dict(item.partition("=")[::2] for item in request.query_params.getlist("label"))
    async with ctx.db.read() as conn:
        return JSONResponse({"tenants": await service.list_tenants(conn, wanted)})


@router.get("/tenants/{name}", summary="One tenant")
async def get_one(name: str, _: Viewer, ctx: Ctx) -> JSONResponse:
    async with ctx.db.read() as conn:
        return JSONResponse(await service.get_tenant(conn, name))


@router.get(
    "/tenants/{name}/history", summary="Every operation and run of the tenant's deployments"
)
async def history(name: str, _: Viewer, ctx: Ctx) -> JSONResponse:
    """Newest first; each run's log is at /api/v1/runs/{id}/log."""
    async with ctx.db.read() as conn:
        await service.get_tenant(conn, name, include_deleted=True)
        return JSONResponse(
            {"tenant": name, "operations": await operations.tenant_history(conn, name)}
        )


@router.patch(
    "/tenants/{name}", summary="Replace a tenant's labels", openapi_extra=json_body(TenantUpdate)
)
async def update(name: str, request: Request, _: Operator, ctx: Ctx) -> JSONResponse:
    body = await parse_body(request, TenantUpdate, ctx.settings.request_max_bytes)
    async with ctx.db.write() as conn:
        return JSONResponse(await service.set_labels(conn, name, body.labels))


@router.delete(
    "/tenants/{name}", summary="Delete a tenant (409 while a deployment is not destroyed)"
)
async def delete(name: str, _: Operator, ctx: Ctx) -> Response:
    async with ctx.db.write() as conn:
        await service.delete_tenant(conn, name)
    return Response(status_code=204)


@router.get("/environments", summary="The promotion chain, in order")
async def environments(_: Viewer, ctx: Ctx) -> JSONResponse:
    chain = ctx.settings.environment_chain
    return JSONResponse(
        {
            "environments": [
                {"name": name, "position": i, "previous": chain[i - 1] if i else None}
                for i, name in enumerate(chain)
            ]
        }
    )
