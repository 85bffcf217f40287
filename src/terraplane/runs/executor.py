"""The `run` job handler: prepare a working directory, drive the engine, record the result.

A run may be executed more than once when its worker dies: the job is re-claimed after its lease
and the run starts again in a fresh directory. Plans are idempotent; an apply re-plans first and
applies what remains. A state lock left behind by the dead attempt's terraform is released, and
only that one: we recognise it by the run's own backend token, which took it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from terraplane.domain.errors import NotFound
from terraplane.domain.plans import summarize_plan
from terraplane.domain.roles import Role
from terraplane.domain.runs import DirectorySource, RunOperation, RunSpec, RunStatus
from terraplane.engine.archives import unpack_cached
from terraplane.engine.binaries import EngineBinaries
from terraplane.engine.process import kill_orphans
from terraplane.engine.redaction import Redactor
from terraplane.engine.terraform import TerraformCommands, run_environment
from terraplane.governance.tokens import create_token, revoke_token
from terraplane.observability.logs import get_logger
from terraplane.observability.metrics import RUN_PHASE_SECONDS
from terraplane.queue.worker import JobContext, complete_in
from terraplane.runs import service
from terraplane.runs.logs import RunLogWriter
from terraplane.settings import Settings
from terraplane.store.database import Database
from terraplane.store.encryption import Keyring
from terraplane.store.tables import blueprint_versions, runs, states

log = get_logger(__name__)

PLAN_FILE = "terraplane.tfplan"
BACKEND_OVERRIDE = "zz_terraplane_backend_override.tf"
BACKEND_CONFIG = ".terraplane-backend.hcl"
VARS_FILE = "zz_terraplane.auto.tfvars.json"
PGID_FILE = ".terraplane-pgid"
CANCEL_POLL_SECONDS = 1.0


def run_token_prefix(run_id: int) -> str:
    return f"run-{run_id}-attempt-"


class CancelWatch:
    """Cancel requests of the runs this process executes, found by one query per interval for
    all of them (not one per run: a busy worker runs many at once)."""

    def __init__(self, db: Database, interval: float = CANCEL_POLL_SECONDS) -> None:
        self.db = db
        self.interval = interval
        self._events: dict[int, asyncio.Event] = {}
        self._task: asyncio.Task[None] | None = None

    def watch(self, run_id: int) -> asyncio.Event:
        event = self._events.setdefault(run_id, asyncio.Event())
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._poll(), name="run cancel requests")
        return event

    def unwatch(self, run_id: int) -> None:
        self._events.pop(run_id, None)

    async def _poll(self) -> None:
        while self._events:
            await asyncio.sleep(self.interval)
            watched = list(self._events)
            if not watched:
                return
            try:
                async with self.db.read() as conn:
                    requested = (
                        await conn.execute(
                            select(runs.c.id).where(
                                runs.c.id.in_(watched), runs.c.cancel_requested.is_(True)
                            )
                        )
                    ).scalars()
                    for run_id in requested:
                        if run_id in self._events:
                            self._events[run_id].set()
            except Exception as exc:  # the database is away: look again next time
                log.warning("could not read cancel requests", error=str(exc)[:300])


@dataclass
class RunExecutor:
    settings: Settings
    db: Database
    keyring: Keyring
    binaries: EngineBinaries

    def __post_init__(self) -> None:
        self.cancels = CancelWatch(self.db)
        self._background: set[asyncio.Task[None]] = set()
        self._archive_sha: dict[tuple[str, str], str] = {}

    async def __call__(self, ctx: JobContext) -> dict[str, Any] | None:
        started = time.perf_counter()
        run_id = int(ctx.job.payload["run_id"])
        async with self.db.write() as conn:
            run = await service.get_run(conn, run_id)
            if run.status.final:
                return {"run_id": run_id, "status": run.status.value}
            if run.cancel_requested:
                await service.set_status(conn, run, RunStatus.CANCELLED)
                return {"run_id": run_id, "status": "cancelled"}
            run = await service.set_status(conn, run, RunStatus.RUNNING)
            logs = RunLogWriter(self.db, run_id)
            await logs.open(conn)
            token_name = f"{run_token_prefix(run_id)}{ctx.job.attempts}"
            secret = await self._backend_token(conn, run, token_name) if run.spec.state else None
        workdir = self.settings.runs_dir / f"{run_id}-{ctx.job.attempts}"
        cancel = self.cancels.watch(run_id)
        watcher = asyncio.create_task(_cancel_on_stop(ctx, cancel))
        finishing: float | None = None
        try:
            status, values = await self._execute(
                run, workdir, logs, cancel, secret, ctx.job.attempts, started
            )
            finishing = time.perf_counter()
        except asyncio.CancelledError:
            await logs.write(
                "\nterraplane: the worker stopped; another worker will resume this run\n"
            )
            await asyncio.shield(self._abandon(logs, token_name if run.spec.state else None))
            raise
        except Exception as exc:
            log.exception("run failed", run_id=run_id)
            await logs.write(f"\nterraplane: run failed: {type(exc).__name__}: {exc}\n")
            status, values = RunStatus.FAILED, {"error": f"{type(exc).__name__}: {exc}"[:2000]}
        finally:
            watcher.cancel()
            self.cancels.unwatch(run_id)
            await asyncio.gather(watcher, return_exceptions=True)
            self._discard(workdir)
        await logs.stop()
        async with self.db.write() as conn:
            await logs.close(conn)
            if run.spec.state:
                await _revoke_quietly(conn, token_name)
            run = await service.get_run(conn, run_id)
            await service.set_status(conn, run, status, **values)
            result = {"run_id": run_id, "status": status.value}
            await complete_in(conn, ctx, result)
        if finishing is not None:
            RUN_PHASE_SECONDS.labels("finish").observe(time.perf_counter() - finishing)
        return result

    async def _execute(
        self,
        run: service.Run,
        workdir: Path,
        logs: RunLogWriter,
        cancel: asyncio.Event,
        secret: str | None,
        attempt: int,
        started: float,
    ) -> tuple[RunStatus, dict[str, Any]]:
        spec = run.spec
        redactor = Redactor(spec.secret_values())

        async def sink(text: str) -> None:
            await logs.write(redactor.feed(text))

        if attempt > 1:
            await sink(f"terraplane: attempt {attempt} of run {run.id}\n")
        binary = await self.binaries.resolve(spec.engine, spec.version)
        source = await self._source_dir(spec)
        await asyncio.to_thread(_prepare_workdir, source, workdir, self.settings.runs_dir, run.id)
        env = run_environment(
            plugin_cache_dir=self.settings.plugin_cache_dir,
            cli_config=self._cli_config(),
            extra=spec.env,
        )
        if spec.state is not None and secret is not None:
            self._configure_backend(run, workdir, secret)
        if spec.variables:
            _write_private(workdir / VARS_FILE, json.dumps(spec.variables))
        tf = TerraformCommands(
            binary=binary,
            workdir=workdir,
            env=env,
            sink=sink,
            plugin_cache_dir=self.settings.plugin_cache_dir,
            timeout=spec.timeout_seconds or self.settings.run_timeout_seconds,
            grace=self.settings.run_cancel_grace_seconds,
            cancel=cancel,
            on_start=lambda pid: _record_group(workdir, pid),
        )
        RUN_PHASE_SECONDS.labels("prepare").observe(time.perf_counter() - started)
        try:
            return await self._steps(run, tf, cancel)
        finally:
            await logs.write(redactor.flush())

    async def _steps(
        self, run: service.Run, tf: TerraformCommands, cancel: asyncio.Event
    ) -> tuple[RunStatus, dict[str, Any]]:
        def stopped(result: Any) -> tuple[RunStatus, dict[str, Any]] | None:
            if result.cancelled or cancel.is_set():
                return RunStatus.CANCELLED, {"exit_code": result.exit_code}
            if result.timed_out:
                return RunStatus.FAILED, {
                    "exit_code": result.exit_code,
                    "error": "the run exceeded its timeout",
                }
            return None

        init = await tf.init(["-backend-config=" + BACKEND_CONFIG] if run.spec.state else [])
        if (end := stopped(init)) or init.exit_code != 0:
            return end or (RunStatus.FAILED, {"exit_code": init.exit_code, "error": "init failed"})
        # A drift check only looks: it must not take the state lock an apply may need.
        extra = [] if run.spec.lock_state else ["-lock=false"]
        if run.spec.refresh_only:
            extra.append("-refresh-only")
        plan = await tf.plan(
            PLAN_FILE, destroy=run.operation is RunOperation.DESTROY, extra_args=extra
        )
        if (end := stopped(plan)) or plan.exit_code not in (0, 2):
            return end or (RunStatus.FAILED, {"exit_code": plan.exit_code, "error": "plan failed"})
        # Without changes the summary is all zeros; `show -json` would only repeat that.
        plan_json = await tf.show_json(PLAN_FILE) if plan.exit_code == 2 else {}
        summary = summarize_plan(plan_json)
        values: dict[str, Any] = {
            "has_changes": plan.exit_code == 2,
            "plan_summary": {**summary.model_dump(), "headline": summary.headline()},
            "exit_code": plan.exit_code,
        }
        await tf.sink(f"\nterraplane: plan: {summary.headline()}\n")
        if run.operation is RunOperation.PLAN and run.spec.keep_plan:
            # Kept (encrypted) so that an apply on any instance can use exactly this plan.
            plan_bytes = (tf.workdir / PLAN_FILE).read_bytes()
            kid, blob = self.keyring.encrypt(plan_bytes, f"plan:{run.id}".encode())
            async with self.db.write() as conn:
                await service.store_plan(conn, run.id, kid, blob)
        if run.operation is RunOperation.PLAN or plan.exit_code == 0:
            return RunStatus.SUCCEEDED, values
        apply = await tf.apply(PLAN_FILE)
        values["exit_code"] = apply.exit_code
        if (end := stopped(apply)) or apply.exit_code != 0:
            return end or (RunStatus.FAILED, {**values, "error": "apply failed"})
        return RunStatus.SUCCEEDED, values

    async def _source_dir(self, spec: RunSpec) -> Path:
        if isinstance(spec.source, DirectorySource):
            return Path(spec.source.path)
        # Versions are immutable: once unpacked here, a version needs no database read.
        cache = self.settings.data_dir / "modules"
        known = self._archive_sha.get((spec.source.blueprint, spec.source.version))
        if known is not None and (cache / known).is_dir():
            return cache / known
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(blueprint_versions.c.archive, blueprint_versions.c.archive_sha256).where(
                        blueprint_versions.c.blueprint == spec.source.blueprint,
                        blueprint_versions.c.version == spec.source.version,
                    )
                )
            ).one_or_none()
        if row is None:
            raise FileNotFoundError(
                f"blueprint {spec.source.blueprint} {spec.source.version} does not exist"
            )
        path = await asyncio.to_thread(unpack_cached, row.archive, row.archive_sha256, cache)
        self._archive_sha[(spec.source.blueprint, spec.source.version)] = row.archive_sha256
        return path

    def _cli_config(self) -> Path:
        configured = self.settings.terraform_cli_config
        if configured is not None:
            return configured
        own = self.settings.data_dir / "terraform.rc"
        if not own.exists():
            own.parent.mkdir(parents=True, exist_ok=True)
            own.write_text("# Terraplane's empty Terraform CLI configuration\n")
        return own

    async def _backend_token(self, conn: Any, run: service.Run, token_name: str) -> str:
        """A token scoped to the run's state, for this attempt; an earlier attempt's lock on
        that state is released first (its process is dead)."""
        ttl = timedelta(
            seconds=(run.spec.timeout_seconds or self.settings.run_timeout_seconds) + 3600
        )
        await self._release_stale_lock(conn, run)
        secret, _ = await create_token(
            conn, token_name, Role.OPERATOR, state_scope=run.spec.state, ttl=ttl
        )
        return secret

    def _configure_backend(self, run: service.Run, workdir: Path, secret: str) -> None:
        """Point the module at its state in Terraplane, with the attempt's scoped token."""
        address = f"{self.settings.base_url}/api/v1/state/{run.spec.state}"
        (workdir / BACKEND_OVERRIDE).write_text('terraform {\n  backend "http" {}\n}\n')
        _write_private(
            workdir / BACKEND_CONFIG,
            "\n".join(
                [
                    f"address = {json.dumps(address)}",
                    f"lock_address = {json.dumps(address)}",
                    f"unlock_address = {json.dumps(address)}",
                    'lock_method = "LOCK"',
                    'unlock_method = "UNLOCK"',
                    'username = "terraplane"',
                    f"password = {json.dumps(secret)}",
                ]
            )
            + "\n",
        )

    async def _release_stale_lock(self, conn: Any, run: service.Run) -> None:
        """A lock taken by an earlier attempt of this run is held by a dead process."""
        await conn.execute(
            update(states)
            .where(
                states.c.name == run.spec.state,
                states.c.locked_by.like(f"{run_token_prefix(run.id)}%"),
            )
            .values(lock_id=None, lock_info=None, locked_by=None, locked_at=None)
        )

    def _discard(self, workdir: Path) -> None:
        """Remove a finished run's directory in the background: the slot need not wait."""
        task = asyncio.create_task(asyncio.to_thread(shutil.rmtree, workdir, True))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _abandon(self, logs: RunLogWriter, token_name: str | None) -> None:
        """A stopped attempt: keep its last output, revoke its token; the run stays running
        for the worker that resumes it."""
        await logs.stop()
        async with self.db.write() as conn:
            await logs.close(conn)
            if token_name is not None:
                await _revoke_quietly(conn, token_name)


async def _revoke_quietly(conn: Any, token_name: str) -> None:
    """Revoke the attempt's backend token. NotFound: the attempt stopped before making it."""
    with contextlib.suppress(NotFound):
        async with conn.begin_nested():
            await revoke_token(conn, token_name)


async def _cancel_on_stop(ctx: JobContext, cancel: asyncio.Event) -> None:
    """The worker stops the job (shutdown, or its lease was lost): stop terraform too."""
    await ctx.stop_requested.wait()
    cancel.set()


def _record_group(workdir: Path, pgid: int) -> None:
    (workdir / PGID_FILE).write_text(str(pgid))


def _clear_earlier_attempts(runs_dir: Path, run_id: int, current: Path) -> None:
    """An earlier attempt's directory on this host means its worker died: stop the provider
    processes its terraform left behind, then remove the directory."""
    for old in runs_dir.glob(f"{run_id}-*"):
        if old == current:
            continue
        pgid_file = old / PGID_FILE
        with contextlib.suppress(OSError, ValueError):
            killed = kill_orphans(old, int(pgid_file.read_text()))
            if killed:
                log.warning(
                    "stopped processes left by a dead attempt",
                    run_id=run_id,
                    directory=str(old),
                    processes=killed,
                )
        shutil.rmtree(old, ignore_errors=True)


def _prepare_workdir(source: Path, workdir: Path, runs_dir: Path, run_id: int) -> None:
    _clear_earlier_attempts(runs_dir, run_id, workdir)
    if not source.is_dir():
        raise FileNotFoundError(f"run source {source} is not a directory")
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        source,
        workdir,
        symlinks=True,
        ignore=shutil.ignore_patterns(".terraform", "*.tfstate", "*.tfstate.backup", ".git"),
    )


def _write_private(path: Path, text: str) -> None:
    path.touch(mode=0o600)
    path.write_text(text)
