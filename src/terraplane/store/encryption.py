"""Encryption at rest: AES-256-GCM with a key id stored beside every ciphertext.

The primary key encrypts; older keys (TERRAPLANE_ENCRYPTION_OLD_KEYS) still decrypt, so keys can
rotate without rewriting history at once. Plaintext is zlib-compressed first: Terraform state is
verbose JSON and shrinks several times, which is most of the cost of large states.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import zlib
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from terraplane.domain.errors import TerraplaneError

NONCE_BYTES = 12
KEY_FILE_NAME = "encryption.key"
KEY_ID_LENGTH = 16


class EncryptionError(TerraplaneError):
    status_code = 500


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"terraplane-key-id" + key).hexdigest()[:16]


def decode_key(text: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EncryptionError("encryption key is not valid base64") from exc
    if len(key) != 32:
        raise EncryptionError(f"encryption key must be 32 bytes (base64 of 32), not {len(key)}")
    return key


class Keyring:
    def __init__(self, primary: bytes, others: list[bytes] | None = None) -> None:
        self.primary_id = key_id(primary)
        self._keys = {key_id(k): AESGCM(k) for k in [*(others or []), primary]}
        # MAC keys derived from the same keys (never the keys themselves): primary first.
        self._macs = [
            hmac.new(k, b"terraplane signing key v1", hashlib.sha256).digest()
            for k in [primary, *(others or [])]
        ]

    def sign(self, message: bytes) -> bytes:
        """An HMAC-SHA256 of `message` under the primary key."""
        return hmac.new(self._macs[0], message, hashlib.sha256).digest()

    def verify(self, message: bytes, mac: bytes) -> bool:
        """Whether `mac` signs `message` under any key (older keys: during a rotation)."""
        ok = False
        for key in self._macs:  # every key is compared: timing tells nothing
            ok |= hmac.compare_digest(hmac.new(key, message, hashlib.sha256).digest(), mac)
        return ok

    def encrypt(self, plaintext: bytes, associated: bytes = b"") -> tuple[str, bytes]:
        return self.seal(compress(plaintext), associated)

    def seal(self, compressed: bytes, associated: bytes = b"") -> tuple[str, bytes]:
        """Encrypt what `compress` made (split so large inputs can compress off the loop)."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        return self.primary_id, nonce + self._keys[self.primary_id].encrypt(
            nonce, compressed, associated
        )

    def decrypt(self, kid: str, blob: bytes, associated: bytes = b"") -> bytes:
        aead = self._keys.get(kid)
        if aead is None:
            raise EncryptionError(
                f"data is encrypted with key id {kid}, which this server does not have; "
                "set TERRAPLANE_ENCRYPTION_KEY or TERRAPLANE_ENCRYPTION_OLD_KEYS"
            )
        try:
            compressed = aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], associated)
        except InvalidTag as exc:
            raise EncryptionError(f"ciphertext under key id {kid} failed authentication") from exc
        return zlib.decompress(compressed)


def seal_json(keyring: Keyring, value: object, associated: bytes) -> bytes:
    """JSON, encrypted, with its key id in front: one self-describing column value."""
    kid, blob = keyring.encrypt(json.dumps(value).encode(), associated)
    return kid.encode() + blob


def open_json(keyring: Keyring, sealed: bytes, associated: bytes) -> Any:
    kid, blob = sealed[:KEY_ID_LENGTH].decode(), sealed[KEY_ID_LENGTH:]
    return json.loads(keyring.decrypt(kid, blob, associated))


def compress(plaintext: bytes) -> bytes:
    # Level 1: several times faster than the default on multi-megabyte states, and state JSON
    # still shrinks to a fraction.
    return zlib.compress(plaintext, 1)


def load_keyring(configured: str, old_keys: str, data_dir: Path) -> Keyring:
    """The configured key, or the one generated into `data_dir` on first start."""
    others = [decode_key(k) for k in old_keys.split(",") if k.strip()]
    if configured:
        return Keyring(decode_key(configured), others)
    path = data_dir / KEY_FILE_NAME
    if not path.exists():
        # Written aside, then linked into place: processes starting together agree on one key.
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = data_dir / f".{KEY_FILE_NAME}.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return Keyring(decode_key(path.read_text()), others)
