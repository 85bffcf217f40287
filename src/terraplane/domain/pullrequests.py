"""Pull-request automation's states and rules, free of I/O.

A *command* is one plan or apply for one pull request (from autoplan, a comment or a merge); it
covers a set of dirspaces, each of which runs at most once for it. Apply requirements are judged
per dirspace from facts gathered from GitHub (`PullFacts`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from terraplane.domain.transitions import check_transition


class PullState(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    MERGED = "merged"


class Trigger(enum.StrEnum):
    AUTOPLAN = "autoplan"  # opened, synchronize, reopened, ready_for_review
    COMMENT = "comment"  # `terraplane plan|apply` in a comment
    MERGE = "merge"  # apply-on-merge


class CommandStatus(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # some dirspace failed, was blocked by a lock or skipped
    REFUSED = "refused"  # not allowed (permissions, apply requirements): nothing ran
    ERRORED = "errored"  # could not start (repo config, checkout, merge conflict)

    @property
    def final(self) -> bool:
        return self is not CommandStatus.RUNNING


COMMAND_TRANSITIONS: dict[CommandStatus, frozenset[CommandStatus]] = {
    CommandStatus.RUNNING: frozenset(
        {CommandStatus.SUCCEEDED, CommandStatus.FAILED, CommandStatus.ERRORED}
    ),
    CommandStatus.SUCCEEDED: frozenset(),
    CommandStatus.FAILED: frozenset(),
    CommandStatus.REFUSED: frozenset(),
    CommandStatus.ERRORED: frozenset(),
}


def transition_command(current: CommandStatus, target: CommandStatus) -> CommandStatus:
    return check_transition(COMMAND_TRANSITIONS, current, target)


class DirspaceStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for its layer or a free slot of the command
    RUNNING = "running"  # its run is queued or running
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"  # an earlier depends_on layer failed
    BLOCKED = "blocked"  # another pull request holds its lock

    @property
    def final(self) -> bool:
        return self not in (DirspaceStatus.PENDING, DirspaceStatus.RUNNING)

    @property
    def ok(self) -> bool:
        return self is DirspaceStatus.SUCCEEDED


DIRSPACE_TRANSITIONS: dict[DirspaceStatus, frozenset[DirspaceStatus]] = {
    DirspaceStatus.PENDING: frozenset(
        {
            DirspaceStatus.RUNNING,
            DirspaceStatus.SUCCEEDED,  # an apply of a plan without changes runs nothing
            DirspaceStatus.SKIPPED,
        }
    ),
    DirspaceStatus.RUNNING: frozenset(
        {DirspaceStatus.SUCCEEDED, DirspaceStatus.FAILED, DirspaceStatus.CANCELLED}
    ),
    DirspaceStatus.SUCCEEDED: frozenset(),
    DirspaceStatus.FAILED: frozenset(),
    DirspaceStatus.CANCELLED: frozenset(),
    DirspaceStatus.SKIPPED: frozenset(),
    DirspaceStatus.BLOCKED: frozenset(),
}


def transition_dirspace(current: DirspaceStatus, target: DirspaceStatus) -> DirspaceStatus:
    return check_transition(DIRSPACE_TRANSITIONS, current, target)


def command_outcome(statuses: Iterable[DirspaceStatus]) -> CommandStatus | None:
    """The command's status once every dirspace is final; None while some are not."""
    items = list(statuses)
    if any(not s.final for s in items):
        return None
    return CommandStatus.SUCCEEDED if all(s.ok for s in items) else CommandStatus.FAILED


def startable(
    layers: list[int], statuses: list[DirspaceStatus], parallelism: int
) -> tuple[list[int], list[int]]:
    """Which dirspaces to start now and which to skip, by index.

    Layers run in order: a layer starts once every earlier one is final, and when an earlier
    layer did not fully succeed, the later ones are skipped. Within the current layer at most
    `parallelism` dirspaces run at once.
    """
    start: list[int] = []
    skip: list[int] = []
    statuses = list(statuses)
    for layer in sorted(set(layers)):
        members = [i for i, n in enumerate(layers) if n == layer]
        earlier = [i for i, n in enumerate(layers) if n < layer]
        if any(not statuses[i].final for i in earlier):
            break
        if any(not statuses[i].ok for i in earlier):
            for i in members:
                if statuses[i] is DirspaceStatus.PENDING:
                    skip.append(i)
                    statuses[i] = DirspaceStatus.SKIPPED
            continue
        running = sum(1 for i in members if statuses[i] is DirspaceStatus.RUNNING)
        free = max(0, parallelism - running)
        start.extend([i for i in members if statuses[i] is DirspaceStatus.PENDING][:free])
        if any(not statuses[i].final for i in members):
            break
    return start, skip


class Requirement(enum.StrEnum):
    APPROVED = "approved"
    MERGEABLE = "mergeable"
    UNDIVERGED = "undiverged"
    STATUS_CHECKS = "status_checks"


@dataclass(frozen=True)
class PullFacts:
    """What GitHub says about a pull request at the moment of an apply."""

    head_sha: str
    mergeable: bool | None  # GitHub's own answer; None while it is still computing
    mergeable_state: str
    behind_by: int | None  # commits on the base branch the head does not have
    approvers: tuple[str, ...]  # users whose approval counts (write access, users/teams)
    failing_checks: tuple[str, ...]  # status checks and check runs not passing, ours excluded


def requirement_failures(
    required: Iterable[Requirement],
    facts: PullFacts,
    approvals_needed: int,
    plan_sha: str | None,
) -> list[str]:
    """Why a dirspace may not be applied, one sentence each; empty when it may.

    A plan made for the current head commit is always required: an apply runs exactly the
    plan that was shown, never one of an older commit.
    """
    failures = []
    if plan_sha is None:
        failures.append("it has no plan: comment `terraplane plan` first")
    elif plan_sha != facts.head_sha:
        failures.append(
            f"its plan was made for {plan_sha[:7]}, not for the head {facts.head_sha[:7]}: "
            "plan again"
        )
    for requirement in dict.fromkeys(required):
        problem = _failure(requirement, facts, approvals_needed)
        if problem:
            failures.append(problem)
    return failures


def _failure(requirement: Requirement, facts: PullFacts, approvals_needed: int) -> str | None:
    if requirement is Requirement.APPROVED:
        have = len(facts.approvers)
        if have < approvals_needed:
            return (
                f"approved: {have} of {approvals_needed} required approval"
                f"{'s' if approvals_needed != 1 else ''}"
            )
    elif requirement is Requirement.MERGEABLE:
        if facts.mergeable is not True:
            reason = (
                "GitHub has not computed it yet; try again"
                if facts.mergeable is None
                else f"GitHub says {facts.mergeable_state or 'not mergeable'}"
            )
            return f"mergeable: the pull request is not mergeable ({reason})"
    elif requirement is Requirement.UNDIVERGED:
        if facts.behind_by is None or facts.behind_by > 0:
            behind = "an unknown number of" if facts.behind_by is None else str(facts.behind_by)
            return f"undiverged: the base branch has {behind} commit(s) the pull request lacks"
    elif requirement is Requirement.STATUS_CHECKS and facts.failing_checks:
        return "status_checks: not passing: " + ", ".join(facts.failing_checks[:10])
    return None
