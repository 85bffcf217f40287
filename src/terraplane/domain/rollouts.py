"""Rollouts: waves from a spec, and the rollout state machine."""

from __future__ import annotations

import enum
import math

from pydantic import BaseModel, Field, model_validator

from terraplane.domain.errors import Unprocessable
from terraplane.domain.transitions import check_transition


class WaveSpec(BaseModel):
    """`count`: this wave's size; `percent`: the cumulative share of the selection reached by
    the end of this wave."""

    count: int | None = Field(default=None, ge=1)
    percent: float | None = Field(default=None, gt=0, le=100)
    max_concurrency: int = Field(default=1, ge=1, le=1000)
    soak_seconds: float = Field(default=0, ge=0, le=7 * 24 * 3600)

    @model_validator(mode="after")
    def _one_size(self) -> WaveSpec:
        if (self.count is None) == (self.percent is None):
            raise ValueError("a wave has either 'count' or 'percent'")
        return self


def plan_waves(total: int, waves: list[WaveSpec]) -> list[int]:
    """Wave sizes for `total` deployments. What the waves leave over joins the last wave."""
    if not waves:
        raise Unprocessable("a rollout needs at least one wave")
    sizes, reached = [], 0
    for wave in waves:
        if wave.count is not None:
            size = min(wave.count, total - reached)
        else:
            assert wave.percent is not None
            size = max(0, min(total, math.ceil(total * wave.percent / 100)) - reached)
        sizes.append(size)
        reached += size
    sizes[-1] += total - reached
    return sizes


class RolloutStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    HALTED = "halted"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in (RolloutStatus.SUCCEEDED, RolloutStatus.HALTED, RolloutStatus.CANCELLED)


_ENDS = frozenset({RolloutStatus.SUCCEEDED, RolloutStatus.HALTED, RolloutStatus.CANCELLED})
ROLLOUT_TRANSITIONS: dict[RolloutStatus, frozenset[RolloutStatus]] = {
    RolloutStatus.PENDING: _ENDS | {RolloutStatus.RUNNING, RolloutStatus.PAUSED},
    RolloutStatus.RUNNING: _ENDS | {RolloutStatus.PAUSED},
    RolloutStatus.PAUSED: frozenset({RolloutStatus.RUNNING, RolloutStatus.CANCELLED}),
    RolloutStatus.SUCCEEDED: frozenset(),
    RolloutStatus.HALTED: frozenset(),
    RolloutStatus.CANCELLED: frozenset(),
}


def transition_rollout(current: RolloutStatus, target: RolloutStatus) -> RolloutStatus:
    return check_transition(ROLLOUT_TRANSITIONS, current, target)


class TargetStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    SKIPPED = "skipped"

    @property
    def done(self) -> bool:
        return self not in (TargetStatus.PENDING, TargetStatus.RUNNING)

    @property
    def failed(self) -> bool:
        return self in (TargetStatus.FAILED, TargetStatus.ROLLED_BACK)
