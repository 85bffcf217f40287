"""The `run` job handler: prepare a working directory, drive the engine, record the result.

A run may be executed more than once when its worker dies: the job is re-claimed after its lease
and the run starts again in a fresh directory. Plans are idempotent; an apply re-plans first and
applies what remains. A state lock left behind by the dead attempt's terraform is released, and
only that one: we recognise it by the run's own backend token, which took it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from terraplane.domain.runs import RunSpec, RunStatus
from terraplane.engine.binaries import EngineBinaries
from terraplane.engine.redaction import Redactor
from terraplane.engine.terraform import TerraformCommands, run_environment
from terraplane.governance.run_tokens import mint, run_name_prefix
from terraplane.observability.logs import get_logger
from terraplane.observability.metrics import RUN_PHASE_SECONDS
from terraplane.queue.jobs import Job
from terraplane.queue.worker import JobContext, SlotWithdrawn, complete_in
from terraplane.repoconfig.hclscan import declares_backend
from terraplane.runs import service
from terraplane.runs.logs import RunLogWriter
from terraplane.runs.sources import PGID_FILE, RunSources
from terraplane.runs.steps import PLAN_FILE, Workflow
from terraplane.settings import Settings
from terraplane.store.database import Database
from terraplane.store.encryption import Keyring
from terraplane.store.tables import runs, states

log = get_logger(__name__)

BACKEND_OVERRIDE = "zz_terraplane_backend_override.tf"
BACKEND_CONFIG = ".terraplane-backend.hcl"
VARS_FILE = "zz_terraplane.auto.tfvars.json"
CANCEL_POLL_SECONDS = 1.0


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
    sources: RunSources
    # A run prepares (its first transaction, working copy, backend configuration) before it
    # takes a slot, while the runs holding the slots work: a slot's time is terraform's.
    takes_its_slot: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self.cancels = CancelWatch(self.db)
        self._background: set[asyncio.Task[None]] = set()

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
            # A run already running was started by an earlier attempt (its worker died or
            # handed it back): only then is there a log to continue and a dead attempt's state
            # lock to release.
            resumed = run.status is RunStatus.RUNNING
            run = await service.set_status(conn, run, RunStatus.RUNNING)
            logs = RunLogWriter(self.db, run_id)
            await logs.open(conn, resumed=resumed)
            secret = None
            if run.spec.state:
                if resumed:
                    await self._release_stale_lock(conn, run)
                assert ctx.job.claim_token is not None
                secret = mint(self.keyring, run_id, ctx.job.claim_token)
        workdir = self.settings.runs_dir / f"{run_id}-{ctx.job.attempts}"
        cancel = self.cancels.watch(run_id)
        watcher = asyncio.create_task(_cancel_on_stop(ctx, cancel))
        finishing: float | None = None
        try:
            status, values = await self._execute(
                run, workdir, logs, cancel, secret, ctx.job.attempts, started, ctx.take_slot
            )
            finishing = time.perf_counter()
        except SlotWithdrawn:
            # Prepared, but the worker began to stop before a slot came: not started at all.
            await asyncio.shield(self._abandon(logs))
            raise
        except asyncio.CancelledError:
            await logs.write(
                "\nterraplane: the worker stopped; another worker will resume this run\n"
            )
            await asyncio.shield(self._abandon(logs))
            raise
        except Exception as exc:
            log.exception("run failed", run_id=run_id)
            await logs.write(f"\nterraplane: run failed: {type(exc).__name__}: {exc}\n")
            status, values = RunStatus.FAILED, {"error": f"{type(exc).__name__}: {exc}"[:2000]}
        finally:
            watcher.cancel()
            self.cancels.unwatch(run_id)
            await asyncio.gather(watcher, return_exceptions=True)
            self._discard(run.spec, workdir)
        # Terraform is done: the next run may start while this one's result is recorded.
        ctx.release_slot()
        await logs.stop()
        async with self.db.write() as conn:
            await logs.close(conn)
            run = await service.get_run(conn, run_id)
            await service.set_status(conn, run, status, **values)
            result = {"run_id": run_id, "status": status.value}
            await complete_in(conn, ctx, result)
        if finishing is not None:
            RUN_PHASE_SECONDS.labels("finish").observe(time.perf_counter() - finishing)
        return result

    async def give_up(self, conn: AsyncConnection, job: Job, reason: str) -> None:
        """The queue gave up on a run's job (its workers kept dying, or the executor itself
        failed): the run fails with the reason, which writes its `run.finished` like any end,
        and a state lock its dead attempt left is released."""
        run = await service.get_run(conn, int(job.payload["run_id"]))
        if run.status.final:
            return
        if run.spec.state:
            await self._release_stale_lock(conn, run)
        await service.set_status(
            conn, run, RunStatus.FAILED, error=f"Terraplane gave up on this run: {reason}"[:2000]
        )

    async def _execute(
        self,
        run: service.Run,
        workdir: Path,
        logs: RunLogWriter,
        cancel: asyncio.Event,
        secret: str | None,
        attempt: int,
        started: float,
        take_slot: Callable[[], Awaitable[None]],
    ) -> tuple[RunStatus, dict[str, Any]]:
        spec = run.spec
        # The attempt's state credentials are in terraform's environment: a workflow's `run`
        # step could print them.
        redactor = Redactor([*spec.secret_values(), *([secret] if secret else [])])

        async def sink(text: str) -> None:
            await logs.write(redactor.feed(text))

        if attempt > 1:
            await sink(f"terraplane: attempt {attempt} of run {run.id}\n")
        binary = await self.binaries.resolve(spec.engine, spec.version)
        module_dir = await self.sources.prepare(spec, run.id, workdir)
        env = run_environment(
            plugin_cache_dir=self.settings.plugin_cache_dir,
            cli_config=self._cli_config(),
            extra=spec.env,
        )
        use_backend = spec.state is not None and secret is not None
        if use_backend and spec.state_mode == "auto":
            use_backend = not await asyncio.to_thread(_declares_backend, module_dir)
        if use_backend:
            assert secret is not None
            env.update(self._configure_backend(run, module_dir, secret))
        if spec.variables:
            _write_private(module_dir / VARS_FILE, json.dumps(spec.variables))
        if spec.plan_from_run is not None:
            await self._restore_plan(spec.plan_from_run, module_dir / PLAN_FILE)
        tf = TerraformCommands(
            binary=binary,
            workdir=module_dir,
            env=env,
            sink=sink,
            plugin_cache_dir=self.settings.plugin_cache_dir,
            timeout=spec.timeout_seconds or self.settings.run_timeout_seconds,
            grace=self.settings.run_cancel_grace_seconds,
            cancel=cancel,
            on_start=lambda pid: _record_group(workdir, pid),
        )

        async def store_plan(plan: bytes) -> None:
            # Kept (encrypted) so that an apply on any instance can use exactly this plan.
            kid, blob = self.keyring.encrypt(plan, f"plan:{run.id}".encode())
            async with self.db.write() as conn:
                await service.store_plan(conn, run.id, kid, blob)

        workflow = Workflow(
            operation=run.operation,
            spec=spec,
            tf=tf,
            checkout=workdir,
            backend_args=["-backend-config=" + BACKEND_CONFIG] if use_backend else [],
            select_workspace=not use_backend,
            store_plan=store_plan if spec.keep_plan else None,
        )
        RUN_PHASE_SECONDS.labels("prepare").observe(time.perf_counter() - started)
        await take_slot()
        try:
            return await workflow.execute()
        finally:
            await logs.write(redactor.flush())

    async def _restore_plan(self, plan_run_id: int, path: Path) -> None:
        """The plan file a plan run stored, for an apply of exactly that plan."""
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(runs.c.plan_key_id, runs.c.plan_file).where(runs.c.id == plan_run_id)
                )
            ).one_or_none()
        if row is None or row.plan_file is None:
            raise FileNotFoundError(
                f"the plan of run {plan_run_id} is gone (discarded or expired): plan again"
            )
        plan = self.keyring.decrypt(row.plan_key_id, row.plan_file, f"plan:{plan_run_id}".encode())
        await asyncio.to_thread(path.write_bytes, plan)

    def _cli_config(self) -> Path:
        configured = self.settings.terraform_cli_config
        if configured is not None:
            return configured
        own = self.settings.data_dir / "terraform.rc"
        if not own.exists():
            own.parent.mkdir(parents=True, exist_ok=True)
            own.write_text("# Terraplane's empty Terraform CLI configuration\n")
        return own

    def _configure_backend(self, run: service.Run, module_dir: Path, secret: str) -> dict[str, str]:
        """Point the module at its state in Terraplane; returns the environment carrying the
        attempt's credentials. They go to terraform as TF_HTTP_USERNAME/TF_HTTP_PASSWORD, never
        into the backend configuration: terraform records that configuration in a saved plan
        (and in .terraform/), and applying the plan would then use the plan run's credentials,
        dead since that run ended, instead of the apply's."""
        address = f"{self.settings.base_url}/api/v1/state/{run.spec.state}"
        (module_dir / BACKEND_OVERRIDE).write_text('terraform {\n  backend "http" {}\n}\n')
        _write_private(
            module_dir / BACKEND_CONFIG,
            "\n".join(
                [
                    f"address = {json.dumps(address)}",
                    f"lock_address = {json.dumps(address)}",
                    f"unlock_address = {json.dumps(address)}",
                    'lock_method = "LOCK"',
                    'unlock_method = "UNLOCK"',
                ]
            )
            + "\n",
        )
        return {"TF_HTTP_USERNAME": "terraplane", "TF_HTTP_PASSWORD": secret}

    async def _release_stale_lock(self, conn: Any, run: service.Run) -> None:
        """A lock taken by an earlier attempt of this run is held by a dead process."""
        await conn.execute(
            update(states)
            .where(
                states.c.name == run.spec.state,
                states.c.locked_by.like(f"{run_name_prefix(run.id)}%"),
            )
            .values(lock_id=None, lock_info=None, locked_by=None, locked_at=None)
        )

    def _discard(self, spec: RunSpec, workdir: Path) -> None:
        """Remove a finished run's directory in the background: the slot need not wait."""
        task = asyncio.create_task(self.sources.discard(spec, workdir))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _abandon(self, logs: RunLogWriter) -> None:
        """A stopped attempt keeps its last output; the run stays running for the worker that
        resumes it (and this attempt's state credentials die with its claim)."""
        await logs.stop()
        async with self.db.write() as conn:
            await logs.close(conn)


async def _cancel_on_stop(ctx: JobContext, cancel: asyncio.Event) -> None:
    """The worker stops the job (shutdown, or its lease was lost): stop terraform too."""
    await ctx.stop_requested.wait()
    cancel.set()


def _record_group(workdir: Path, pgid: int) -> None:
    (workdir / PGID_FILE).write_text(str(pgid))


def _declares_backend(module_dir: Path) -> bool:
    """Whether the root module keeps its state in a backend of its own."""
    for path in [*module_dir.glob("*.tf"), *module_dir.glob("*.tf.json")]:
        if path.name == BACKEND_OVERRIDE:
            continue
        text = path.read_text(errors="replace")
        if declares_backend(text, path.name.endswith(".json")):
            return True
    return False


def _write_private(path: Path, text: str) -> None:
    path.touch(mode=0o600)
    path.write_text(text)
