"""Pull-request comment commands: `terraplane plan|apply|unlock|help`.

    terraplane plan  [-d DIR]... [-w WORKSPACE]... [-p NAME]... [TAG QUERY] [-- EXTRA ARGS]
    terraplane apply [-d DIR]... [-w WORKSPACE]... [-p NAME]... [TAG QUERY] [-- EXTRA ARGS]
    terraplane unlock
    terraplane help

Only the comment's first line is read, split like a shell would (quotes group words), never
run by one. A comment that does not start with `terraplane` is not a command; one that does
but is malformed is an `InvalidCommand` whose message is posted back to the pull request.
"""

from __future__ import annotations

import enum
import posixpath
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

from terraplane.domain.errors import InvalidInput
from terraplane.domain.tagquery import Query, Selectable, parse_query

TRIGGER = "terraplane"
MAX_COMMAND_LENGTH = 4000

USAGE = """\
terraplane plan  [-d DIR]... [-w WORKSPACE]... [-p NAME]... [TAG QUERY] [-- EXTRA ARGS]
terraplane apply [-d DIR]... [-w WORKSPACE]... [-p NAME]... [TAG QUERY] [-- EXTRA ARGS]
terraplane unlock
terraplane help

  plan     plan the dirspaces this pull request changes, or those the filters select
  apply    apply the plans of this pull request (all, or those the filters select)
  unlock   release every dirspace lock this pull request holds and discard its plans
  help     show this message

  -d, --dir DIR              a directory (repeatable)
  -w, --workspace WORKSPACE  a Terraform workspace (repeatable)
  -p, --project NAME         a dirspace by its configured name (repeatable)
  TAG QUERY                  e.g. `tag:app and not dir:legacy/**` (tag:, dir:, workspace:, name:)
  -- EXTRA ARGS              passed to terraform plan/apply, when the repository config allows
"""


class InvalidCommand(InvalidInput):
    """A comment addressed to Terraplane that it cannot understand."""


class CommandKind(enum.StrEnum):
    PLAN = "plan"
    APPLY = "apply"
    UNLOCK = "unlock"
    HELP = "help"


_FLAGS = {
    "-d": "dirs",
    "--dir": "dirs",
    "-w": "workspaces",
    "--workspace": "workspaces",
    "-p": "names",
    "--project": "names",
}


@dataclass(frozen=True)
class Command:
    kind: CommandKind
    dirs: tuple[str, ...] = ()
    workspaces: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    query: Query | None = None
    query_text: str = ""
    extra_args: tuple[str, ...] = ()
    # The words as typed (after the trigger), for the record and the comment header.
    text: str = field(default="", compare=False)

    @property
    def filtered(self) -> bool:
        """Whether the command names dirspaces (otherwise it means "the usual ones")."""
        return bool(self.dirs or self.workspaces or self.names or self.query is not None)

    def selects(self, target: Selectable) -> bool:
        """Whether `target` is one the filters name (each flag kind is "any of", the kinds and
        the query all apply)."""
        if self.dirs and target.dir not in self.dirs:
            return False
        if self.workspaces and target.workspace not in self.workspaces:
            return False
        if self.names and target.name not in self.names:
            return False
        return self.query is None or self.query.matches(target)


def is_command(body: str) -> bool:
    """Whether a comment is addressed to Terraplane (its first word is `terraplane`)."""
    words = body.strip().split(None, 1)
    return bool(words) and words[0].lower() == TRIGGER


def _normal_dir(value: str) -> str:
    if value.startswith("/") or "\\" in value:
        raise InvalidCommand(f"-d {value!r}: give a directory relative to the repository root")
    normal = posixpath.normpath(value.rstrip("/") or ".")
    if normal == ".." or normal.startswith("../"):
        raise InvalidCommand(f"-d {value!r} leaves the repository")
    return normal


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise InvalidCommand(f"cannot read the command: {exc}") from exc


def parse_command(body: str) -> Command:
    """The command in a comment addressed to Terraplane (see `is_command`)."""
    line = body.strip().splitlines()[0].strip() if body.strip() else ""
    if len(line) > MAX_COMMAND_LENGTH:
        raise InvalidCommand(f"the command is longer than {MAX_COMMAND_LENGTH} characters")
    words = _split(line)
    if not words or words[0].lower() != TRIGGER:
        raise InvalidCommand("a command starts with `terraplane`")
    if len(words) == 1:
        raise InvalidCommand("say what to do: `terraplane plan`, `apply`, `unlock` or `help`")
    try:
        kind = CommandKind(words[1].lower())
    except ValueError:
        raise InvalidCommand(
            f"unknown command {words[1]!r}: use plan, apply, unlock or help"
        ) from None
    rest = words[2:]
    extra: list[str] = []
    if "--" in rest:
        cut = rest.index("--")
        rest, extra = rest[:cut], rest[cut + 1 :]
    if kind in (CommandKind.UNLOCK, CommandKind.HELP):
        if rest or extra:
            raise InvalidCommand(f"`terraplane {kind.value}` takes no arguments")
        return Command(kind, text=" ".join(words[1:]))
    return _with_filters(kind, rest, extra, " ".join(words[1:]))


def _query(text: str) -> Query:
    try:
        return parse_query(text)
    except InvalidInput as exc:
        raise InvalidCommand(str(exc)) from exc


def _with_filters(kind: CommandKind, rest: Sequence[str], extra: list[str], text: str) -> Command:
    values: dict[str, list[str]] = {"dirs": [], "workspaces": [], "names": []}
    query_words: list[str] = []
    i = 0
    while i < len(rest):
        word = rest[i]
        flag, eq, inline = word.partition("=")
        if flag in _FLAGS:
            if eq:
                value = inline
            elif i + 1 < len(rest):
                i += 1
                value = rest[i]
            else:
                raise InvalidCommand(f"{flag} needs a value")
            if not value:
                raise InvalidCommand(f"{flag} needs a value")
            values[_FLAGS[flag]].append(_normal_dir(value) if _FLAGS[flag] == "dirs" else value)
        elif word.startswith("-") and word not in ("-",):
            raise InvalidCommand(
                f"unknown flag {word!r}: use -d, -w, -p, or put terraform's own flags after --"
            )
        else:
            query_words.append(word)
        i += 1
    query_text = " ".join(query_words)
    return Command(
        kind,
        dirs=tuple(dict.fromkeys(values["dirs"])),
        workspaces=tuple(dict.fromkeys(values["workspaces"])),
        names=tuple(dict.fromkeys(values["names"])),
        query=_query(query_text) if query_words else None,
        query_text=query_text,
        extra_args=tuple(extra),
        text=text,
    )
