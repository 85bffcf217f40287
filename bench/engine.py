"""A plan run by Terraplane against `terraform init && terraform plan` typed in a shell.

    python -m bench.engine [--rounds 5]

Both plan the same module (null_resource, providers from a local mirror) in a fresh copy of the
directory with the same warm plugin cache, alternating, in one run. Terraplane's time is from
the run's creation (the queued job) to its recorded end, as the database stamps them: queueing,
claiming, the working copy, init, plan, `show -json` for the summary, the encrypted plan file
and the streamed log all count.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
from tests.support.runs import submit_run, wait_for_run
from tests.support.server import ServerProcess, make_token
from tests.support.terraform import NULL_MODULE, build_provider_mirror, terraform_binary

from bench.common import bench_database, median, row
from terraplane.domain.roles import Role
from terraplane.domain.runs import DirectorySource, RunOperation, RunSpec
from terraplane.store.migrate import upgrade


def shell_plan(module: Path, work: Path, env: dict[str, str]) -> float:
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(module, work)
    started = time.perf_counter()
    subprocess.run(  # noqa: S602 - the baseline *is* a command typed in a shell
        f"{terraform_binary()} init -input=false -no-color >/dev/null && "
        f"{terraform_binary()} plan -input=false -no-color -out=p.tfplan >/dev/null",
        shell=True,
        check=True,
        cwd=work,
        env=env,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        cli_config = build_provider_mirror(tmp / "tf")
        module = tmp / "module"
        module.mkdir()
        (module / "main.tf").write_text(NULL_MODULE)
        with bench_database("postgres", tmp) as pg_url:
            url = pg_url or f"sqlite:///{tmp / 'bench.db'}"
            shells, runs, queued = measure(url, tmp, module, cli_config, args.rounds)
    backend = "postgres" if pg_url else "sqlite"
    print(row("engine plan: shell", median_ms=median(shells) * 1000, rounds=args.rounds))
    print(
        row(
            f"engine plan: terraplane ({backend})",
            median_ms=median(runs) * 1000,
            queued_median_ms=median(queued) * 1000,
            ratio=median(runs) / median(shells),
            ratio_after_claim=(median(runs) - median(queued)) / median(shells),
        )
    )


def measure(
    url: str, tmp: Path, module: Path, cli_config: Path, rounds: int
) -> tuple[list[float], list[float], list[float]]:
    """Alternating shell and Terraplane plans; Terraplane's time from the run's database stamps."""
    upgrade(url)
    server = ServerProcess(
        database_url=url,
        data_dir=tmp / "data",
        env_extra={
            "TF_CLI_CONFIG_FILE": str(cli_config),
            "TERRAPLANE_LOG_LEVEL": "warning",
        },
    ).start()
    env = {
        **os.environ,
        "TF_CLI_CONFIG_FILE": str(cli_config),
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
        "TF_PLUGIN_CACHE_DIR": str(tmp / "data" / "plugin-cache"),
    }
    token = make_token(url, "bench", Role.VIEWER)
    client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"})
    spec = RunSpec(source=DirectorySource(path=str(module)))
    shells: list[float] = []
    runs: list[float] = []
    queued: list[float] = []
    try:
        wait_for_run(client, submit_run(url, "warmup", RunOperation.PLAN, spec))  # warm cache
        for i in range(rounds):
            shells.append(shell_plan(module, tmp / "shell", env))
            run = wait_for_run(client, submit_run(url, f"bench-{i}", RunOperation.PLAN, spec))
            assert run["status"] == "succeeded", run
            created, started, finished = (
                datetime.fromisoformat(run[k]) for k in ("created_at", "started_at", "finished_at")
            )
            runs.append((finished - created).total_seconds())
            queued.append((started - created).total_seconds())
    finally:
        client.close()
        server.stop()
    return shells, runs, queued


if __name__ == "__main__":
    main()
