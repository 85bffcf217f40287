"""A local stand-in for GitHub (the one stand-in we allow: GitHub cannot run here).

It speaks GitHub's documented REST formats on 127.0.0.1 for the endpoints Terraplane calls —
App JWTs verified with the App's public key, installation tokens, pull requests, reviews,
collaborator permissions, team memberships, commit statuses, check runs, comparisons, issue
comments — with objects complete enough for githubkit's models (see `github_objects`). Its
repositories are real bare git repositories served over git's smart HTTP protocol
(`git http-backend`), which demands an installation token as GitHub does. Tests drive it like a
developer would: push commits, open pull requests, comment, review, merge; each action sends
the webhook GitHub would send, signed with real HMAC-SHA256.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import subprocess
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from terraplane.github.signatures import sign
from tests.support import github_objects as gh

BOT = "terraplane[bot]"
IDENTITY = ["-c", "user.name=dev", "-c", "user.email=dev@example.com"]
COMMENT_LIMIT = 65_536


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signed_delivery(
    event: str, payload: dict[str, Any], secret: str, delivery_id: str | None = None
) -> tuple[bytes, dict[str, str]]:
    """A webhook delivery as GitHub sends it: body and headers, signed with `secret`."""
    body = json.dumps(payload).encode()
    return body, {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/abc1234",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "1",
        "X-GitHub-Hook-Installation-Target-Type": "integration",
        "X-GitHub-Hook-Installation-Target-ID": "1",
        "X-Hub-Signature-256": sign(body, secret),
    }


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *IDENTITY, *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@dataclass
class CannedAnswer:
    status: int
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Repo:
    full_name: str
    id: int
    bare: Path
    work: Path
    default_branch: str = "main"
    # login -> role (admin, maintain, write, triage, read)
    collaborators: dict[str, str] = field(default_factory=dict)
    # "org/team" -> members
    teams: dict[str, set[str]] = field(default_factory=dict)


@dataclass
class Pull:
    repo: str
    number: int
    title: str
    author: str
    head_ref: str
    base_ref: str
    state: str = "open"
    merged: bool = False
    draft: bool = False
    mergeable: bool | None = True
    mergeable_state: str = "clean"
    merge_commit_sha: str | None = None


@dataclass
class GitHubStandIn:
    root: Path | None = None
    app_id: str = "424242"
    installation_id: int = 4242
    webhook_secret: str = "webhook-secret"
    # Where webhooks go (a Terraplane server), once set.
    webhook_url: str | None = None
    token_lifetime: timedelta = timedelta(hours=1)
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    canned: list[CannedAnswer] = field(default_factory=list)
    # (repo full name, PR number) -> the files the PR changes, overriding git's answer.
    pull_files: dict[tuple[str, int], list[str]] = field(default_factory=dict)
    repos: dict[str, Repo] = field(default_factory=dict)
    pulls: dict[tuple[str, int], Pull] = field(default_factory=dict)
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)
    # (repo, sha) -> every status posted, oldest first
    statuses: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    reviews: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)
    check_runs: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    # Every webhook sent: (event, payload).
    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # GitHub's clock (tests move it together with the client's).
    clock: Callable[[], float] = time.time
    _server: ThreadingHTTPServer | None = None
    _ids: int = 1000
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # -- the App ----------------------------------------------------------------------

    @property
    def private_key_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def next_id(self) -> int:
        with self._lock:
            self._ids += 1
            return self._ids

    def rate_limit_next(self, *, secondary: bool, wait: int = 1) -> None:
        """The next POST is refused the way GitHub refuses an exhausted rate limit."""
        docs = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
        if secondary:
            self.canned.append(
                CannedAnswer(
                    403,
                    {"retry-after": str(wait)},
                    {
                        "message": "You have exceeded a secondary rate limit. Please wait a "
                        "few minutes before you try again.",
                        "documentation_url": docs,
                    },
                )
            )
            return
        self.canned.append(
            CannedAnswer(
                403,
                {
                    "x-ratelimit-limit": "5000",
                    "x-ratelimit-remaining": "0",
                    "x-ratelimit-used": "5000",
                    "x-ratelimit-reset": str(int(time.time()) + wait),
                    "x-ratelimit-resource": "core",
                },
                {
                    "message": "API rate limit exceeded for installation ID 1.",
                    "documentation_url": docs,
                },
            )
        )

    def verify_jwt(self, token: str) -> str | None:
        """None when `token` is a valid App JWT; otherwise why it is not."""
        try:
            header, payload, signature = token.split(".")
            self.key.public_key().verify(
                _unb64(signature),
                f"{header}.{payload}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
            claims = json.loads(_unb64(payload))
        except (ValueError, InvalidSignature):
            return "A JSON web token could not be decoded"
        now = self.clock()
        if json.loads(_unb64(header)).get("alg") != "RS256":
            return "'alg' must be RS256"
        if str(claims.get("iss")) != self.app_id:
            return "'Issuer' claim ('iss') must be the App's id"
        if not claims["iat"] <= now < claims["exp"] or claims["exp"] - claims["iat"] > 600:
            return "'Expiration time' claim ('exp') is too far in the future or in the past"
        return None

    def issue_token(self) -> dict[str, Any]:
        token = "ghs_" + secrets.token_hex(18)
        self.issued.append(token)
        expires = datetime.fromtimestamp(self.clock(), UTC) + self.token_lifetime
        return {
            "token": token,
            "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "permissions": {
                "checks": "write",
                "contents": "read",
                "issues": "write",
                "metadata": "read",
                "pull_requests": "write",
                "statuses": "write",
            },
            "repository_selection": "all",
        }

    # -- repositories, as a developer uses them ------------------------------------------

    def clone_url(self, full_name: str) -> str:
        return f"{self.url}/git/{full_name}.git"

    def create_repo(self, full_name: str, files: dict[str, str]) -> Repo:
        assert self.root is not None, "a stand-in with repositories needs a root directory"
        bare = self.root / "git" / f"{full_name}.git"
        work = self.root / "work" / full_name
        bare.parent.mkdir(parents=True, exist_ok=True)
        git(self.root, "init", "-q", "--bare", "-b", "main", str(bare))
        git(self.root, "clone", "-q", str(bare), str(work))
        repo = Repo(full_name, self.next_id(), bare, work)
        self.repos[full_name] = repo
        self.commit(full_name, "main", files, "initial commit", create=True)
        return repo

    def repo_object(self, full_name: str) -> dict[str, Any]:
        repo = self.repos[full_name]
        return gh.repository(full_name, repo.id, self.clone_url(full_name), repo.default_branch)

    def sha(self, full_name: str, ref: str) -> str:
        return git(self.repos[full_name].bare, "rev-parse", ref)

    def commit(
        self,
        full_name: str,
        branch: str,
        files: Mapping[str, str | None],
        message: str,
        *,
        create: bool = False,
        start: str | None = None,
    ) -> str:
        """Commit `files` (None deletes one) on `branch` and push it; returns the commit."""
        work = self.repos[full_name].work
        if create:
            git(work, "checkout", "-q", "-B", branch, *([start] if start else []))
        else:
            git(work, "fetch", "-q", "origin")
            git(work, "checkout", "-q", "-B", branch, f"origin/{branch}")
        for name, text in files.items():
            path = work / name
            if text is None:
                path.unlink()
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            if text.startswith("#!"):
                path.chmod(0o755)  # a script, committed executable
        git(work, "add", "-A")
        git(work, "commit", "-q", "--allow-empty", "-m", message)
        git(work, "push", "-q", "-f", "origin", f"HEAD:refs/heads/{branch}")
        return git(work, "rev-parse", "HEAD")

    def branch(
        self, full_name: str, branch: str, files: Mapping[str, str | None], message: str
    ) -> str:
        """A new branch off the default branch's tip, with one commit."""
        repo = self.repos[full_name]
        git(repo.work, "fetch", "-q", "origin")
        return self.commit(
            full_name, branch, files, message, create=True, start=f"origin/{repo.default_branch}"
        )

    # -- pull requests ------------------------------------------------------------------

    def pull_object(self, full_name: str, number: int) -> dict[str, Any]:
        p = self.pulls[(full_name, number)]
        bare = self.repos[full_name].bare
        head = git(bare, "rev-parse", f"refs/pull/{number}/head")
        base = git(bare, "rev-parse", f"refs/heads/{p.base_ref}")
        return gh.pull_request(
            self.repo_object(full_name),
            number,
            title=p.title,
            author=p.author,
            head_ref=p.head_ref,
            head_sha=head,
            base_ref=p.base_ref,
            base_sha=base,
            state=p.state,
            merged=p.merged,
            draft=p.draft,
            mergeable=p.mergeable,
            mergeable_state=p.mergeable_state,
            changed_files=len(self.changed_files(full_name, number)),
            merge_commit_sha=p.merge_commit_sha,
        )

    def changed_files(self, full_name: str, number: int) -> list[str]:
        if (full_name, number) in self.pull_files:
            return self.pull_files[(full_name, number)]
        p = self.pulls[(full_name, number)]
        out = git(
            self.repos[full_name].bare,
            "diff",
            "--name-only",
            f"refs/heads/{p.base_ref}...refs/pull/{number}/head",
        )
        return [line for line in out.splitlines() if line]

    def open_pull(
        self,
        full_name: str,
        head_ref: str,
        *,
        title: str = "A change",
        author: str = "alice",
        draft: bool = False,
        number: int | None = None,
    ) -> int:
        repo = self.repos[full_name]
        number = number or self.next_id()
        git(repo.bare, "update-ref", f"refs/pull/{number}/head", f"refs/heads/{head_ref}")
        self.pulls[(full_name, number)] = Pull(
            full_name, number, title, author, head_ref, repo.default_branch, draft=draft
        )
        self.send_pull_event(full_name, number, "opened")
        return number

    def push_to_pull(self, full_name: str, number: int, files: dict[str, str | None]) -> str:
        p = self.pulls[(full_name, number)]
        sha = self.commit(full_name, p.head_ref, files, "more changes")
        git(self.repos[full_name].bare, "update-ref", f"refs/pull/{number}/head", sha)
        self.send_pull_event(full_name, number, "synchronize")
        return sha

    def merge_pull(self, full_name: str, number: int) -> str:
        """Merge into the base branch (a merge commit), then tell Terraplane."""
        repo = self.repos[full_name]
        p = self.pulls[(full_name, number)]
        git(
            repo.work, "fetch", "-q", "origin", f"+refs/pull/{number}/head:refs/remotes/pr/{number}"
        )
        git(repo.work, "checkout", "-q", "-B", p.base_ref, f"origin/{p.base_ref}")
        git(repo.work, "merge", "-q", "--no-ff", "-m", f"Merge #{number}", f"pr/{number}")
        git(repo.work, "push", "-q", "origin", f"HEAD:refs/heads/{p.base_ref}")
        p.state, p.merged = "closed", True
        p.merge_commit_sha = git(repo.work, "rev-parse", "HEAD")
        self.send_pull_event(full_name, number, "closed")
        self.send_push_event(full_name, p.base_ref)
        return p.merge_commit_sha

    def ready_for_review(self, full_name: str, number: int) -> None:
        self.pulls[(full_name, number)].draft = False
        self.send_pull_event(full_name, number, "ready_for_review")

    def close_pull(self, full_name: str, number: int) -> None:
        self.pulls[(full_name, number)].state = "closed"
        self.send_pull_event(full_name, number, "closed")

    def review(self, full_name: str, number: int, login: str, state: str = "APPROVED") -> None:
        sha = self.pull_object(full_name, number)["head"]["sha"]
        item = gh.review(full_name, number, self.next_id(), login, state, sha)
        self.reviews.setdefault((full_name, number), []).append(item)
        payload = {
            "action": "submitted",
            "review": item,
            "pull_request": self.pull_object(full_name, number),
            "repository": self.repo_object(full_name),
            "sender": gh.user(login),
            "installation": gh.installation_payload(self.installation_id),
        }
        self.deliver("pull_request_review", payload)

    def add_check_run(
        self, full_name: str, sha: str, name: str, status: str, conclusion: str | None
    ) -> None:
        self.check_runs.setdefault((full_name, sha), []).append(
            gh.check_run(full_name, self.next_id(), sha, name, status, conclusion)
        )

    def comment(self, full_name: str, number: int, login: str, body: str) -> httpx.Response:
        """A comment on the pull request, as `login` writes it."""
        item = gh.issue_comment(full_name, number, self.next_id(), login, body)
        with self._lock:
            self.comments[item["id"]] = {**item, "_repo": full_name, "_number": number}
        payload = {
            "action": "created",
            "issue": gh.issue_for(self.pull_object(full_name, number)),
            "comment": item,
            "repository": self.repo_object(full_name),
            "sender": gh.user(login),
            "installation": gh.installation_payload(self.installation_id),
        }
        return self.deliver("issue_comment", payload)

    def pull_comments(self, full_name: str, number: int, by: str = BOT) -> list[dict[str, Any]]:
        with self._lock:
            return [
                c
                for c in sorted(self.comments.values(), key=lambda c: c["id"])
                if c["_repo"] == full_name and c["_number"] == number and c["user"]["login"] == by
            ]

    def latest_statuses(self, full_name: str, sha: str) -> dict[str, str]:
        """context -> the latest state posted for `sha`."""
        with self._lock:
            return {s["context"]: s["state"] for s in self.statuses.get((full_name, sha), [])}

    # -- webhooks -------------------------------------------------------------------------

    def send_pull_event(self, full_name: str, number: int, action: str) -> httpx.Response:
        pull = self.pull_object(full_name, number)
        payload = {
            "action": action,
            "number": number,
            "pull_request": pull,
            "repository": self.repo_object(full_name),
            "sender": pull["user"],
            "installation": gh.installation_payload(self.installation_id),
        }
        if action == "synchronize":
            payload["before"] = "0" * 40
            payload["after"] = pull["head"]["sha"]
        return self.deliver("pull_request", payload)

    def send_push_event(self, full_name: str, branch: str) -> httpx.Response:
        sha = self.sha(full_name, f"refs/heads/{branch}")
        payload = {
            "ref": f"refs/heads/{branch}",
            "before": "0" * 40,
            "after": sha,
            "created": False,
            "deleted": False,
            "forced": False,
            "base_ref": None,
            "compare": f"https://github.com/{full_name}/compare/{sha}",
            "commits": [],
            "head_commit": None,
            "repository": self.repo_object(full_name),
            "pusher": {"name": "dev", "email": "dev@example.com"},
            "sender": gh.user("dev"),
            "installation": gh.installation_payload(self.installation_id),
        }
        return self.deliver("push", payload)

    def send_installation(self, full_names: list[str]) -> httpx.Response:
        payload = {
            "action": "created",
            "installation": gh.installation(self.installation_id, "acme", int(self.app_id)),
            "repositories": [
                {
                    "id": self.repos[n].id,
                    "node_id": gh.node_id("R", self.repos[n].id),
                    "name": n.split("/")[1],
                    "full_name": n,
                    "private": True,
                }
                for n in full_names
            ],
            "sender": gh.user("admin"),
        }
        return self.deliver("installation", payload)

    def deliver(self, event: str, payload: dict[str, Any]) -> httpx.Response:
        """Send a webhook to Terraplane as GitHub does (signed; the answer is returned).
        Without a `webhook_url` it is only recorded in `sent`."""
        self.sent.append((event, payload))
        body, headers = signed_delivery(event, payload, self.webhook_secret)
        if self.webhook_url is None:
            return httpx.Response(204)
        return httpx.post(self.webhook_url, content=body, headers=headers, timeout=30)

    # -- the HTTP server --------------------------------------------------------------------

    def start(self) -> GitHubStandIn:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class ApiError(Exception):
    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors


Route = tuple[str, re.Pattern[str], Callable[..., Any]]


def _routes(s: GitHubStandIn) -> list[Route]:
    repo = r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"

    def full(m: re.Match[str]) -> str:
        name = f"{unquote(m['owner'])}/{unquote(m['name'])}"
        if name not in s.repos:
            raise ApiError(404, "Not Found")
        return name

    def repository(m: re.Match[str], q: dict[str, Any], body: Any) -> Any:
        return s.repo_object(full(m))

    def pull(m: re.Match[str], q: dict[str, Any], body: Any) -> Any:
        key = (full(m), int(m["number"]))
        if key not in s.pulls:
            raise ApiError(404, "Not Found")
        return s.pull_object(*key)

    def files(m: re.Match[str], q: dict[str, Any], body: Any) -> Any:
        name, number = f"{m['owner']}/{m['name']}", int(m["number"])
        if (name, number) not in s.pull_files and (name, number) not in s.pulls:
            raise ApiError(404, "Not Found")
        items = s.changed_files(name, number)[:3000]  # GitHub's documented cap
        return [gh_file(name, path) for path in items]

    def reviews(m: re.Match[str], q: dict[str, Any], body: Any) -> Any:
        return list(s.reviews.get((full(m), int(m["number"])), []))

    def permission(m: re.Match[str], q: dict[str, Any], body: Any) -> Any:
        r = s.repos[full(m)]
        login = unquote(m["user"])
        if login not in r.collaborators:
            raise ApiError(404, f"{login} is not a user")
        return gh.permission(login, r.collaborators[login])

    def membership(m: re.Match[str], q: dict[str, Any], body: Any) -> Any:
        team = f"{unquote(m['org'])}/{unquote(m['team'])}"
        login = unquote(m["user"])
        if not any(login in r.teams.get(team, set()) for r in s.repos.values()):
            raise ApiError(404, "Not Found")
        return gh.team_membership(m["org"], m["team"], login)

    def combined(m: re.Match[str], q: dict[str, Any], body: Any) -> Any:
        name = full(m)
        latest: dict[str, dict[str, Any]] = {}
        for item in s.statuses.get((name, m["sha"]), []):
            latest[item["context"]] = item
        return gh.combined_status(s.repo_object(name), m["sha"], list(latest.values()))

    def checks(m: re.Match[str], q: dict[str, Any], body: Any) -> Any:
        runs = s.check_runs.get((full(m), m["sha"]), [])
        return {"total_count": len(runs), "check_runs": runs}

    def compare(m: re.Match[str], q: dict[str, Any], body: Any) -> Any:
        name = full(m)
        base, _, head = unquote(m["basehead"]).partition("...")
        bare = s.repos[name].bare
        try:
            base_sha, head_sha = git(bare, "rev-parse", base), git(bare, "rev-parse", head)
        except subprocess.CalledProcessError:
            raise ApiError(404, "Not Found") from None
        counts = git(bare, "rev-list", "--left-right", "--count", f"{base_sha}...{head_sha}")
        behind, ahead = (int(n) for n in counts.split())
        return gh.comparison(name, base_sha, head_sha, ahead, behind)

    def new_comment(m: re.Match[str], q: dict[str, Any], body: Any) -> Any:
        name, number = full(m), int(m["number"])
        text = (body or {}).get("body")
        if not isinstance(text, str) or not text:
            raise ApiError(422, 'Invalid request.\n\n"body" wasn\'t supplied.')
        _check_length(text)
        item = gh.issue_comment(name, number, s.next_id(), BOT, text)
        with s._lock:
            s.comments[item["id"]] = {**item, "_repo": name, "_number": number}
        return 201, item

    def edit_comment(m: re.Match[str], q: dict[str, Any], body: Any) -> Any:
        comment_id = int(m["id"])
        with s._lock:
            if comment_id not in s.comments:
                raise ApiError(404, "Not Found")
            text = (body or {}).get("body")
            if not isinstance(text, str):
                raise ApiError(422, 'Invalid request.\n\n"body" wasn\'t supplied.')
            _check_length(text)
            s.comments[comment_id]["body"] = text
            s.comments[comment_id]["updated_at"] = gh.now()
            return {k: v for k, v in s.comments[comment_id].items() if not k.startswith("_")}

    def delete_comment(m: re.Match[str], q: dict[str, Any], body: Any) -> Any:
        with s._lock:
            if s.comments.pop(int(m["id"]), None) is None:
                raise ApiError(404, "Not Found")
        return 204, None

    def list_comments(m: re.Match[str], q: dict[str, Any], body: Any) -> Any:
        name, number = full(m), int(m["number"])
        with s._lock:
            return [
                {k: v for k, v in c.items() if not k.startswith("_")}
                for c in s.comments.values()
                if c["_repo"] == name and c["_number"] == number
            ]

    def new_status(m: re.Match[str], q: dict[str, Any], body: Any) -> Any:
        name = full(m)
        body = body or {}
        if body.get("state") not in ("error", "failure", "pending", "success"):
            raise ApiError(
                422,
                "Validation Failed",
                [{"resource": "Status", "field": "state", "code": "custom"}],
            )
        if len(body.get("description") or "") > 140:
            raise ApiError(
                422,
                "Validation Failed",
                [
                    {
                        "resource": "Status",
                        "field": "description",
                        "code": "custom",
                        "message": "description is too long (maximum is 140 characters)",
                    }
                ],
            )
        item = gh.status(name, s.next_id(), m["sha"], body, BOT)
        with s._lock:
            s.statuses.setdefault((name, m["sha"]), []).append(item)
        return 201, item

    def token(m: re.Match[str], q: dict[str, Any], body: Any) -> Any:
        return 201, s.issue_token()

    return [
        ("GET", re.compile(repo), repository),
        ("GET", re.compile(rf"{repo}/pulls/(?P<number>\d+)"), pull),
        ("GET", re.compile(rf"{repo}/pulls/(?P<number>\d+)/files"), files),
        ("GET", re.compile(rf"{repo}/pulls/(?P<number>\d+)/reviews"), reviews),
        ("GET", re.compile(rf"{repo}/collaborators/(?P<user>[^/]+)/permission"), permission),
        (
            "GET",
            re.compile(r"/orgs/(?P<org>[^/]+)/teams/(?P<team>[^/]+)/memberships/(?P<user>[^/]+)"),
            membership,
        ),
        ("GET", re.compile(rf"{repo}/commits/(?P<sha>[^/]+)/status"), combined),
        ("GET", re.compile(rf"{repo}/commits/(?P<sha>[^/]+)/check-runs"), checks),
        ("GET", re.compile(rf"{repo}/compare/(?P<basehead>[^/]+)"), compare),
        ("GET", re.compile(rf"{repo}/issues/(?P<number>\d+)/comments"), list_comments),
        ("POST", re.compile(rf"{repo}/issues/(?P<number>\d+)/comments"), new_comment),
        ("PATCH", re.compile(rf"{repo}/issues/comments/(?P<id>\d+)"), edit_comment),
        ("DELETE", re.compile(rf"{repo}/issues/comments/(?P<id>\d+)"), delete_comment),
        ("POST", re.compile(rf"{repo}/statuses/(?P<sha>[0-9a-f]+)"), new_status),
        ("POST", re.compile(r"/app/installations/(?P<id>\d+)/access_tokens"), token),
    ]


def _check_length(text: str) -> None:
    if len(text) > COMMENT_LIMIT:
        raise ApiError(
            422,
            "Validation Failed",
            [
                {
                    "resource": "IssueComment",
                    "code": "custom",
                    "field": "body",
                    "message": f"body is too long (maximum is {COMMENT_LIMIT} characters)",
                }
            ],
        )


def gh_file(repo: str, name: str) -> dict[str, Any]:
    """One entry of GET /repos/{owner}/{repo}/pulls/{number}/files, as GitHub documents it."""
    sha = secrets.token_hex(20)
    return {
        "sha": sha,
        "filename": name,
        "status": "modified",
        "additions": 1,
        "deletions": 1,
        "changes": 2,
        "blob_url": f"https://github.com/{repo}/blob/{sha}/{name}",
        "raw_url": f"https://github.com/{repo}/raw/{sha}/{name}",
        "contents_url": f"https://api.github.com/repos/{repo}/contents/{name}?ref={sha}",
        "patch": "@@ -1 +1 @@\n-old\n+new",
    }


def _handler(standin: GitHubStandIn) -> type[BaseHTTPRequestHandler]:
    routes = _routes(standin)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-GitHub-Api-Version-Selected", "2022-11-28")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                data = b""
                while True:
                    size = int(self.rfile.readline().strip(), 16)
                    if size == 0:
                        self.rfile.readline()
                        return data
                    data += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _authorized(self) -> bool:
            auth = self.headers.get("Authorization", "")
            return auth.removeprefix("token ") in standin.issued

        def _handle(self, method: str) -> None:
            raw = self._body()
            url = urlsplit(self.path)
            standin.requests.append((method, self.path, dict(self.headers)))
            if url.path.startswith("/git/"):
                self._git(method, url.path.removeprefix("/git"), url.query, raw)
                return
            if method == "POST" and standin.canned:
                answer = standin.canned.pop(0)
                self._answer(answer.status, answer.body, answer.headers)
                return
            token_path = url.path.startswith("/app/installations/")
            if token_path:
                auth = self.headers.get("Authorization", "")
                problem = standin.verify_jwt(auth.removeprefix("Bearer "))
                if not auth.startswith("Bearer ") or problem:
                    self._answer(401, {"message": problem or "Bearer token required"})
                    return
            elif not self._authorized():
                self._answer(401, {"message": "Bad credentials"})
                return
            query = parse_qs(url.query)
            body = json.loads(raw) if raw else None
            for verb, pattern, action in routes:
                match = pattern.fullmatch(url.path)
                if verb == method and match:
                    try:
                        result = action(match, query, body)
                    except ApiError as exc:
                        error: dict[str, Any] = {"message": exc.message}
                        if exc.errors:
                            error["errors"] = exc.errors
                        self._answer(exc.status, error)
                        return
                    except Exception as exc:  # a stand-in bug: answer as GitHub's 500 would
                        traceback.print_exc()
                        self._answer(500, {"message": f"stand-in error: {exc!r}"})
                        return
                    status, result = result if isinstance(result, tuple) else (200, result)
                    if isinstance(result, list):
                        self._page(url.path, query, result)
                    else:
                        self._answer(status, result)
                    return
            self._answer(404, {"message": "Not Found"})

        def _page(self, path: str, query: dict[str, list[str]], items: list[Any]) -> None:
            per_page = min(int(query.get("per_page", ["30"])[0]), 100)
            page = int(query.get("page", ["1"])[0])
            last = max(1, -(-len(items) // per_page))
            links = []
            if page < last:
                base = f"{standin.url}{path}?per_page={per_page}"
                links = [
                    f'<{base}&page={page + 1}>; rel="next"',
                    f'<{base}&page={last}>; rel="last"',
                ]
            chunk = items[(page - 1) * per_page : page * per_page]
            self._answer(200, chunk, {"Link": ", ".join(links)} if links else {})

        def _git(self, method: str, path: str, query: str, body: bytes) -> None:
            """git's smart HTTP protocol, through `git http-backend`, for token holders."""
            auth = self.headers.get("Authorization", "")
            user, _, password = (
                base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")
                if auth.startswith("Basic ")
                else ("", "", "")
            )
            if user != "x-access-token" or password not in standin.issued:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="GitHub"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            assert standin.root is not None
            env = {
                **os.environ,
                "GIT_PROJECT_ROOT": str(standin.root / "git"),
                "GIT_HTTP_EXPORT_ALL": "1",
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "REQUEST_METHOD": method,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                "REMOTE_USER": user,
                "REMOTE_ADDR": "127.0.0.1",
            }
            out = subprocess.run(
                ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
            ).stdout
            head, _, payload = out.partition(b"\r\n\r\n")
            headers = [line.split(":", 1) for line in head.decode().split("\r\n") if ":" in line]
            status = 200
            for name, value in headers:
                if name.lower() == "status":
                    status = int(value.strip().split()[0])
            self.send_response(status)
            for name, value in headers:
                if name.lower() != "status":
                    self.send_header(name, value.strip())
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PATCH(self) -> None:
            self._handle("PATCH")

        def do_DELETE(self) -> None:
            self._handle("DELETE")

    return Handler
