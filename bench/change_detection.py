"""Change detection on a generated monorepo: which dirspaces a pull request touches.

    python -m bench.change_detection [--dirspaces 5000] [--changed 2000] [--rounds 5]

The repository (a real git repository, read through a mirror exactly as a pull request's
request job reads it) holds `--dirspaces` root modules under `stacks/`, each calling one of
50 local modules, which call a shared base module. The pull request changes `--changed` files:
mostly stack files, and ten module files (each reaching 100 stacks through the module graph).
Measured per round: refreshing the mirror, listing and reading the head's Terraform files and
config, the module graph and dirspaces, and matching the changed files.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import median, row
from terraplane.engine.checkouts import Checkouts
from terraplane.pr import snapshot
from terraplane.repoconfig.modules import ChangedFiles, affected

MODULES = 50
IDENTITY = ["-c", "user.name=bench", "-c", "user.email=bench@example.com", "-c", "gc.auto=0"]


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *IDENTITY, *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def stack(i: int, version: int) -> dict[str, str]:
    return {
        f"stacks/s{i:05d}/main.tf": (
            f'module "app" {{\n  source = "../../modules/m{i % MODULES:02d}"\n'
            f'  name   = "s{i}"\n}}\n\nresource "null_resource" "own" {{\n'
            f'  triggers = {{ version = "{version}" }}\n}}\n'
        ),
        f"stacks/s{i:05d}/variables.tf": 'variable "region" {\n  default = "eu-west-1"\n}\n',
    }


def module(k: int, version: int) -> dict[str, str]:
    return {
        f"modules/m{k:02d}/main.tf": (
            f'variable "name" {{}}\n\nmodule "base" {{\n  source = "../base"\n}}\n\n'
            f'resource "null_resource" "m" {{\n  triggers = {{ v = "{version}" }}\n}}\n'
        )
    }


def build(root: Path, dirspaces: int, changed: int) -> tuple[str, str]:
    """A bare repository with main and refs/pull/1/head; returns (clone URL, head)."""
    work = root / "work"
    git(root, "init", "-q", "-b", "main", str(work))
    files = {"modules/base/main.tf": 'resource "null_resource" "base" {}\n'}
    for k in range(MODULES):
        files |= module(k, 1)
    for i in range(dirspaces):
        files |= stack(i, 1)
    write(work, files)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "monorepo")
    git(work, "checkout", "-q", "-b", "change")
    edits: dict[str, str] = {}
    for k in range(10):
        edits |= module(k, 2)
    for i in range(changed - 10):
        edits[f"stacks/s{i:05d}/main.tf"] = stack(i, 2)[f"stacks/s{i:05d}/main.tf"]
    write(work, edits)
    git(work, "commit", "-q", "-am", "change")
    head = git(work, "rev-parse", "HEAD")
    bare = root / "origin.git"
    git(root, "clone", "-q", "--bare", str(work), str(bare))
    git(bare, "update-ref", "refs/pull/1/head", head)
    return bare.as_uri(), head


async def measure(url: str, head: str, mirror_root: Path, changed: list[str]) -> dict[str, float]:
    refspecs = ("+refs/pull/1/head:refs/pull/1/head", "+refs/heads/main:refs/heads/main")
    commit = snapshot.Commit(url, head, refspecs, "main")
    checkouts = Checkouts(mirror_root)
    t0 = time.perf_counter()
    await snapshot.fetch(checkouts, commit, None)
    t1 = time.perf_counter()
    snap = await snapshot.take(checkouts, commit, None)  # fetches again (warm), then reads
    t2 = time.perf_counter()
    hit = affected(snap.dirspaces, ChangedFiles(changed), snap.graph)
    t3 = time.perf_counter()
    return {
        "fetch_ms": (t1 - t0) * 1000,
        "snapshot_ms": (t2 - t1) * 1000,
        "affected_ms": (t3 - t2) * 1000,
        "total_ms": (t3 - t1) * 1000,
        "dirspaces": len(snap.dirspaces),
        "affected": len(hit),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dirspaces", type=int, default=5000)
    parser.add_argument("--changed", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        url, head = build(root, args.dirspaces, args.changed)
        print(row("generated repository", seconds=time.perf_counter() - started))
        changed = git(root / "work", "diff", "--name-only", "main...change").splitlines()
        rounds = [
            asyncio.run(measure(url, head, root / "mirrors", changed)) for _ in range(args.rounds)
        ]
    first, warm = rounds[0], rounds[1:] or rounds
    print(row("first (cold mirror)", **{k: first[k] for k in ("fetch_ms", "total_ms")}))
    print(
        row(
            f"{args.dirspaces} dirspaces, {len(changed)} changed",
            fetch_ms=median([r["fetch_ms"] for r in warm]),
            snapshot_ms=median([r["snapshot_ms"] for r in warm]),
            affected_ms=median([r["affected_ms"] for r in warm]),
            total_ms=median([r["total_ms"] for r in warm]),
            dirspaces=int(warm[0]["dirspaces"]),
            affected=int(warm[0]["affected"]),
        )
    )


if __name__ == "__main__":
    main()
