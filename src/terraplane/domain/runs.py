"""A run: one plan, apply or destroy of one workspace, and its state machine."""

from __future__ import annotations

import enum
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from terraplane.domain.transitions import check_transition


class RunOperation(enum.StrEnum):
    PLAN = "plan"
    APPLY = "apply"
    DESTROY = "destroy"

    @property
    def writes(self) -> bool:
        """A writing run changes infrastructure and state: one at a time per workspace."""
        return self is not RunOperation.PLAN


class RunStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED}


# RUNNING -> RUNNING: a run resumed by another worker after the first one died.
RUN_TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    # QUEUED -> FAILED: the queue gave up on its job before the run started.
    RunStatus.QUEUED: frozenset({RunStatus.RUNNING, RunStatus.FAILED, RunStatus.CANCELLED}),
    RunStatus.RUNNING: frozenset(
        {RunStatus.RUNNING, RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED}
    ),
    RunStatus.SUCCEEDED: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
}


def transition_run(current: RunStatus, target: RunStatus) -> RunStatus:
    return check_transition(RUN_TRANSITIONS, current, target)


class WorkflowStep(BaseModel):
    """One step of a workflow: `init`, `plan`, `apply` (with extra arguments), `run` (an
    argument list, never handed to a shell) or `env` (a variable for the steps after it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["init", "plan", "apply", "run", "env"]
    extra_args: tuple[str, ...] = ()
    argv: tuple[str, ...] = ()
    name: str | None = None
    value: str | None = None


class DirectorySource(BaseModel):
    """A module directory on the worker's disk (checkouts and unpacked blueprint archives)."""

    type: Literal["directory"] = "directory"
    path: str


class BlueprintSource(BaseModel):
    """A registered blueprint version; workers unpack it from the database (and cache it)."""

    type: Literal["blueprint"] = "blueprint"
    blueprint: str
    version: str


class GitSource(BaseModel):
    """A directory of a repository commit: the worker fetches the commits into its mirror of
    the repository and makes a worktree, `head` merged into `base` when a base is given."""

    type: Literal["git"] = "git"
    repository: str
    clone_url: str
    # The GitHub App installation whose token may fetch it (None: no credentials).
    installation_id: int | None = None
    head: str
    base: str | None = None
    refspecs: tuple[str, ...] = ()
    dir: str = "."


class RunSpec(BaseModel):
    """Everything a worker needs to execute a run; stored with the run."""

    source: DirectorySource | BlueprintSource | GitSource = Field(discriminator="type")
    engine: str = "terraform"
    version: str | None = None
    env: dict[str, str] = {}
    variables: dict[str, Any] = {}
    sensitive_variables: list[str] = []
    # The workspace's state in Terraplane's own backend; None leaves the module's backend alone.
    state: str | None = None
    # False for plans that only look (drift checks): they run with -lock=false.
    lock_state: bool = True
    # A refresh-only plan (drift checks may ask for one): changes outside Terraform only.
    refresh_only: bool = False
    # A plan run keeps its plan file (encrypted, in the database) for a later apply; a drift
    # check has no use for it.
    keep_plan: bool = True
    timeout_seconds: float | None = None
    # The Terraform workspace, selected (or created) after init when the module keeps its
    # state in its own backend; Terraplane's backend keeps one state per workspace instead.
    terraform_workspace: str = "default"
    # "always": Terraplane's backend holds `state`; "auto": only when the module declares no
    # backend of its own (pull-request dirspaces).
    state_mode: Literal["always", "auto"] = "always"
    # The workflow; None: init, plan (and apply, for writing runs).
    steps: tuple[WorkflowStep, ...] | None = None
    # An apply of the plan a plan run stored (pull requests): no new plan is made.
    plan_from_run: int | None = None
    # Arguments from the command (`terraplane plan -- -target=x`) for the plan/apply steps.
    extra_args: tuple[str, ...] = ()

    def secret_values(self) -> list[str]:
        """String forms of the sensitive variables, for redaction."""
        values = []
        for name in self.sensitive_variables:
            value = self.variables.get(name)
            if value is not None:
                values.append(value if isinstance(value, str) else json.dumps(value))
        return values
