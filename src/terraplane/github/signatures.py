"""Webhook signatures: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.

Checked in constant time against every configured secret, so a secret can be rotated by adding
the new one, switching the App to it, then removing the old one.
"""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "sha256="


def sign(body: bytes, secret: str) -> str:
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, header: str | None, secrets: list[str]) -> bool:
    """True when `header` is the signature of `body` under one of `secrets`."""
    if not header or not header.startswith(PREFIX) or not secrets:
        return False
    given = header.encode()
    # Every secret is compared (no early exit), so timing says nothing about which matched.
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(sign(body, secret).encode(), given)
    return matched
