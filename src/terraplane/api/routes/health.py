"""`GET /health`: 200 when the database answers within the ping timeout, 503 otherwise."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from terraplane.api.context import AppContext, app_context

router = APIRouter(tags=["operations"])


@router.get("/health", summary="Liveness and database reachability")
async def health(ctx: AppContext = Depends(app_context)) -> JSONResponse:
    timeout = ctx.settings.db_ping_timeout_seconds
    try:
        await ctx.db.ping(timeout)
    except TimeoutError:
        reason = f"the database did not answer within {timeout:g}s"
    except (SQLAlchemyError, OSError) as exc:
        reason = f"the database is unreachable: {type(exc).__name__}"
    else:
        return JSONResponse({"status": "ok", "database": "ok"})
    return JSONResponse(
        {"status": "unavailable", "database": "error", "detail": reason}, status_code=503
    )
