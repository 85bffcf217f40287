"""The shared provider plugin cache, safe under parallel runs.

Terraform's plugin cache is not safe for concurrent use: two inits that both miss the cache
unpack the same provider over each other ("text file busy", a long-standing Atlantis problem),
and an init replaces cache entries that other runs' `.terraform` link to, so a plan running
beside it can find its provider gone. So, on one host:

- `init` runs under an exclusive file lock on the cache, and
- right after it, the run's `.terraform/providers` links into the cache are replaced by hard
  links to the same files (a copy across file systems), so a running plan or apply never depends
  on the cache entry again and later inits may replace it freely.

The lock serialises every init on a host, which cost ~100 ms per run at four parallel runs. So
a successful init also leaves a *template*: its providers (hard links) and its dependency lock
file, keyed by the Terraform configuration and binary. A later run of the same configuration
starts with those providers and lock file in place and runs `init` without the shared cache at
all (it then only verifies them), so it needs no lock.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

LOCK_POLL_SECONDS = 0.05


@asynccontextmanager
async def file_lock(path: Path) -> AsyncIterator[None]:
    """An exclusive lock on `path` among this host's processes, awaited without a thread."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "w")  # noqa: SIM115, ASYNC230
    try:
        # Polled, not a blocking flock in a thread: waiting callers would otherwise fill the
        # default thread pool and starve the holder, which needs a thread to finish.
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(LOCK_POLL_SECONDS)
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


@asynccontextmanager
async def plugin_cache_lock(cache_dir: Path) -> AsyncIterator[None]:
    async with file_lock(cache_dir / ".terraplane-init.lock"):
        yield


def detach_providers(workdir: Path) -> int:
    """Replace symlinks under `.terraform/providers` by private hard links; return how many."""
    providers = workdir / ".terraform" / "providers"
    if not providers.is_dir():
        return 0
    detached = 0
    for dirpath, dirnames, _files in os.walk(providers):
        for name in list(dirnames):
            link = Path(dirpath) / name
            if link.is_symlink():
                target = link.resolve()
                link.unlink()
                shutil.copytree(target, link, copy_function=_link_or_copy)
                dirnames.remove(name)
                detached += 1
    return detached


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


TEMPLATE_MAX_FILES = 2000
LOCK_FILE = ".terraform.lock.hcl"


def config_key(workdir: Path, binary: Path) -> str | None:
    """A key for what decides a configuration's providers: its Terraform files, its lock file
    and the binary. None for configurations too large to hash cheaply."""
    digest = hashlib.sha256(str(binary.resolve()).encode())
    count = 0
    for path in sorted(workdir.rglob("*")):
        if ".terraform" in path.parts or not path.is_file():
            continue
        if not path.name.endswith((".tf", ".tf.json")) and path.name != LOCK_FILE:
            continue
        count += 1
        if count > TEMPLATE_MAX_FILES:
            return None
        digest.update(str(path.relative_to(workdir)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def restore_template(template: Path, workdir: Path) -> bool:
    """Put a template's providers and lock file into `workdir`; False when there is none."""
    if not (template / "complete").exists():
        return False
    shutil.copytree(
        template / "providers",
        workdir / ".terraform" / "providers",
        copy_function=_link_or_copy,
        dirs_exist_ok=True,
    )
    shutil.copy2(template / LOCK_FILE, workdir / LOCK_FILE)
    return True


def save_template(workdir: Path, template: Path) -> None:
    """Keep `workdir`'s providers and lock file as the template for its configuration."""
    lock = workdir / LOCK_FILE
    if (template / "complete").exists() or not lock.exists():
        return
    staging = template.with_name(f"{template.name}.{uuid.uuid4().hex}")
    providers = workdir / ".terraform" / "providers"
    if providers.is_dir():
        shutil.copytree(providers, staging / "providers", copy_function=_link_or_copy)
    else:
        (staging / "providers").mkdir(parents=True)
    shutil.copy2(lock, staging / LOCK_FILE)
    (staging / "complete").touch()
    try:
        staging.rename(template)  # atomic; another run may have saved the same one first
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
