"""A run's workflow, step by step, in the module's directory.

Steps are `init`, `plan`, `apply` (terraform, with their `extra_args`), `run` (a program from
the repository's configuration: an argument list, never a shell; a relative program path must
stay inside the checkout) and `env` (a variable for every later step). A run without a workflow
runs `init`, `plan` and, when it writes, `apply`. The first step that fails ends the run.

`run` steps see the variables Atlantis users know: `WORKSPACE`, `DIR`, `REPO_REL_DIR`,
`PLANFILE`, `SHOWFILE` (the plan as JSON, once a plan had changes), plus whatever the run's spec
adds (`HEAD_COMMIT`, `PULL_NUM`, ...).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from terraplane.domain.plans import PlanSummary, plan_text, summarize_plan, summarize_plan_output
from terraplane.domain.runs import RunOperation, RunSpec, RunStatus, WorkflowStep
from terraplane.engine.checkouts import CheckoutError, inside
from terraplane.engine.process import ProcessResult, run_process
from terraplane.engine.redaction import Redactor
from terraplane.engine.terraform import TerraformCommands

PLAN_FILE = "terraplane.tfplan"
SHOW_FILE = "terraplane.tfplan.json"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

Outcome = tuple[RunStatus, dict[str, Any]]
StorePlan = Callable[[bytes], Awaitable[None]]


def default_steps(operation: RunOperation) -> tuple[WorkflowStep, ...]:
    steps = (WorkflowStep(kind="init"), WorkflowStep(kind="plan"))
    return steps if operation is RunOperation.PLAN else (*steps, WorkflowStep(kind="apply"))


class StepFailed(Exception):
    """A step failed; the message says which and why."""

    def __init__(self, message: str, result: ProcessResult | None = None) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class Workflow:
    """Runs one run's steps. `checkout` is the directory paths from config must stay in."""

    operation: RunOperation
    spec: RunSpec
    tf: TerraformCommands
    checkout: Path
    backend_args: list[str]
    select_workspace: bool
    store_plan: StorePlan | None
    values: dict[str, Any] = field(default_factory=dict)
    _planned: int | None = None  # the exit code of this run's plan step, once it ran
    _show_file_wanted: bool = False

    @property
    def module_dir(self) -> Path:
        return self.tf.workdir

    async def execute(self) -> Outcome:
        steps = self.spec.steps or default_steps(self.operation)
        self.tf.env.update(self._step_variables())
        try:
            for i, step in enumerate(steps):
                # A `run` step after a plan may read SHOWFILE, the plan as JSON.
                self._show_file_wanted = any(s.kind == "run" for s in steps[i + 1 :])
                await self._step(step)
        except StepFailed as exc:
            result = exc.result
            if result is not None and (result.cancelled or self.tf.cancel.is_set()):
                return RunStatus.CANCELLED, {**self.values, "exit_code": result.exit_code}
            if result is not None and result.timed_out:
                return RunStatus.FAILED, {
                    **self.values,
                    "exit_code": result.exit_code,
                    "error": "the run exceeded its timeout",
                }
            exit_code = result.exit_code if result is not None else None
            return RunStatus.FAILED, {**self.values, "exit_code": exit_code, "error": str(exc)}
        return RunStatus.SUCCEEDED, self.values

    def _step_variables(self) -> dict[str, str]:
        return {
            "WORKSPACE": self.spec.terraform_workspace,
            "DIR": str(self.module_dir),
            "REPO_REL_DIR": str(self.module_dir.relative_to(self.checkout))
            if self.module_dir.is_relative_to(self.checkout)
            else ".",
            "PLANFILE": str(self.module_dir / PLAN_FILE),
        }

    async def _step(self, step: WorkflowStep) -> None:
        if step.kind == "init":
            await self._init(step)
        elif step.kind == "plan":
            await self._plan(step)
        elif step.kind == "apply":
            await self._apply(step)
        elif step.kind == "run":
            await self._run(step)
        else:
            self._env(step)

    async def _init(self, step: WorkflowStep) -> None:
        result = await self.tf.init([*self.backend_args, *step.extra_args])
        _check(result, "init failed")
        if self.select_workspace and self.spec.terraform_workspace != "default":
            name = self.spec.terraform_workspace
            selected = await self.tf.run("workspace", "select", "-no-color", name)
            if selected.exit_code != 0 and not (selected.cancelled or selected.timed_out):
                selected = await self.tf.run("workspace", "new", "-no-color", name)
            _check(selected, f"could not select workspace {name!r}")

    def _extra(self, step: WorkflowStep, stage: RunOperation) -> list[str]:
        """A step's own arguments, then the command's: a plan run's go to its plan steps, an
        apply run's to its apply steps."""
        own = (self.operation is RunOperation.PLAN) == (stage is RunOperation.PLAN)
        return [*step.extra_args, *(self.spec.extra_args if own else ())]

    async def _plan(self, step: WorkflowStep) -> None:
        extra = self._extra(step, RunOperation.PLAN)
        if not self.spec.lock_state:
            extra.append("-lock=false")  # a drift check only looks: it never takes the lock
        if self.spec.refresh_only:
            extra.append("-refresh-only")
        output: list[str] = []
        plan = await self.tf.plan(
            PLAN_FILE,
            destroy=self.operation is RunOperation.DESTROY,
            extra_args=extra,
            capture=output,
        )
        if plan.exit_code not in (0, 2) or plan.cancelled or plan.timed_out:
            raise StepFailed("plan failed", plan)
        self._planned = plan.exit_code
        # The summary comes from the plan's own output; `show -json` (a terraform process,
        # ~0.2 s) only when a later step may read the JSON or the output is not one we read.
        # Without changes the summary is all zeros.
        summary = PlanSummary()
        if plan.exit_code == 2:
            parsed = summarize_plan_output("".join(output))
            if parsed is None or self._show_file_wanted:
                plan_json = await self.tf.show_json(PLAN_FILE)
                show_file = self.module_dir / SHOW_FILE
                await asyncio.to_thread(show_file.write_text, json.dumps(plan_json))
                self.tf.env["SHOWFILE"] = str(show_file)
                parsed = summarize_plan(plan_json)
            summary = parsed
        redact = Redactor(self.spec.secret_values())
        self.values.update(
            has_changes=plan.exit_code == 2,
            plan_summary={**summary.model_dump(), "headline": summary.headline()},
            exit_code=plan.exit_code,
            plan_text=redact.feed(plan_text("".join(output))) + redact.flush(),
        )
        await self.tf.sink(f"\nterraplane: plan: {summary.headline()}\n")
        if self.operation is RunOperation.PLAN and self.store_plan is not None:
            await self.store_plan((self.module_dir / PLAN_FILE).read_bytes())

    async def _apply(self, step: WorkflowStep) -> None:
        if self._planned == 0:
            await self.tf.sink("terraplane: the plan has no changes; nothing to apply\n")
            return
        if not (self.module_dir / PLAN_FILE).exists():
            raise StepFailed("an apply step needs a plan: put a plan step before it")
        result = await self.tf.apply(PLAN_FILE, self._extra(step, RunOperation.APPLY))
        self.values["exit_code"] = result.exit_code
        _check(result, "apply failed")

    async def _run(self, step: WorkflowStep) -> None:
        program = step.argv[0]
        if "/" in program:
            try:
                program = _program_path(self.checkout, self.module_dir, program)
            except CheckoutError as exc:
                raise StepFailed(
                    f"run {step.argv[0]!r}: the program must be inside the checkout"
                ) from exc
        await self.tf.sink(f"$ {' '.join(step.argv)}\n")
        try:
            result = await run_process(
                [program, *step.argv[1:]],
                cwd=self.module_dir,
                env=self.tf.env,
                on_output=self.tf.sink,
                timeout=self.tf.timeout,
                cancel=self.tf.cancel,
                grace=self.tf.grace,
                on_start=self.tf.on_start,
            )
        except OSError as exc:  # not found, not executable
            raise StepFailed(f"run {step.argv[0]!r}: {exc.strerror or exc}") from exc
        _check(result, f"run {step.argv[0]!r} exited with {result.exit_code}")

    def _env(self, step: WorkflowStep) -> None:
        name = step.name or ""
        if not _ENV_NAME.match(name) or name.startswith("TERRAPLANE_"):
            raise StepFailed(f"env: {name!r} is not a variable name a workflow may set")
        self.tf.env[name] = step.value or ""


def _program_path(checkout: Path, module_dir: Path, program: str) -> str:
    """A program named by a path, relative to the module's directory: it must stay inside the
    checkout (an absolute path, or one leaving it, is a CheckoutError)."""
    if program.startswith("/"):
        raise CheckoutError(f"{program!r} is an absolute path")
    relative = module_dir.resolve().relative_to(checkout.resolve()) / program
    return str(inside(checkout, relative.as_posix()))


def _check(result: ProcessResult, message: str) -> None:
    if result.exit_code != 0 or result.cancelled or result.timed_out:
        raise StepFailed(message, result)
