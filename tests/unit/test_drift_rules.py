"""Drift schedules: cron validation, firing times, the spreading window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from terraplane.domain import drift
from terraplane.domain.errors import Unprocessable

T0 = datetime(2026, 11, 22, 10, 7, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "expr,problem",
    [
        ("* * * *", "five fields"),
        ("0 0 * * * *", "five fields"),
        ("61 * * * *", "not a valid cron"),
        ("a b c d e", "not a valid cron"),
    ],
)
def test_bad_cron_is_refused_naming_the_problem(expr: str, problem: str) -> None:
    with pytest.raises(Unprocessable, match=problem):
        drift.validate_cron(expr)


def test_cron_is_normalised() -> None:
    assert drift.validate_cron("  */15   * * * 1-5 ") == "*/15 * * * 1-5"


def test_next_fire_is_strictly_after_and_in_utc() -> None:
    assert drift.next_fire("*/15 * * * *", T0) == T0.replace(minute=15, second=0)
    on_the_dot = T0.replace(minute=15, second=0)
    assert drift.next_fire("*/15 * * * *", on_the_dot) == on_the_dot + timedelta(minutes=15)
    assert drift.next_fire("0 3 * * *", T0) == datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


def test_window_is_half_the_period_at_most_an_hour_unless_set() -> None:
    assert drift.window("*/10 * * * *", T0, None) == timedelta(minutes=5)
    assert drift.window("0 3 * * *", T0, None) == timedelta(hours=1)
    assert drift.window("0 3 * * *", T0, 90) == timedelta(seconds=90)
    assert drift.window("* * * * *", T0, 0) == timedelta(0)


def test_window_bounds() -> None:
    assert drift.validate_window(None) is None
    assert drift.validate_window(0) == 0
    with pytest.raises(Unprocessable, match="window_seconds"):
        drift.validate_window(-1)
    with pytest.raises(Unprocessable, match="window_seconds"):
        drift.validate_window(8 * 24 * 3600)


def test_checks_are_spread_evenly_over_the_window() -> None:
    offsets = drift.spread(4, timedelta(minutes=60))
    assert offsets == [timedelta(minutes=m) for m in (0, 15, 30, 45)]
    assert drift.spread(0, timedelta(minutes=60)) == []
    assert drift.spread(3, timedelta(0)) == [timedelta(0)] * 3
