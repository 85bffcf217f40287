"""GitHub: the webhook endpoint, and the deliveries it received."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from terraplane.api.auth import require
from terraplane.api.bodies import read_body
from terraplane.api.context import AppContext, app_context
from terraplane.api.hotpaths import HotHandler
from terraplane.domain.errors import NotAuthenticated, Unavailable
from terraplane.domain.roles import Role
from terraplane.github import signatures
from terraplane.governance.tokens import Principal
from terraplane.pr import intake
from terraplane.store.tables import github_deliveries, github_installations, github_repositories

router = APIRouter(tags=["github"])

Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Ctx = Annotated[AppContext, Depends(app_context)]


async def receive_webhook(request: Request, ctx: AppContext) -> JSONResponse:
    """Verify, store (with its processing job) and acknowledge one delivery."""
    secrets = ctx.settings.webhook_secrets
    if not secrets:
        raise Unavailable(
            "GitHub webhooks are not configured here: set TERRAPLANE_GITHUB_WEBHOOK_SECRET"
        )
    body = await read_body(request, ctx.settings.github_webhook_max_bytes)
    if not signatures.verify(body, request.headers.get("x-hub-signature-256"), secrets):
        raise NotAuthenticated("the X-Hub-Signature-256 signature is missing or does not match")
    delivery = intake.parse_delivery(
        request.headers.get("x-github-delivery"),
        request.headers.get("x-github-event"),
        request.headers.get("content-type", ""),
        body,
    )
    if delivery.event == "ping":
        return JSONResponse({"delivery": delivery.id, "status": "pong"}, status_code=200)
    created = await intake.record(ctx.db, delivery)
    if not created:
        return JSONResponse({"delivery": delivery.id, "status": "duplicate"}, status_code=200)
    ctx.wake_workers()
    return JSONResponse({"delivery": delivery.id, "status": "accepted"}, status_code=202)


@router.post(
    "/webhooks/github",
    summary="GitHub webhook deliveries (202 stored; 200 for a repeated delivery or a ping)",
    status_code=202,
)
async def webhook(request: Request, ctx: Ctx) -> JSONResponse:
    """Authenticated by `X-Hub-Signature-256` (HMAC-SHA256 of the body with a webhook secret);
    a missing or wrong signature is 401 and nothing is stored. A delivery is stored, with the
    job that processes it, before the answer. (Served as a hot path: `api.hotpaths`.)"""
    return await receive_webhook(request, ctx)


def hot_path(method: str, path: str) -> HotHandler | None:
    return receive_webhook if (method, path) == ("POST", "/webhooks/github") else None


@router.get("/api/v1/github/deliveries", summary="The latest webhook deliveries, newest first")
async def deliveries(_: Viewer, ctx: Ctx, limit: int = 100) -> JSONResponse:
    async with ctx.db.read() as conn:
        rows = (
            await conn.execute(
                select(
                    github_deliveries.c.id,
                    github_deliveries.c.event,
                    github_deliveries.c.action,
                    github_deliveries.c.repository,
                    github_deliveries.c.status,
                    github_deliveries.c.error,
                    github_deliveries.c.received_at,
                    github_deliveries.c.processed_at,
                )
                .order_by(github_deliveries.c.received_at.desc())
                .limit(max(1, min(limit, 1000)))
            )
        ).all()
    return JSONResponse(
        {
            "deliveries": [
                {
                    "id": r.id,
                    "event": r.event,
                    "action": r.action,
                    "repository": r.repository,
                    "status": r.status,
                    "error": r.error,
                    "received_at": r.received_at.isoformat(),
                    "processed_at": r.processed_at.isoformat() if r.processed_at else None,
                }
                for r in rows
            ]
        }
    )


@router.get("/api/v1/github/repositories", summary="Repositories the GitHub App is installed on")
async def repositories(_: Viewer, ctx: Ctx) -> JSONResponse:
    async with ctx.db.read() as conn:
        rows = (
            await conn.execute(
                select(
                    github_repositories.c.id,
                    github_repositories.c.full_name,
                    github_repositories.c.installation_id,
                    github_installations.c.account,
                    github_installations.c.suspended,
                )
                .join(
                    github_installations,
                    github_installations.c.id == github_repositories.c.installation_id,
                )
                .order_by(github_repositories.c.full_name)
            )
        ).all()
    return JSONResponse(
        {
            "repositories": [
                {
                    "id": r.id,
                    "full_name": r.full_name,
                    "installation_id": r.installation_id,
                    "account": r.account,
                    "suspended": r.suspended,
                }
                for r in rows
            ]
        }
    )
