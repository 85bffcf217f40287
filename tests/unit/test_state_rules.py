"""The http backend's write rules, name rules and lock information parsing."""

from __future__ import annotations

import json

import pytest

from terraplane.domain.errors import Conflict, InvalidInput, Unprocessable
from terraplane.domain.state import (
    StateDocument,
    StateHead,
    WriteOutcome,
    check_state_write,
    parse_lock_info,
    parse_state_document,
    validate_state_name,
    with_serial,
)

EMPTY = StateHead(lineage=None, serial=None, sha256=None, lock_id=None)
CURRENT = StateHead(lineage="L1", serial=5, sha256="aaa", lock_id=None)


def doc(serial: int, lineage: str = "L1") -> StateDocument:
    return StateDocument(lineage=lineage, serial=serial, version=4)


def test_first_write_takes_any_lineage() -> None:
    assert check_state_write(EMPTY, None, doc(0, "new"), "x") is WriteOutcome.NEW_VERSION


def test_next_serial_is_a_new_version() -> None:
    assert check_state_write(CURRENT, None, doc(6), "bbb") is WriteOutcome.NEW_VERSION


def test_same_serial_same_bytes_is_a_repeat() -> None:
    assert check_state_write(CURRENT, None, doc(5), "aaa") is WriteOutcome.UNCHANGED


def test_same_serial_other_bytes_conflicts() -> None:
    with pytest.raises(Conflict, match="already stored"):
        check_state_write(CURRENT, None, doc(5), "bbb")


def test_serial_going_backwards_conflicts() -> None:
    with pytest.raises(Conflict, match="older than the current serial 5"):
        check_state_write(CURRENT, None, doc(4), "bbb")


def test_foreign_lineage_conflicts() -> None:
    with pytest.raises(Conflict, match="lineage other does not match"):
        check_state_write(CURRENT, None, doc(6, "other"), "bbb")


def test_locked_state_needs_the_holders_id() -> None:
    locked = StateHead(lineage="L1", serial=5, sha256="aaa", lock_id="lock-1")
    assert check_state_write(locked, "lock-1", doc(6), "b") is WriteOutcome.NEW_VERSION
    with pytest.raises(Conflict, match="must carry that ID"):
        check_state_write(locked, None, doc(6), "b")
    with pytest.raises(Conflict, match="does not hold the lock"):
        check_state_write(locked, "lock-2", doc(6), "b")


def test_write_with_a_released_lock_id_conflicts() -> None:
    with pytest.raises(Conflict, match="no longer holds"):
        check_state_write(CURRENT, "lock-1", doc(6), "b")


@pytest.mark.parametrize("name", ["a", "team/app/prod", "x.y_z-1", "A1/b2"])
def test_valid_names(name: str) -> None:
    assert validate_state_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "/a", "a/", "a//b", "../x", "a/../b", "a b", "a/versions", "-a", "é", "x" * 600]
)
def test_invalid_names(name: str) -> None:
    with pytest.raises(InvalidInput):
        validate_state_name(name)


@pytest.mark.parametrize(
    "raw,error",
    [
        (b"{", InvalidInput),
        (b"[]", InvalidInput),
        (b'{"version": 4, "lineage": "x"}', Unprocessable),
        (b'{"version": 4, "serial": -1, "lineage": "x"}', Unprocessable),
        (b'{"version": 4, "serial": 1}', Unprocessable),
        (b'{"serial": 1, "lineage": "x"}', Unprocessable),
        (b"\xff\xfe", InvalidInput),
    ],
)
def test_bad_state_documents(raw: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_state_document(raw)


def test_with_serial_keeps_everything_else() -> None:
    raw = json.dumps({"version": 4, "serial": 3, "lineage": "L", "resources": [1]}).encode()
    moved = json.loads(with_serial(raw, 9))
    assert moved == {"version": 4, "serial": 9, "lineage": "L", "resources": [1]}


def test_lock_info_needs_an_id() -> None:
    assert parse_lock_info(b'{"ID": "abc", "Who": "me"}')["Who"] == "me"
    for bad in (b"", b"{}", b'{"ID": ""}', b'{"ID": 3}', b"nope", b'{"ID": "' + b"x" * 200 + b'"}'):
        with pytest.raises(InvalidInput):
            parse_lock_info(bad)
