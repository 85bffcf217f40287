"""Terraform state rules: names, the write checks of the http backend, lock information.

Terraform's http backend sends the whole state on every write. A write is accepted only when it
continues the current history: same lineage, serial not going backwards, and made by the lock
holder when the state is locked. Equal serial with identical bytes is a repeat (no new version);
equal serial with different bytes is a conflict, since Terraform bumps the serial on every change.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass
from typing import Any

from terraplane.domain.errors import Conflict, InvalidInput, Unprocessable

# Path segments after a state name that address its history, so never part of a name.
RESERVED_SEGMENTS = frozenset({"versions", "rollback", "lock"})
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_NAME_LENGTH = 512
MAX_LOCK_INFO_BYTES = 16 * 1024


def validate_state_name(name: str) -> str:
    """Return `name` if it is a valid state name, else raise InvalidInput saying why."""
    if not name or len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"state name must be 1 to {MAX_NAME_LENGTH} characters")
    for segment in name.split("/"):
        if not _SEGMENT.match(segment):
            raise InvalidInput(
                f"state name {name!r}: segment {segment!r} must start with a letter or digit and "
                "hold only letters, digits, '.', '_' or '-' (at most 128 characters)"
            )
        if segment in RESERVED_SEGMENTS:
            raise InvalidInput(f"state name {name!r}: {segment!r} is reserved")
    return name


@dataclass(frozen=True)
class StateDocument:
    """The parts of a Terraform state file the backend checks."""

    lineage: str
    serial: int
    version: int


def parse_state_document(raw: bytes) -> StateDocument:
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"state body is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidInput("state body must be a JSON object")
    serial, lineage, version = doc.get("serial"), doc.get("lineage"), doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise Unprocessable("state body has no integer 'version'")
    if not isinstance(serial, int) or isinstance(serial, bool) or serial < 0:
        raise Unprocessable("state body has no non-negative integer 'serial'")
    if not isinstance(lineage, str) or not lineage:
        raise Unprocessable("state body has no 'lineage' string")
    return StateDocument(lineage=lineage, serial=serial, version=version)


def with_serial(raw: bytes, serial: int) -> bytes:
    """The same state with its serial replaced (used to copy an old version forward)."""
    doc: dict[str, Any] = json.loads(raw)
    doc["serial"] = serial
    return json.dumps(doc, indent=2).encode() + b"\n"


@dataclass(frozen=True)
class StateHead:
    """The current version of a state and its lock, as stored."""

    lineage: str | None
    serial: int | None
    sha256: str | None
    lock_id: str | None


class WriteOutcome(enum.Enum):
    NEW_VERSION = "new_version"
    UNCHANGED = "unchanged"


def check_lock_for_write(head: StateHead, lock_id: str | None) -> None:
    if head.lock_id is not None and lock_id != head.lock_id:
        raise Conflict(
            f"state is locked with lock ID {head.lock_id}; a write must carry that ID"
            if lock_id is None
            else f"lock ID {lock_id} does not hold the lock (held by {head.lock_id})"
        )
    if head.lock_id is None and lock_id is not None:
        raise Conflict(f"lock ID {lock_id} no longer holds the lock: the state was unlocked")


def check_state_write(
    head: StateHead, lock_id: str | None, incoming: StateDocument, sha256: str
) -> WriteOutcome:
    """Decide whether a write is accepted; raise Conflict naming the broken rule if not."""
    check_lock_for_write(head, lock_id)
    if head.serial is None:
        return WriteOutcome.NEW_VERSION
    if head.lineage is not None and incoming.lineage != head.lineage:
        raise Conflict(
            f"lineage {incoming.lineage} does not match the state's lineage {head.lineage}"
        )
    if incoming.serial < head.serial:
        raise Conflict(f"serial {incoming.serial} is older than the current serial {head.serial}")
    if incoming.serial == head.serial:
        if sha256 == head.sha256:
            return WriteOutcome.UNCHANGED
        raise Conflict(
            f"serial {incoming.serial} is already stored with different content; "
            "Terraform increments the serial on every change"
        )
    return WriteOutcome.NEW_VERSION


def parse_lock_info(raw: bytes) -> dict[str, Any]:
    """Terraform's lock information JSON; it must carry a non-empty string ID."""
    if len(raw) > MAX_LOCK_INFO_BYTES:
        raise InvalidInput(f"lock information is larger than {MAX_LOCK_INFO_BYTES} bytes")
    try:
        info = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"lock information is not valid JSON: {exc}") from exc
    if not isinstance(info, dict) or not isinstance(info.get("ID"), str) or not info["ID"]:
        raise InvalidInput("lock information must be a JSON object with a non-empty 'ID'")
    if len(info["ID"]) > 128:
        raise InvalidInput("lock ID is longer than 128 characters")
    return info
