"""Pull requests as Terraplane knows them: kept current from events and API reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from terraplane.domain.errors import NotFound
from terraplane.domain.pullrequests import PullState
from terraplane.github.api import PullRequest
from terraplane.pr.snapshot import Commit
from terraplane.store.tables import pull_requests
from terraplane.store.types import utcnow
from terraplane.store.upsert import insert_returning


@dataclass(frozen=True)
class Pull:
    id: int
    repository: str
    number: int
    installation_id: int | None
    clone_url: str
    title: str
    author: str
    head_sha: str
    head_ref: str
    base_sha: str
    base_ref: str
    fork: bool
    draft: bool
    state: PullState
    updated_at: datetime

    @property
    def owner(self) -> str:
        return self.repository.partition("/")[0]

    @property
    def commit(self) -> Commit:
        """Its head, to be merged into the tip of its base branch."""
        return Commit(self.clone_url, self.head_sha, self.refspecs, self.base_ref)

    @property
    def refspecs(self) -> tuple[str, ...]:
        """What a mirror fetches for this pull request: its head and its base branch."""
        return (
            f"+refs/pull/{self.number}/head:refs/pull/{self.number}/head",
            f"+refs/heads/{self.base_ref}:refs/heads/{self.base_ref}",
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "repository": self.repository,
            "number": self.number,
            "title": self.title,
            "author": self.author,
            "head_sha": self.head_sha,
            "head_ref": self.head_ref,
            "base_ref": self.base_ref,
            "state": self.state.value,
            "draft": self.draft,
            "fork": self.fork,
            "updated_at": self.updated_at.isoformat(),
        }


def _pull(row: Any) -> Pull:
    m = row._mapping
    return Pull(**{**{k: m[k] for k in Pull.__dataclass_fields__}, "state": PullState(m["state"])})


def pull_values(pr: PullRequest, clone_url: str, installation_id: int | None) -> dict[str, Any]:
    state = PullState.MERGED if pr.merged else PullState(pr.state)
    return {
        "installation_id": installation_id,
        "clone_url": clone_url,
        "title": pr.title[:1000],
        "author": pr.user.login,
        "head_sha": pr.head.sha,
        "head_ref": pr.head.ref,
        "base_sha": pr.base.sha,
        "base_ref": pr.base.ref,
        "fork": pr.fork,
        "draft": pr.draft,
        "state": state.value,
        "updated_at": utcnow(),
    }


async def save_pull(
    conn: AsyncConnection, repository: str, number: int, values: dict[str, Any]
) -> Pull:
    """Insert or update the pull request's row; returns it."""
    row = await insert_returning(
        conn,
        pull_requests,
        {"repository": repository, "number": number, "created_at": utcnow(), **values},
    )
    if row is None:
        row = (
            await conn.execute(
                update(pull_requests)
                .where(pull_requests.c.repository == repository, pull_requests.c.number == number)
                .values(**values)
                .returning(pull_requests)
            )
        ).one()
    return _pull(row)


async def get_pull(conn: AsyncConnection, pull_id: int) -> Pull:
    row = (
        await conn.execute(select(pull_requests).where(pull_requests.c.id == pull_id))
    ).one_or_none()
    if row is None:
        raise NotFound(f"pull request {pull_id} does not exist")
    return _pull(row)


async def list_pulls(
    conn: AsyncConnection, repository: str | None = None, limit: int = 100
) -> list[Pull]:
    query = select(pull_requests).order_by(pull_requests.c.updated_at.desc()).limit(limit)
    if repository is not None:
        query = query.where(pull_requests.c.repository == repository)
    return [_pull(r) for r in (await conn.execute(query)).all()]


async def find_pull(conn: AsyncConnection, repository: str, number: int) -> Pull:
    row = (
        await conn.execute(
            select(pull_requests).where(
                pull_requests.c.repository == repository, pull_requests.c.number == number
            )
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"Terraplane has not seen pull request {repository}#{number}")
    return _pull(row)
