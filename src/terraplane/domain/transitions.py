"""One checked transition function for every state machine in the domain."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TypeVar

from terraplane.domain.errors import Conflict

S = TypeVar("S", bound=enum.Enum)


class InvalidTransition(Conflict):
    pass


def check_transition(allowed: Mapping[S, frozenset[S]], current: S, target: S) -> S:
    """Return `target` when `current -> target` is allowed, else raise InvalidTransition."""
    if target not in allowed.get(current, frozenset()):
        raise InvalidTransition(f"cannot move from {current.value!r} to {target.value!r}")
    return target
