"""The API client behind the control-plane commands: base URL and token from options or
TERRAPLANE_URL / TERRAPLANE_TOKEN; an error answer becomes one sentence."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
from rich.console import Console

DEFAULT_URL = "http://127.0.0.1:8080"


class ApiError(Exception):
    pass


class ApiClient:
    def __init__(self, url: str, token: str | None, timeout: float = 60) -> None:
        if not token:
            raise ApiError("no API token: pass --token or set TERRAPLANE_TOKEN")
        self.http = httpx.Client(
            base_url=url.rstrip("/"), timeout=timeout, headers={"Authorization": f"Bearer {token}"}
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            answer = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(f"cannot reach {self.http.base_url}: {exc}") from exc
        if answer.status_code >= 400:
            try:
                detail = answer.json().get("detail", answer.text)
            except ValueError:
                detail = answer.text
            if not isinstance(detail, str):
                detail = json.dumps(detail)
            raise ApiError(f"{method} {path}: {answer.status_code}: {detail}")
        return answer.json() if answer.content else None

    def wait(
        self,
        path: str,
        done: Callable[[dict[str, Any]], bool],
        label: str,
        quiet: bool,
        timeout: float = 3600,
    ) -> dict[str, Any]:
        """Poll `path` until `done`, showing its status unless `quiet`."""
        console = Console(stderr=True)
        deadline = time.monotonic() + timeout
        with console.status(label, spinner="dots") as status:
            while True:
                item: dict[str, Any] = self.call("GET", path)
                if not quiet:
                    status.update(f"{label}: {describe(item)}")
                if done(item):
                    return item
                if time.monotonic() > deadline:
                    raise ApiError(f"gave up waiting for {path} after {timeout:.0f}s")
                time.sleep(0.5)


def describe(item: dict[str, Any]) -> str:
    text = str(item.get("status", ""))
    if "waves" in item:
        parts = [f"wave {i + 1}: {w['status']}" for i, w in enumerate(item["waves"])]
        text += " (" + ", ".join(parts) + ")"
    if item.get("runs"):
        run = item["runs"][-1]
        text += f" — run {run['id']} ({run.get('purpose', run['operation'])}) {run['status']}"
    return text


def parse_vars(pairs: list[str]) -> dict[str, Any]:
    """`name=value` pairs; values that parse as JSON (numbers, true, lists...) are typed."""
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise ApiError(f"--var {pair!r} is not name=value")
        try:
            out[name] = json.loads(raw)
        except json.JSONDecodeError:
            out[name] = raw
    return out
