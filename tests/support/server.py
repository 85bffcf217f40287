"""A real `terraplane serve` (or `worker`) process on 127.0.0.1, for end-to-end tests."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from terraplane.domain.roles import Role
from terraplane.governance.tokens import create_token
from terraplane.store.database import Database


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_token(database_url: str, name: str, role: Role) -> str:
    async def work() -> str:
        db = Database(database_url, pool_size=1)
        try:
            async with db.write() as conn:
                secret, _ = await create_token(conn, name, role)
            return secret
        finally:
            await db.dispose()

    return asyncio.run(work())


@dataclass
class ServerProcess:
    database_url: str
    data_dir: Path
    env_extra: dict[str, str] = field(default_factory=dict)
    command: str = "serve"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "TERRAPLANE_DATABASE_URL": self.database_url,
            "TERRAPLANE_DATA_DIR": str(self.data_dir),
            "TERRAPLANE_PORT": str(self.port),
            "TERRAPLANE_LOG_LEVEL": "info",
            **self.env_extra,
        }

    def start(self, wait: bool = True) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / f"{self.command}-{self.port}.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "terraplane.cli.main", self.command],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        if wait and self.command == "serve":
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not become healthy:\n{self.logs()}")

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 30) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
