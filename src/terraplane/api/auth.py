"""Authentication: `Authorization: Bearer TOKEN` everywhere, and HTTP basic auth with the token
as password under /api/v1/state/ (what Terraform's http backend sends)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable

from fastapi import Depends, Request

from terraplane.api.context import AppContext, app_context
from terraplane.domain.errors import Forbidden, NotAuthenticated
from terraplane.domain.roles import Role
from terraplane.governance.run_tokens import authenticate_run_token, is_run_token
from terraplane.governance.tokens import Principal, authenticate, touch_token

STATE_PREFIX = "/api/v1/state/"


def _secret_from(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise NotAuthenticated("missing Authorization header: send 'Bearer <token>'")
    scheme, _, credentials = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer" and credentials.strip():
        return credentials.strip()
    if scheme == "basic" and request.url.path.startswith(STATE_PREFIX):
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise NotAuthenticated("malformed basic credentials") from exc
        _user, sep, password = decoded.partition(":")
        if sep and password:
            return password
        raise NotAuthenticated("basic credentials must carry the API token as the password")
    raise NotAuthenticated("unsupported Authorization scheme: send 'Bearer <token>'")


async def current_principal(request: Request, ctx: AppContext = Depends(app_context)) -> Principal:
    return await authenticate_request(request, ctx)


async def authorize(request: Request, ctx: AppContext, role: Role) -> Principal:
    """The request's principal, when it holds `role` (or a higher one): 401/403 otherwise."""
    principal = await authenticate_request(request, ctx)
    if not principal.role.allows(role):
        raise Forbidden(
            f"this needs the {role.value} role; token {principal.name!r} has {principal.role.value}"
        )
    return principal


async def authenticate_request(request: Request, ctx: AppContext) -> Principal:
    """Who sent the request (a checked token, cached for a few seconds)."""
    secret = _secret_from(request)
    principal = ctx.principals.get(secret)
    if principal is None and is_run_token(secret):
        async with ctx.db.read() as conn:
            principal = await authenticate_run_token(conn, ctx.keyring, secret)
        ctx.principals.put(secret, principal)
    elif principal is None:
        async with ctx.db.read() as conn:
            principal = await authenticate(conn, secret)
        if principal.touch_due:
            async with ctx.db.write() as conn:
                await touch_token(conn, principal.token_id)
        ctx.principals.put(secret, principal)
    request.state.principal = principal
    return principal


def require(role: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits principals holding `role` (or a higher one)."""

    async def dependency(request: Request, ctx: AppContext = Depends(app_context)) -> Principal:
        return await authorize(request, ctx, role)

    return dependency
