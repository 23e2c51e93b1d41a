"""Ed25519 keys: signing, verification, and their on-disk forms.

Private keys on disk are PKCS#8 PEM, the form ``openssl genpkey -algorithm
ed25519`` writes, so operators can inspect and use them with standard tools;
a file holding 64 lowercase hex characters (the 32-byte seed) is accepted too.
Private key files are created with mode 0600 and never overwritten silently.
Public keys travel as 64 lowercase hex characters (the raw 32-byte key); a
public key may also be read from an SPKI PEM file.

Signing and verification use PyNaCl (libsodium); PEM parsing and writing use
the ``cryptography`` package rather than hand-written ASN.1.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import nacl.exceptions
import nacl.signing
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.errors import EncodingError
from ledger.hashing import is_hex, parse_hex

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64


class KeySigner(Protocol):
    """What signs with an Ed25519 key: a ``SigningKey`` in memory, or a key that never
    leaves a PKCS#11 token (``node.hsm.Pkcs11Signer``). Both give RFC 8032 signatures,
    byte for byte the same for the same key."""

    @property
    def public_key(self) -> bytes: ...

    @property
    def public_hex(self) -> str: ...

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        ...


class SigningKey:
    """An Ed25519 private key. ``repr`` never shows the secret."""

    __slots__ = ("_key", "public_hex", "public_key")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        self._key = nacl.signing.SigningKey(seed)
        self.public_key: bytes = bytes(self._key.verify_key)
        self.public_hex: str = self.public_key.hex()

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(bytes(nacl.signing.SigningKey.generate()))

    def sign(self, message: bytes) -> bytes:
        return bytes(self._key.sign(message).signature)

    def seed(self) -> bytes:
        return bytes(self._key)

    def __repr__(self) -> str:
        return f"SigningKey(public={self.public_hex})"

    def to_pem(self) -> bytes:
        private = Ed25519PrivateKey.from_private_bytes(self.seed())
        return private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def public_pem(self) -> bytes:
        return public_key_pem(self.public_key)


def public_key_pem(public_key: bytes) -> bytes:
    """SPKI PEM of a raw Ed25519 public key (what ``openssl pkey -pubout`` prints)."""
    return Ed25519PublicKey.from_public_bytes(public_key).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def signing_key_from_text(text: bytes) -> SigningKey:
    """Parse a PKCS#8 PEM Ed25519 private key, or 64 hex characters of seed."""
    stripped = text.strip()
    if stripped.startswith(b"-----BEGIN"):
        try:
            private = serialization.load_pem_private_key(stripped, password=None)
        except (ValueError, TypeError) as exc:
            raise EncodingError(
                f"not a readable unencrypted PEM private key: {exc}", field="key", code="bad_key"
            ) from exc
        if not isinstance(private, Ed25519PrivateKey):
            raise EncodingError("PEM private key is not Ed25519", field="key", code="bad_key")
        return SigningKey(private.private_bytes_raw())
    hex_text = stripped.decode("ascii", errors="replace")
    return SigningKey(parse_hex(hex_text, 32, "key"))


def load_signing_key(path: str | Path) -> SigningKey:
    return signing_key_from_text(Path(path).read_bytes())


def save_signing_key(path: str | Path, key: SigningKey, *, overwrite: bool = False) -> None:
    """Write ``key`` as PKCS#8 PEM with mode 0600 (created atomically, never world-readable)."""
    target = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    fd = os.open(target, flags, 0o600)
    try:
        # chmod before writing: with overwrite=True an existing file keeps its
        # old (perhaps world-readable) mode until changed.
        os.fchmod(fd, 0o600)
        os.write(fd, key.to_pem())
        os.fsync(fd)
    finally:
        os.close(fd)


def public_key_from_text(text: str | bytes) -> str:
    """Accept 64 hex characters or an SPKI PEM public key; return lowercase hex."""
    raw = text.encode() if isinstance(text, str) else text
    stripped = raw.strip()
    if stripped.startswith(b"-----BEGIN"):
        try:
            public = serialization.load_pem_public_key(stripped)
        except (ValueError, TypeError) as exc:
            raise EncodingError(
                f"not a readable PEM public key: {exc}", field="pubkey", code="bad_key"
            ) from exc
        if not isinstance(public, Ed25519PublicKey):
            raise EncodingError("PEM public key is not Ed25519", field="pubkey", code="bad_key")
        return public.public_bytes_raw().hex()
    hex_text = stripped.decode("ascii", errors="replace").lower()
    return parse_hex(hex_text, 32, "pubkey").hex()


@lru_cache(maxsize=4096)
def _verify_key(public_key: bytes) -> nacl.signing.VerifyKey:
    return nacl.signing.VerifyKey(public_key)


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True if ``signature`` is a valid Ed25519 signature of ``message`` by ``public_key``."""
    if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        _verify_key(public_key).verify(message, signature)
    except (
        nacl.exceptions.BadSignatureError,
        nacl.exceptions.ValueError,
        nacl.exceptions.TypeError,
    ):
        return False
    return True


def verify_hex(public_hex: str, message: bytes, signature_hex: str) -> bool:
    if not (is_hex(public_hex, PUBLIC_KEY_BYTES) and is_hex(signature_hex, SIGNATURE_BYTES)):
        return False
    return verify(bytes.fromhex(public_hex), message, bytes.fromhex(signature_hex))
