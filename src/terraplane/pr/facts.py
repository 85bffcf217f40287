"""What GitHub says about a pull request when someone asks to apply it: only the facts the
dirspaces' apply requirements need are asked for."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from terraplane.domain.pullrequests import PullFacts, Requirement
from terraplane.github.api import WRITE_PERMISSIONS, GitHubApi, PullRequest
from terraplane.repoconfig.model import Approvals

OWN_STATUS_PREFIX = "terraplane/"


async def _approvers(
    api: GitHubApi, repo: str, pr: PullRequest, approvals: Approvals
) -> tuple[str, ...]:
    """Reviewers whose latest review approves and whose approval counts: not the author,
    with write access (as GitHub's required reviews count them), and one of `approvals.users`
    or a member of one of `approvals.teams` when those are given."""
    reviews = await api.latest_reviews(repo, pr.number)
    approving = [u for u, state in reviews.items() if state == "APPROVED" and u != pr.user.login]
    owner = repo.partition("/")[0]

    async def counts(user: str) -> bool:
        if await api.permission(repo, user) not in WRITE_PERMISSIONS:
            return False
        if not approvals.users and not approvals.teams:
            return True
        if user in approvals.users:
            return True
        for team in approvals.teams:
            org, _, slug = team.rpartition("/")
            if await api.team_member(org or owner, slug, user):
                return True
        return False

    verdicts = await asyncio.gather(*(counts(u) for u in approving))
    return tuple(u for u, ok in zip(approving, verdicts, strict=True) if ok)


async def gather(
    api: GitHubApi,
    repo: str,
    pr: PullRequest,
    required: Iterable[Requirement],
    approvals: Approvals,
) -> PullFacts:
    needed = set(required)
    approvers: tuple[str, ...] = ()
    failing: list[str] = []
    behind: int | None = 0
    if Requirement.APPROVED in needed:
        approvers = await _approvers(api, repo, pr, approvals)
    if Requirement.STATUS_CHECKS in needed:
        failing = await api.failing_checks(repo, pr.head.sha, OWN_STATUS_PREFIX)
    if Requirement.UNDIVERGED in needed:
        behind = await api.behind_by(repo, pr.base.ref, pr.head.sha)
    return PullFacts(
        head_sha=pr.head.sha,
        mergeable=pr.mergeable,
        mergeable_state=pr.mergeable_state,
        behind_by=behind,
        approvers=approvers,
        failing_checks=tuple(failing),
    )
