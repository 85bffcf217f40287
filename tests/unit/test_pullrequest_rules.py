"""Pull-request rules: command and dirspace state machines, layered starts, apply
requirements."""

from __future__ import annotations

import pytest

from terraplane.domain.pullrequests import (
    COMMAND_TRANSITIONS,
    DIRSPACE_TRANSITIONS,
    CommandStatus,
    DirspaceStatus,
    PullFacts,
    Requirement,
    command_outcome,
    requirement_failures,
    startable,
    transition_command,
    transition_dirspace,
)
from terraplane.domain.transitions import InvalidTransition

P, R, S, F = (
    DirspaceStatus.PENDING,
    DirspaceStatus.RUNNING,
    DirspaceStatus.SUCCEEDED,
    DirspaceStatus.FAILED,
)


@pytest.mark.parametrize("current", list(DirspaceStatus))
@pytest.mark.parametrize("target", list(DirspaceStatus))
def test_dirspace_transitions_matrix(current: DirspaceStatus, target: DirspaceStatus) -> None:
    if target in DIRSPACE_TRANSITIONS[current]:
        assert transition_dirspace(current, target) is target
    else:
        with pytest.raises(InvalidTransition):
            transition_dirspace(current, target)


@pytest.mark.parametrize("current", list(CommandStatus))
@pytest.mark.parametrize("target", list(CommandStatus))
def test_command_transitions_matrix(current: CommandStatus, target: CommandStatus) -> None:
    if target in COMMAND_TRANSITIONS[current]:
        assert transition_command(current, target) is target
    else:
        with pytest.raises(InvalidTransition):
            transition_command(current, target)
    assert current.final == (current is not CommandStatus.RUNNING)


def test_one_layer_starts_up_to_the_parallelism() -> None:
    assert startable([0, 0, 0, 0], [P, P, P, P], 2) == ([0, 1], [])
    assert startable([0, 0, 0, 0], [S, R, P, P], 2) == ([2], [])
    assert startable([0, 0, 0, 0], [S, R, R, P], 2) == ([], [])


def test_layers_run_in_order_and_a_failure_skips_the_rest() -> None:
    layers = [0, 0, 1, 2]
    assert startable(layers, [P, P, P, P], 4) == ([0, 1], [])
    assert startable(layers, [S, R, P, P], 4) == ([], [])
    assert startable(layers, [S, S, P, P], 4) == ([2], [])
    assert startable(layers, [S, S, S, P], 4) == ([3], [])
    assert startable(layers, [S, F, P, P], 4) == ([], [2, 3])


def test_outcome_once_every_dirspace_is_final() -> None:
    assert command_outcome([S, R]) is None
    assert command_outcome([S, S]) is CommandStatus.SUCCEEDED
    assert command_outcome([S, DirspaceStatus.BLOCKED]) is CommandStatus.FAILED
    assert command_outcome([]) is CommandStatus.SUCCEEDED


def facts(**changes: object) -> PullFacts:
    values: dict[str, object] = {
        "head_sha": "a" * 40,
        "mergeable": True,
        "mergeable_state": "clean",
        "behind_by": 0,
        "approvers": ("alice",),
        "failing_checks": (),
    }
    values.update(changes)
    return PullFacts(**values)  # type: ignore[arg-type]


def test_requirements_that_hold() -> None:
    every = list(Requirement)
    assert requirement_failures(every, facts(), 1, "a" * 40) == []


def test_a_plan_of_the_head_is_always_required() -> None:
    assert requirement_failures([], facts(), 1, None) == [
        "it has no plan: comment `terraplane plan` first"
    ]
    (stale,) = requirement_failures([], facts(), 1, "b" * 40)
    assert "bbbbbbb" in stale and "plan again" in stale


@pytest.mark.parametrize(
    ("requirement", "changes", "problem"),
    [
        (Requirement.APPROVED, {"approvers": ()}, "approved: 0 of 1 required approval"),
        (Requirement.MERGEABLE, {"mergeable": False, "mergeable_state": "dirty"}, "says dirty"),
        (Requirement.MERGEABLE, {"mergeable": None}, "has not computed it yet"),
        (Requirement.UNDIVERGED, {"behind_by": 2}, "has 2 commit(s) the pull request lacks"),
        (Requirement.STATUS_CHECKS, {"failing_checks": ("ci (failure)",)}, "ci (failure)"),
    ],
)
def test_each_requirement_says_what_failed(
    requirement: Requirement, changes: dict[str, object], problem: str
) -> None:
    (failure,) = requirement_failures([requirement], facts(**changes), 1, "a" * 40)
    assert failure.startswith(requirement.value) and problem in failure


def test_approvals_count() -> None:
    assert requirement_failures([Requirement.APPROVED], facts(), 2, "a" * 40) == [
        "approved: 1 of 2 required approvals"
    ]
