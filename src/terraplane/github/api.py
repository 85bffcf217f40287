"""The GitHub REST calls pull-request automation makes, with answers read leniently: only the
fields used, with defaults where older GitHub Enterprise versions omit them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict

from terraplane.github.app import GitHubApp, GitHubError

WRITE_PERMISSIONS = frozenset({"admin", "maintain", "write"})


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Account(Lenient):
    login: str = ""
    type: str = "User"


class RepoRef(Lenient):
    full_name: str = ""
    clone_url: str = ""
    default_branch: str = "main"


class Branch(Lenient):
    ref: str = ""
    sha: str = ""
    repo: RepoRef | None = None


class PullRequest(Lenient):
    """`GET /repos/{owner}/{repo}/pulls/{number}` and the `pull_request` of webhook events."""

    number: int
    title: str = ""
    state: str = "open"
    draft: bool = False
    merged: bool = False
    mergeable: bool | None = None
    mergeable_state: str = "unknown"
    changed_files: int = 0
    user: Account = Account()
    head: Branch
    base: Branch

    @property
    def fork(self) -> bool:
        head_repo = self.head.repo.full_name if self.head.repo else ""
        base_repo = self.base.repo.full_name if self.base.repo else ""
        return head_repo != base_repo


def _repo_path(repo: str) -> str:
    owner, _, name = repo.partition("/")
    return f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"


class GitHubApi:
    """Calls as one installation of the App."""

    def __init__(self, app: GitHubApp, installation_id: int) -> None:
        self.app = app
        self.installation_id = installation_id

    async def _json(self, method: str, path: str, body: Any = None) -> Any:
        response = await self.app.request(
            method, path, installation_id=self.installation_id, json_body=body
        )
        return response.json() if response.content else None

    async def repository(self, repo: str) -> RepoRef:
        """The repository: its clone URL and default branch."""
        return RepoRef.model_validate(await self._json("GET", _repo_path(repo)))

    async def pull(self, repo: str, number: int) -> PullRequest:
        return PullRequest.model_validate(
            await self._json("GET", f"{_repo_path(repo)}/pulls/{number}")
        )

    async def permission(self, repo: str, user: str) -> str:
        """The user's permission on the repository: admin, maintain, write, triage, read or
        none (a user who is no collaborator has none)."""
        try:
            body = await self._json(
                "GET", f"{_repo_path(repo)}/collaborators/{quote(user, safe='')}/permission"
            )
        except GitHubError as exc:
            if exc.status == 404:
                return "none"
            raise
        role = str(body.get("role_name") or "")
        return role if role in WRITE_PERMISSIONS else str(body.get("permission") or "none")

    async def latest_reviews(self, repo: str, number: int) -> dict[str, str]:
        """Each reviewer's latest deciding review state (APPROVED, CHANGES_REQUESTED or
        DISMISSED); comments alone decide nothing, as on GitHub."""
        reviews = await self.app.paginate(
            f"{_repo_path(repo)}/pulls/{number}/reviews", installation_id=self.installation_id
        )
        latest: dict[str, str] = {}
        for review in reviews:
            if not isinstance(review, dict):
                continue
            login = str((review.get("user") or {}).get("login") or "")
            state = str(review.get("state") or "")
            if login and state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
                latest[login] = state
        return latest

    async def team_member(self, org: str, team: str, user: str) -> bool:
        path = (
            f"/orgs/{quote(org, safe='')}/teams/{quote(team, safe='')}/memberships/"
            f"{quote(user, safe='')}"
        )
        try:
            body = await self._json("GET", path)
        except GitHubError as exc:
            if exc.status == 404:
                return False
            raise
        return str(body.get("state")) == "active"

    async def failing_checks(self, repo: str, sha: str, ignore_prefix: str) -> list[str]:
        """Commit statuses and check runs of `sha` that are not passing (pending ones
        included), except those whose name starts with `ignore_prefix` (Terraplane's own)."""
        failing = []
        combined = await self._json("GET", f"{_repo_path(repo)}/commits/{sha}/status")
        for status in combined.get("statuses") or []:
            context = str(status.get("context") or "")
            if not context.startswith(ignore_prefix) and status.get("state") != "success":
                failing.append(f"{context} ({status.get('state')})")
        runs = await self._json("GET", f"{_repo_path(repo)}/commits/{sha}/check-runs?per_page=100")
        for run in runs.get("check_runs") or []:
            name = str(run.get("name") or "")
            if name.startswith(ignore_prefix):
                continue
            conclusion = run.get("conclusion")
            if run.get("status") != "completed" or conclusion not in (
                "success",
                "neutral",
                "skipped",
            ):
                failing.append(f"{name} ({conclusion or run.get('status')})")
        return failing

    async def behind_by(self, repo: str, base_ref: str, head_sha: str) -> int:
        """Commits on `base_ref` that `head_sha` does not have."""
        basehead = quote(f"{base_ref}...{head_sha}", safe="")
        body = await self._json("GET", f"{_repo_path(repo)}/compare/{basehead}")
        return int(body.get("behind_by") or 0)

    async def create_comment(self, repo: str, number: int, body: str) -> int:
        answer = await self._json(
            "POST", f"{_repo_path(repo)}/issues/{number}/comments", {"body": body}
        )
        return int(answer["id"])

    async def update_comment(self, repo: str, comment_id: int, body: str) -> bool:
        """False when the comment is gone (deleted by someone)."""
        try:
            await self._json(
                "PATCH", f"{_repo_path(repo)}/issues/comments/{comment_id}", {"body": body}
            )
        except GitHubError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def delete_comment(self, repo: str, comment_id: int) -> None:
        try:
            await self._json("DELETE", f"{_repo_path(repo)}/issues/comments/{comment_id}")
        except GitHubError as exc:
            if exc.status != 404:
                raise

    async def set_status(
        self,
        repo: str,
        sha: str,
        *,
        context: str,
        state: str,
        description: str,
        target_url: str | None = None,
    ) -> None:
        body: dict[str, Any] = {
            "state": state,
            "context": context,
            "description": description[:140],  # GitHub's limit
        }
        if target_url:
            body["target_url"] = target_url
        await self._json("POST", f"{_repo_path(repo)}/statuses/{sha}", body)
