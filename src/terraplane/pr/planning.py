"""Which dirspaces a plan or apply command covers, and the run each one gets.

A plan's run is the dirspace's workflow (`hooks.pre_plan`, the workflow's plan steps,
`hooks.post_plan`) on the pull request's head merged into the tip of its base branch. An apply
applies the stored plan of the dirspace's latest plan, on the very same tree: its run starts
with the plan workflow's `init`, then `hooks.pre_apply`, the workflow's apply steps and
`hooks.post_apply`. Applies follow `depends_on` layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from terraplane.domain.commands import Command, CommandKind
from terraplane.domain.pullrequests import (
    DirspaceStatus,
    Requirement,
    Trigger,
    requirement_failures,
)
from terraplane.domain.runs import GitSource, RunSpec, WorkflowStep
from terraplane.github.api import GitHubApi, PullRequest
from terraplane.pr.commands import NewDirspace, state_workspace
from terraplane.pr.facts import gather
from terraplane.pr.pulls import Pull
from terraplane.pr.snapshot import Snapshot
from terraplane.repoconfig.dirspaces import Dirspace, layers
from terraplane.repoconfig.model import RepoConfig
from terraplane.store.database import Database
from terraplane.store.tables import pr_commands, pr_dirspaces, runs

NOTHING_TO_APPLY = (
    "There is nothing to apply: no plan of this pull request is waiting. "
    "Comment `terraplane plan` first."
)


def run_env(
    pull: Pull, dirspace: Dirspace, requested_by: str, command: Command | None
) -> dict[str, str]:
    """What `run` steps know about the pull request (the names Atlantis users know)."""
    owner, _, name = pull.repository.partition("/")
    return {
        "HEAD_COMMIT": pull.head_sha,
        "HEAD_BRANCH_NAME": pull.head_ref,
        "BASE_BRANCH_NAME": pull.base_ref,
        "BASE_REPO_OWNER": owner,
        "BASE_REPO_NAME": name,
        "HEAD_REPO_OWNER": owner,
        "HEAD_REPO_NAME": name,
        "PULL_NUM": str(pull.number),
        "PULL_AUTHOR": pull.author,
        "USER_NAME": requested_by,
        "PROJECT_NAME": dirspace.name or "",
        "COMMENT_ARGS": ",".join(command.extra_args) if command else "",
    }


def plan_steps(config: RepoConfig, d: Dirspace) -> tuple[WorkflowStep, ...]:
    hooks = config.hooks
    return (
        *(hooks.pre_plan.steps if hooks.pre_plan else ()),
        *d.workflow.plan.steps,
        *(hooks.post_plan.steps if hooks.post_plan else ()),
    )


def apply_steps(config: RepoConfig, d: Dirspace) -> tuple[WorkflowStep, ...]:
    """The apply runs in a fresh worktree, so it initialises first, as the plan did."""
    init = next((s for s in d.workflow.plan.steps if s.kind == "init"), WorkflowStep(kind="init"))
    hooks = config.hooks
    return (
        init,
        *(hooks.pre_apply.steps if hooks.pre_apply else ()),
        *d.workflow.apply.steps,
        *(hooks.post_apply.steps if hooks.post_apply else ()),
    )


def plan_dirspaces(
    pull: Pull,
    snap: Snapshot,
    selected: list[Dirspace],
    command: Command | None,
    requested_by: str,
) -> list[NewDirspace]:
    base = snap.base if snap.config.checkout == "merge" else None
    result = []
    for d in selected:
        spec = RunSpec(
            source=GitSource(
                repository=pull.repository,
                clone_url=pull.clone_url,
                installation_id=pull.installation_id,
                head=pull.head_sha,
                base=base,
                refspecs=pull.refspecs,
                dir=d.dir,
            ),
            engine=d.engine,
            version=d.engine_version,
            env=run_env(pull, d, requested_by, command),
            state=state_workspace(pull.repository, d.dir, d.workspace),
            state_mode="auto",
            terraform_workspace=d.workspace,
            steps=plan_steps(snap.config, d),
            extra_args=command.extra_args if command else (),
        )
        result.append(NewDirspace(dir=d.dir, workspace=d.workspace, name=d.name, spec=spec))
    return result


@dataclass(frozen=True)
class LatestPlan:
    run_id: int | None  # None while it waits for a free slot
    status: DirspaceStatus
    head_sha: str
    has_changes: bool | None
    kept: bool
    spec: dict[str, Any] | None


async def latest_plans(conn: AsyncConnection, pull_id: int) -> dict[tuple[str, str], LatestPlan]:
    """The latest plan that ran of each dirspace of the pull request."""
    rows = await conn.execute(
        select(
            pr_dirspaces.c.dir,
            pr_dirspaces.c.workspace,
            pr_dirspaces.c.run_id,
            pr_dirspaces.c.status,
            pr_commands.c.head_sha,
            runs.c.has_changes,
            runs.c.plan_file.is_not(None).label("kept"),
            runs.c.spec,
        )
        .join(pr_commands, pr_commands.c.id == pr_dirspaces.c.command_id)
        .outerjoin(runs, runs.c.id == pr_dirspaces.c.run_id)
        .where(
            pr_commands.c.pull_request_id == pull_id,
            pr_commands.c.kind == CommandKind.PLAN.value,
            pr_dirspaces.c.status.not_in(
                [DirspaceStatus.BLOCKED.value, DirspaceStatus.SKIPPED.value]
            ),
        )
        .order_by(pr_commands.c.id.desc())
    )
    latest: dict[tuple[str, str], LatestPlan] = {}
    for r in rows.all():
        latest.setdefault(
            (r.dir, r.workspace),
            LatestPlan(
                r.run_id, DirspaceStatus(r.status), r.head_sha, r.has_changes, r.kept, r.spec
            ),
        )
    return latest


async def applied_plans(conn: AsyncConnection, pull_id: int) -> set[int]:
    rows = await conn.execute(
        select(pr_dirspaces.c.plan_run_id)
        .join(pr_commands, pr_commands.c.id == pr_dirspaces.c.command_id)
        .where(
            pr_commands.c.pull_request_id == pull_id,
            pr_commands.c.kind == CommandKind.APPLY.value,
            pr_dirspaces.c.status == DirspaceStatus.SUCCEEDED.value,
            pr_dirspaces.c.plan_run_id.is_not(None),
        )
    )
    return {int(r) for r in rows.scalars()}


async def apply_dirspaces(
    db: Database,
    api: GitHubApi,
    pull: Pull,
    pr: PullRequest,
    snap: Snapshot,
    command: Command | None,
    trigger: Trigger,
) -> str | tuple[list[NewDirspace], bool]:
    """The dirspaces an apply covers, each with its run or the reasons it may not run; or one
    message when there is nothing to apply. The bool is True when any may not run (then
    nothing runs)."""
    async with db.read() as conn:
        plans = await latest_plans(conn, pull.id)
        done = await applied_plans(conn, pull.id)
    if command is not None and command.filtered:
        chosen = [d for d in snap.dirspaces if command.selects(d)]
        if not chosen:
            return f"No dirspace matches `{command.text}`."
    else:
        chosen = [
            d
            for d in snap.dirspaces
            if (p := plans.get((d.dir, d.workspace))) is not None
            and p.run_id not in done
            and p.run_id is not None
        ]
        if not chosen:
            return NOTHING_TO_APPLY
    required: set[Requirement] = set()
    if trigger is not Trigger.MERGE:
        required = {r for d in chosen for r in d.apply_requirements}
    facts = await gather(api, pull.repository, pr, required, snap.config.approvals)
    layer_of = {d.key: i for i, layer in enumerate(layers(chosen)) for d in layer}
    result, refused = [], False
    for d in chosen:
        plan = plans.get((d.dir, d.workspace))
        failures = requirement_failures(
            d.apply_requirements if trigger is not Trigger.MERGE else (),
            facts,
            snap.config.approvals.count,
            plan.head_sha if plan is not None else None,
        )
        if plan is not None and not plan.status.final:
            failures.insert(0, "its plan is still running: comment again when it is done")
        elif plan is not None and plan.status is not DirspaceStatus.SUCCEEDED:
            failures.insert(0, "its latest plan did not succeed: plan again")
        elif plan is not None and plan.run_id in done:
            failures.insert(0, "its latest plan is already applied: plan again")
        elif plan is not None and plan.has_changes and not plan.kept:
            failures.insert(0, "its plan was discarded (unlock or retention): plan again")
        entry = NewDirspace(
            dir=d.dir,
            workspace=d.workspace,
            name=d.name,
            layer=layer_of[d.key],
            plan_run_id=plan.run_id if plan else None,
        )
        if failures:
            entry.status, entry.message = DirspaceStatus.SKIPPED, "; ".join(failures)
            refused = True
        elif plan is not None and not plan.has_changes:
            entry.status, entry.message = DirspaceStatus.SUCCEEDED, "no changes to apply"
        elif plan is not None and plan.spec is not None:
            spec = RunSpec.model_validate(plan.spec).model_copy(
                update={
                    "steps": apply_steps(snap.config, d),
                    "plan_from_run": plan.run_id,
                    "extra_args": command.extra_args if command else (),
                }
            )
            entry.spec = spec
        result.append(entry)
    return result, refused
