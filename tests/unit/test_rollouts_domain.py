"""Wave planning and the rollout and deployment state machines."""

from __future__ import annotations

import itertools

import pytest
from pydantic import ValidationError

from terraplane.domain.deployments import DeploymentStatus, transition_deployment
from terraplane.domain.rollouts import RolloutStatus, WaveSpec, plan_waves, transition_rollout
from terraplane.domain.transitions import InvalidTransition


def waves(*specs: dict[str, float]) -> list[WaveSpec]:
    return [WaveSpec(**s) for s in specs]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "total,specs,sizes",
    [
        (18, [{"count": 1}, {"percent": 50}, {"percent": 100}], [1, 8, 9]),
        (10, [{"count": 3}], [10]),  # the remainder joins the last wave
        (3, [{"count": 5}, {"percent": 100}], [3, 0]),
        (7, [{"percent": 10}, {"percent": 60}], [1, 6]),
        (
            1000,
            [{"count": 1}, {"percent": 10}, {"percent": 50}, {"percent": 100}],
            [1, 99, 400, 500],
        ),
    ],
)
def test_plan_waves(total: int, specs: list[dict[str, float]], sizes: list[int]) -> None:
    assert plan_waves(total, waves(*specs)) == sizes
    assert sum(sizes) == total


def test_a_wave_has_count_or_percent() -> None:
    for bad in ({}, {"count": 1, "percent": 5}, {"percent": 0}, {"count": 0}):
        with pytest.raises(ValidationError):
            WaveSpec(**bad)


ALLOWED_ROLLOUT = {
    ("pending", "running"),
    ("pending", "paused"),
    ("pending", "succeeded"),
    ("pending", "halted"),
    ("pending", "cancelled"),
    ("running", "paused"),
    ("running", "succeeded"),
    ("running", "halted"),
    ("running", "cancelled"),
    ("paused", "running"),
    ("paused", "cancelled"),
}


@pytest.mark.parametrize("current,target", list(itertools.product(RolloutStatus, RolloutStatus)))
def test_rollout_transition_matrix(current: RolloutStatus, target: RolloutStatus) -> None:
    if (current.value, target.value) in ALLOWED_ROLLOUT:
        assert transition_rollout(current, target) is target
    else:
        with pytest.raises(InvalidTransition):
            transition_rollout(current, target)


def test_destroyed_deployments_stay_destroyed() -> None:
    for target in DeploymentStatus:
        with pytest.raises(InvalidTransition):
            transition_deployment(DeploymentStatus.DESTROYED, target)
    assert transition_deployment(DeploymentStatus.APPLYING, DeploymentStatus.APPLYING)
