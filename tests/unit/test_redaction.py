"""Secrets never leave the redactor, however the output is chunked."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from terraplane.engine.redaction import MASK, Redactor


def run(redactor: Redactor, chunks: list[str]) -> str:
    return "".join(redactor.feed(c) for c in chunks) + redactor.flush()


def test_masks_whole_values() -> None:
    assert run(Redactor(["s3cret-value"]), ["token=s3cret-value\n"]) == f"token={MASK}\n"


def test_short_values_are_not_secrets() -> None:
    assert run(Redactor(["on"]), ["turn on\n"]) == "turn on\n"


@given(
    prefix=st.text(max_size=30),
    suffix=st.text(max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=80), max_size=6),
)
def test_a_secret_split_across_chunks_is_still_masked(
    prefix: str, suffix: str, cuts: list[int]
) -> None:
    secret = "p@ssw0rd-XYZ"
    text = prefix + secret + suffix
    points = sorted({min(c, len(text)) for c in cuts})
    chunks, last = [], 0
    for p in points:
        chunks.append(text[last:p])
        last = p
    chunks.append(text[last:])
    out = run(Redactor([secret]), chunks)
    assert secret not in out
    assert out == text.replace(secret, MASK)
