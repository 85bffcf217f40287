"""A run's credentials for Terraplane's state backend.

A run's terraform reads, locks and writes its one state with a token bound to one execution of
that run: `tpr_<run id>.<claim token>.<signature>`, signed (HMAC-SHA256 under a key derived
from the encryption key, so every instance can check it). Minting one writes nothing. It is
valid while that execution holds the run's job: each claim of the job has its own claim token,
and a finished, lost or handed-back job no longer has this one — so the token dies with the
execution, without being revoked. Its principal is an operator scoped to the run's state, named
`run-<id>-attempt-<n>-<claim>` (what a state lock taken with it records).
"""

from __future__ import annotations

import base64
import binascii
import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from terraplane.domain.errors import NotAuthenticated
from terraplane.domain.jobs import JobStatus
from terraplane.domain.roles import Role
from terraplane.governance.tokens import Principal
from terraplane.store.encryption import Keyring
from terraplane.store.tables import jobs, runs

RUN_TOKEN_PREFIX = "tpr_"  # noqa: S105 - a prefix, not a secret
_FORMAT = re.compile(r"^tpr_(\d{1,18})\.([0-9a-f-]{36})\.([A-Za-z0-9_-]{43})$")


def principal_name(run_id: int, attempt: int, claim_token: str) -> str:
    return f"{run_name_prefix(run_id)}{attempt}-{claim_token}"


def run_name_prefix(run_id: int) -> str:
    """What every principal of a run's executions starts with (to find a dead one's lock)."""
    return f"run-{run_id}-attempt-"


def _message(run_id: int, claim_token: str) -> bytes:
    return f"run-token:{run_id}:{claim_token}".encode()


def mint(keyring: Keyring, run_id: int, claim_token: str) -> str:
    mac = base64.urlsafe_b64encode(keyring.sign(_message(run_id, claim_token))).rstrip(b"=")
    return f"{RUN_TOKEN_PREFIX}{run_id}.{claim_token}.{mac.decode()}"


def is_run_token(secret: str) -> bool:
    return secret.startswith(RUN_TOKEN_PREFIX)


async def authenticate_run_token(conn: AsyncConnection, keyring: Keyring, secret: str) -> Principal:
    """The run's principal, or NotAuthenticated (malformed, forged, or its execution over)."""
    match = _FORMAT.match(secret)
    if match is None:
        raise NotAuthenticated("the token is not a run token")
    run_id, claim_token = int(match[1]), match[2]
    try:
        mac = base64.urlsafe_b64decode(match[3] + "=")
    except (binascii.Error, ValueError):
        raise NotAuthenticated("the token is not a run token") from None
    if not keyring.verify(_message(run_id, claim_token), mac):
        raise NotAuthenticated("the run token's signature does not match")
    row = (
        await conn.execute(
            select(runs.c.spec, jobs.c.status, jobs.c.claim_token, jobs.c.attempts)
            .join(jobs, jobs.c.id == runs.c.job_id)
            .where(runs.c.id == run_id)
        )
    ).one_or_none()
    if row is None or row.status != JobStatus.RUNNING.value or row.claim_token != claim_token:
        raise NotAuthenticated(f"run {run_id}'s token is no longer valid: that execution is over")
    state = (row.spec or {}).get("state")
    if not state:
        raise NotAuthenticated(f"run {run_id} has no state in Terraplane")
    return Principal(
        token_id=0,
        name=principal_name(run_id, int(row.attempts), claim_token),
        role=Role.OPERATOR,
        state_scope=str(state),
    )
