"""Storage helpers on real SQLite and PostgreSQL."""

from __future__ import annotations

from terraplane.store.database import Database
from terraplane.store.tables import drift_results
from terraplane.store.types import utcnow
from terraplane.store.upsert import insert_or_ignore


async def test_insert_or_ignore_reports_whether_it_inserted(db: Database) -> None:
    row = {"workspace": "w", "status": "ok", "checked_at": utcnow()}
    async with db.write() as conn:
        assert await insert_or_ignore(conn, drift_results, row) is True
        assert await insert_or_ignore(conn, drift_results, row) is False
