"""The `github.delivery` job: act on a stored webhook delivery.

Installations and their repositories are kept current from `installation` and
`installation_repositories` events. Pull-request events (`pull_request`, `issue_comment`,
`pull_request_review`, `push`) are recorded as `unhandled` until pull-request automation is
built (issue 3); every other event is `ignored`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from terraplane.queue.worker import JobContext
from terraplane.store.database import Database
from terraplane.store.tables import github_deliveries, github_installations, github_repositories
from terraplane.store.types import utcnow
from terraplane.store.upsert import insert_or_ignore

PULL_REQUEST_EVENTS = frozenset({"pull_request", "issue_comment", "pull_request_review", "push"})


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
                    elif row.event in PULL_REQUEST_EVENTS:
                        status, error = "unhandled", "pull-request automation is not built yet"
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
