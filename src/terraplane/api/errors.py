"""One mapping from errors to HTTP answers: `{"detail": ...}` with the error's status."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from terraplane.api.auth import STATE_PREFIX
from terraplane.domain.errors import Locked, NotAuthenticated, TerraplaneError
from terraplane.observability.logs import get_logger, request_id_var

log = get_logger(__name__)


def error_response(exc: TerraplaneError, path: str) -> JSONResponse:
    """A user's error as `{"detail": ...}` with its status."""
    if exc.status_code >= 500:
        log.error("server error", error=str(exc), path=path)
    body: dict[str, object] = {"detail": str(exc)}
    if isinstance(exc, Locked):
        # Terraform reads the holder's lock information from the body of a 423.
        body = {**exc.holder, "detail": str(exc)}
    headers = {}
    if isinstance(exc, NotAuthenticated):
        headers["WWW-Authenticate"] = (
            'Basic realm="terraplane"' if path.startswith(STATE_PREFIX) else "Bearer"
        )
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


def unexpected_response(path: str) -> JSONResponse:
    """A bug: logged with its traceback, answered 500 with the request id to look it up."""
    log.exception("unhandled error", path=path)
    return JSONResponse(
        {"detail": "internal server error", "request_id": request_id_var.get()}, status_code=500
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TerraplaneError)
    async def _known(request: Request, exc: TerraplaneError) -> JSONResponse:
        return error_response(exc, request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return unexpected_response(request.url.path)
