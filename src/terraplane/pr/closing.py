"""Letting go of a pull request's dirspaces: its locks are released and its stored plans
discarded (merge, close, `terraplane unlock`), and pull requests that were blocked by those
locks are planned again for the dirspaces they were refused."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from terraplane.domain.commands import CommandKind
from terraplane.domain.pullrequests import DirspaceStatus, PullState
from terraplane.pr import locks
from terraplane.pr.pulls import Pull
from terraplane.queue import jobs as jobstore
from terraplane.store.tables import pr_commands, pr_dirspaces, pull_requests, runs

REQUEST_JOB_KIND = "pr.request"


async def discard_plans(conn: AsyncConnection, pull_id: int) -> None:
    """Stored plans of the pull request are deleted: nothing may apply them any more."""
    plan_runs = (
        select(pr_dirspaces.c.run_id)
        .join(pr_commands, pr_commands.c.id == pr_dirspaces.c.command_id)
        .where(
            pr_commands.c.pull_request_id == pull_id,
            pr_commands.c.kind == CommandKind.PLAN.value,
            pr_dirspaces.c.run_id.is_not(None),
        )
    )
    await conn.execute(
        update(runs)
        .where(runs.c.id.in_(plan_runs), runs.c.plan_file.is_not(None))
        .values(plan_file=None, plan_key_id=None)
    )


async def let_go(conn: AsyncConnection, pull: Pull, cause: str) -> list[locks.Lock]:
    """Release the pull request's locks and discard its plans; wake those it blocked."""
    released = await locks.release_pull(conn, pull.id)
    await discard_plans(conn, pull.id)
    await unblock(conn, released, cause)
    return released


async def unblock(conn: AsyncConnection, released: list[locks.Lock], cause: str) -> None:
    """Open pull requests whose plan of a released dirspace was blocked by its lock are
    planned again, for those dirspaces only."""
    wanted: dict[int, list[list[str]]] = {}
    for lock in released:
        rows = await conn.execute(
            select(pull_requests.c.id)
            .select_from(
                pr_dirspaces.join(pr_commands, pr_commands.c.id == pr_dirspaces.c.command_id).join(
                    pull_requests, pull_requests.c.id == pr_commands.c.pull_request_id
                )
            )
            .where(
                pull_requests.c.repository == lock.repository,
                pull_requests.c.state == PullState.OPEN.value,
                pull_requests.c.id != lock.pull_request_id,
                pr_dirspaces.c.dir == lock.dir,
                pr_dirspaces.c.workspace == lock.workspace,
                pr_dirspaces.c.status == DirspaceStatus.BLOCKED.value,
            )
            .distinct()
        )
        for pull_id in rows.scalars():
            wanted.setdefault(pull_id, []).append([lock.dir, lock.workspace])
    for pull_id, dirspaces in wanted.items():
        row = (await conn.execute(select(pull_requests).where(pull_requests.c.id == pull_id))).one()
        await enqueue_request(
            conn,
            {
                "kind": "unblocked",
                "repository": row.repository,
                "number": row.number,
                "installation_id": row.installation_id,
                "clone_url": row.clone_url,
                "requested_by": cause,
                "dirspaces": dirspaces,
            },
            idempotency_key=f"pr-unblocked:{pull_id}:{min(lk.id for lk in released)}",
        )


async def enqueue_request(
    conn: AsyncConnection, payload: dict[str, object], idempotency_key: str
) -> None:
    """A request to act on a pull request (plan, apply, unlock, ...), for the `pr.request`
    job; one at a time per pull request."""
    await jobstore.enqueue(
        conn,
        REQUEST_JOB_KIND,
        payload,
        idempotency_key=idempotency_key,
        exclusive_key=f"pr-request:{payload['repository']}#{payload['number']}",
        max_attempts=6,
    )
