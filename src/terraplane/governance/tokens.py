"""API tokens: created and shown once, stored as a sha256 hash, revocable, optionally scoped.

A token is `tp_` + 43 url-safe characters (256 random bits). Only its hash and its first
characters (to recognise it in a list) are stored.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from terraplane.domain.errors import Conflict, InvalidInput, NotAuthenticated, NotFound
from terraplane.domain.roles import Role
from terraplane.store.tables import api_tokens
from terraplane.store.types import utcnow
from terraplane.store.upsert import insert_returning

TOKEN_PREFIX = "tp_"  # noqa: S105 - a prefix, not a secret
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:/-]{0,127}$")
# last_used_at is informative; writing it on every request would make reads into writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    """Who is making a request."""

    token_id: int
    name: str
    role: Role
    state_scope: str | None = None
    # last_used_at is older than LAST_USED_RESOLUTION: the caller records the use (a write).
    touch_due: bool = False

    def may_touch_state(self, state_name: str) -> bool:
        return self.state_scope is None or self.state_scope == state_name


@dataclass(frozen=True)
class TokenRecord:
    id: int
    name: str
    role: Role
    prefix: str
    state_scope: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class PrincipalCache:
    """Recently authenticated tokens, kept for `ttl` seconds to spare the hot paths a query.

    A revoked or expired token keeps working for at most `ttl` seconds on an instance that has
    it cached (0 turns the cache off). Entries are keyed by the token's hash, never the secret.
    """

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Principal]] = {}

    def get(self, secret: str) -> Principal | None:
        if self.ttl <= 0:
            return None
        entry = self._entries.get(hash_token(secret))
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, secret: str, principal: Principal) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[hash_token(secret)] = (time.monotonic() + self.ttl, principal)

    def forget(self, token_id: int) -> None:
        self._entries = {k: v for k, v in self._entries.items() if v[1].token_id != token_id}


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def validate_token_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidInput(
            f"token name {name!r} must be 1-128 letters, digits or . _ @ : / - "
            "and start with a letter or digit"
        )
    return name


async def create_token(
    conn: AsyncConnection,
    name: str,
    role: Role,
    *,
    state_scope: str | None = None,
    ttl: timedelta | None = None,
) -> tuple[str, TokenRecord]:
    """Create a token; return the secret (shown once) and its record."""
    validate_token_name(name)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    values = {
        "name": name,
        "role": role.value,
        "token_hash": hash_token(secret),
        "prefix": secret[:10],
        "state_scope": state_scope,
        "created_at": now,
        "expires_at": now + ttl if ttl else None,
    }
    row = await insert_returning(conn, api_tokens, values)
    if row is None:
        raise Conflict(f"a token named {name!r} already exists")
    return secret, _record(row)


async def list_tokens(conn: AsyncConnection, include_revoked: bool = False) -> list[TokenRecord]:
    query = select(api_tokens).order_by(api_tokens.c.id)
    if not include_revoked:
        query = query.where(api_tokens.c.revoked_at.is_(None))
    return [_record(r) for r in (await conn.execute(query)).all()]


async def revoke_token(conn: AsyncConnection, name: str) -> TokenRecord:
    row = (
        await conn.execute(
            update(api_tokens)
            .where(api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
            .returning(api_tokens)
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"no active token named {name!r}")
    return _record(row)


async def authenticate(conn: AsyncConnection, secret: str) -> Principal:
    """The principal behind a token secret, or NotAuthenticated (revoked, expired, unknown).

    Read-only, so it runs in a read transaction; see `Principal.touch_due`.
    """
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 100:
        raise NotAuthenticated("the token is not a Terraplane API token")
    row = (
        await conn.execute(select(api_tokens).where(api_tokens.c.token_hash == hash_token(secret)))
    ).one_or_none()
    now = utcnow()
    if row is None or row.revoked_at is not None:
        raise NotAuthenticated("the token is unknown or revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise NotAuthenticated("the token has expired")
    return Principal(
        token_id=row.id,
        name=row.name,
        role=Role(row.role),
        state_scope=row.state_scope,
        touch_due=row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION,
    )


async def touch_token(conn: AsyncConnection, token_id: int) -> None:
    await conn.execute(
        update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=utcnow())
    )


def _record(row: object) -> TokenRecord:
    m = row._mapping  # type: ignore[attr-defined]
    return TokenRecord(
        id=m["id"],
        name=m["name"],
        role=Role(m["role"]),
        prefix=m["prefix"],
        state_scope=m["state_scope"],
        created_at=m["created_at"],
        expires_at=m["expires_at"],
        revoked_at=m["revoked_at"],
        last_used_at=m["last_used_at"],
    )
