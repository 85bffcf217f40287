"""Every from -> to pair of every state machine: allowed exactly where the table says."""

from __future__ import annotations

import itertools

import pytest

from terraplane.domain.jobs import JOB_TRANSITIONS, JobStatus, transition_job
from terraplane.domain.runs import RUN_TRANSITIONS, RunStatus, transition_run
from terraplane.domain.transitions import InvalidTransition

EXPECTED_JOB = {
    ("queued", "running"),
    ("queued", "cancelled"),
    ("running", "running"),
    ("running", "queued"),
    ("running", "succeeded"),
    ("running", "failed"),
    ("running", "cancelled"),
}
EXPECTED_RUN = {
    ("queued", "running"),
    ("queued", "failed"),
    ("queued", "cancelled"),
    ("running", "running"),
    ("running", "succeeded"),
    ("running", "failed"),
    ("running", "cancelled"),
}


@pytest.mark.parametrize("current,target", list(itertools.product(JobStatus, JobStatus)))
def test_job_transition_matrix(current: JobStatus, target: JobStatus) -> None:
    if (current.value, target.value) in EXPECTED_JOB:
        assert transition_job(current, target) is target
    else:
        with pytest.raises(InvalidTransition, match=f"{current.value!r} to {target.value!r}"):
            transition_job(current, target)


@pytest.mark.parametrize("current,target", list(itertools.product(RunStatus, RunStatus)))
def test_run_transition_matrix(current: RunStatus, target: RunStatus) -> None:
    if (current.value, target.value) in EXPECTED_RUN:
        assert transition_run(current, target) is target
    else:
        with pytest.raises(InvalidTransition):
            transition_run(current, target)


def test_final_states_have_no_way_out() -> None:
    for status in JobStatus:
        assert status.final == (not JOB_TRANSITIONS[status])
    for run_status in RunStatus:
        assert run_status.final == (not RUN_TRANSITIONS[run_status])
