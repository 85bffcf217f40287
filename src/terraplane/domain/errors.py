"""Errors that carry an HTTP-like meaning, raised by use cases and mapped once at the edge."""

from __future__ import annotations


class TerraplaneError(Exception):
    """Base of every error Terraplane reports to a user. `str(err)` is one clear sentence."""

    status_code = 400


class InvalidInput(TerraplaneError):
    status_code = 400


class Unprocessable(TerraplaneError):
    status_code = 422


class NotAuthenticated(TerraplaneError):
    status_code = 401


class Forbidden(TerraplaneError):
    status_code = 403


class NotFound(TerraplaneError):
    status_code = 404


class Conflict(TerraplaneError):
    status_code = 409


class PayloadTooLarge(TerraplaneError):
    status_code = 413


class Locked(TerraplaneError):
    """The resource is locked by someone else; `holder` is their lock information."""

    status_code = 423

    def __init__(self, message: str, holder: dict[str, object]) -> None:
        super().__init__(message)
        self.holder = holder


class Unavailable(TerraplaneError):
    """This server cannot do it as configured (a feature without its settings)."""

    status_code = 503
