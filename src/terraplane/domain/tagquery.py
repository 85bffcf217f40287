"""Tag queries: which dirspaces a command means.

    query := or ;  or := and ("or" and)* ;  and := not (["and"] not)* ;
    not := "not" not | "(" query ")" | term
    term := tag:NAME | dir:GLOB | workspace:NAME | name:NAME | NAME   (a bare NAME is a tag)

Adjacent terms mean "and": `tag:app dir:stacks/*` selects the `app`-tagged dirspaces under
`stacks/`. Keywords are case-insensitive; a term is compared exactly (dir globs as in
`domain.globs`).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Protocol

from terraplane.domain.errors import InvalidInput
from terraplane.domain.globs import glob_match

_TOKEN = re.compile(r"\(|\)|[^\s()]+")
_FIELDS = ("tag", "dir", "workspace", "name")
MAX_QUERY_LENGTH = 2000


class Selectable(Protocol):
    """What a query looks at (a dirspace has all four)."""

    @property
    def dir(self) -> str: ...
    @property
    def workspace(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def tags(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class Term:
    field: str
    value: str

    def matches(self, target: Selectable) -> bool:
        if self.field == "tag":
            return self.value in target.tags
        if self.field == "dir":
            return glob_match(self.value, target.dir)
        if self.field == "workspace":
            return self.value == target.workspace
        return self.value == target.name


@dataclass(frozen=True)
class Not:
    operand: Query

    def matches(self, target: Selectable) -> bool:
        return not self.operand.matches(target)


@dataclass(frozen=True)
class And:
    operands: tuple[Query, ...]

    def matches(self, target: Selectable) -> bool:
        return all(o.matches(target) for o in self.operands)


@dataclass(frozen=True)
class Or:
    operands: tuple[Query, ...]

    def matches(self, target: Selectable) -> bool:
        return any(o.matches(target) for o in self.operands)


Query = Term | Not | And | Or


def _term(word: str) -> Term:
    field, sep, value = word.partition(":")
    if not sep:
        return Term("tag", word)
    if field.lower() not in _FIELDS:
        raise InvalidInput(
            f"tag query: unknown field {field!r} in {word!r}: use tag:, dir:, workspace: or name:"
        )
    if not value:
        raise InvalidInput(f"tag query: {word!r} needs a value after the colon")
    if field.lower() == "dir":
        value = posixpath.normpath(value.rstrip("/")) if value not in (".", "./") else "."
    return Term(field.lower(), value)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens: list[str] = _TOKEN.findall(text)
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        word = self.tokens[self.pos]
        self.pos += 1
        return word

    def parse(self) -> Query:
        if not self.tokens:
            raise InvalidInput("tag query is empty")
        query = self.parse_or()
        if self.peek() is not None:
            raise InvalidInput(f"tag query: unexpected {self.peek()!r}")
        return query

    def parse_or(self) -> Query:
        operands = [self.parse_and()]
        while (self.peek() or "").lower() == "or":
            self.take()
            operands.append(self.parse_and())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def parse_and(self) -> Query:
        operands = [self.parse_not()]
        while True:
            word = self.peek()
            if word is None or word == ")" or word.lower() == "or":
                break
            if word.lower() == "and":
                self.take()
            operands.append(self.parse_not())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def parse_not(self) -> Query:
        word = self.peek()
        if word is None:
            raise InvalidInput("tag query ends where a term was expected")
        if word.lower() == "not":
            self.take()
            return Not(self.parse_not())
        if word == "(":
            self.take()
            inner = self.parse_or()
            if self.peek() != ")":
                raise InvalidInput("tag query: a '(' is not closed")
            self.take()
            return inner
        if word == ")" or word.lower() in ("and", "or"):
            raise InvalidInput(f"tag query: unexpected {word!r} where a term was expected")
        return _term(self.take())


def parse_query(text: str) -> Query:
    """A query from its text; InvalidInput saying what is wrong otherwise."""
    if len(text) > MAX_QUERY_LENGTH:
        raise InvalidInput(f"tag query is longer than {MAX_QUERY_LENGTH} characters")
    return _Parser(text).parse()
