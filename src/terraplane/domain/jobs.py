"""The durable job: its states and the retry policy."""

from __future__ import annotations

import enum

from terraplane.domain.transitions import check_transition


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in _FINAL


_FINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})

# RUNNING -> RUNNING is a re-claim after an expired lease; RUNNING -> QUEUED is a retry or a
# job handed back by a worker that shuts down.
JOB_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED}),
    JobStatus.RUNNING: frozenset(
        {
            JobStatus.RUNNING,
            JobStatus.QUEUED,
            JobStatus.SUCCEEDED,
            JobStatus.FAILED,
            JobStatus.CANCELLED,
        }
    ),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}


def transition_job(current: JobStatus, target: JobStatus) -> JobStatus:
    return check_transition(JOB_TRANSITIONS, current, target)


def retry_delay_seconds(attempt: int, base: float = 2.0, cap: float = 300.0) -> float:
    """Exponential backoff after the `attempt`-th failed try (1-based), capped."""
    return float(min(cap, base * (2 ** max(0, attempt - 1))))
