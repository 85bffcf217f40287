"""Encryption at rest: round trip, key rotation, tamper detection, generated keys."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest

from terraplane.store.encryption import EncryptionError, Keyring, load_keyring


def key() -> bytes:
    return secrets.token_bytes(32)


def test_round_trip_binds_associated_data() -> None:
    ring = Keyring(key())
    kid, blob = ring.encrypt(b"state bytes", b"state:a:1")
    assert b"state bytes" not in blob
    assert ring.decrypt(kid, blob, b"state:a:1") == b"state bytes"
    with pytest.raises(EncryptionError, match="failed authentication"):
        ring.decrypt(kid, blob, b"state:b:1")


def test_rotation_keeps_old_data_readable() -> None:
    old, new = key(), key()
    kid, blob = Keyring(old).encrypt(b"v1")
    rotated = Keyring(new, [old])
    assert rotated.decrypt(kid, blob) == b"v1"
    assert rotated.encrypt(b"v2")[0] != kid
    with pytest.raises(EncryptionError, match="does not have"):
        Keyring(new).decrypt(kid, blob)


def test_tampered_ciphertext_is_refused() -> None:
    ring = Keyring(key())
    kid, blob = ring.encrypt(b"data")
    with pytest.raises(EncryptionError):
        ring.decrypt(kid, blob[:-1] + bytes([blob[-1] ^ 1]))


def test_generated_key_is_stable_and_private(tmp_path: Path) -> None:
    first = load_keyring("", "", tmp_path)
    second = load_keyring("", "", tmp_path)
    assert first.primary_id == second.primary_id
    assert (tmp_path / "encryption.key").stat().st_mode & 0o777 == 0o600


def test_configured_key_must_be_32_bytes() -> None:
    with pytest.raises(EncryptionError, match="32 bytes"):
        load_keyring(base64.b64encode(b"short").decode(), "", Path("/nonexistent"))
    with pytest.raises(EncryptionError, match="base64"):
        load_keyring("not base64!!", "", Path("/nonexistent"))
