"""The migrations build exactly the schema the code describes (`store.tables`), on both
databases: a column added to a table without its migration (or the reverse) fails here, not in
production on the first query that touches it."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from terraplane.store.database import normalize_url
from terraplane.store.migrate import upgrade
from terraplane.store.tables import metadata


def test_migrations_match_the_tables(database_url: str) -> None:
    upgrade(database_url)
    engine = create_engine(normalize_url(database_url, asynchronous=False))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": False, "compare_server_default": False}
            )
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert differences == []
