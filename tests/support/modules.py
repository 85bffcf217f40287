"""Module archives and git repositories for blueprint tests."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

EXAMPLE_BLUEPRINT = Path(__file__).resolve().parents[2] / "examples" / "blueprints" / "webapp"


def tar_gz(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def example_archive(**overrides: str) -> bytes:
    files = {p.name: p.read_text() for p in EXAMPLE_BLUEPRINT.glob("*.tf")}
    return tar_gz({**files, **overrides})


def git_repo(root: Path, files: dict[str, str], tag: str) -> str:
    """A git repository with `files` committed and tagged; returns its file:// URL."""
    root.mkdir(parents=True)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    env_args = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "."],
        [*env_args, "commit", "-q", "-m", "module"],
        ["tag", tag],
    ):
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)
    return f"file://{root}"
