"""Shared pieces of the benchmarks: databases, a server process, percentiles."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.databases import postgres_available, postgres_schema


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


@contextmanager
def bench_database(backend: str, tmp: Path) -> Iterator[str | None]:
    """A fresh database URL, or None when that backend is not available here."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'bench.db'}"
    elif postgres_available():
        with postgres_schema() as url:
            yield url
    else:
        yield None


def row(label: str, **figures: object) -> str:
    parts = [f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()]
    return f"{label:<34} " + "  ".join(parts)
