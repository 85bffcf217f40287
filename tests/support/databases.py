"""Test databases: a fresh SQLite file or a fresh PostgreSQL schema per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

POSTGRES_URL = os.environ.get(
    "TERRAPLANE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("TERRAPLANE_TEST_REQUIRE_POSTGRES") == "1"
_available: bool | None = None
SKIPPED_POSTGRES: list[str] = []


def postgres_available() -> bool:
    global _available
    if _available is None:
        try:
            with psycopg.connect(POSTGRES_URL, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            _available = True
        except psycopg.Error:
            _available = False
    return _available


def require_postgres(nodeid: str = "") -> None:
    if postgres_available():
        return
    if REQUIRE_POSTGRES:
        pytest.fail(f"PostgreSQL is required here but {POSTGRES_URL} does not answer")
    SKIPPED_POSTGRES.append(nodeid)
    pytest.skip(f"PostgreSQL at {POSTGRES_URL} is not running: PostgreSQL tests did not run")


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A new schema; yields a URL whose connections use it as their search_path."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextmanager
def database_url_for(backend: str, tmp_path: Path, nodeid: str = "") -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'terraplane.db'}"
        return
    require_postgres(nodeid)
    with postgres_schema() as url:
        yield url
