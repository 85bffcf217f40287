"""Webhook signatures: HMAC-SHA256 of the body, against every configured secret."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from terraplane.github.signatures import sign, verify

BODY = b'{"action": "opened"}'


def test_signature_is_githubs_hmac_sha256() -> None:
    # GitHub's documented example: secret "It's a Secret to Everybody", body "Hello, World!".
    assert sign(b"Hello, World!", "It's a Secret to Everybody") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


def test_any_configured_secret_verifies_during_a_rotation() -> None:
    header = sign(BODY, "new")
    assert verify(BODY, header, ["old", "new"])
    assert not verify(BODY, header, ["old"])


def test_missing_malformed_or_foreign_signatures_are_refused() -> None:
    good = sign(BODY, "s")
    assert not verify(BODY, None, ["s"])
    assert not verify(BODY, "", ["s"])
    assert not verify(BODY, good.replace("sha256=", "sha1="), ["s"])
    assert not verify(BODY + b" ", good, ["s"])
    assert not verify(BODY, good, [])


@given(st.binary(max_size=2048), st.text(min_size=1, max_size=40))
def test_verify_accepts_exactly_the_hmac(body: bytes, secret: str) -> None:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert verify(body, f"sha256={digest}", [secret])
    assert not verify(body, f"sha256={digest[:-1]}0" if digest[-1] != "0" else "sha256=1", [secret])
