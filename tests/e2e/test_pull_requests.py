"""Pull-request automation end to end: a developer pushes, opens a pull request, comments,
reviews and merges on the GitHub stand-in; Terraplane plans, applies, locks, comments and
posts statuses, with real git and real terraform."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx

from terraplane.domain.roles import Role
from tests.e2e.conftest import PullRequestWorld
from tests.support.github import COMMENT_LIMIT

SHARED_MODULE = """
variable "value" {
  type = string
}

resource "null_resource" "shared" {
  triggers = {
    value = var.value
  }
}
"""


def stack(value: str, module: bool = False) -> str:
    text = f'resource "null_resource" "item" {{\n  triggers = {{\n    value = "{value}"\n  }}\n}}\n'
    if module:
        text += (
            f'\nmodule "shared" {{\n  source = "../../modules/shared"\n  value  = "{value}"\n}}\n'
        )
    return text


MONOREPO = {
    "stacks/a/main.tf": stack("a1", module=True),
    "stacks/b/main.tf": stack("b1", module=True),
    "stacks/c/main.tf": stack("c1"),
    "network/main.tf": stack("n1"),
    "dns/main.tf": stack("d1"),
    "modules/shared/main.tf": SHARED_MODULE,
    "README.md": "infrastructure\n",
}


def new_repo(world: PullRequestWorld, files: dict[str, str], **collaborators: str) -> str:
    name = f"acme/infra-{uuid.uuid4().hex[:8]}"
    world.github.create_repo(name, files)
    world.github.repos[name].collaborators = {"alice": "write", **collaborators}
    assert world.github.send_installation([name]).status_code == 202
    return name


def head_of(world: PullRequestWorld, repo: str, number: int) -> str:
    return str(world.github.pull_object(repo, number)["head"]["sha"])


def final_status(world: PullRequestWorld, repo: str, sha: str, context: str) -> dict[str, str]:
    """Every status of `sha` once `context` is final."""

    def check() -> dict[str, str] | None:
        statuses = world.github.latest_statuses(repo, sha)
        return statuses if statuses.get(context) in ("success", "failure", "error") else None

    result: dict[str, str] = world.wait(f"{context} on {sha[:7]}", check)
    return result


def comment_of(world: PullRequestWorld, repo: str, number: int, index: int = -1) -> str:
    comments = world.wait("a comment", lambda: world.github.pull_comments(repo, number))
    return str(comments[index]["body"])


def commands(world: PullRequestWorld, repo: str, number: int) -> list[dict[str, Any]]:
    with world.server.client(Role.VIEWER) as client:
        answer = client.get(f"/api/v1/pulls/{repo}/{number}")
        assert answer.status_code == 200, answer.text
        return list(answer.json()["commands"])


def test_a_pull_request_plans_exactly_the_dirspaces_it_changes(world: PullRequestWorld) -> None:
    gh = world.github
    repo = new_repo(world, MONOREPO)
    gh.branch(
        repo, "two", {"stacks/c/main.tf": stack("c2"), "network/main.tf": stack("n2")}, "c, n"
    )
    number = gh.open_pull(repo, "two")
    head = head_of(world, repo, number)
    statuses = final_status(world, repo, head, "terraplane/plan")
    assert statuses == {
        "terraplane/plan: stacks/c": "success",
        "terraplane/plan: network": "success",
        "terraplane/plan": "success",
    }
    body = comment_of(world, repo, number)
    assert "2 dirspaces: 2 planned" in body
    assert "`stacks/c`" in body and "`network`" in body and "`stacks/a`" not in body
    assert '-/+ resource "null_resource" "item"' not in body  # markers moved to column 0
    assert re.search(r'^!\s+resource "null_resource" "item"', body, re.M) or re.search(
        r'^[-+]\s+resource "null_resource" "item"', body, re.M
    )
    assert len(gh.pull_comments(repo, number)) == 1  # one comment, edited in place


def test_a_shared_module_change_plans_its_callers(world: PullRequestWorld) -> None:
    gh = world.github
    repo = new_repo(world, MONOREPO)
    changed = SHARED_MODULE.replace("value = var.value", "value = upper(var.value)")
    gh.branch(repo, "module", {"modules/shared/main.tf": changed}, "shared module")
    number = gh.open_pull(repo, "module")
    statuses = final_status(world, repo, head_of(world, repo, number), "terraplane/plan")
    planned = sorted(c for c in statuses if c.startswith("terraplane/plan: "))
    assert planned == ["terraplane/plan: stacks/a", "terraplane/plan: stacks/b"]


def test_help_and_unknown_commands_answer_in_a_comment(world: PullRequestWorld) -> None:
    gh = world.github
    repo = new_repo(world, {"main.tf": stack("x")})
    gh.branch(repo, "docs", {"README.md": "docs only\n"}, "docs")
    number = gh.open_pull(repo, "docs")
    head = head_of(world, repo, number)
    assert final_status(world, repo, head, "terraplane/plan")["terraplane/plan"] == "success"
    assert gh.pull_comments(repo, number) == []  # nothing to plan: no comment
    gh.comment(repo, number, "alice", "terraplane help")
    assert "terraplane plan  [-d DIR]" in comment_of(world, repo, number)
    gh.comment(repo, number, "alice", "terraplane destroy everything")
    world.wait("two comments", lambda: len(gh.pull_comments(repo, number)) == 2)
    assert "unknown command 'destroy'" in comment_of(world, repo, number)
    gh.comment(repo, number, "mallory", "terraplane plan")  # not a collaborator
    world.wait("three comments", lambda: len(gh.pull_comments(repo, number)) == 3)
    assert "@mallory needs write access" in comment_of(world, repo, number)


def failing(value: str) -> str:
    """A stack whose apply fails (a provisioner exits 1)."""
    return (
        f'resource "null_resource" "item" {{\n  triggers = {{\n    value = "{value}"\n  }}\n'
        '  provisioner "local-exec" {\n    command = "echo broken && exit 1"\n  }\n}\n'
    )


def state_of(world: PullRequestWorld, repo: str, dir: str, workspace: str = "default") -> Any:
    name = f"github/{repo}/{dir}/ws.{workspace}"
    with world.server.client(Role.VIEWER) as client:
        answer = client.get(f"/api/v1/state/{name}")
        return answer.json() if answer.status_code == 200 else None


def test_apply_waits_for_its_requirements(world: PullRequestWorld) -> None:
    gh = world.github
    config = "apply_requirements: [approved, mergeable, undiverged, status_checks]\n"
    repo = new_repo(world, {".terraplane.yml": config, "app/main.tf": stack("v1")}, bob="write")
    gh.branch(repo, "change", {"app/main.tf": stack("v2")}, "v2")
    number = gh.open_pull(repo, "change")
    head = head_of(world, repo, number)
    assert final_status(world, repo, head, "terraplane/plan")["terraplane/plan"] == "success"
    gh.add_check_run(repo, head, "ci", "in_progress", None)

    gh.comment(repo, number, "alice", "terraplane apply")
    statuses = final_status(world, repo, head, "terraplane/apply")
    assert statuses["terraplane/apply"] == "failure"
    refused = comment_of(world, repo, number)
    assert "approved: 0 of 1 required approval" in refused
    assert "status_checks: not passing: ci (in_progress)" in refused
    assert "Nothing was applied" in refused
    assert state_of(world, repo, "app") is None  # nothing ran
    (apply,) = [c for c in commands(world, repo, number) if c["kind"] == "apply"]
    assert apply["status"] == "refused" and apply["dirspaces"][0]["run_id"] is None

    gh.review(repo, number, "alice")  # the author's own approval does not count
    gh.review(repo, number, "bob")
    gh.check_runs[(repo, head)].clear()
    gh.add_check_run(repo, head, "ci", "completed", "success")
    gh.comment(repo, number, "alice", "terraplane apply")
    world.wait(
        "the apply", lambda: gh.latest_statuses(repo, head).get("terraplane/apply") == "success"
    )
    assert "1 dirspace: 1 applied" in comment_of(world, repo, number)
    state = state_of(world, repo, "app")
    assert state["resources"][0]["instances"][0]["attributes"]["triggers"] == {"value": "v2"}

    gh.comment(repo, number, "alice", "terraplane apply")  # the plan is used up
    world.wait("a refusal", lambda: "nothing to apply" in comment_of(world, repo, number))


def test_a_locked_dirspace_waits_for_the_pull_request_holding_it(world: PullRequestWorld) -> None:
    gh = world.github
    repo = new_repo(world, {"app/main.tf": stack("v1"), "other/main.tf": stack("o1")})
    gh.branch(repo, "first", {"app/main.tf": stack("first")}, "first")
    first = gh.open_pull(repo, "first")
    final_status(world, repo, head_of(world, repo, first), "terraplane/plan")
    extra = 'resource "null_resource" "extra" {}\n'
    gh.branch(repo, "second", {"app/extra.tf": extra, "other/main.tf": stack("o2")}, "2")
    second = gh.open_pull(repo, "second")
    head = head_of(world, repo, second)
    statuses = final_status(world, repo, head, "terraplane/plan")
    assert statuses["terraplane/plan: app"] == "failure"
    assert statuses["terraplane/plan: other"] == "success"
    assert f"locked by #{first} (@alice)" in comment_of(world, repo, second)
    with world.server.client(Role.VIEWER) as client:
        held = client.get("/api/v1/locks", params={"repository": repo}).json()["locks"]
    assert {(lk["dir"], lk["pull_request"]) for lk in held} == {("app", first), ("other", second)}

    gh.merge_pull(repo, first)  # releases the lock; the second pull request is planned again
    world.wait(
        "the second plan of app",
        lambda: gh.latest_statuses(repo, head).get("terraplane/plan: app") == "success",
    )
    with world.server.client(Role.VIEWER) as client:
        held = client.get("/api/v1/locks", params={"repository": repo}).json()["locks"]
    assert {(lk["dir"], lk["pull_request"]) for lk in held} == {("app", second), ("other", second)}

    gh.comment(repo, second, "alice", "terraplane unlock")
    world.wait("unlock", lambda: "Released 2 lock(s)" in comment_of(world, repo, second))
    plan_runs = [d["run_id"] for c in commands(world, repo, second) for d in c["dirspaces"]]
    with world.server.client(Role.VIEWER) as client:
        assert client.get("/api/v1/locks", params={"repository": repo}).json()["locks"] == []
        stored = [client.get(f"/api/v1/runs/{r}").json()["plan_stored"] for r in plan_runs if r]
    assert stored and not any(stored)  # its plans are discarded too


def test_an_invalid_config_is_one_comment_naming_file_and_line(world: PullRequestWorld) -> None:
    gh = world.github
    repo = new_repo(world, {"app/main.tf": stack("v1")})
    bad = "version: 1\ndirs:\n  - dir: app\n    workflow: missing\n"
    gh.branch(repo, "bad", {".terraplane.yml": bad, "app/main.tf": stack("v2")}, "bad config")
    number = gh.open_pull(repo, "bad")
    statuses = final_status(world, repo, head_of(world, repo, number), "terraplane/plan")
    assert statuses == {"terraplane/plan": "failure"}
    (comment,) = gh.pull_comments(repo, number)
    assert ".terraplane.yml:4: workflow 'missing' is not defined under workflows" in comment["body"]


def test_a_plan_longer_than_a_comment_is_split(world: PullRequestWorld) -> None:
    gh = world.github
    repo = new_repo(world, {"big/main.tf": stack("v1")})
    many = (
        'resource "null_resource" "many" {\n  count = 600\n  triggers = {\n'
        '    value = "${count.index}-' + "x" * 120 + '"\n  }\n}\n'
    )
    gh.branch(repo, "big", {"big/main.tf": many}, "many resources")
    number = gh.open_pull(repo, "big")
    final_status(world, repo, head_of(world, repo, number), "terraplane/plan")
    parts = [c["body"] for c in gh.pull_comments(repo, number)]
    assert len(parts) >= 2
    for i, part in enumerate(parts, start=1):
        assert len(part) <= COMMENT_LIMIT
        assert len(re.findall(r"^```", part, re.M)) % 2 == 0, f"part {i} breaks a code fence"
        assert part.count("<details>") == part.count("</details>")
    joined = "\n".join(parts)
    assert "600 to add" in joined and "null_resource.many[599]" in joined


def test_applies_follow_depends_on_and_a_failure_stops_later_layers(
    world: PullRequestWorld,
) -> None:
    gh = world.github
    config = (
        "dirs:\n  - dir: net\n    name: net\n  - dir: app\n    depends_on: [net]\n"
        "  - dir: dns\n    depends_on: [app]\n"
    )
    files = {
        ".terraplane.yml": config,
        **{f"{d}/main.tf": stack("1") for d in ("net", "app", "dns")},
    }
    repo = new_repo(world, files)
    gh.branch(
        repo,
        "all",
        {"net/main.tf": failing("2"), "app/main.tf": stack("2"), "dns/main.tf": stack("2")},
        "x",
    )
    number = gh.open_pull(repo, "all")
    head = head_of(world, repo, number)
    final_status(world, repo, head, "terraplane/plan")
    gh.comment(repo, number, "alice", "terraplane apply")
    statuses = final_status(world, repo, head, "terraplane/apply")
    assert statuses["terraplane/apply: net"] == "failure"
    assert statuses["terraplane/apply: app"] == "error"
    assert statuses["terraplane/apply: dns"] == "error"
    body = comment_of(world, repo, number)
    assert "did not succeed" in body and "broken" in body  # the failed run's log tail

    head = gh.push_to_pull(repo, number, {"net/main.tf": stack("3")})
    world.wait(
        "a new plan", lambda: gh.latest_statuses(repo, head).get("terraplane/plan") == "success"
    )
    gh.comment(repo, number, "alice", "terraplane apply")
    world.wait(
        "the apply", lambda: gh.latest_statuses(repo, head).get("terraplane/apply") == "success"
    )
    (apply,) = [
        c for c in commands(world, repo, number) if c["kind"] == "apply" and c["head_sha"] == head
    ]
    with world.server.client(Role.VIEWER) as client:
        runs = {
            d["dir"]: client.get(f"/api/v1/runs/{d['run_id']}").json() for d in apply["dirspaces"]
        }
    assert runs["net"]["finished_at"] <= runs["app"]["started_at"]
    assert runs["app"]["finished_at"] <= runs["dns"]["started_at"]


def test_a_repeated_delivery_is_processed_once(world: PullRequestWorld) -> None:
    gh = world.github
    repo = new_repo(world, {"app/main.tf": stack("v1")})
    gh.branch(repo, "x", {"app/main.tf": stack("v2")}, "v2")
    gh.webhook_url, url = None, gh.webhook_url  # open it quietly, then deliver by hand
    number = gh.open_pull(repo, "x")
    gh.webhook_url = url
    payload = {
        "action": "opened",
        "number": number,
        "pull_request": gh.pull_object(repo, number),
        "repository": gh.repo_object(repo),
        "sender": gh.pull_object(repo, number)["user"],
        "installation": {"id": gh.installation_id},
    }
    from tests.support.github import signed_delivery

    body, headers = signed_delivery("pull_request", payload, gh.webhook_secret)
    assert httpx.post(url or "", content=body, headers=headers).status_code == 202
    again = httpx.post(url or "", content=body, headers=headers)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    final_status(world, repo, head_of(world, repo, number), "terraplane/plan")
    assert len(commands(world, repo, number)) == 1
    assert len(gh.pull_comments(repo, number)) == 1


ATLANTIS = """\
version: 3
projects:
  - name: web
    dir: web
    workflow: checked
    autoplan:
      when_modified: ["*.tf", "../shared/*.txt"]
  - name: db
    dir: db
    execution_order_group: 1
workflows:
  checked:
    plan:
      steps:
        - init
        - run: ./check.sh
        - plan
        - run: ./show.sh
"""

CHECK = '#!/bin/sh\necho "checked $PROJECT_NAME in $WORKSPACE of PR $PULL_NUM"\n'
SHOW = '#!/bin/sh\nprintf "showfile: "; head -c 18 "$SHOWFILE"; echo\n'


def test_an_atlantis_repository_works_unchanged(world: PullRequestWorld) -> None:
    gh = world.github
    files = {
        "atlantis.yaml": ATLANTIS,
        "web/main.tf": stack("w1"),
        "web/check.sh": CHECK,
        "web/show.sh": SHOW,
        "db/main.tf": stack("d1"),
        "shared/settings.txt": "one\n",
    }
    repo = new_repo(world, files)
    gh.branch(repo, "shared", {"shared/settings.txt": "two\n"}, "shared settings")
    number = gh.open_pull(repo, "shared")
    statuses = final_status(world, repo, head_of(world, repo, number), "terraplane/plan")
    assert statuses == {"terraplane/plan: web": "success", "terraplane/plan": "success"}
    (command,) = commands(world, repo, number)
    run_id = command["dirspaces"][0]["run_id"]
    with world.server.client(Role.VIEWER) as client:
        log = client.get(f"/api/v1/runs/{run_id}/log").text
    assert f"checked web in default of PR {number}" in log
    assert 'showfile: {"format_version"' in log  # the plan as JSON, for steps after it


def test_merging_applies_when_the_repository_asks_for_it(world: PullRequestWorld) -> None:
    gh = world.github
    files = {".terraplane.yml": "apply_on_merge: true\n", "app/main.tf": stack("v1")}
    repo = new_repo(world, files)
    gh.branch(repo, "change", {"app/main.tf": stack("merged")}, "v2")
    number = gh.open_pull(repo, "change")
    head = head_of(world, repo, number)
    final_status(world, repo, head, "terraplane/plan")
    gh.merge_pull(repo, number)
    world.wait(
        "the apply on merge",
        lambda: gh.latest_statuses(repo, head).get("terraplane/apply") == "success",
    )
    state = state_of(world, repo, "app")
    assert state["resources"][0]["instances"][0]["attributes"]["triggers"] == {"value": "merged"}
    assert "apply on merge" in comment_of(world, repo, number)
    with world.server.client(Role.VIEWER) as client:
        locks = client.get("/api/v1/locks", params={"repository": repo}).json()["locks"]
    assert locks == []


def test_extra_arguments_only_where_the_config_allows_them(world: PullRequestWorld) -> None:
    gh = world.github
    two = stack("v2") + 'resource "null_resource" "other" {}\n'
    repo = new_repo(world, {"app/main.tf": stack("v1")})
    gh.branch(repo, "x", {"app/main.tf": two}, "two resources")
    number = gh.open_pull(repo, "x")
    final_status(world, repo, head_of(world, repo, number), "terraplane/plan")
    gh.comment(repo, number, "alice", "terraplane plan -d app -- -target=null_resource.other")
    world.wait("a refusal", lambda: "allow_extra_args: true" in comment_of(world, repo, number))

    repo = new_repo(
        world, {".terraplane.yml": "allow_extra_args: true\n", "app/main.tf": stack("v1")}
    )
    gh.branch(repo, "x", {"app/main.tf": two}, "two resources")
    number = gh.open_pull(repo, "x")
    head = head_of(world, repo, number)
    final_status(world, repo, head, "terraplane/plan")
    gh.comment(repo, number, "alice", "terraplane plan -d app -- -target=null_resource.other")
    world.wait(
        "the targeted plan",
        lambda: (
            len(commands(world, repo, number)) == 2
            and commands(world, repo, number)[-1]["status"] == "succeeded"
        ),
    )
    body = comment_of(world, repo, number)
    assert "null_resource.other will be created" in body
    assert "null_resource.item will be created" not in body


def test_drafts_wait_until_ready_for_review(world: PullRequestWorld) -> None:
    gh = world.github
    repo = new_repo(world, {"app/main.tf": stack("v1")})
    gh.branch(repo, "draft", {"app/main.tf": stack("v2")}, "draft")
    number = gh.open_pull(repo, "draft", draft=True)
    head = head_of(world, repo, number)
    # Requests about one pull request are handled in order: once help is answered, the
    # autoplan of the draft (requested first) has been decided.
    world.wait("the opened event", lambda: delivered(world, repo, "pull_request", "opened"))
    gh.comment(repo, number, "alice", "terraplane help")
    comment_of(world, repo, number)
    assert [c["kind"] for c in commands(world, repo, number)] == ["help"]
    assert "terraplane/plan" not in gh.latest_statuses(repo, head)
    gh.ready_for_review(repo, number)
    assert final_status(world, repo, head, "terraplane/plan")["terraplane/plan"] == "success"


def delivered(world: PullRequestWorld, repo: str, event: str, action: str) -> bool:
    with world.server.client(Role.VIEWER) as client:
        rows = client.get("/api/v1/github/deliveries").json()["deliveries"]
    return any(
        (r["repository"], r["event"], r["action"], r["status"])
        == (repo, event, action, "processed")
        for r in rows
    )


def test_each_workspace_is_its_own_dirspace_and_state(world: PullRequestWorld) -> None:
    gh = world.github
    config = "dirs:\n  - dir: app\n    workspaces: [staging, prod]\n"
    repo = new_repo(world, {".terraplane.yml": config, "app/main.tf": stack("v1")})
    gh.branch(repo, "x", {"app/main.tf": stack("v2")}, "v2")
    number = gh.open_pull(repo, "x")
    head = head_of(world, repo, number)
    statuses = final_status(world, repo, head, "terraplane/plan")
    assert statuses["terraplane/plan: app (staging)"] == "success"
    assert statuses["terraplane/plan: app (prod)"] == "success"
    gh.comment(repo, number, "alice", "terraplane apply -w staging")
    world.wait(
        "the apply", lambda: gh.latest_statuses(repo, head).get("terraplane/apply") == "success"
    )
    assert state_of(world, repo, "app", "staging") is not None
    assert state_of(world, repo, "app", "prod") is None  # only what was asked for


def test_webhooks_need_a_valid_signature(world: PullRequestWorld) -> None:
    body = b'{"zen": "x"}'
    headers = {
        "X-GitHub-Event": "ping",
        "X-GitHub-Delivery": "d1",
        "X-Hub-Signature-256": "sha256=00",
    }
    answer = httpx.post(world.github.webhook_url or "", content=body, headers=headers)
    assert answer.status_code == 401
    assert COMMENT_LIMIT == 65_536


def test_pull_requests_locks_runs_and_states_from_the_cli(world: PullRequestWorld) -> None:
    from tests.integration.test_cli import cli

    gh = world.github
    repo = new_repo(world, {"app/main.tf": stack("v1")})
    gh.branch(repo, "x", {"app/main.tf": stack("v2")}, "v2")
    number = gh.open_pull(repo, "x")
    head = head_of(world, repo, number)
    final_status(world, repo, head, "terraplane/plan")
    gh.comment(repo, number, "alice", "terraplane apply")
    world.wait(
        "the apply", lambda: gh.latest_statuses(repo, head).get("terraplane/apply") == "success"
    )

    def ok(role: Role, *args: str) -> str:
        env = {"TERRAPLANE_URL": world.server.url, "TERRAPLANE_TOKEN": world.server.tokens[role]}
        result = cli(*args, env=env)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert f"{repo}#{number}\topen" in ok(Role.VIEWER, "pull", "list", "--repo", repo)
    shown = ok(Role.VIEWER, "pull", "show", repo, str(number))
    assert "plan\tsucceeded" in shown and "apply\tsucceeded" in shown
    (lock,) = json.loads(ok(Role.VIEWER, "lock", "list", "--repo", repo, "--json"))
    assert lock["dir"] == "app" and lock["pull_request"] == number
    refused = cli(
        "lock",
        "release",
        str(lock["id"]),
        env={
            "TERRAPLANE_URL": world.server.url,
            "TERRAPLANE_TOKEN": world.server.tokens[Role.OPERATOR],
        },
    )
    assert refused.returncode == 1 and "needs the admin role" in refused.stderr
    assert "released lock" in ok(Role.ADMIN, "lock", "release", str(lock["id"]))
    assert ok(Role.VIEWER, "lock", "list", "--repo", repo).strip() == ""

    state = f"github/{repo}/app/ws.default"
    runs = ok(Role.VIEWER, "run", "list", "--workspace", state)
    apply_run = runs.splitlines()[0].split("\t")
    assert apply_run[1:3] == ["apply", "succeeded"]
    assert "Apply complete!" in ok(Role.VIEWER, "run", "log", apply_run[0], "--follow")
    versions = ok(Role.VIEWER, "state", "versions", state).splitlines()
    assert len(versions) >= 1
    serial = versions[-1].split("\t")[0]
    assert "is current again" in ok(Role.OPERATOR, "state", "rollback", state, "--serial", serial)


def test_quick_pushes_plan_each_head_one_after_the_other(world: PullRequestWorld) -> None:
    """Two heads planned at once would fight over the dirspace's state lock; the second plan
    waits for the first instead."""
    gh = world.github
    repo = new_repo(world, {"app/main.tf": stack("v1")})
    gh.branch(repo, "x", {"app/main.tf": stack("v2")}, "v2")
    number = gh.open_pull(repo, "x")
    first = head_of(world, repo, number)
    second = gh.push_to_pull(repo, number, {"app/main.tf": stack("v3")})
    assert final_status(world, repo, first, "terraplane/plan")["terraplane/plan"] == "success"
    assert final_status(world, repo, second, "terraplane/plan")["terraplane/plan"] == "success"


def test_drift_of_a_repositorys_default_branch(world: PullRequestWorld) -> None:
    gh = world.github
    repo = new_repo(world, {"app/main.tf": stack("v1"), "net/main.tf": stack("n1")})
    gh.branch(repo, "x", {"app/main.tf": stack("v2"), "net/main.tf": stack("n2")}, "both")
    number = gh.open_pull(repo, "x")
    head = head_of(world, repo, number)
    final_status(world, repo, head, "terraplane/plan")
    gh.comment(repo, number, "alice", "terraplane apply")
    world.wait(
        "the apply", lambda: gh.latest_statuses(repo, head).get("terraplane/apply") == "success"
    )
    gh.merge_pull(repo, number)
    app, net = (f"github/{repo}/{d}/ws.default" for d in ("app", "net"))

    with world.server.client() as client:
        name = f"repo-{uuid.uuid4().hex[:6]}"
        body = {"name": name, "cron": "0 3 * * *", "repository": repo, "window_seconds": 0}
        created = client.post("/api/v1/drift/schedules", json=body)
        assert created.status_code == 201, created.text
        bad = client.post(
            "/api/v1/drift/schedules",
            json={**body, "name": f"{name}-x", "environment": "dev"},
        )
        assert bad.status_code == 422 and "not both" in bad.json()["detail"]
        unknown = client.post(
            "/api/v1/drift/schedules", json={**body, "name": f"{name}-y", "repository": "no/repo"}
        )
        assert unknown.status_code == 404

        def statuses() -> dict[str, str]:
            rows = client.get("/api/v1/drift").json()["workspaces"]
            return {r["workspace"]: r["status"] for r in rows if r["workspace"] in (app, net)}

        assert client.post(f"/api/v1/drift/schedules/{name}/run").status_code == 202
        world.wait("both checked", lambda: statuses() == {app: "ok", net: "ok"})

        # Out of band: a resource disappears from app's state.
        state = json.loads(client.get(f"/api/v1/state/{app}").content)
        state["resources"], state["serial"] = [], state["serial"] + 1
        assert client.post(f"/api/v1/state/{app}", content=json.dumps(state)).status_code == 200
        check = client.post("/api/v1/drift/checks", json={"workspace": app})
        assert check.status_code == 202, check.text
        op_id = check.json()["operation"]["id"]
        world.wait(
            "the check",
            lambda: client.get(f"/api/v1/operations/{op_id}").json()["status"] == "succeeded",
        )
        assert statuses()[app] == "drifted"

        lock = {"ID": "out-of-band", "Operation": "OperationTypeApply", "Who": "bob@laptop"}
        assert (
            client.request("LOCK", f"/api/v1/state/{app}", content=json.dumps(lock)).status_code
            == 200
        )
        refused = client.post("/api/v1/drift/checks", json={"workspace": app})
        assert refused.status_code == 409 and "locked by bob@laptop" in refused.json()["detail"]
        assert (
            client.request("UNLOCK", f"/api/v1/state/{app}", content=json.dumps(lock)).status_code
            == 200
        )

        # Reconcile: the schedule applies the drift it finds.
        assert (
            client.patch(f"/api/v1/drift/schedules/{name}", json={"reconcile": True}).status_code
            == 200
        )
        assert client.post(f"/api/v1/drift/schedules/{name}/run").status_code == 202
        world.wait("reconciled", lambda: statuses().get(app) == "ok", timeout=180)
        restored = json.loads(client.get(f"/api/v1/state/{app}").content)
        assert [r["name"] for r in restored["resources"]] == ["item"]
