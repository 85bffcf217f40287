"""A local stand-in for GitHub's REST API (the one stand-in we allow: GitHub cannot run here).

It speaks GitHub's documented formats on 127.0.0.1: it verifies App JWTs (RS256) against the
App's public key and issues installation tokens the way `POST /app/installations/{id}/
access_tokens` does, and can answer with GitHub's primary and secondary rate-limit responses.
Webhook deliveries are signed with real HMAC-SHA256 by `signed_delivery`.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from terraplane.github.signatures import sign


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signed_delivery(
    event: str, payload: dict[str, Any], secret: str, delivery_id: str | None = None
) -> tuple[bytes, dict[str, str]]:
    """A webhook delivery as GitHub sends it: body and headers, signed with `secret`."""
    body = json.dumps(payload).encode()
    return body, {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/abc1234",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "1",
        "X-GitHub-Hook-Installation-Target-Type": "integration",
        "X-GitHub-Hook-Installation-Target-ID": "1",
        "X-Hub-Signature-256": sign(body, secret),
    }


def _pull_file(repo: str, name: str) -> dict[str, Any]:
    """One entry of GET /repos/{owner}/{repo}/pulls/{number}/files, as GitHub documents it."""
    sha = secrets.token_hex(20)
    return {
        "sha": sha,
        "filename": name,
        "status": "modified",
        "additions": 1,
        "deletions": 1,
        "changes": 2,
        "blob_url": f"https://github.com/{repo}/blob/{sha}/{name}",
        "raw_url": f"https://github.com/{repo}/raw/{sha}/{name}",
        "contents_url": f"https://api.github.com/repos/{repo}/contents/{name}?ref={sha}",
        "patch": "@@ -1 +1 @@\n-old\n+new",
    }


@dataclass
class CannedAnswer:
    status: int
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class GitHubStandIn:
    app_id: str = "424242"
    token_lifetime: timedelta = timedelta(hours=1)
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    canned: list[CannedAnswer] = field(default_factory=list)
    # (repo full name, PR number) -> the files the PR changes, for the files API.
    pull_files: dict[tuple[str, int], list[str]] = field(default_factory=dict)
    # GitHub's clock (tests move it together with the client's).
    clock: Callable[[], float] = time.time
    _server: ThreadingHTTPServer | None = None

    @property
    def private_key_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def rate_limit_next(self, *, secondary: bool, wait: int = 1) -> None:
        """The next request is refused the way GitHub refuses an exhausted rate limit."""
        if secondary:
            self.canned.append(
                CannedAnswer(
                    403,
                    {"retry-after": str(wait)},
                    {
                        "message": "You have exceeded a secondary rate limit. Please wait a "
                        "few minutes before you try again.",
                        "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
                    },
                )
            )
        else:
            self.canned.append(
                CannedAnswer(
                    403,
                    {
                        "x-ratelimit-limit": "5000",
                        "x-ratelimit-remaining": "0",
                        "x-ratelimit-used": "5000",
                        "x-ratelimit-reset": str(int(time.time()) + wait),
                        "x-ratelimit-resource": "core",
                    },
                    {
                        "message": "API rate limit exceeded for installation ID 1.",
                        "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
                    },
                )
            )

    def verify_jwt(self, token: str) -> str | None:
        """None when `token` is a valid App JWT; otherwise why it is not."""
        try:
            header, payload, signature = token.split(".")
            self.key.public_key().verify(
                _unb64(signature),
                f"{header}.{payload}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
            claims = json.loads(_unb64(payload))
        except (ValueError, InvalidSignature):
            return "A JSON web token could not be decoded"
        now = self.clock()
        if json.loads(_unb64(header)).get("alg") != "RS256":
            return "'alg' must be RS256"
        if str(claims.get("iss")) != self.app_id:
            return "'Issuer' claim ('iss') must be the App's id"
        if not claims["iat"] <= now < claims["exp"] or claims["exp"] - claims["iat"] > 600:
            return "'Expiration time' claim ('exp') is too far in the future or in the past"
        return None

    def start(self) -> GitHubStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(
                self, status: int, body: Any, headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("X-GitHub-Api-Version-Selected", "2022-11-28")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                standin.requests.append(("GET", self.path, dict(self.headers)))
                auth = self.headers.get("Authorization", "")
                if auth.removeprefix("token ") not in standin.issued:
                    self._answer(401, {"message": "Bad credentials"})
                    return
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                parts = url.path.strip("/").split("/")
                if len(parts) == 6 and parts[0] == "repos" and parts[3:6:2] == ["pulls", "files"]:
                    key = (f"{parts[1]}/{parts[2]}", int(parts[4]))
                    if key not in standin.pull_files:
                        self._answer(404, {"message": "Not Found"})
                        return
                    files = standin.pull_files[key][:3000]  # GitHub's documented cap
                    per_page = min(int(query.get("per_page", ["30"])[0]), 100)
                    page = int(query.get("page", ["1"])[0])
                    chunk = files[(page - 1) * per_page : page * per_page]
                    last = max(1, -(-len(files) // per_page))
                    links = []
                    if page < last:
                        base = f"{standin.url}{url.path}?per_page={per_page}"
                        links = [
                            f'<{base}&page={page + 1}>; rel="next"',
                            f'<{base}&page={last}>; rel="last"',
                        ]
                    self._answer(
                        200,
                        [_pull_file(key[0], name) for name in chunk],
                        {"Link": ", ".join(links)} if links else {},
                    )
                    return
                self._answer(404, {"message": "Not Found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                standin.requests.append(("POST", self.path, dict(self.headers)))
                if standin.canned:
                    answer = standin.canned.pop(0)
                    self._answer(answer.status, answer.body, answer.headers)
                    return
                parts = self.path.strip("/").split("/")
                if len(parts) == 4 and parts[:2] == ["app", "installations"]:
                    auth = self.headers.get("Authorization", "")
                    problem = standin.verify_jwt(auth.removeprefix("Bearer "))
                    if not auth.startswith("Bearer ") or problem:
                        self._answer(401, {"message": problem or "Bearer token required"})
                        return
                    token = "ghs_" + secrets.token_hex(18)
                    standin.issued.append(token)
                    expires = datetime.fromtimestamp(standin.clock(), UTC) + standin.token_lifetime
                    self._answer(
                        201,
                        {
                            "token": token,
                            "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                            "permissions": {
                                "checks": "write",
                                "contents": "read",
                                "issues": "write",
                                "metadata": "read",
                                "pull_requests": "write",
                                "statuses": "write",
                            },
                            "repository_selection": "all",
                        },
                    )
                    return
                self._answer(404, {"message": "Not Found"})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
