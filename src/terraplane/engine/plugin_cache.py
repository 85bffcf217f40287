"""The shared provider plugin cache, safe under parallel runs.

Terraform's plugin cache is not safe for concurrent use: two inits that both miss the cache
unpack the same provider over each other ("text file busy", a long-standing Atlantis problem),
and an init replaces cache entries that other runs' `.terraform` link to, so a plan running
beside it can find its provider gone. So, on one host:

- `init` runs under an exclusive file lock on the cache, and
- right after it, the run's `.terraform/providers` links into the cache are replaced by hard
  links to the same files (a copy across file systems), so a running plan or apply never depends
  on the cache entry again and later inits may replace it freely.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
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
