"""Module archives (`.tar.gz`, the module at the root), unpacked safely and cached.

Unpacking refuses absolute paths, `..`, links that leave the tree, device files, and archives over
the size limits, so nothing a user uploads is written outside its directory.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from terraplane.domain.errors import Unprocessable

MAX_MEMBERS = 10_000
MAX_UNPACKED_BYTES = 200 * 1024 * 1024


def unpack(archive: bytes, target: Path) -> None:
    """Unpack a module archive into `target` (which must not exist yet)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            members = tar.getmembers()
            if len(members) > MAX_MEMBERS:
                raise Unprocessable(f"archive has more than {MAX_MEMBERS} entries")
            if sum(m.size for m in members) > MAX_UNPACKED_BYTES:
                raise Unprocessable(f"archive unpacks to more than {MAX_UNPACKED_BYTES} bytes")
            target.mkdir(parents=True)
            tar.extractall(target, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise Unprocessable(f"archive is not a usable .tar.gz: {exc}") from exc


def unpack_cached(archive: bytes, sha256: str, cache_dir: Path) -> Path:
    """The archive unpacked under `cache_dir/sha256` (once; archives are immutable)."""
    target = cache_dir / sha256
    if target.is_dir():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=cache_dir, prefix=".unpack-"))
    try:
        unpack(archive, staging / "module")
        try:
            os.rename(staging / "module", target)
        except OSError:  # another worker got there first: same content
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
