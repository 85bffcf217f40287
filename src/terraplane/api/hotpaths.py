"""Hot paths: the few endpoints whose cost per request matters most, dispatched before FastAPI.

FastAPI's routing (matching every route in turn), its dependency resolution and its middleware
cost more CPU than the work of a webhook intake (measured: about a third of the server's CPU
per delivery). A hot path is served by the same function its documented FastAPI route calls,
with the same error format; only the dispatch is shorter.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from terraplane.api.context import AppContext
from terraplane.api.errors import error_response, unexpected_response
from terraplane.domain.errors import TerraplaneError

HotHandler = Callable[[Request, AppContext], Awaitable[Response]]


@dataclass(frozen=True)
class _Route:
    """What the metrics middleware reads from `scope["route"]`."""

    path: str


class HotPaths:
    def __init__(
        self, app: ASGIApp, ctx: AppContext, routes: Mapping[tuple[str, str], HotHandler]
    ) -> None:
        self.app = app
        self.ctx = ctx
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = (
            self.routes.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        )
        if handler is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = _Route(scope["path"])
        try:
            response = await handler(Request(scope, receive), self.ctx)
        except TerraplaneError as exc:
            response = error_response(exc, scope["path"])
        except Exception:
            response = unexpected_response(scope["path"])
        await response(scope, receive, send)
