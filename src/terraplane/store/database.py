"""The database handle: one async engine, `read()` and `write()` transactions, a ping."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from terraplane.domain.errors import InvalidInput

SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalize_url(url: str, *, asynchronous: bool) -> URL:
    """`sqlite:///…` / `postgresql://…` as users write them -> the driver URL we use."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError, a bare Exception subclass
        raise InvalidInput(f"TERRAPLANE_DATABASE_URL {url!r} is not a database URL") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        driver = "aiosqlite" if asynchronous else "pysqlite"
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    elif backend in ("postgresql", "postgres"):
        driver = "psycopg"
        backend = "postgresql"
    else:
        raise InvalidInput(
            f"TERRAPLANE_DATABASE_URL must start with sqlite:/// or postgresql://, not {backend}://"
        )
    return parsed.set(drivername=f"{backend}+{driver}")


def configure_sqlite(sync_engine: Any) -> None:
    """WAL, a busy timeout, foreign keys; and transactions we begin ourselves.

    pysqlite's own transaction handling begins lazily and DEFERRED, so two writers can deadlock
    upgrading their read locks. We switch it off and emit BEGIN (reads) or BEGIN IMMEDIATE
    (writes: they queue for the write lock up front instead of failing half-way).
    """

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "BEGIN")
        conn.exec_driver_sql(mode)


class Database:
    """Owns the engine. `write()` for transactions that change rows, `read()` for the rest."""

    def __init__(self, url: str, *, pool_size: int = 20, echo: bool = False) -> None:
        self.url = normalize_url(url, asynchronous=True)
        self.dialect = self.url.get_backend_name()
        # A small overflow only: a PostgreSQL connection costs a process fork, and under load an
        # overflow connection is opened and closed for every request that needs it. Waiting a
        # moment for a pooled connection is far cheaper.
        kwargs: dict[str, Any] = {
            "echo": echo,
            "pool_pre_ping": False,
            "pool_size": pool_size,
            "max_overflow": max(2, pool_size // 4),
            "pool_timeout": 30,
        }
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        # SQLite has one writer. Writers of this process queue here, in order, instead of in
        # SQLite's busy handler, which sleeps and retries (up to 100 ms a time): that made tail
        # latencies of concurrent writes seconds long. Other processes still meet the busy
        # handler.
        self._sqlite_writer: asyncio.Lock | None = None
        if not self.is_postgres:
            configure_sqlite(self.engine.sync_engine)
            self._sqlite_writer = asyncio.Lock()

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        if self._sqlite_writer is None:
            async with self.engine.connect() as conn, conn.begin():
                yield conn
            return
        try:
            await asyncio.wait_for(self._sqlite_writer.acquire(), SQLITE_BUSY_TIMEOUT_MS / 1000)
        except TimeoutError:
            raise OperationalError(
                "BEGIN IMMEDIATE", None, Exception("database is locked (waited for a writer)")
            ) from None
        try:
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
                async with conn.begin():
                    yield conn
        finally:
            self._sqlite_writer.release()

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """PostgreSQL only: every statement commits on its own, for a write that is one
        statement (no BEGIN/COMMIT round trips)."""
        if not self.is_postgres:
            raise RuntimeError("autocommit() is for PostgreSQL; use write() on SQLite")
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """For reads. On PostgreSQL each statement runs in autocommit (its own snapshot), which
        saves the BEGIN/COMMIT round trips on the hot read paths; use `write()` where several
        reads must see one snapshot."""
        async with self.engine.connect() as conn:
            if self.is_postgres:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            async with conn.begin():
                yield conn

    async def ping(self, timeout: float) -> None:
        """Raise when the database does not answer a trivial query within `timeout` seconds."""

        async def _ping() -> None:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

        await asyncio.wait_for(_ping(), timeout)

    async def dispose(self) -> None:
        await self.engine.dispose()
