"""From a pull request's webhook to its first terraform process, with a warm mirror.

    python -m bench.pr_latency [--rounds 10] [--backends sqlite,postgres]

A real server and the GitHub stand-in (real git over HTTP, real API calls). `terraform` on the
server's PATH is a wrapper that stamps the time each terraform process starts, then runs the
real one. Each round opens a pull request changing one dirspace, takes the time just before the
`pull_request` webhook is sent, and the first stamp after it. Between them: intake, the
delivery job, the request job (the pull request and its files from the API, a refresh of the
mirror, the head's config and dirspaces), the command, the run's job, its worktree (the head
merged into the base) and the spawn.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import httpx
from tests.e2e.conftest import pr_server_env
from tests.support.github import GitHubStandIn, signed_delivery
from tests.support.server import ServerProcess
from tests.support.terraform import build_provider_mirror, terraform_binary

from bench.common import bench_database, median, percentile, row
from terraplane.store.migrate import upgrade

STACK = 'resource "null_resource" "item" {\n  triggers = {\n    value = "%s"\n  }\n}\n'


def wrapper(directory: Path, stamps: Path) -> Path:
    """A `terraform` that stamps its start (nanoseconds since the epoch) and runs the real one."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "terraform"
    script.write_text(
        f'#!/bin/sh\necho "$(date +%s%N) $1" >> "{stamps}"\nexec "{terraform_binary()}" "$@"\n'
    )
    script.chmod(0o755)
    return directory


def first_stamp_after(stamps: Path, t0: float, timeout: float = 60) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stamps.exists():
            for line in stamps.read_text().splitlines():
                at = int(line.split()[0]) / 1e9
                if at >= t0:
                    return at
        time.sleep(0.005)
    raise TimeoutError("no terraform process started")


def plan_done(github: GitHubStandIn, repo: str, number: int, timeout: float = 120) -> None:
    head = github.pull_object(repo, number)["head"]["sha"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if github.latest_statuses(repo, head).get("terraplane/plan") in ("success", "failure"):
            return
        time.sleep(0.05)
    raise TimeoutError("the plan did not finish")


def one_backend(backend: str, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, bench_database(backend, Path(tmp)) as url:
        if url is None:
            print(row(f"{backend} webhook -> terraform", skipped="PostgreSQL not running"))
            return
        root = Path(tmp)
        upgrade(url)
        github = GitHubStandIn(root=root / "github").start()
        stamps = root / "stamps"
        path = f"{wrapper(root / 'bin', stamps)}:{os.environ['PATH']}"
        env = {
            **pr_server_env(github, build_provider_mirror(root / "tf")),
            "PATH": path,
            "TERRAPLANE_LOG_LEVEL": "warning",
        }
        server = ServerProcess(database_url=url, data_dir=root / "data", env_extra=env).start()
        github.webhook_url = f"{server.url}/webhooks/github"
        repo = "acme/latency"
        github.create_repo(repo, {"app/main.tf": STACK % "0"})
        github.repos[repo].collaborators = {"alice": "write"}
        github.send_installation([repo])
        latencies = []
        try:
            for i in range(rounds + 1):
                github.branch(repo, f"b{i}", {"app/main.tf": STACK % (i + 1)}, f"change {i}")
                url_, github.webhook_url = github.webhook_url, None
                number = github.open_pull(repo, f"b{i}")  # recorded, not sent
                github.webhook_url = url_
                event, payload = github.sent[-1]
                body, headers = signed_delivery(event, payload, github.webhook_secret)
                t0 = time.time()
                httpx.post(url_ or "", content=body, headers=headers, timeout=30)
                started = first_stamp_after(stamps, t0)
                if i > 0:  # the first round warms the mirror and the provider templates
                    latencies.append(started - t0)
                plan_done(github, repo, number)
                github.close_pull(repo, number)  # releases its lock for the next round
        except TimeoutError:
            print(server.logs()[-3000:])  # why nothing started
            raise
        finally:
            server.stop()
            github.stop()
            shutil.rmtree(root / "data", ignore_errors=True)
        print(
            row(
                f"{backend} webhook -> terraform",
                median_ms=median(latencies) * 1000,
                p90_ms=percentile(latencies, 90) * 1000,
                rounds=len(latencies),
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    for backend in args.backends.split(","):
        one_backend(backend, args.rounds)


if __name__ == "__main__":
    main()
