"""API tokens (admin only). The secret is in the create answer and nowhere else, ever."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from terraplane.api.auth import require
from terraplane.api.bodies import json_body, parse_body
from terraplane.api.context import AppContext, app_context
from terraplane.domain.roles import Role
from terraplane.governance.tokens import (
    Principal,
    TokenRecord,
    create_token,
    list_tokens,
    revoke_token,
)

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])

Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
Ctx = Annotated[AppContext, Depends(app_context)]


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    role: Role


def token_json(record: TokenRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "role": record.role.value,
        "prefix": record.prefix,
        "state_scope": record.state_scope,
        "created_at": record.created_at.isoformat(),
        "expires_at": record.expires_at.isoformat() if record.expires_at else None,
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
        "last_used_at": record.last_used_at.isoformat() if record.last_used_at else None,
    }


@router.get("", summary="List active tokens")
async def get_tokens(_: Admin, ctx: Ctx) -> JSONResponse:
    async with ctx.db.read() as conn:
        records = await list_tokens(conn)
    return JSONResponse({"tokens": [token_json(r) for r in records]})


@router.post(
    "",
    summary="Create a token; the answer holds the secret once",
    status_code=201,
    openapi_extra=json_body(TokenCreate),
)
async def post_token(request: Request, _: Admin, ctx: Ctx) -> JSONResponse:
    """Body: `{"name", "role"}`."""
    body = await parse_body(request, TokenCreate, ctx.settings.request_max_bytes)
    async with ctx.db.write() as conn:
        secret, record = await create_token(conn, body.name, body.role)
    return JSONResponse({**token_json(record), "token": secret}, status_code=201)


@router.delete("/{name}", summary="Revoke a token")
async def delete_token(name: str, _: Admin, ctx: Ctx) -> JSONResponse:
    async with ctx.db.write() as conn:
        record = await revoke_token(conn, name)
    ctx.principals.forget(record.id)
    return JSONResponse(token_json(record))
