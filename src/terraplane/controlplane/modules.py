"""Blueprint modules: packing, fetching from git, reading `variable` blocks."""

from __future__ import annotations

import io
import re
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import hcl2
from lark.exceptions import LarkError

from terraplane.domain.errors import Unprocessable
from terraplane.domain.variables import VariableSpec

GIT_TIMEOUT_SECONDS = 120


def pack(directory: Path) -> bytes:
    """A deterministic-enough .tar.gz of `directory`'s contents (without .git/.terraform)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(directory.rglob("*")):
            rel = path.relative_to(directory)
            if rel.parts and rel.parts[0] in (".git", ".terraform"):
                continue
            tar.add(path, arcname=str(rel), recursive=False)
    return buf.getvalue()


def fetch_git(url: str, ref: str, path: str) -> tuple[bytes, str]:
    """The module at `path` in `url` at `ref`, as an archive, and the commit it came from."""
    if not re.match(r"^[A-Za-z0-9._/@:+~-]+$", ref) or ref.startswith("-"):
        raise Unprocessable(f"git ref {ref!r} is not a branch, tag or commit")
    if url.startswith("-") or not re.match(r"^(https?|ssh|git|file)://|^[\w.-]+@[\w.-]+:", url):
        raise Unprocessable(f"git url {url!r} must be an https://, ssh://, git:// or file:// URL")
    with tempfile.TemporaryDirectory(prefix="terraplane-git-") as tmp:
        repo = Path(tmp) / "repo"
        for args in (
            ["init", "-q", str(repo)],
            ["-C", str(repo), "fetch", "-q", "--depth", "1", "--", url, ref],
            ["-C", str(repo), "checkout", "-q", "FETCH_HEAD"],
        ):
            result = subprocess.run(
                ["git", *args],
                capture_output=True,
                text=True,
                timeout=GIT_TIMEOUT_SECONDS,
                check=False,
                env={"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/bin:/bin"},
            )
            if result.returncode != 0:
                raise Unprocessable(
                    f"could not fetch {ref!r} from {url}: {result.stderr.strip()[:300]}"
                )
        commit = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        module = (repo / path).resolve()
        if not module.is_relative_to(repo.resolve()) or not module.is_dir():
            raise Unprocessable(f"path {path!r} is not a directory inside the repository")
        return pack(module), commit


def read_variables(module: Path) -> list[VariableSpec]:
    """The `variable` blocks of the module's root `.tf` files."""
    specs: dict[str, VariableSpec] = {}
    for tf in sorted(module.glob("*.tf")):
        try:
            doc = hcl2.load(io.StringIO(tf.read_text()))
        except (LarkError, UnicodeDecodeError, ValueError) as exc:
            raise Unprocessable(f"{tf.name} is not valid HCL: {str(exc)[:300]}") from exc
        for block in doc.get("variable", []):
            for raw_name, body in block.items():
                name = _unquote(raw_name)
                specs[name] = VariableSpec(
                    name=name,
                    type=str(_unquote(body.get("type", "any"))),
                    default=_unquote(body.get("default")),
                    required="default" not in body,
                    sensitive=bool(body.get("sensitive", False)),
                    description=_unquote(body.get("description")),
                )
    if not list(module.glob("*.tf")):
        raise Unprocessable("the module has no .tf files at its root")
    return list(specs.values())


def _unquote(value: Any) -> Any:
    """python-hcl2 keeps string literals' quotes; strip them, recursively."""
    if isinstance(value, str):
        if len(value) >= 2 and value[0] == value[-1] == '"':
            return value[1:-1].replace('\\"', '"')
        return value
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    return value
