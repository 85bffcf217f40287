"""Terraform's http backend at /api/v1/state/{name}, and the state history API."""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from terraplane.api.auth import STATE_PREFIX, authorize, require
from terraplane.api.bodies import json_body, parse_body, read_body
from terraplane.api.context import AppContext, app_context
from terraplane.domain.errors import Forbidden, InvalidInput, NotFound
from terraplane.domain.roles import Role
from terraplane.domain.state import MAX_LOCK_INFO_BYTES, RESERVED_SEGMENTS, parse_lock_info
from terraplane.governance.tokens import Principal

router = APIRouter(prefix="/api/v1/state", tags=["state"])

Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
Ctx = Annotated[AppContext, Depends(app_context)]
# Terraform appends the lock it holds as `?ID=...` to writes (and may to unlocks).
LockIdQuery = Annotated[str | None, Query(alias="ID", max_length=128)]


def _scoped(principal: Principal, name: str) -> None:
    if not principal.may_touch_state(name):
        raise Forbidden(f"token {principal.name!r} may only use state {principal.state_scope!r}")


def _check_md5(request: Request, body: bytes) -> None:
    """Terraform sends Content-MD5 with each state; a mismatch means a damaged upload."""
    declared = request.headers.get("content-md5")
    if declared and base64.b64encode(hashlib.md5(body).digest()).decode() != declared:  # noqa: S324
        raise InvalidInput("Content-MD5 does not match the body: the upload was damaged")


class RollbackRequest(BaseModel):
    serial: int = Field(ge=0, description="serial of the version to copy forward")


@router.get("/{name:path}/versions", summary="List a state's versions")
async def list_versions(name: str, principal: Viewer, ctx: Ctx) -> JSONResponse:
    _scoped(principal, name)
    versions = await ctx.state_backend.list_versions(name)
    return JSONResponse({"name": name, "versions": [v.as_json() for v in versions]})


@router.get("/{name:path}/versions/{serial:int}", summary="Download one version")
async def get_version(name: str, serial: int, principal: Viewer, ctx: Ctx) -> Response:
    _scoped(principal, name)
    version, content = await ctx.state_backend.read_version(name, serial)
    return Response(
        content,
        media_type="application/json",
        headers={
            "X-Terraplane-Version": str(version.version),
            "X-Terraplane-Sha256": version.sha256,
        },
    )


@router.get("/{name:path}/lock", summary="Who holds the state's lock, if anyone")
async def get_lock(name: str, principal: Viewer, ctx: Ctx) -> JSONResponse:
    _scoped(principal, name)
    holder = await ctx.state_backend.lock_holder(name)
    return JSONResponse({"name": name, "locked": holder is not None, "lock": holder})


@router.post(
    "/{name:path}/rollback",
    summary="Copy an old version forward as the newest",
    openapi_extra=json_body(RollbackRequest),
)
async def rollback(name: str, request: Request, principal: Operator, ctx: Ctx) -> JSONResponse:
    """Body: `{"serial": N}`. Refused while the state is locked."""
    _scoped(principal, name)
    body = await parse_body(request, RollbackRequest, ctx.settings.request_max_bytes)
    version = await ctx.state_backend.rollback(name, body.serial, principal)
    return JSONResponse(version.as_json(), status_code=201)


# Terraform's protocol: the four requests every plan and apply makes, served as hot paths
# (`api.hotpaths`) by these functions; the routes below document them and call them too.


async def read_state(request: Request, ctx: AppContext, name: str) -> Response:
    principal = await authorize(request, ctx, Role.VIEWER)
    _scoped(principal, name)
    content = await ctx.state_backend.read_current(name)
    if content is None:
        raise NotFound(f"state {name!r} is empty")
    return Response(content, media_type="application/json")


async def write_state(request: Request, ctx: AppContext, name: str) -> Response:
    principal = await authorize(request, ctx, Role.OPERATOR)
    _scoped(principal, name)
    lock_id = _lock_id(request)
    body = await read_body(request, ctx.settings.state_max_bytes)
    _check_md5(request, body)
    await ctx.state_backend.write(name, body, lock_id, principal)
    return Response(status_code=200)


async def lock_state(request: Request, ctx: AppContext, name: str) -> Response:
    principal = await authorize(request, ctx, Role.OPERATOR)
    _scoped(principal, name)
    info = parse_lock_info(await read_body(request, MAX_LOCK_INFO_BYTES))
    await ctx.state_backend.lock(name, info, principal)
    return JSONResponse(info)


async def unlock_state(request: Request, ctx: AppContext, name: str) -> Response:
    principal = await authorize(request, ctx, Role.OPERATOR)
    _scoped(principal, name)
    lock_id = _lock_id(request)
    raw = await read_body(request, MAX_LOCK_INFO_BYTES)
    if raw.strip():
        lock_id = parse_lock_info(raw)["ID"]
    await ctx.state_backend.unlock(name, lock_id, principal)
    return Response(status_code=200)


def _lock_id(request: Request) -> str | None:
    """Terraform appends the lock it holds as `?ID=...` to writes (and may to unlocks)."""
    value = request.query_params.get("ID")
    if value is not None and len(value) > 128:
        raise InvalidInput("the ID query parameter is longer than 128 characters")
    return value or None


PROTOCOL = {"GET": read_state, "POST": write_state, "LOCK": lock_state, "UNLOCK": unlock_state}


def hot_path(method: str, path: str) -> Callable[[Request, AppContext], Awaitable[Response]] | None:
    """The protocol handler for a request to a state itself (not to its history: a path with
    a reserved segment, like `/versions`, is FastAPI's)."""
    handler = PROTOCOL.get(method)
    if handler is None or not path.startswith(STATE_PREFIX):
        return None
    name = path[len(STATE_PREFIX) :]
    if not name or any(segment in RESERVED_SEGMENTS for segment in name.split("/")):
        return None
    return functools.partial(_named, handler, name)


async def _named(
    handler: Callable[[Request, AppContext, str], Awaitable[Response]],
    name: str,
    request: Request,
    ctx: AppContext,
) -> Response:
    return await handler(request, ctx, name)


@router.get("/{name:path}", summary="Terraform http backend: read the current state")
async def get_state(name: str, request: Request, ctx: Ctx) -> Response:
    return await read_state(request, ctx, name)


@router.post("/{name:path}", summary="Terraform http backend: write a new state version")
async def post_state(
    name: str, request: Request, ctx: Ctx, lock_id: LockIdQuery = None
) -> Response:
    """Operator role; when the state is locked, `?ID=` must be the holder's lock id."""
    return await write_state(request, ctx, name)


@router.delete("/{name:path}", summary="Terraform http backend: delete the state")
async def delete_state(name: str, principal: Admin, ctx: Ctx) -> Response:
    _scoped(principal, name)
    await ctx.state_backend.delete(name)
    return Response(status_code=200)


@router.api_route("/{name:path}", methods=["LOCK"], summary="Terraform http backend: lock")
async def lock_route(name: str, request: Request, ctx: Ctx) -> Response:
    """Operator role; 423 with the holder's lock information when someone else holds it."""
    return await lock_state(request, ctx, name)


@router.api_route("/{name:path}", methods=["UNLOCK"], summary="Terraform http backend: unlock")
async def unlock_route(
    name: str, request: Request, ctx: Ctx, lock_id: LockIdQuery = None
) -> Response:
    """Operator role with the holder's lock; an empty body (`terraform force-unlock`) needs
    the admin role."""
    return await unlock_state(request, ctx, name)
