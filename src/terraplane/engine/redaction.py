"""Redact secret values from streamed output, including values split across chunks."""

from __future__ import annotations

from collections.abc import Iterable

MASK = "***"
# Values shorter than this are not treated as secrets: masking "1" or "on" would mangle logs.
MIN_SECRET_LENGTH = 4


class Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted(
            {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True
        )
        self._hold = max((len(s) for s in self._secrets), default=1) - 1
        self._pending = ""

    def feed(self, text: str) -> str:
        """Redacted text that is safe to emit now; a short tail is held back for the next call."""
        if not self._secrets:
            return text
        data = self._mask(self._pending + text)
        if self._hold and len(data) > self._hold:
            self._pending, data = data[-self._hold :], data[: -self._hold]
        elif self._hold:
            self._pending, data = data, ""
        return data

    def flush(self) -> str:
        data, self._pending = self._mask(self._pending), ""
        return data

    def _mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text
