"""A fast signature scheme for the simulator (NOT secure outside a closed world).

sig = SHA-256(secret || message). Only the owner of a key knows its secret; the
simulator's verifier is a trusted oracle that knows every secret, which is
all a signature scheme must provide inside the simulation: a Byzantine node
holds only its own ``SimSigner`` and so cannot forge an honest validator's
vote. Ed25519 would be ~100x slower per message and would not change what
the simulation checks.
"""

from __future__ import annotations

import hashlib


class SimSigner:
    __slots__ = ("_secret", "public_hex")

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self.public_hex = hashlib.sha256(b"sim-public:" + secret).hexdigest()

    def sign(self, message: bytes) -> str:
        return hashlib.sha256(self._secret + message).hexdigest()


class SimVerifier:
    """Knows every validator's secret (the oracle); unknown keys never verify."""

    __slots__ = ("_secrets",)

    def __init__(self, signers: list[SimSigner]) -> None:
        self._secrets = {s.public_hex: s._secret for s in signers}

    def verify(self, public_hex: str, message: bytes, signature_hex: str) -> bool:
        secret = self._secrets.get(public_hex)
        return secret is not None and hashlib.sha256(secret + message).hexdigest() == signature_hex


def make_signers(seed: int, n: int) -> list[SimSigner]:
    return [SimSigner(hashlib.sha256(f"sim-secret:{seed}:{i}".encode()).digest()) for i in range(n)]
