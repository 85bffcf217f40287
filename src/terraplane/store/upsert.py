"""INSERT ... ON CONFLICT DO NOTHING, spelled for whichever database the connection is on."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, literal
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


async def insert_or_ignore(conn: AsyncConnection, table: Table, values: dict[str, Any]) -> bool:
    """Insert a row unless one with the same key exists; True when a row was inserted."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    # RETURNING, not rowcount: psycopg reports a rowcount for a skipped conflicting row too.
    stmt = dialect.insert(table).values(values).on_conflict_do_nothing().returning(literal(1))
    return (await conn.execute(stmt)).first() is not None


async def insert_returning(conn: AsyncConnection, table: Table, values: dict[str, Any]) -> Any:
    """Insert a row and return it; None when a row with the same unique key exists.

    Use this, not a caught IntegrityError, to detect duplicates: on SQLite a statement that
    fails inside a write transaction left the database locked for other writers (measured: 30 s
    stalls until the busy timeout, with concurrent writers), and `ON CONFLICT DO NOTHING` never
    fails. Foreign keys must be checked before (they still raise)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(values).on_conflict_do_nothing().returning(table)
    return (await conn.execute(stmt)).first()
