"""Terraform/OpenTofu commands for one working directory."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from terraplane.engine.plugin_cache import (
    LOCK_FILE,
    config_key,
    detach_providers,
    plugin_cache_lock,
    restore_template,
    save_template,
)
from terraplane.engine.process import OutputSink, ProcessResult, run_process
from terraplane.observability.metrics import ENGINE_PROCESS_SECONDS, RUN_PHASE_SECONDS

# Never handed to a run: they hold Terraplane's own credentials and keys.
_PRIVATE_PREFIXES = ("TERRAPLANE_",)


def run_environment(
    *,
    plugin_cache_dir: Path,
    cli_config: Path,
    extra: Mapping[str, str] | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a terraform process: the server's, minus Terraplane's secrets."""
    env = {
        k: v
        for k, v in (base if base is not None else os.environ).items()
        if not k.startswith(_PRIVATE_PREFIXES)
    }
    env.update(
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        CHECKPOINT_DISABLE="1",
        TF_PLUGIN_CACHE_DIR=str(plugin_cache_dir),
        TF_CLI_CONFIG_FILE=str(cli_config),
    )
    env.update(extra or {})
    return env


@dataclass
class TerraformCommands:
    """Runs commands of one binary in one directory; output goes to `sink`."""

    binary: Path
    workdir: Path
    env: dict[str, str]
    sink: OutputSink
    plugin_cache_dir: Path
    timeout: float = 3600.0
    grace: float = 20.0
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    on_start: Callable[[int], None] | None = None

    async def run(
        self, *args: str, env: dict[str, str] | None = None, capture: list[str] | None = None
    ) -> ProcessResult:
        """Run a command; its output goes to the sink (and into `capture`, when given)."""
        await self.sink(f"$ {self.binary.name} {' '.join(args)}\n")
        sink = self.sink
        if capture is not None:

            async def sink(text: str) -> None:
                capture.append(text)
                await self.sink(text)

        result = await run_process(
            [str(self.binary), *args],
            cwd=self.workdir,
            env=env if env is not None else self.env,
            on_output=sink,
            timeout=self.timeout,
            cancel=self.cancel,
            grace=self.grace,
            on_start=self.on_start,
        )
        ENGINE_PROCESS_SECONDS.labels(args[0]).observe(result.seconds)
        return result

    async def init(self, extra_args: Sequence[str] = ()) -> ProcessResult:
        """`init`; from a template of the same configuration's providers when there is one
        (no shared cache, so no lock), else under the plugin cache lock (see plugin_cache)."""
        args = ("init", "-input=false", "-no-color", *extra_args)
        key = await asyncio.to_thread(config_key, self.workdir, self.binary)
        template = self.plugin_cache_dir / "templates" / key if key else None
        lock_file = self.workdir / LOCK_FILE
        original = lock_file.read_bytes() if lock_file.exists() else None
        if template is not None and await asyncio.to_thread(
            restore_template, template, self.workdir
        ):
            env = {k: v for k, v in self.env.items() if k != "TF_PLUGIN_CACHE_DIR"}
            result = await self.run(*args, env=env)
            if result.exit_code == 0 or result.cancelled or result.timed_out:
                return result
            await self.sink("terraplane: init from cached providers failed; initialising afresh\n")
            await asyncio.to_thread(shutil.rmtree, self.workdir / ".terraform", True)
            if original is None:
                lock_file.unlink(missing_ok=True)
            else:
                lock_file.write_bytes(original)
        waited = time.perf_counter()
        async with plugin_cache_lock(self.plugin_cache_dir):
            RUN_PHASE_SECONDS.labels("init_lock_wait").observe(time.perf_counter() - waited)
            result = await self.run(*args)
            if result.exit_code == 0:
                await asyncio.to_thread(detach_providers, self.workdir)
        if result.exit_code == 0 and template is not None:
            await asyncio.to_thread(save_template, self.workdir, template)
        return result

    async def plan(
        self,
        plan_file: str,
        *,
        destroy: bool = False,
        extra_args: Sequence[str] = (),
        capture: list[str] | None = None,
    ) -> ProcessResult:
        """Exit code 0: no changes; 2: changes; anything else: an error."""
        args = ["plan", "-input=false", "-no-color", "-detailed-exitcode", f"-out={plan_file}"]
        if destroy:
            args.append("-destroy")
        return await self.run(*args, *extra_args, capture=capture)

    async def apply(self, plan_file: str, extra_args: Sequence[str] = ()) -> ProcessResult:
        return await self.run("apply", "-input=false", "-no-color", *extra_args, plan_file)

    async def show_json(self, plan_file: str) -> dict[str, Any]:
        """`show -json` of a saved plan; its output is data, so it is not streamed to the log."""
        chunks: list[str] = []

        async def collect(text: str) -> None:
            chunks.append(text)

        result = await run_process(
            [str(self.binary), "show", "-json", "-no-color", plan_file],
            cwd=self.workdir,
            env=self.env,
            on_output=collect,
            timeout=self.timeout,
            cancel=self.cancel,
            grace=self.grace,
        )
        ENGINE_PROCESS_SECONDS.labels("show").observe(result.seconds)
        output = "".join(chunks)
        if result.exit_code != 0:
            await self.sink(output)
            raise RuntimeError(f"show -json exited with {result.exit_code}")
        # Terraform may print warnings before the JSON document on stderr (merged here).
        start = output.find("{")
        return dict(json.loads(output[start:]))
