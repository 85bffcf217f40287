"""Blueprints and their versions (uploaded archives or git sources)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import UploadFile

from terraplane.api.auth import require
from terraplane.api.bodies import describe, json_body, parse_body
from terraplane.api.context import AppContext, app_context
from terraplane.controlplane import blueprints as service
from terraplane.domain.errors import PayloadTooLarge, Unprocessable
from terraplane.domain.roles import Role
from terraplane.governance.tokens import Principal

router = APIRouter(prefix="/api/v1/blueprints", tags=["blueprints"])

Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Ctx = Annotated[AppContext, Depends(app_context)]


class BlueprintCreate(BaseModel):
    name: str = Field(min_length=1, max_length=63)
    description: str | None = Field(default=None, max_length=4000)


@router.post(
    "", summary="Create a blueprint", status_code=201, openapi_extra=json_body(BlueprintCreate)
)
async def create(request: Request, principal: Operator, ctx: Ctx) -> JSONResponse:
    body = await parse_body(request, BlueprintCreate, ctx.settings.request_max_bytes)
    async with ctx.db.write() as conn:
        created = await service.create_blueprint(conn, body.name, body.description, principal.name)
    return JSONResponse(created, status_code=201)


@router.get("", summary="List blueprints with their versions")
async def list_all(_: Viewer, ctx: Ctx) -> JSONResponse:
    async with ctx.db.read() as conn:
        return JSONResponse({"blueprints": await service.list_blueprints(conn)})


@router.get("/{name}", summary="One blueprint")
async def get_one(name: str, _: Viewer, ctx: Ctx) -> JSONResponse:
    async with ctx.db.read() as conn:
        return JSONResponse(await service.get_blueprint(conn, name))


@router.post(
    "/{name}/versions",
    summary="Register an immutable version",
    status_code=201,
    openapi_extra=json_body(
        service.VersionMetadata,
        multipart={
            "type": "object",
            "required": ["archive", "metadata"],
            "properties": {
                "archive": {"type": "string", "format": "binary", "description": ".tar.gz"},
                "metadata": {"type": "string", "description": 'JSON {"version", "tiers"}'},
            },
        },
    ),
)
async def add_version(name: str, request: Request, principal: Operator, ctx: Ctx) -> JSONResponse:
    """Multipart with an `archive` file part (the module as .tar.gz) and a `metadata` field
    (JSON `{"version", "tiers"}`), or JSON `{"version", "source": {"git": {"url", "path",
    "ref"}}, "tiers"}`. Answers the version with its variable schema."""
    limit = ctx.settings.blueprint_archive_max_bytes
    archive: bytes | None = None
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        meta, archive = await _multipart(request, limit)
    else:
        meta = await parse_body(request, service.VersionMetadata, ctx.settings.request_max_bytes)
    async with ctx.db.read() as conn:
        await service.get_blueprint(conn, name)  # 404 before any expensive fetch
    archive, source, schema = await service.prepare_version(meta, archive)
    async with ctx.db.write() as conn:
        created = await service.add_version(
            conn, name, meta, archive, source, schema, principal.name
        )
    return JSONResponse(created, status_code=201)


@router.get("/{name}/versions/{version}", summary="One version (or `latest`)")
async def get_version(name: str, version: str, _: Viewer, ctx: Ctx) -> JSONResponse:
    async with ctx.db.read() as conn:
        row = await service.get_version(conn, name, version)
    return JSONResponse(service.version_json(row))


async def _multipart(request: Request, limit: int) -> tuple[service.VersionMetadata, bytes]:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + 1024 * 1024:
        raise PayloadTooLarge(f"upload is {declared} bytes; the archive limit is {limit}")
    form = await request.form(max_files=1, max_fields=4, max_part_size=1024 * 1024)
    upload, metadata = form.get("archive"), form.get("metadata")
    if not isinstance(upload, UploadFile):
        raise Unprocessable("multipart body needs a file part named 'archive' (.tar.gz)")
    if not isinstance(metadata, str):
        raise Unprocessable("multipart body needs a text field named 'metadata' (JSON)")
    archive = await upload.read(limit + 1)
    if len(archive) > limit:
        raise PayloadTooLarge(f"archive exceeds the limit of {limit} bytes")
    try:
        meta = service.VersionMetadata.model_validate_json(metadata)
    except ValidationError as exc:
        raise Unprocessable(f"invalid metadata: {describe(exc)}") from exc
    return meta, archive
