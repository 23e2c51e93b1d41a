"""Ed25519 signatures with a caller-chosen nonce, for attack tests.

RFC 8032 §5.1.6 derives the nonce ``r`` from the key and the message, so an
honest signer produces one signature per message. Verification (§5.1.7) never
checks how ``r`` was chosen: any ``r`` gives a valid, canonical signature that
libsodium accepts. A malicious key holder can therefore sign one record many
times, each signature different, which is what finding C1 exploits (two
envelopes of one record id). This module computes such signatures from the
§5.1.6 equations with libsodium's group operations.
"""

from __future__ import annotations

import hashlib
import secrets

from nacl import bindings

from ledger.keys import SigningKey


def _scalar(data: bytes) -> bytes:
    """A 64-byte little-endian integer reduced mod L (the group order)."""
    return bindings.crypto_core_ed25519_scalar_reduce(data)


def sign_with_nonce(key: SigningKey, message: bytes, nonce: bytes | None = None) -> bytes:
    """An Ed25519 signature of ``message`` by ``key`` using nonce ``nonce`` (64 random
    bytes by default) instead of RFC 8032's deterministic one."""
    digest = hashlib.sha512(key.seed()).digest()
    a = bytearray(digest[:32])
    a[0] &= 248
    a[31] &= 127
    a[31] |= 64
    secret = _scalar(bytes(a) + bytes(32))                  # s mod L, clamped as §5.1.5
    r = _scalar(nonce if nonce is not None else secrets.token_bytes(64))
    big_r = bindings.crypto_scalarmult_ed25519_base_noclamp(r)
    k = _scalar(hashlib.sha512(big_r + key.public_key + message).digest())
    s = bindings.crypto_core_ed25519_scalar_add(r, bindings.crypto_core_ed25519_scalar_mul(k, secret))
    return big_r + s
