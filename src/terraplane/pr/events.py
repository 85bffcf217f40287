"""The `github.delivery` job: act on a stored webhook delivery, in one transaction.

- `installation`, `installation_repositories`: the App's repositories are kept current.
- `pull_request` opened, reopened, synchronize, ready_for_review: an autoplan request; closed:
  a merge request when merged (apply-on-merge, then letting go), otherwise the pull request
  lets go of its locks and plans at once.
- `issue_comment` created on a pull request and starting with `terraplane`: a command request.
- `push` to a default branch: the branch's head is recorded (for drift checks of merged code).
- `pull_request_review`: nothing to do (reviews are read from GitHub when an apply is asked).

Requests are `pr.request` jobs (`pr.requests`), which do the GitHub and git work outside any
transaction. Every other event is `ignored`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from terraplane.domain.commands import is_command
from terraplane.github.api import PullRequest
from terraplane.pr.closing import enqueue_request, let_go
from terraplane.pr.pulls import pull_values, save_pull
from terraplane.queue.worker import JobContext
from terraplane.store.database import Database
from terraplane.store.tables import github_deliveries, github_installations, github_repositories
from terraplane.store.types import utcnow
from terraplane.store.upsert import insert_or_ignore

AUTOPLAN_ACTIONS = frozenset({"opened", "reopened", "synchronize", "ready_for_review"})


async def _upsert(conn: AsyncConnection, table: Table, row_id: int, values: dict[str, Any]) -> None:
    if not await insert_or_ignore(conn, table, {"id": row_id, **values}):
        await conn.execute(update(table).where(table.c.id == row_id).values(**values))


async def _upsert_installation(conn: AsyncConnection, installation: dict[str, Any]) -> int:
    account = installation.get("account") or {}
    values = {
        "account": str(account.get("login", "")),
        "suspended": bool(installation.get("suspended_at")),
        "updated_at": utcnow(),
    }
    installation_id = int(installation["id"])
    await _upsert(conn, github_installations, installation_id, values)
    return installation_id


async def _add_repositories(
    conn: AsyncConnection, installation_id: int, repos: list[dict[str, Any]]
) -> None:
    for repo in repos:
        values = {
            "full_name": str(repo["full_name"]),
            "installation_id": installation_id,
            "updated_at": utcnow(),
        }
        await _upsert(conn, github_repositories, int(repo["id"]), values)


async def _remove_repositories(conn: AsyncConnection, repos: list[dict[str, Any]]) -> None:
    ids = [int(r["id"]) for r in repos]
    if ids:
        await conn.execute(delete(github_repositories).where(github_repositories.c.id.in_(ids)))


async def _installation(conn: AsyncConnection, action: str | None, payload: dict[str, Any]) -> str:
    installation = payload["installation"]
    if action == "deleted":
        await conn.execute(
            delete(github_repositories).where(
                github_repositories.c.installation_id == int(installation["id"])
            )
        )
        await conn.execute(
            delete(github_installations).where(github_installations.c.id == int(installation["id"]))
        )
        return "processed"
    installation_id = await _upsert_installation(conn, installation)
    if action == "created":
        await _add_repositories(conn, installation_id, payload.get("repositories") or [])
    return "processed"


async def _installation_repositories(
    conn: AsyncConnection, action: str | None, payload: dict[str, Any]
) -> str:
    installation_id = await _upsert_installation(conn, payload["installation"])
    await _add_repositories(conn, installation_id, payload.get("repositories_added") or [])
    await _remove_repositories(conn, payload.get("repositories_removed") or [])
    return "processed"


def _request(delivery_id: str, payload: dict[str, Any], kind: str, **extra: Any) -> dict[str, Any]:
    repo = payload["repository"]
    return {
        "kind": kind,
        "repository": str(repo["full_name"]),
        "installation_id": int(payload["installation"]["id"]),
        "clone_url": str(repo["clone_url"]),
        "delivery": delivery_id,
        **extra,
    }


async def _pull_request(
    conn: AsyncConnection, delivery_id: str, action: str | None, payload: dict[str, Any]
) -> str:
    pr = PullRequest.model_validate(payload["pull_request"])
    if action in AUTOPLAN_ACTIONS:
        request = _request(
            delivery_id,
            payload,
            "autoplan",
            number=pr.number,
            head_sha=pr.head.sha,
            requested_by=pr.user.login,
        )
        await enqueue_request(conn, request, f"pr-request:{delivery_id}")
        return "processed"
    if action != "closed":
        return "ignored"
    if pr.merged:
        request = _request(delivery_id, payload, "merge", number=pr.number, requested_by="merge")
        await enqueue_request(conn, request, f"pr-request:{delivery_id}")
        return "processed"
    repo = payload["repository"]
    pull = await save_pull(
        conn,
        str(repo["full_name"]),
        pr.number,
        pull_values(pr, str(repo["clone_url"]), int(payload["installation"]["id"])),
    )
    await let_go(conn, pull, f"#{pr.number} closed")
    return "processed"


async def _issue_comment(
    conn: AsyncConnection, delivery_id: str, action: str | None, payload: dict[str, Any]
) -> str:
    issue, comment = payload["issue"], payload["comment"]
    user = comment.get("user") or {}
    if (
        action != "created"
        or not issue.get("pull_request")
        or user.get("type") == "Bot"
        or not is_command(str(comment.get("body") or ""))
    ):
        return "ignored"
    request = _request(
        delivery_id,
        payload,
        "comment",
        number=int(issue["number"]),
        requested_by=str(user.get("login") or ""),
        body=str(comment["body"])[:10_000],
        comment_id=int(comment["id"]),
    )
    await enqueue_request(conn, request, f"pr-request:{delivery_id}")
    return "processed"


async def _push(conn: AsyncConnection, payload: dict[str, Any]) -> str:
    repo = payload["repository"]
    branch = str(repo.get("default_branch") or "")
    if not branch or payload.get("ref") != f"refs/heads/{branch}":
        return "ignored"
    await conn.execute(
        update(github_repositories)
        .where(github_repositories.c.full_name == str(repo["full_name"]))
        .values(
            default_branch=branch, default_branch_sha=str(payload["after"]), updated_at=utcnow()
        )
    )
    return "processed"


@dataclass
class DeliveryProcessor:
    db: Database

    async def __call__(self, ctx: JobContext) -> dict[str, Any] | None:
        delivery_id = str(ctx.job.payload["delivery_id"])
        async with self.db.write() as conn:
            row = (
                await conn.execute(
                    select(github_deliveries).where(github_deliveries.c.id == delivery_id)
                )
            ).one_or_none()
            if row is None or row.status != "received":
                return {"delivery": delivery_id, "status": row.status if row else "missing"}
            payload = json.loads(row.body)
            error = None
            try:
                async with conn.begin_nested():
                    if row.event == "installation":
                        status = await _installation(conn, row.action, payload)
                    elif row.event == "installation_repositories":
                        status = await _installation_repositories(conn, row.action, payload)
                    elif row.event == "pull_request":
                        status = await _pull_request(conn, delivery_id, row.action, payload)
                    elif row.event == "issue_comment":
                        status = await _issue_comment(conn, delivery_id, row.action, payload)
                    elif row.event == "push":
                        status = await _push(conn, payload)
                    elif row.event == "pull_request_review":
                        status = "processed"  # reviews are read from GitHub at apply time
                    else:
                        status = "ignored"
            except (KeyError, TypeError, ValueError) as exc:
                # A body without the fields this event must have: nothing to retry.
                status, error = "failed", f"unexpected {row.event} body: {type(exc).__name__} {exc}"
            await conn.execute(
                update(github_deliveries)
                .where(github_deliveries.c.id == delivery_id)
                .values(status=status, error=error, processed_at=utcnow())
            )
        return {"delivery": delivery_id, "status": status}
