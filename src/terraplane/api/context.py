"""What the API needs from the process: created once in `create_app`, reached through the app."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from terraplane.controlplane.deployments import Deployments
from terraplane.controlplane.drift import DriftScheduler
from terraplane.controlplane.rollouts import Rollouts
from terraplane.engine.binaries import EngineBinaries
from terraplane.engine.checkouts import Checkouts
from terraplane.github.app import GitHubApp
from terraplane.governance.tokens import PrincipalCache
from terraplane.pr.drift import RepositoryDrift
from terraplane.queue.worker import Worker
from terraplane.settings import Settings
from terraplane.statebackend.service import StateBackend
from terraplane.store.database import Database
from terraplane.store.encryption import Keyring


@dataclass
class AppContext:
    settings: Settings
    db: Database
    keyring: Keyring
    binaries: EngineBinaries
    state_backend: StateBackend
    deployments: Deployments
    rollouts: Rollouts
    drift: DriftScheduler
    checkouts: Checkouts
    repository_drift: RepositoryDrift
    github: GitHubApp | None = None
    worker: Worker | None = None
    principals: PrincipalCache = field(default_factory=lambda: PrincipalCache(0))

    def wake_workers(self) -> None:
        if self.worker is not None:
            self.worker.wake()


async def app_context(request: Request) -> AppContext:
    # async: FastAPI runs a plain `def` dependency in a thread pool, on every request.
    ctx: AppContext = request.app.state.ctx
    return ctx
