"""INSERT ... ON CONFLICT DO NOTHING, on PostgreSQL and SQLite alike.

SQLAlchemy compiles a statement with an ON CONFLICT clause anew on every execution (it has no
cache key), which cost more CPU than the round trip on hot paths (webhook intake, every job
with an idempotency key). These statements are written as text once per table and column set,
with typed bind parameters, so executing one only binds values.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Table, TextClause, bindparam, text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.selectable import TextualSelect


@functools.lru_cache(maxsize=256)
def _statement(
    dialect: Dialect, table: Table, columns: tuple[str, ...], whole: bool
) -> TextClause | TextualSelect:
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(c) for c in columns)
    values = ", ".join(f":{c}" for c in columns)
    returning = ", ".join(quote(c.name) for c in table.c) if whole else "1"
    stmt = text(
        f"INSERT INTO {quote(table.name)} ({names}) VALUES ({values}) "  # noqa: S608
        f"ON CONFLICT DO NOTHING RETURNING {returning}"
    ).bindparams(*(bindparam(c, type_=table.c[c].type) for c in columns))
    return stmt.columns(*table.c) if whole else stmt


async def insert_or_ignore(conn: AsyncConnection, table: Table, values: dict[str, Any]) -> bool:
    """Insert a row unless one with the same key exists; True when a row was inserted."""
    # RETURNING, not rowcount: psycopg reports a rowcount for a skipped conflicting row too.
    stmt = _statement(conn.dialect, table, tuple(values), False)
    return (await conn.execute(stmt, values)).first() is not None


async def insert_returning(conn: AsyncConnection, table: Table, values: dict[str, Any]) -> Any:
    """Insert a row and return it; None when a row with the same unique key exists.

    Use this, not a caught IntegrityError, to detect duplicates: on SQLite a statement that
    fails inside a write transaction left the database locked for other writers (measured: 30 s
    stalls until the busy timeout, with concurrent writers), and `ON CONFLICT DO NOTHING` never
    fails. Foreign keys must be checked before (they still raise)."""
    stmt = _statement(conn.dialect, table, tuple(values), True)
    return (await conn.execute(stmt, values)).first()
