"""The FastAPI app factory. `create_app` wires the process's parts; the lifespan starts the
in-process workers (for `terraplane serve`) and drains them on shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from starlette.types import ASGIApp

from terraplane import __version__
from terraplane.api.context import AppContext
from terraplane.api.errors import install_error_handlers
from terraplane.api.hotpaths import HotPaths
from terraplane.api.middleware import RequestContextMiddleware
from terraplane.api.routes import (
    blueprints,
    deployments,
    drift,
    github,
    health,
    metrics,
    pulls,
    rollouts,
    runs,
    state,
    tenants,
    tokens,
)
from terraplane.controlplane.deployments import OPERATION_FINISHED_JOB_KIND, Deployments
from terraplane.controlplane.drift import (
    CHECK_JOB_KIND,
    FIRE_JOB_KIND,
    REPOSITORY_JOB_KIND,
    DriftScheduler,
)
from terraplane.controlplane.rollouts import ADVANCE_JOB_KIND, Rollouts
from terraplane.engine.binaries import EngineBinaries
from terraplane.engine.checkouts import Checkouts
from terraplane.github.app import GitHubApp
from terraplane.governance.tokens import PrincipalCache
from terraplane.pr.closing import REQUEST_JOB_KIND
from terraplane.pr.commands import ADVANCE_JOB_KIND as PR_ADVANCE_JOB_KIND
from terraplane.pr.commands import FEEDBACK_JOB_KIND
from terraplane.pr.drift import RepositoryDrift
from terraplane.pr.driver import CommandDriver
from terraplane.pr.events import DeliveryProcessor
from terraplane.pr.feedback import Feedback
from terraplane.pr.intake import DELIVERY_JOB_KIND
from terraplane.pr.requests import RequestProcessor
from terraplane.pr.retention import EXPIRE_JOB_KIND, PlanRetention, schedule_expiry
from terraplane.queue.jobs import give_up_all
from terraplane.queue.worker import Handler, Worker, fan_out
from terraplane.runs.executor import RunExecutor
from terraplane.runs.service import RUN_FINISHED_JOB_KIND, RUN_JOB_KIND
from terraplane.runs.sources import RunSources
from terraplane.settings import Settings
from terraplane.statebackend.service import StateBackend
from terraplane.store.database import Database
from terraplane.store.encryption import load_keyring
from terraplane.store.types import utcnow


def build_context(settings: Settings) -> AppContext:
    db = Database(settings.resolved_database_url, pool_size=settings.db_pool_size)
    keyring = load_keyring(settings.encryption_key, settings.encryption_old_keys, settings.data_dir)
    binaries = EngineBinaries(
        settings.engines_dir,
        {
            "terraform": settings.terraform_mirror,
            "tofu": settings.tofu_mirror,
        },
    )
    deployments = Deployments(db, keyring, settings.environment_chain)
    github = (
        GitHubApp(settings.github_app_id, settings.github_private_key_pem, settings.github_api_url)
        if settings.github_configured
        else None
    )
    checkouts = Checkouts(settings.checkouts_dir)
    repository_drift = RepositoryDrift(db, checkouts, github)
    return AppContext(
        settings=settings,
        db=db,
        keyring=keyring,
        binaries=binaries,
        state_backend=StateBackend(db, keyring, settings.state_max_bytes),
        principals=PrincipalCache(settings.token_cache_seconds),
        deployments=deployments,
        rollouts=Rollouts(db, deployments, settings.environment_chain),
        drift=DriftScheduler(
            db,
            deployments,
            settings.environment_chain,
            timedelta(seconds=settings.drift_retry_seconds),
            repository_drift,
        ),
        github=github,
        checkouts=checkouts,
        repository_drift=repository_drift,
    )


def build_worker(ctx: AppContext) -> Worker:
    s = ctx.settings
    sources = RunSources(ctx.db, s.runs_dir, s.data_dir / "modules", ctx.checkouts, ctx.github)
    executor = RunExecutor(
        settings=s, db=ctx.db, keyring=ctx.keyring, binaries=ctx.binaries, sources=sources
    )
    driver = CommandDriver(ctx.db)
    handlers: dict[str, Handler] = {
        RUN_JOB_KIND: executor,
        RUN_FINISHED_JOB_KIND: fan_out(
            ctx.deployments.on_run_finished,
            driver.on_run_finished,
            ctx.repository_drift.on_run_finished,
        ),
        OPERATION_FINISHED_JOB_KIND: ctx.rollouts.on_operation_finished,
        ADVANCE_JOB_KIND: ctx.rollouts.on_advance,
        FIRE_JOB_KIND: ctx.drift.on_fire,
        CHECK_JOB_KIND: ctx.drift.on_check,
        DELIVERY_JOB_KIND: DeliveryProcessor(ctx.db),
        PR_ADVANCE_JOB_KIND: driver.on_advance,
        REQUEST_JOB_KIND: RequestProcessor(ctx.db, ctx.checkouts, ctx.github),
        FEEDBACK_JOB_KIND: Feedback(ctx.db, ctx.github, s.base_url),
        EXPIRE_JOB_KIND: PlanRetention(ctx.db, timedelta(hours=s.plan_retention_hours)),
        REPOSITORY_JOB_KIND: ctx.repository_drift.on_fire,
    }
    # GitHub and git work (API calls, fetches) gets its own lane: a slow GitHub must not hold
    # up the bookkeeping of runs, nor a long queue of runs hold up comments.
    github = [REQUEST_JOB_KIND, FEEDBACK_JOB_KIND, REPOSITORY_JOB_KIND]
    events = sorted(kind for kind in handlers if kind != RUN_JOB_KIND and kind not in github)
    return Worker(
        ctx.db,
        handlers,
        lanes=[
            ("runs", [RUN_JOB_KIND], s.workers),
            ("events", events, s.event_workers),
            ("github", github, s.github_workers),
        ],
        lease_seconds=s.job_lease_seconds,
        poll_seconds=s.job_poll_seconds,
        # Whatever waits for these jobs hears of it when the queue gives up on one.
        give_up={
            RUN_JOB_KIND: executor.give_up,
            RUN_FINISHED_JOB_KIND: give_up_all(
                ctx.deployments.give_up_run_finished, driver.give_up_run_finished
            ),
            OPERATION_FINISHED_JOB_KIND: ctx.rollouts.give_up_operation_finished,
            ADVANCE_JOB_KIND: ctx.rollouts.give_up_advance,
        },
    )


async def start_worker(ctx: AppContext) -> Worker:
    """Build and start this process's worker, and make sure the periodic jobs are scheduled
    (idempotent across instances)."""
    worker = build_worker(ctx)
    async with ctx.db.write() as conn:
        await schedule_expiry(conn, utcnow())
    worker.start()
    return worker


def create_app(settings: Settings, *, with_workers: bool = True) -> ASGIApp:
    """The ASGI application: request context (ids, logs, metrics) around the hot paths around
    the FastAPI app."""
    api = create_fastapi(settings, with_workers=with_workers)
    ctx: AppContext = api.state.ctx
    return RequestContextMiddleware(HotPaths(api, ctx, [state.hot_path, github.hot_path]))


def create_fastapi(settings: Settings, *, with_workers: bool = True) -> FastAPI:
    ctx = build_context(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if with_workers and settings.workers > 0:
            ctx.worker = await start_worker(ctx)
        try:
            yield
        finally:
            if ctx.worker is not None:
                await ctx.worker.stop(settings.shutdown_grace_seconds)
            if ctx.github is not None:
                await ctx.github.close()
            await ctx.db.dispose()

    app = FastAPI(
        title="Terraplane",
        version=__version__,
        description="Control plane for infrastructure as code.",
        lifespan=lifespan,
        openapi_url="/openapi.json",
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    for module in (
        health,
        metrics,
        state,
        runs,
        tokens,
        blueprints,
        tenants,
        deployments,
        rollouts,
        drift,
        github,
        pulls,
    ):
        app.include_router(module.router)
    return app
