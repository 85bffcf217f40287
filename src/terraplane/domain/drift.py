"""Drift schedules: cron arithmetic, the window checks are spread over, and retry deadlines.

Schedules are standard five-field cron expressions evaluated in UTC. After each firing, the
schedule's checks are spread evenly over a window instead of all starting at once: the window
is set per schedule, or half the schedule's period, at most an hour. A check that finds its
workspace busy or locked is retried every `retry` until the next firing; then it is skipped.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from croniter import croniter

from terraplane.domain.errors import Unprocessable

MAX_AUTO_WINDOW = timedelta(hours=1)
MAX_WINDOW = timedelta(days=7)


def validate_cron(expr: str) -> str:
    """The expression, normalised; 422 naming the problem when it is not five-field cron."""
    fields = expr.split()
    if len(fields) != 5:
        raise Unprocessable(
            f"cron {expr!r} must have five fields (minute hour day-of-month month day-of-week), "
            f"not {len(fields)}"
        )
    normalised = " ".join(fields)
    if not croniter.is_valid(normalised):
        raise Unprocessable(f"cron {expr!r} is not a valid cron expression")
    return normalised


def next_fire(expr: str, after: datetime) -> datetime:
    """The first firing strictly after `after` (an aware UTC datetime)."""
    fire: datetime = croniter(expr, after).get_next(datetime)
    return fire


def period(expr: str, after: datetime) -> timedelta:
    """The time between the next two firings."""
    first = next_fire(expr, after)
    return next_fire(expr, first) - first


def window(expr: str, fire_at: datetime, explicit_seconds: int | None) -> timedelta:
    """How long after `fire_at` the schedule's checks may start."""
    if explicit_seconds is not None:
        return timedelta(seconds=explicit_seconds)
    return min(period(expr, fire_at) / 2, MAX_AUTO_WINDOW)


def validate_window(seconds: int | None) -> int | None:
    if seconds is not None and not 0 <= seconds <= MAX_WINDOW.total_seconds():
        raise Unprocessable(
            f"window_seconds must be between 0 and {int(MAX_WINDOW.total_seconds())}, not {seconds}"
        )
    return seconds


def spread(count: int, span: timedelta) -> list[timedelta]:
    """Start offsets for `count` checks, evenly over `span` (the first at once)."""
    return [span * i / count for i in range(count)]
