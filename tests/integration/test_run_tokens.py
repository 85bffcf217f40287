"""A run's state credentials: valid for its one state while its execution holds the job, and
for nothing else — forged, tampered, or outliving the execution, they are refused."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from terraplane.domain.errors import NotAuthenticated
from terraplane.domain.roles import Role
from terraplane.domain.runs import DirectorySource, RunOperation, RunSpec
from terraplane.governance.run_tokens import authenticate_run_token, mint
from terraplane.queue import jobs as q
from terraplane.runs.service import RUN_JOB_KIND, create_run
from terraplane.store.database import Database
from terraplane.store.encryption import Keyring

LEASE = timedelta(seconds=30)


async def test_a_run_token_lives_and_dies_with_its_execution(db: Database) -> None:
    keyring = Keyring(os.urandom(32))
    async with db.write() as conn:
        run = await create_run(
            conn,
            workspace="w",
            operation=RunOperation.APPLY,
            spec=RunSpec(source=DirectorySource(path="/x"), state="team/network"),
            created_by="test",
        )
    job = await q.claim_next(db, "worker", [RUN_JOB_KIND], LEASE)
    assert job is not None and job.claim_token is not None
    secret = mint(keyring, run.id, job.claim_token)

    async with db.read() as conn:
        principal = await authenticate_run_token(conn, keyring, secret)
    assert principal.role is Role.OPERATOR and principal.state_scope == "team/network"
    assert principal.may_touch_state("team/network") and not principal.may_touch_state("other")
    assert principal.name.startswith(f"run-{run.id}-attempt-1-")

    forged = [
        mint(Keyring(os.urandom(32)), run.id, job.claim_token),  # another server's key
        secret[:-2] + ("AA" if not secret.endswith("AA") else "BB"),  # tampered signature
        mint(keyring, run.id + 1, job.claim_token),  # another run
        "tpr_garbage",
    ]
    async with db.read() as conn:
        for bad in forged:
            with pytest.raises(NotAuthenticated):
                await authenticate_run_token(conn, keyring, bad)

    # A key rotation: tokens signed with the previous key still verify.
    rotated = Keyring(os.urandom(32), [keyring_key := os.urandom(32)])
    old = Keyring(keyring_key)
    async with db.read() as conn:
        await authenticate_run_token(conn, rotated, mint(old, run.id, job.claim_token))

    async with db.write() as conn:
        assert await q.complete(conn, job, {"done": True})
    async with db.read() as conn:
        with pytest.raises(NotAuthenticated, match="that execution is over"):
            await authenticate_run_token(conn, keyring, secret)
