"""A GitHub App: its JWT, installation tokens (cached until shortly before they expire) and API
requests that respect GitHub's primary and secondary rate limits.

`api_url` is `https://api.github.com`, or `https://HOST/api/v3` for GitHub Enterprise Server
(and a local stand-in in tests). Nothing here logs a token or a key.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from terraplane.domain.errors import InvalidInput
from terraplane.observability.logs import get_logger

log = get_logger(__name__)

API_VERSION = "2022-11-28"
# A JWT may live at most 10 minutes; it is backdated a minute against clock drift.
JWT_LIFETIME_SECONDS = 540
JWT_BACKDATE_SECONDS = 60
# An installation token lives an hour; a new one is fetched when less than this is left, so no
# request starts with a token about to expire.
TOKEN_REFRESH_MARGIN_SECONDS = 300
# Secondary rate limits without a retry-after: wait at least a minute, doubling per retry.
SECONDARY_MIN_WAIT_SECONDS = 60.0
MAX_RATE_LIMIT_WAIT_SECONDS = 900.0
MAX_RATE_LIMIT_RETRIES = 5
# A bound on following Link headers (a misbehaving server must not loop us forever).
MAX_PAGES = 1000


class GitHubError(Exception):
    """GitHub answered with an error (`status` is its HTTP status), or did not answer at all
    (status 503)."""

    def __init__(self, status: int, message: str, *, answered: bool = True) -> None:
        super().__init__(f"GitHub answered {status}: {message}" if answered else message)
        self.status = status

    @property
    def transient(self) -> bool:
        """Worth trying again later: GitHub was down, overloaded or unreachable."""
        return self.status >= 500 or self.status == 429


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidInput("the GitHub App private key is not a PEM private key") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise InvalidInput("the GitHub App private key must be an RSA key")
    return key


def rate_limit_wait(response: httpx.Response, attempt: int, now: float) -> float | None:
    """Seconds to wait before retrying `response`, or None when it is not a rate limit."""
    if response.status_code not in (403, 429):
        return None
    headers = response.headers
    if "retry-after" in headers:
        try:
            return max(0.0, float(headers["retry-after"]))
        except ValueError:
            return SECONDARY_MIN_WAIT_SECONDS
    if headers.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in headers:
        try:
            return max(0.0, float(headers["x-ratelimit-reset"]) - now)
        except ValueError:
            return SECONDARY_MIN_WAIT_SECONDS
    if "secondary rate limit" in response.text.lower():
        return float(SECONDARY_MIN_WAIT_SECONDS * 2**attempt)
    return None  # a plain 403: permissions, not limits


class GitHubApp:
    def __init__(
        self,
        app_id: str,
        private_key_pem: str,
        api_url: str = "https://api.github.com",
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.app_id = str(app_id)
        self._key = load_private_key(private_key_pem)
        self.api_url = api_url.rstrip("/")
        self._clock = clock
        self._sleep = sleep
        self._tokens: dict[int, tuple[str, float]] = {}
        self._token_locks: dict[int, asyncio.Lock] = {}
        self.http = httpx.AsyncClient(
            base_url=self.api_url,
            transport=transport,
            timeout=30.0,
            headers={
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": "terraplane",
            },
        )

    async def close(self) -> None:
        await self.http.aclose()

    def jwt(self) -> str:
        """The App's own credential (RS256), for the /app endpoints."""
        now = int(self._clock())
        header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
        claims = {
            "iat": now - JWT_BACKDATE_SECONDS,
            "exp": now + JWT_LIFETIME_SECONDS,
            "iss": self.app_id,
        }
        payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = f"{header}.{payload}".encode()
        signature = self._key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return f"{header}.{payload}.{_b64url(signature)}"

    async def installation_token(self, installation_id: int) -> str:
        """A token for the installation, from the cache while it has time left."""
        lock = self._token_locks.setdefault(installation_id, asyncio.Lock())
        async with lock:  # one exchange per installation at a time, however many callers
            cached = self._tokens.get(installation_id)
            if cached and cached[1] - self._clock() > TOKEN_REFRESH_MARGIN_SECONDS:
                return cached[0]
            response = await self._send(
                "POST",
                f"/app/installations/{installation_id}/access_tokens",
                auth=f"Bearer {self.jwt()}",
            )
            body = response.json()
            expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
            self._tokens[installation_id] = (body["token"], expires.timestamp())
            return str(body["token"])

    async def request(
        self,
        method: str,
        path: str,
        *,
        installation_id: int,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """An API call as the installation. Raises GitHubError for an error answer."""
        token = await self.installation_token(installation_id)
        return await self._send(
            method, path, auth=f"token {token}", json_body=json_body, params=params
        )

    async def paginate(
        self, path: str, *, installation_id: int, params: dict[str, Any] | None = None
    ) -> list[Any]:
        """Every item of a paginated list endpoint, following the Link headers."""
        items: list[Any] = []
        url: str | None = path
        query: dict[str, Any] | None = {"per_page": 100, **(params or {})}
        for _ in range(MAX_PAGES):
            if url is None:
                return items
            response = await self.request("GET", url, installation_id=installation_id, params=query)
            page = response.json()
            items.extend(page if isinstance(page, list) else [])
            # The next link carries its own query (httpx would replace it with any params).
            url, query = next_link(response), None
        raise GitHubError(200, f"{path} has more than {MAX_PAGES} pages")

    async def _send(
        self,
        method: str,
        path: str,
        *,
        auth: str,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
    ) -> httpx.Response:
        for attempt in range(MAX_RATE_LIMIT_RETRIES + 1):
            try:
                response = await self.http.request(
                    method, path, headers={"Authorization": auth}, json=json_body, params=params
                )
            except httpx.TransportError as exc:
                # GitHub did not answer: like a 503, worth retrying later.
                raise GitHubError(
                    503, f"GitHub ({self.api_url}) did not answer: {exc!r}", answered=False
                ) from exc
            if response.status_code < 400:
                return response
            wait = rate_limit_wait(response, attempt, self._clock())
            if wait is None or attempt == MAX_RATE_LIMIT_RETRIES:
                raise GitHubError(response.status_code, _message(response))
            if wait > MAX_RATE_LIMIT_WAIT_SECONDS:
                raise GitHubError(
                    response.status_code, f"rate limited for {wait:.0f} s; giving up for now"
                )
            log.warning("GitHub rate limit; waiting", path=path, seconds=round(wait, 1))
            await self._sleep(wait)
        raise AssertionError("unreachable")


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message", response.text))[:500]
    except ValueError:
        return response.text[:500]


def next_link(response: httpx.Response) -> str | None:
    """The `rel="next"` URL of a paginated answer (GitHub's Link header), if any."""
    link = response.links.get("next")
    url = link.get("url") if link else None
    return str(url) if url else None
