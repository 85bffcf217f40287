"""Hot paths: the few endpoints whose cost per request matters most, dispatched before FastAPI.

FastAPI's routing (matching every route in turn), its dependency resolution and its middleware
cost more CPU than the work of a webhook intake (measured: about a third of the server's CPU
per delivery). A hot path is served by the same function its documented FastAPI route calls,
with the same error format; only the dispatch is shorter.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from terraplane.api.context import AppContext
from terraplane.api.errors import error_response, unexpected_response
from terraplane.domain.errors import TerraplaneError

HotHandler = Callable[[Request, AppContext], Awaitable[Response]]
# (method, path) -> the handler of a hot path, or None for FastAPI to route.
Resolver = Callable[[str, str], HotHandler | None]


@dataclass(frozen=True)
class _Route:
    """What the metrics middleware reads from `scope["route"]`."""

    path: str


def _template(path: str) -> str:
    """The route's path as the metrics label it (one label for every state)."""
    return "/api/v1/state/{name:path}" if path.startswith("/api/v1/state/") else path


class HotPaths:
    def __init__(self, app: ASGIApp, ctx: AppContext, resolvers: Sequence[Resolver]) -> None:
        self.app = app
        self.ctx = ctx
        self.resolvers = resolvers

    def _resolve(self, scope: Scope) -> HotHandler | None:
        if scope["type"] != "http":
            return None
        for resolve in self.resolvers:
            handler = resolve(scope["method"], scope["path"])
            if handler is not None:
                return handler
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self._resolve(scope)
        if handler is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = _Route(_template(scope["path"]))
        try:
            response = await handler(Request(scope, receive), self.ctx)
        except TerraplaneError as exc:
            response = error_response(exc, scope["path"])
        except Exception:
            response = unexpected_response(scope["path"])
        await response(scope, receive, send)
