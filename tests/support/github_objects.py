"""GitHub's REST objects and webhook payloads, with every field GitHub documents as required
(`tests/integration/test_github_standin.py` checks them against githubkit's models, generated
from GitHub's OpenAPI description)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

WEB = "https://github.com"
API = "https://api.github.com"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_id(kind: str, number: int) -> str:
    return f"{kind}_{hashlib.sha1(f'{kind}{number}'.encode()).hexdigest()[:16]}"  # noqa: S324


def user_id(login: str) -> int:
    return int(hashlib.sha1(login.encode()).hexdigest()[:7], 16)  # noqa: S324


def user(login: str, kind: str = "User") -> dict[str, Any]:
    uid = user_id(login)
    url = f"{API}/users/{login}"
    return {
        "login": login,
        "id": uid,
        "node_id": node_id("U", uid),
        "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
        "gravatar_id": "",
        "url": url,
        "html_url": f"{WEB}/{login}",
        "followers_url": f"{url}/followers",
        "following_url": f"{url}/following{{/other_user}}",
        "gists_url": f"{url}/gists{{/gist_id}}",
        "starred_url": f"{url}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{url}/subscriptions",
        "organizations_url": f"{url}/orgs",
        "repos_url": f"{url}/repos",
        "events_url": f"{url}/events{{/privacy}}",
        "received_events_url": f"{url}/received_events",
        "type": kind,
        "user_view_type": "public",
        "site_admin": False,
    }


def repository(full_name: str, repo_id: int, clone_url: str, default_branch: str) -> dict[str, Any]:
    owner, name = full_name.split("/")
    url = f"{API}/repos/{full_name}"
    templates = {
        "archive_url": "/{archive_format}{/ref}",
        "assignees_url": "/assignees{/user}",
        "blobs_url": "/git/blobs{/sha}",
        "branches_url": "/branches{/branch}",
        "collaborators_url": "/collaborators{/collaborator}",
        "comments_url": "/comments{/number}",
        "commits_url": "/commits{/sha}",
        "compare_url": "/compare/{base}...{head}",
        "contents_url": "/contents/{+path}",
        "contributors_url": "/contributors",
        "deployments_url": "/deployments",
        "downloads_url": "/downloads",
        "events_url": "/events",
        "forks_url": "/forks",
        "git_commits_url": "/git/commits{/sha}",
        "git_refs_url": "/git/refs{/sha}",
        "git_tags_url": "/git/tags{/sha}",
        "issue_comment_url": "/issues/comments{/number}",
        "issue_events_url": "/issues/events{/number}",
        "issues_url": "/issues{/number}",
        "keys_url": "/keys{/key_id}",
        "labels_url": "/labels{/name}",
        "languages_url": "/languages",
        "merges_url": "/merges",
        "milestones_url": "/milestones{/number}",
        "notifications_url": "/notifications{?since,all,participating}",
        "pulls_url": "/pulls{/number}",
        "releases_url": "/releases{/id}",
        "stargazers_url": "/stargazers",
        "statuses_url": "/statuses/{sha}",
        "subscribers_url": "/subscribers",
        "subscription_url": "/subscription",
        "tags_url": "/tags",
        "teams_url": "/teams",
        "trees_url": "/git/trees{/sha}",
        "hooks_url": "/hooks",
    }
    stamp = now()
    return {
        "id": repo_id,
        "node_id": node_id("R", repo_id),
        "name": name,
        "full_name": full_name,
        "private": True,
        "owner": user(owner, "Organization"),
        "html_url": f"{WEB}/{full_name}",
        "description": None,
        "fork": False,
        "url": url,
        **{key: url + suffix for key, suffix in templates.items()},
        "git_url": f"git://github.com/{full_name}.git",
        "ssh_url": f"git@github.com:{full_name}.git",
        "clone_url": clone_url,
        "svn_url": f"{WEB}/{full_name}",
        "mirror_url": None,
        "homepage": None,
        "language": "HCL",
        "forks_count": 0,
        "forks": 0,
        "stargazers_count": 0,
        "watchers_count": 0,
        "watchers": 0,
        "size": 1,
        "default_branch": default_branch,
        "open_issues_count": 0,
        "open_issues": 0,
        "is_template": False,
        "topics": [],
        "has_issues": True,
        "has_projects": False,
        "has_wiki": False,
        "has_pages": False,
        "has_downloads": True,
        "has_discussions": False,
        "archived": False,
        "disabled": False,
        "visibility": "private",
        "pushed_at": stamp,
        "created_at": stamp,
        "updated_at": stamp,
        "license": None,
        "allow_forking": False,
        "web_commit_signoff_required": False,
    }


def _branch(repo: dict[str, Any], ref: str, sha: str) -> dict[str, Any]:
    owner = repo["owner"]
    return {
        "label": f"{owner['login']}:{ref}",
        "ref": ref,
        "sha": sha,
        "user": owner,
        "repo": repo,
    }


def pull_request(
    repo: dict[str, Any],
    number: int,
    *,
    title: str,
    author: str,
    head_ref: str,
    head_sha: str,
    base_ref: str,
    base_sha: str,
    state: str = "open",
    merged: bool = False,
    draft: bool = False,
    mergeable: bool | None = True,
    mergeable_state: str = "clean",
    changed_files: int = 1,
    merge_commit_sha: str | None = None,
) -> dict[str, Any]:
    full = repo["full_name"]
    url = f"{API}/repos/{full}/pulls/{number}"
    html = f"{WEB}/{full}/pull/{number}"
    stamp = now()
    return {
        "url": url,
        "id": 1_000_000 + number,
        "node_id": node_id("PR", number),
        "html_url": html,
        "diff_url": f"{html}.diff",
        "patch_url": f"{html}.patch",
        "issue_url": f"{API}/repos/{full}/issues/{number}",
        "commits_url": f"{url}/commits",
        "review_comments_url": f"{url}/comments",
        "review_comment_url": f"{API}/repos/{full}/pulls/comments{{/number}}",
        "comments_url": f"{API}/repos/{full}/issues/{number}/comments",
        "statuses_url": f"{API}/repos/{full}/statuses/{head_sha}",
        "number": number,
        "state": state,
        "locked": False,
        "title": title,
        "user": user(author),
        "body": None,
        "labels": [],
        "milestone": None,
        "active_lock_reason": None,
        "created_at": stamp,
        "updated_at": stamp,
        "closed_at": stamp if state == "closed" else None,
        "merged_at": stamp if merged else None,
        "merge_commit_sha": merge_commit_sha,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "head": _branch(repo, head_ref, head_sha),
        "base": _branch(repo, base_ref, base_sha),
        "_links": {
            key: {"href": href}
            for key, href in {
                "self": url,
                "html": html,
                "issue": f"{API}/repos/{full}/issues/{number}",
                "comments": f"{API}/repos/{full}/issues/{number}/comments",
                "review_comments": f"{url}/comments",
                "review_comment": f"{API}/repos/{full}/pulls/comments{{/number}}",
                "commits": f"{url}/commits",
                "statuses": f"{API}/repos/{full}/statuses/{head_sha}",
            }.items()
        },
        "author_association": "MEMBER",
        "auto_merge": None,
        "draft": draft,
        "merged": merged,
        "mergeable": mergeable,
        "rebaseable": mergeable,
        "mergeable_state": mergeable_state,
        "merged_by": user("merger") if merged else None,
        "comments": 0,
        "review_comments": 0,
        "maintainer_can_modify": False,
        "commits": 1,
        "additions": 1,
        "deletions": 0,
        "changed_files": changed_files,
    }


def issue_for(pull: dict[str, Any]) -> dict[str, Any]:
    """The issue side of a pull request (what `issue_comment` events carry)."""
    full = pull["base"]["repo"]["full_name"]
    number = pull["number"]
    url = f"{API}/repos/{full}/issues/{number}"
    return {
        "id": 2_000_000 + number,
        "node_id": node_id("I", number),
        "url": url,
        "repository_url": f"{API}/repos/{full}",
        "labels_url": f"{url}/labels{{/name}}",
        "comments_url": f"{url}/comments",
        "events_url": f"{url}/events",
        "html_url": pull["html_url"],
        "number": number,
        "state": pull["state"],
        "title": pull["title"],
        "body": None,
        "user": pull["user"],
        "labels": [],
        "assignee": None,
        "assignees": [],
        "milestone": None,
        "locked": False,
        "active_lock_reason": None,
        "comments": 0,
        "pull_request": {
            "url": pull["url"],
            "html_url": pull["html_url"],
            "diff_url": pull["diff_url"],
            "patch_url": pull["patch_url"],
            "merged_at": pull["merged_at"],
        },
        "closed_at": pull["closed_at"],
        "created_at": pull["created_at"],
        "updated_at": pull["updated_at"],
        "author_association": "MEMBER",
        "reactions": reactions(f"{url}/reactions"),
    }


def reactions(url: str) -> dict[str, Any]:
    return {
        "url": url,
        "total_count": 0,
        **{k: 0 for k in ("+1", "-1", "laugh", "confused", "heart", "hooray", "eyes", "rocket")},
    }


def issue_comment(full: str, number: int, comment_id: int, login: str, body: str) -> dict[str, Any]:
    url = f"{API}/repos/{full}/issues/comments/{comment_id}"
    stamp = now()
    return {
        "id": comment_id,
        "node_id": node_id("IC", comment_id),
        "url": url,
        "html_url": f"{WEB}/{full}/pull/{number}#issuecomment-{comment_id}",
        "body": body,
        "user": user(login, "Bot" if login.endswith("[bot]") else "User"),
        "created_at": stamp,
        "updated_at": stamp,
        "issue_url": f"{API}/repos/{full}/issues/{number}",
        "author_association": "MEMBER",
        "performed_via_github_app": None,
        "reactions": reactions(f"{url}/reactions"),
    }


def status(
    full: str, status_id: int, sha: str, body: dict[str, Any], creator: str
) -> dict[str, Any]:
    stamp = now()
    return {
        "url": f"{API}/repos/{full}/statuses/{sha}",
        "avatar_url": None,
        "id": status_id,
        "node_id": node_id("SC", status_id),
        "state": body["state"],
        "description": body.get("description"),
        "target_url": body.get("target_url"),
        "context": body.get("context", "default"),
        "created_at": stamp,
        "updated_at": stamp,
        "creator": user(creator, "Bot"),
    }


def combined_status(
    repo: dict[str, Any], sha: str, statuses: list[dict[str, Any]]
) -> dict[str, Any]:
    states = {s["state"] for s in statuses}
    state = (
        "failure"
        if states & {"failure", "error"}
        else "pending"
        if "pending" in states or not statuses
        else "success"
    )
    full = repo["full_name"]
    return {
        "state": state,
        "statuses": [
            {
                k: s[k]
                for k in (
                    "url",
                    "avatar_url",
                    "id",
                    "node_id",
                    "state",
                    "description",
                    "target_url",
                    "context",
                    "created_at",
                    "updated_at",
                )
            }
            | {"required": False}
            for s in statuses
        ],
        "sha": sha,
        "total_count": len(statuses),
        "repository": {
            k: repo[k]
            for k in repo
            if k not in ("license", "topics", "visibility", "pushed_at", "created_at", "updated_at")
        },
        "commit_url": f"{API}/repos/{full}/commits/{sha}",
        "url": f"{API}/repos/{full}/commits/{sha}/status",
    }


def review(
    full: str, number: int, review_id: int, login: str, state: str, sha: str
) -> dict[str, Any]:
    html = f"{WEB}/{full}/pull/{number}#pullrequestreview-{review_id}"
    return {
        "id": review_id,
        "node_id": node_id("PRR", review_id),
        "user": user(login),
        "body": "",
        "state": state,
        "html_url": html,
        "pull_request_url": f"{API}/repos/{full}/pulls/{number}",
        "_links": {
            "html": {"href": html},
            "pull_request": {"href": f"{API}/repos/{full}/pulls/{number}"},
        },
        "submitted_at": now(),
        "commit_id": sha,
        "author_association": "MEMBER",
    }


def permission(login: str, role: str) -> dict[str, Any]:
    legacy = {"maintain": "write", "triage": "read"}.get(role, role)
    rights = {
        "admin": role == "admin",
        "maintain": role in ("admin", "maintain"),
        "push": legacy in ("admin", "write"),
        "triage": legacy != "none",
        "pull": legacy != "none",
    }
    return {
        "permission": legacy,
        "role_name": role,
        "user": {**user(login), "permissions": rights, "role_name": role},
    }


def team_membership(org: str, team: str, login: str) -> dict[str, Any]:
    return {
        "url": f"{API}/organizations/1/team/1/memberships/{login}",
        "role": "member",
        "state": "active",
    }


def comparison(full: str, base: str, head: str, ahead: int, behind: int) -> dict[str, Any]:
    return {
        "url": f"{API}/repos/{full}/compare/{base}...{head}",
        "html_url": f"{WEB}/{full}/compare/{base}...{head}",
        "permalink_url": f"{WEB}/{full}/compare/{base}...{head}",
        "diff_url": f"{WEB}/{full}/compare/{base}...{head}.diff",
        "patch_url": f"{WEB}/{full}/compare/{base}...{head}.patch",
        "base_commit": commit(full, base),
        "merge_base_commit": commit(full, base),
        "status": "ahead" if not behind else "diverged" if ahead else "behind",
        "ahead_by": ahead,
        "behind_by": behind,
        "total_commits": ahead,
        "commits": [],
        "files": [],
    }


def commit(full: str, sha: str) -> dict[str, Any]:
    url = f"{API}/repos/{full}/commits/{sha}"
    person = {"name": "dev", "email": "dev@example.com", "date": now()}
    return {
        "url": url,
        "sha": sha,
        "node_id": node_id("C", user_id(sha)),
        "html_url": f"{WEB}/{full}/commit/{sha}",
        "comments_url": f"{url}/comments",
        "commit": {
            "url": f"{API}/repos/{full}/git/commits/{sha}",
            "author": person,
            "committer": person,
            "message": "commit",
            "comment_count": 0,
            "tree": {"sha": sha, "url": f"{API}/repos/{full}/git/trees/{sha}"},
        },
        "author": user("dev"),
        "committer": user("dev"),
        "parents": [],
    }


def check_run(
    full: str, run_id: int, sha: str, name: str, status: str, conclusion: str | None
) -> dict[str, Any]:
    url = f"{API}/repos/{full}/check-runs/{run_id}"
    stamp = now()
    return {
        "id": run_id,
        "head_sha": sha,
        "node_id": node_id("CR", run_id),
        "external_id": str(run_id),
        "url": url,
        "html_url": f"{WEB}/{full}/runs/{run_id}",
        "details_url": None,
        "status": status,
        "conclusion": conclusion,
        "started_at": stamp,
        "completed_at": stamp if status == "completed" else None,
        "output": {
            "title": None,
            "summary": None,
            "text": None,
            "annotations_count": 0,
            "annotations_url": f"{url}/annotations",
        },
        "name": name,
        "check_suite": {"id": run_id},
        "app": None,
        "pull_requests": [],
    }


def installation_payload(installation_id: int) -> dict[str, Any]:
    return {
        "id": installation_id,
        "node_id": node_id("MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u", installation_id),
    }


def installation(installation_id: int, account: str, app_id: int) -> dict[str, Any]:
    """The full installation object of `installation` events."""
    stamp = now()
    return {
        "id": installation_id,
        "account": user(account, "Organization"),
        "repository_selection": "selected",
        "access_tokens_url": f"{API}/app/installations/{installation_id}/access_tokens",
        "repositories_url": f"{API}/installation/repositories",
        "html_url": f"{WEB}/organizations/{account}/settings/installations/{installation_id}",
        "app_id": app_id,
        "app_slug": "terraplane",
        "target_id": user_id(account),
        "target_type": "Organization",
        "permissions": {
            "checks": "write",
            "contents": "read",
            "issues": "write",
            "metadata": "read",
            "pull_requests": "write",
            "statuses": "write",
            "members": "read",
        },
        "events": ["issue_comment", "pull_request", "pull_request_review", "push"],
        "created_at": stamp,
        "updated_at": stamp,
        "single_file_name": None,
        "has_multiple_single_files": False,
        "single_file_paths": [],
        "suspended_by": None,
        "suspended_at": None,
    }
