"""Comment commands and tag queries: what a user types on a pull request, and what it selects."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from terraplane.domain.commands import CommandKind, InvalidCommand, is_command, parse_command
from terraplane.domain.errors import InvalidInput
from terraplane.domain.tagquery import parse_query


@dataclass(frozen=True)
class Target:
    dir: str
    workspace: str = "default"
    name: str | None = None
    tags: tuple[str, ...] = ()


WEB = Target("stacks/web", "prod", "web", ("app", "frontend"))
API = Target("stacks/api", "prod", None, ("app",))
NET = Target("network", "default", "net", ("core",))
ALL = [WEB, API, NET]


def selected(text: str) -> list[str]:
    command = parse_command(text)
    return [t.dir for t in ALL if command.selects(t)]


def test_only_comments_starting_with_the_trigger_are_commands() -> None:
    assert is_command("terraplane plan")
    assert is_command("  Terraplane apply -d x\nmore text")
    assert not is_command("please run terraplane plan")
    assert not is_command("")


def test_plain_commands() -> None:
    plan = parse_command("terraplane plan")
    assert plan.kind is CommandKind.PLAN and not plan.filtered
    assert parse_command("terraplane apply\nthanks!").kind is CommandKind.APPLY
    assert parse_command("terraplane unlock").kind is CommandKind.UNLOCK
    assert parse_command("TERRAPLANE HELP").kind is CommandKind.HELP


def test_flags_select_dirspaces() -> None:
    assert selected("terraplane plan -d stacks/web") == ["stacks/web"]
    assert selected("terraplane plan -d stacks/web/ --dir network") == ["stacks/web", "network"]
    assert selected("terraplane plan -w prod") == ["stacks/web", "stacks/api"]
    assert selected("terraplane plan -p net") == ["network"]
    assert selected("terraplane plan -d stacks/web -w default") == []  # kinds combine with and
    assert selected("terraplane apply --workspace=prod -p web") == ["stacks/web"]


def test_tag_queries() -> None:
    assert selected("terraplane plan tag:app") == ["stacks/web", "stacks/api"]
    assert selected("terraplane plan app and not frontend") == ["stacks/api"]
    assert selected("terraplane plan app frontend") == ["stacks/web"]  # adjacent: and
    assert selected("terraplane plan core or frontend") == ["stacks/web", "network"]
    assert selected("terraplane plan dir:stacks/*") == ["stacks/web", "stacks/api"]
    assert selected("terraplane plan (core or frontend) and workspace:prod") == ["stacks/web"]
    assert selected("terraplane plan 'name:net'") == ["network"]
    assert selected("terraplane plan -w prod not tag:frontend") == ["stacks/api"]


def test_extra_arguments_after_double_dash() -> None:
    command = parse_command("terraplane plan -d network -- -target=null_resource.a -refresh=false")
    assert command.dirs == ("network",)
    assert command.extra_args == ("-target=null_resource.a", "-refresh=false")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("terraplane", "say what to do"),
        ("terraplane destroy", "unknown command 'destroy'"),
        ("terraplane plan -d", "-d needs a value"),
        ("terraplane plan -x y", "unknown flag '-x'"),
        ("terraplane plan -d ../elsewhere", "leaves the repository"),
        ("terraplane plan -d /etc", "relative to the repository root"),
        ("terraplane unlock -d x", "takes no arguments"),
        ("terraplane plan 'unclosed", "cannot read the command"),
        ("terraplane plan (app", "is not closed"),
        ("terraplane plan app and", "ends where a term was expected"),
        ("terraplane plan owner:me", "unknown field 'owner'"),
        ("terraplane plan tag:", "needs a value"),
    ],
)
def test_malformed_commands_say_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(InvalidCommand, match=problem):
        parse_command(text)


def test_queries_alone() -> None:
    assert parse_query("a or b and c").matches(Target("x", tags=("a",)))
    assert not parse_query("not (a or b)").matches(Target("x", tags=("b",)))
    with pytest.raises(InvalidInput, match="empty"):
        parse_query("   ")
    with pytest.raises(InvalidInput, match="unexpected"):
        parse_query("a )")
