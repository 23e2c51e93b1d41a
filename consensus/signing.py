"""Signing seams for the engine: a Signer holds one key, a Verifier checks anyone's.

The engine only ever calls ``Signer.sign`` on sign-bytes it built itself and
``Verifier.verify`` on peer messages, so the production binding (Ed25519 via
``ledger.keys``) and the simulator's fast hash-based scheme are interchangeable.
"""

from __future__ import annotations

from typing import Protocol

from ledger.keys import KeySigner, verify_hex


class Signer(Protocol):
    @property
    def public_hex(self) -> str: ...

    def sign(self, message: bytes) -> str:
        """Signature of ``message`` as lowercase hex."""
        ...


class Verifier(Protocol):
    def verify(self, public_hex: str, message: bytes, signature_hex: str) -> bool: ...


class Ed25519Signer:
    """Signs with an Ed25519 node key (``ledger.keys.KeySigner``: in memory or in a token)."""

    __slots__ = ("_key",)

    def __init__(self, key: KeySigner) -> None:
        self._key = key

    @property
    def public_hex(self) -> str:
        return self._key.public_hex

    def sign(self, message: bytes) -> str:
        return self._key.sign(message).hex()


class Ed25519Verifier:
    """Verifies Ed25519 signatures; malformed keys or signatures verify as False."""

    __slots__ = ()

    def verify(self, public_hex: str, message: bytes, signature_hex: str) -> bool:
        return verify_hex(public_hex, message, signature_hex)
