"""Find or install the terraform/tofu binary a workspace asks for.

Without a pinned version the binary on PATH is used. A pinned version is used from PATH when that
binary reports exactly that version; otherwise it is downloaded once from the release mirror in
HashiCorp's layout (`{mirror}/terraform/{v}/terraform_{v}_{os}_{arch}.zip` beside
`terraform_{v}_SHA256SUMS`; OpenTofu's GitHub release layout for tofu), its sha256 checked
against the sums file, and unpacked into `{data_dir}/engines/{engine}/{v}/`.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import io
import os
import platform
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from terraplane.domain.errors import TerraplaneError

ENGINES = ("terraform", "tofu")
_VERSION = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?$")
MAX_ARCHIVE_BYTES = 512 * 1024 * 1024


class EngineNotAvailable(TerraplaneError):
    status_code = 422


@dataclass(frozen=True)
class ReleaseLayout:
    """Where a release lives on a mirror, relative to its base URL."""

    archive: str
    sums: str

    def urls(
        self, base: str, engine: str, version: str, os_name: str, arch: str
    ) -> tuple[str, str]:
        fields = {"engine": engine, "v": version, "os": os_name, "arch": arch}
        base = base.rstrip("/")
        return f"{base}/{self.archive.format(**fields)}", f"{base}/{self.sums.format(**fields)}"


LAYOUTS = {
    "terraform": ReleaseLayout(
        archive="terraform/{v}/terraform_{v}_{os}_{arch}.zip",
        sums="terraform/{v}/terraform_{v}_SHA256SUMS",
    ),
    "tofu": ReleaseLayout(archive="v{v}/tofu_{v}_{os}_{arch}.zip", sums="v{v}/tofu_{v}_SHA256SUMS"),
}


def platform_pair() -> tuple[str, str]:
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        machine, machine
    )
    return platform.system().lower(), arch


def validate_engine(engine: str, version: str | None) -> None:
    if engine not in ENGINES:
        raise EngineNotAvailable(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if version is not None and not _VERSION.match(version):
        raise EngineNotAvailable(f"engine version {version!r} is not a version like 1.9.8")


class EngineBinaries:
    def __init__(self, install_dir: Path, mirrors: dict[str, str], timeout: float = 120.0) -> None:
        self.install_dir = install_dir
        self.mirrors = mirrors
        self.timeout = timeout
        self._path_versions: dict[str, str | None] = {}

    async def resolve(self, engine: str, version: str | None) -> Path:
        validate_engine(engine, version)
        on_path = shutil.which(engine)
        if version is None:
            if on_path is None:
                raise EngineNotAvailable(
                    f"{engine} is not on PATH; install it or pin a version to fetch it "
                    "from the release mirror"
                )
            return Path(on_path)
        if on_path and await self._version_of(on_path, engine) == version:
            return Path(on_path)
        installed = self.install_dir / engine / version / engine
        if installed.exists():
            return installed
        return await asyncio.to_thread(self._install, engine, version, installed)

    async def _version_of(self, path: str, engine: str) -> str | None:
        if path not in self._path_versions:
            proc = await asyncio.create_subprocess_exec(
                path,
                "version",
                "-json",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                env={**os.environ, "CHECKPOINT_DISABLE": "1"},
            )
            out, _ = await proc.communicate()
            match = re.search(rf'"{engine}_version"\s*:\s*"([^"]+)"', out.decode(errors="replace"))
            self._path_versions[path] = match.group(1) if match else None
        return self._path_versions[path]

    def _install(self, engine: str, version: str, target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target.parent / ".install.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one download per version, across processes
            if target.exists():
                return target
            os_name, arch = platform_pair()
            archive_url, sums_url = LAYOUTS[engine].urls(
                self.mirrors[engine], engine, version, os_name, arch
            )
            archive_name = archive_url.rsplit("/", 1)[1]
            with httpx.Client(timeout=self.timeout, follow_redirects=True) as client:
                sums = _fetch(client, sums_url, 1024 * 1024).decode(errors="replace")
                expected = _expected_sha256(sums, archive_name, sums_url)
                archive = _fetch(client, archive_url, MAX_ARCHIVE_BYTES)
            actual = hashlib.sha256(archive).hexdigest()
            if actual != expected:
                raise EngineNotAvailable(
                    f"{archive_name} from {archive_url} has sha256 {actual}, but {sums_url} "
                    f"lists {expected}; refusing to install it"
                )
            _unpack(archive, engine, target)
        return target


def _fetch(client: httpx.Client, url: str, limit: int) -> bytes:
    try:
        response = client.get(url)
    except httpx.HTTPError as exc:
        raise EngineNotAvailable(f"could not download {url}: {exc}") from exc
    if response.status_code != 200:
        raise EngineNotAvailable(f"could not download {url}: HTTP {response.status_code}")
    if len(response.content) > limit:
        raise EngineNotAvailable(f"{url} is larger than {limit} bytes")
    return response.content


def _expected_sha256(sums: str, archive_name: str, sums_url: str) -> str:
    for line in sums.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == archive_name:
            return parts[0].lower()
    raise EngineNotAvailable(f"{sums_url} has no checksum for {archive_name}")


def _unpack(archive: bytes, engine: str, target: Path) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as zf:
            data = zf.read(engine)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise EngineNotAvailable(f"the release archive holds no {engine!r} binary") from exc
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{engine}.")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, 0o755)  # noqa: S103 - it is an executable
    os.replace(tmp, target)
