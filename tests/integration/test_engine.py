"""The engine on its own: parallel inits sharing one plugin cache, and binaries installed from a
release mirror with checksum verification."""

from __future__ import annotations

import asyncio
import hashlib
import http.server
import io
import json
import shutil
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from terraplane.engine.binaries import EngineBinaries, EngineNotAvailable, platform_pair
from terraplane.engine.terraform import TerraformCommands, run_environment
from tests.support.terraform import NULL_MODULE, terraform_binary


async def parallel_init_and_plan(
    tmp_path: Path, cache: Path, cli_config: Path, prefix: str, count: int = 8
) -> tuple[list[int], str]:
    outputs: list[list[str]] = []

    async def one(i: int) -> int:
        workdir = tmp_path / f"{prefix}{i}"
        workdir.mkdir()
        (workdir / "main.tf").write_text(NULL_MODULE)
        lines: list[str] = []
        outputs.append(lines)

        async def sink(text: str) -> None:
            lines.append(text)

        tf = TerraformCommands(
            binary=Path(terraform_binary()),
            workdir=workdir,
            sink=sink,
            plugin_cache_dir=cache,
            env=run_environment(plugin_cache_dir=cache, cli_config=cli_config),
        )
        init = await tf.init()
        if init.exit_code:
            return init.exit_code
        return (await tf.plan("p.tfplan")).exit_code

    codes = await asyncio.gather(*(one(i) for i in range(count)))
    return list(codes), "".join("".join(o) for o in outputs)


async def test_eight_parallel_inits_share_one_cache(
    tmp_path: Path, terraform_cli_config: Path
) -> None:
    cache = tmp_path / "plugin-cache"  # empty: every init races to fill it
    codes, output = await parallel_init_and_plan(tmp_path, cache, terraform_cli_config, "cold")
    assert codes == [2] * 8, output
    assert "text file busy" not in output
    # The provider is in the shared cache (terraform links unpacked mirror entries in).
    cached = cache / "registry.terraform.io" / "hashicorp" / "null" / "2.1.2" / "linux_amd64"
    assert list(cached.glob("terraform-provider-null*"))
    # ...and the configuration's providers are kept as a template for the next runs.
    assert len(list((cache / "templates").glob("*/complete"))) == 1

    # Warm: every init starts from the template, outside the shared cache and its lock.
    codes, output = await parallel_init_and_plan(tmp_path, cache, terraform_cli_config, "warm")
    assert codes == [2] * 8, output
    assert output.count("Using previously-installed hashicorp/null") == 8, output
    assert "initialising afresh" not in output


FAKE_TERRAFORM = b'#!/bin/sh\necho \'{"terraform_version": "9.9.9"}\'\n'


def _zip(content: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("terraform")
        info.external_attr = 0o755 << 16
        zf.writestr(info, content)
    return buf.getvalue()


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTP server laid out like releases.hashicorp.com."""
    root = tmp_path / "mirror"
    os_name, arch = platform_pair()
    for version, payload, listed in (
        ("9.9.9", _zip(FAKE_TERRAFORM), None),
        ("6.6.6", _zip(FAKE_TERRAFORM + b"# tampered\n"), _zip(FAKE_TERRAFORM)),
    ):
        folder = root / "terraform" / version
        folder.mkdir(parents=True)
        name = f"terraform_{version}_{os_name}_{arch}.zip"
        (folder / name).write_bytes(payload)
        digest = hashlib.sha256(listed or payload).hexdigest()
        (folder / f"terraform_{version}_SHA256SUMS").write_text(f"{digest}  {name}\n")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()


async def test_pinned_version_is_installed_from_the_mirror(
    mirror: tuple[str, Path], tmp_path: Path
) -> None:
    url, _ = mirror
    binaries = EngineBinaries(tmp_path / "engines", {"terraform": url})
    path = await binaries.resolve("terraform", "9.9.9")
    assert path == tmp_path / "engines" / "terraform" / "9.9.9" / "terraform"
    out = subprocess.run([str(path), "version"], capture_output=True, text=True, check=True)
    assert "9.9.9" in out.stdout
    # Installed once: a second resolve does not download again (the mirror may be gone).
    shutil.rmtree(mirror[1])
    assert await binaries.resolve("terraform", "9.9.9") == path


async def test_tampered_archive_is_refused(mirror: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = mirror
    binaries = EngineBinaries(tmp_path / "engines", {"terraform": url})
    with pytest.raises(EngineNotAvailable, match="refusing to install"):
        await binaries.resolve("terraform", "6.6.6")
    assert not (tmp_path / "engines" / "terraform" / "6.6.6" / "terraform").exists()


async def test_unknown_version_and_bad_input(mirror: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = mirror
    binaries = EngineBinaries(tmp_path / "engines", {"terraform": url})
    with pytest.raises(EngineNotAvailable, match="HTTP 404"):
        await binaries.resolve("terraform", "1.2.3")
    with pytest.raises(EngineNotAvailable, match="not a version"):
        await binaries.resolve("terraform", "1.2; rm -rf /")
    with pytest.raises(EngineNotAvailable, match="engine must be one of"):
        await binaries.resolve("pulumi", None)


async def test_unpinned_engine_comes_from_path(tmp_path: Path) -> None:
    binaries = EngineBinaries(tmp_path / "engines", {"terraform": "http://127.0.0.1:9"})
    assert str(await binaries.resolve("terraform", None)) == terraform_binary()


BEFORE = """
resource "null_resource" "keep" {
  triggers = { v = "1" }
}
resource "null_resource" "gone" {
  triggers = { v = "1" }
}
resource "null_resource" "replace" {
  triggers = { v = "1" }
}
resource "null_resource" "many" {
  count    = 2
  triggers = { v = "1" }
}
output "o" { value = "1" }
"""

AFTER = """
resource "null_resource" "keep" {
  triggers = { v = "1" }
}
resource "null_resource" "replace" {
  triggers = { v = "2" }
}
resource "null_resource" "many" {
  count    = 3
  triggers = { v = "1" }
}
resource "null_resource" "new" {}
output "o" { value = "2" }
output "p" { value = "x" }
"""


def test_the_plan_summary_read_from_terraforms_output_equals_show_json(
    tmp_path: Path, terraform_cli_config: Path
) -> None:
    """The summary Terraplane reads from `terraform plan`'s output (saving a `show -json`
    process per run) is the one `show -json` gives: created, destroyed, replaced, counted
    resources and outputs, with this terraform."""
    from terraplane.domain.plans import summarize_plan, summarize_plan_output

    env = {**run_environment(plugin_cache_dir=tmp_path / "cache", cli_config=terraform_cli_config)}

    def tf(*args: str) -> str:
        done = subprocess.run(
            [terraform_binary(), *args, "-no-color"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode in (0, 2), done.stderr
        return done.stdout

    (tmp_path / "main.tf").write_text(BEFORE)
    tf("init", "-input=false")
    tf("apply", "-auto-approve", "-input=false")
    (tmp_path / "main.tf").write_text(AFTER)
    output = tf("plan", "-input=false", "-detailed-exitcode", "-out=p.tfplan")
    from_json = summarize_plan(json.loads(tf("show", "-json", "p.tfplan")))
    assert summarize_plan_output(output) == from_json
    assert (from_json.add, from_json.destroy, from_json.outputs_changed) == (3, 2, 2)
