"""The control plane at fleet scale: a rollout across N tenants, then a drift scan of them.

    python -m bench.controlplane [--tenants 1000] [--slots 4]

One `terraplane serve` (PostgreSQL when available) with `--slots` job slots runs everything.
A trivial blueprint (one null_resource) is deployed to N tenants (setup, not measured), then:

- rollout: 1.0.0 -> 1.1.0 across all N in three waves (a canary of 10, then 30%, then the
  rest). Orchestration overhead = wall time / (sum of terraform process time / slots) - 1, the
  terraform time read from the server's own `terraplane_engine_process_seconds` histogram in the
  same run. Target: < 10%. The server's RSS is sampled throughout. Target: < 250 MB.
- drift scan: a schedule over the N workspaces fired at once (window 0). Scheduling overhead per
  workspace = (wall time - terraform time / slots) / N. Target: < 20 ms.

Terraform is CPU-bound here (two cores shared with the server and the database), so process
times stretch as slots grow; the ratio compares like with like because both sides are measured
under the same load.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import create_engine, select
from tests.support.modules import tar_gz
from tests.support.server import ServerProcess, make_token
from tests.support.terraform import build_provider_mirror

from bench.common import bench_database, row
from terraplane.domain.roles import Role
from terraplane.store.database import normalize_url
from terraplane.store.migrate import upgrade
from terraplane.store.tables import runs

BLUEPRINT = """
variable "tenant" {
  type = string
}

resource "null_resource" "app" {
  triggers = {
    tenant   = var.tenant
    revision = "REVISION"
  }
}

output "tenant" {
  value = var.tenant
}
"""

PHASE_SUM = re.compile(r'^terraplane_run_phase_seconds_sum\{phase="([^"]+)"\} (\S+)$', re.M)
ENGINE_SUM = re.compile(r'^terraplane_engine_process_seconds_sum\{command="([^"]+)"\} (\S+)$', re.M)
RUNS = re.compile(r'^terraplane_runs\{status="(queued|running)"\} (\S+)$', re.M)


class RssSampler(threading.Thread):
    """The server process's resident memory, sampled every half second; keeps the maximum."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.5):
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                return


def cpu_seconds(process: psutil.Process) -> float:
    """CPU time of the server process itself (its terraform children are not counted)."""
    times = process.cpu_times()
    return float(times.user + times.system)


def metrics(client: httpx.Client) -> str:
    return client.get("/metrics").text


def engine_seconds(client: httpx.Client) -> dict[str, float]:
    """Terraform process seconds so far, by command; and run phases outside terraform."""
    text = metrics(client)
    found = {c: float(v) for c, v in ENGINE_SUM.findall(text)}
    found.update({f"phase:{p}": float(v) for p, v in PHASE_SUM.findall(text)})
    return found


def since(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {c: after[c] - before.get(c, 0.0) for c in after}


def wait_idle(client: httpx.Client, timeout: float) -> None:
    """Until no run is queued or running (the fleet-wide gauges in /metrics)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = sum(float(v) for _, v in RUNS.findall(metrics(client)))
        if busy == 0:
            return
        time.sleep(1)
    raise SystemExit("runs did not finish in time")


def run_seconds(url: str, after_id: int) -> tuple[float, int]:
    """Sum of (finished - started) of the runs after `after_id`, and the newest run id: each
    run's time from its first transaction to its result, of which terraform is one part (a run
    prepared ahead also waits for its slot in there, so the sum may exceed the slots' time)."""
    engine = create_engine(normalize_url(url, asynchronous=False))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(runs.c.id, runs.c.started_at, runs.c.finished_at).where(runs.c.id > after_id)
            ).all()
    finally:
        engine.dispose()
    held = sum(
        (r.finished_at - r.started_at).total_seconds()
        for r in rows
        if r.started_at and r.finished_at
    )
    return held, max([after_id, *(r.id for r in rows)])


def call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    answer = client.request(method, path, **kwargs)
    if answer.status_code >= 400:
        raise SystemExit(f"{method} {path}: {answer.status_code} {answer.text}")
    return answer.json() if answer.content else None


def setup(client: httpx.Client, tenants: int) -> None:
    call(client, "POST", "/api/v1/blueprints", json={"name": "bench"})
    for version, revision in (("1.0.0", "1"), ("1.1.0", "2")):
        archive = tar_gz({"main.tf": BLUEPRINT.replace("REVISION", revision)})
        call(
            client,
            "POST",
            "/api/v1/blueprints/bench/versions",
            files={"archive": ("m.tar.gz", archive, "application/gzip")},
            data={"metadata": json.dumps({"version": version})},
        )
    for i in range(tenants):
        name = f"tenant-{i:04d}"
        call(client, "POST", "/api/v1/tenants", json={"name": name})
        call(
            client,
            "POST",
            "/api/v1/deployments",
            json={
                "tenant": name,
                "environment": "dev",
                "blueprint": "bench",
                "version": "1.0.0",
                "tier": "default",
                "variables": {"tenant": name},
            },
        )


def rollout(
    client: httpx.Client, slots: int, timeout: float
) -> tuple[float, dict[str, float], int]:
    """(wall seconds, terraform seconds, failed deployments)."""
    before = engine_seconds(client)
    started = time.perf_counter()
    created = call(
        client,
        "POST",
        "/api/v1/rollouts",
        json={
            "blueprint": "bench",
            "to_version": "1.1.0",
            "selector": {"environment": "dev"},
            "waves": [
                {"count": 10, "max_concurrency": slots},
                {"percent": 30, "max_concurrency": 1000},
                {"percent": 100, "max_concurrency": 1000},
            ],
            "failure_threshold": 1,
        },
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = call(client, "GET", f"/api/v1/rollouts/{created['id']}")
        if r["status"] in ("succeeded", "halted", "cancelled"):
            wall = time.perf_counter() - started
            if r["status"] != "succeeded":
                raise SystemExit(f"rollout ended {r['status']}: {r['reason']}")
            return wall, since(before, engine_seconds(client)), int(r["failed"])
        time.sleep(0.5)
    raise SystemExit("the rollout did not finish in time")


def drift_scan(
    client: httpx.Client, tenants: int, timeout: float
) -> tuple[float, dict[str, float]]:
    """(wall seconds, terraform seconds) from firing the schedule to the last check recorded."""
    call(
        client,
        "POST",
        "/api/v1/drift/schedules",
        json={"name": "scan", "cron": "0 3 * * *", "blueprint": "bench", "window_seconds": 0},
    )
    before = engine_seconds(client)
    started = time.perf_counter()
    call(client, "POST", "/api/v1/drift/schedules/scan/run")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = call(client, "GET", "/api/v1/drift")["workspaces"]
        if sum(r["status"] != "never_run" for r in rows) >= tenants:
            wall = time.perf_counter() - started
            bad = [r for r in rows if r["status"] != "ok"]
            if bad:
                raise SystemExit(f"{len(bad)} workspaces did not check ok: {bad[:3]}")
            return wall, since(before, engine_seconds(client))
        time.sleep(1)
    raise SystemExit("the drift scan did not finish in time")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--slots", type=int, default=4)
    args = parser.parse_args()
    timeout = 60 + args.tenants * 10.0
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        cli_config = build_provider_mirror(tmp / "tf")
        with bench_database("postgres", tmp) as pg_url:
            url = pg_url or f"sqlite:///{tmp / 'bench.db'}"
            upgrade(url)
            server = ServerProcess(
                database_url=url,
                data_dir=tmp / "data",
                env_extra={
                    "TF_CLI_CONFIG_FILE": str(cli_config),
                    "TERRAPLANE_LOG_LEVEL": "warning",
                    "TERRAPLANE_WORKERS": str(args.slots),
                    "TERRAPLANE_ENVIRONMENTS": "dev",
                },
            ).start()
            assert server.proc is not None
            sampler = RssSampler(server.proc.pid)
            sampler.start()
            token = make_token(url, "bench", Role.ADMIN)
            client = httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=120
            )
            try:
                setup_started = time.perf_counter()
                setup(client, args.tenants)
                wait_idle(client, timeout)
                setup_wall = time.perf_counter() - setup_started
                _, last_run = run_seconds(url, 0)
                cpu = cpu_seconds(sampler.process)
                wall, terraform, failed = rollout(client, args.slots, timeout)
                rollout_cpu = cpu_seconds(sampler.process) - cpu
                rollout_held, last_run = run_seconds(url, last_run)
                cpu = cpu_seconds(sampler.process)
                drift_wall, drift_terraform = drift_scan(client, args.tenants, timeout)
                drift_cpu = cpu_seconds(sampler.process) - cpu
                drift_held, _ = run_seconds(url, last_run)
            finally:
                sampler.stopped.set()
                client.close()
                server.stop()
    backend = "postgres" if pg_url else "sqlite"
    phases = {k: terraform.pop(k) for k in list(terraform) if k.startswith("phase:")}
    drift_phases = {
        k: drift_terraform.pop(k) for k in list(drift_terraform) if k.startswith("phase:")
    }
    ideal = sum(terraform.values()) / args.slots
    print(
        row(
            f"controlplane setup ({backend})",
            tenants=args.tenants,
            seconds=setup_wall,
            deployments_per_s=args.tenants / setup_wall,
        )
    )
    print(
        row(
            f"rollout ({backend})",
            tenants=args.tenants,
            slots=args.slots,
            wall_s=wall,
            terraform_s=sum(terraform.values()),
            ideal_s=ideal,
            overhead_pct=(wall / ideal - 1) * 100,
            failed=failed,
            server_cpu_ms_per_deployment=rollout_cpu / args.tenants * 1000,
            run_s_per_slot=rollout_held / args.slots,
        )
    )
    drift_ideal = sum(drift_terraform.values()) / args.slots
    print(
        row(
            f"drift scan ({backend})",
            workspaces=args.tenants,
            wall_s=drift_wall,
            terraform_s=sum(drift_terraform.values()),
            ideal_s=drift_ideal,
            overhead_ms_per_workspace=(drift_wall - drift_ideal) / args.tenants * 1000,
            server_cpu_ms_per_workspace=drift_cpu / args.tenants * 1000,
            run_s_per_slot=drift_held / args.slots,
        )
    )
    print(row("server RSS", peak_mb=sampler.peak / 1e6))
    for label, seconds in (("rollout", terraform), ("drift scan", drift_terraform)):
        print(row(f"{label}: terraform s by command", **{c: s for c, s in sorted(seconds.items())}))
    for label, seconds in (("rollout", phases), ("drift scan", drift_phases)):
        print(
            row(
                f"{label}: ms per run outside terraform",
                **{
                    c.removeprefix("phase:"): s / args.tenants * 1000
                    for c, s in sorted(seconds.items())
                },
            )
        )


if __name__ == "__main__":
    main()
