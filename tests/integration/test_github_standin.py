"""The GitHub stand-in keeps to GitHub's documented formats: every REST answer Terraplane reads
and every webhook it receives parses with githubkit's models, which are generated from GitHub's
own OpenAPI description. (The stand-in is the one thing in these tests that is not real, so it
is held to the real thing here.)"""

from __future__ import annotations

from typing import Any

import httpx
from githubkit import webhooks
from githubkit_schemas.latest import models
from pydantic import BaseModel, TypeAdapter

from tests.support.github import GitHubStandIn


def get(github: GitHubStandIn, token: str, path: str, method: str = "GET", **kw: Any) -> Any:
    answer = httpx.request(
        method, f"{github.url}{path}", headers={"Authorization": f"token {token}"}, **kw
    )
    assert answer.status_code < 300, answer.text
    return answer.json()


def check(model: type[BaseModel] | Any, value: Any) -> None:
    TypeAdapter(model).validate_python(value)


def test_rest_answers_and_webhooks_match_githubs_models(github: GitHubStandIn) -> None:
    repo = "acme/infra"
    github.create_repo(repo, {"app/main.tf": "# v1\n"})
    github.repos[repo].collaborators = {"alice": "write", "bob": "admin"}
    github.repos[repo].teams = {"acme/platform": {"bob"}}
    github.branch(repo, "change", {"app/main.tf": "# v2\n"}, "v2")
    number = github.open_pull(repo, "change")
    head = github.pull_object(repo, number)["head"]["sha"]
    github.review(repo, number, "bob")
    github.comment(repo, number, "alice", "terraplane plan")
    github.add_check_run(repo, head, "ci", "completed", "success")
    token = github.issue_token()["token"]
    check(models.InstallationToken, github.issue_token())

    base = f"/repos/{repo}"
    check(models.PullRequest, get(github, token, f"{base}/pulls/{number}"))
    check(list[models.DiffEntry], get(github, token, f"{base}/pulls/{number}/files"))
    check(list[models.PullRequestReview], get(github, token, f"{base}/pulls/{number}/reviews"))
    check(
        models.RepositoryCollaboratorPermission,
        get(github, token, f"{base}/collaborators/alice/permission"),
    )
    check(models.TeamMembership, get(github, token, "/orgs/acme/teams/platform/memberships/bob"))
    status = get(
        github,
        token,
        f"{base}/statuses/{head}",
        "POST",
        json={"state": "pending", "context": "terraplane/plan", "description": "running"},
    )
    check(models.Status, status)
    check(models.CombinedCommitStatus, get(github, token, f"{base}/commits/{head}/status"))
    runs = get(github, token, f"{base}/commits/{head}/check-runs")
    assert runs["total_count"] == 1
    check(list[models.CheckRun], runs["check_runs"])
    check(models.CommitComparison, get(github, token, f"{base}/compare/main...{head}"))
    comment = get(github, token, f"{base}/issues/{number}/comments", "POST", json={"body": "hello"})
    check(models.IssueComment, comment)
    edited = get(
        github, token, f"{base}/issues/comments/{comment['id']}", "PATCH", json={"body": "bye"}
    )
    check(models.IssueComment, edited)
    assert edited["body"] == "bye"

    github.merge_pull(repo, number)
    github.send_installation([repo])
    events = [event for event, _ in github.sent]
    assert events == [
        "pull_request",
        "pull_request_review",
        "issue_comment",
        "pull_request",
        "push",
        "installation",
    ]
    for event, payload in github.sent:
        webhooks.parse_obj(event, payload)  # raises when a payload is not GitHub's


def test_github_refuses_what_it_refuses(github: GitHubStandIn) -> None:
    repo = "acme/limits"
    github.create_repo(repo, {"main.tf": "# x\n"})
    github.branch(repo, "b", {"main.tf": "# y\n"}, "y")
    number = github.open_pull(repo, "b")
    token = github.issue_token()["token"]
    long = httpx.post(
        f"{github.url}/repos/{repo}/issues/{number}/comments",
        headers={"Authorization": f"token {token}"},
        json={"body": "x" * 65_537},
    )
    assert long.status_code == 422 and "body is too long" in long.text
    anonymous = httpx.get(f"{github.url}/repos/{repo}/pulls/{number}")
    assert anonymous.status_code == 401
    git_without_token = httpx.get(f"{github.url}/git/{repo}.git/info/refs?service=git-upload-pack")
    assert git_without_token.status_code == 401
