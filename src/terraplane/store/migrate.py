"""`terraplane db upgrade`: bring the schema to the newest revision, exactly once.

Several processes may start at once against one PostgreSQL: they serialize on an advisory lock,
so the first migrates and the others find nothing left to do.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection

from terraplane.store.database import configure_sqlite, normalize_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant; it names "the Terraplane schema migration" among a database's advisory locks.
MIGRATION_LOCK_KEY = 0x7E77A91A


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def upgrade(url: str) -> tuple[str | None, str | None]:
    """Migrate to head; return (revision before, revision after)."""
    engine = create_engine(normalize_url(url, asynchronous=False))
    if engine.dialect.name == "sqlite":
        configure_sqlite(engine)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
                conn.commit()
            try:
                before = current_revision(conn)
                conn.commit()
                config = alembic_config()
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
                conn.commit()
                after = current_revision(conn)
                conn.commit()
            finally:
                if engine.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
                    conn.commit()
        return before, after
    finally:
        engine.dispose()
