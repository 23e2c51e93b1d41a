"""Sealed details: act details encrypted to some member states only.

Theory of operation
-------------------
docs/DOMAIN.md "Restricted details": details meant for some states only are encrypted to
those states, and the chain holds only ciphertext. A record's optional
``sealed`` member is (all binary values lowercase hex)::

    {"recipients": {"TH": SealedBox(K, pk_TH), "CN": SealedBox(K, pk_CN), ...},
     "nonce": N, "ciphertext": SecretBox(P, K, N), "plaintext_sha256": SHA-256(P)}

* ``K`` is a fresh random 32-byte key; ``N`` a fresh random 24-byte nonce.
* ``P`` (the plaintext) is ``JCS({"details": D, "salt": S})``: ``D`` is the
  details object, ``S`` 32 hex characters of fresh randomness, so that
  ``plaintext_sha256`` cannot confirm a guessed ``D`` (details are often
  short and guessable).
* ``SecretBox`` is NaCl ``crypto_secretbox`` (XSalsa20-Poly1305); the hex
  ``ciphertext`` is its output WITHOUT the nonce: 16-byte Poly1305 tag then
  ``len(P)`` bytes.
* ``SealedBox`` is NaCl ``crypto_box_seal`` (X25519 + XSalsa20-Poly1305 with
  an ephemeral key): 32-byte ephemeral public key, 16-byte tag, then the 32
  bytes of ``K``: 80 bytes, 160 hex. ``pk_XX`` is the member's X25519
  ``enc_pubkey`` from genesis.

A recipient opens its entry with its X25519 private key, decrypts ``P`` and
checks ``SHA-256(P) == plaintext_sha256``. That check matters beyond the
Poly1305 tag: XSalsa20-Poly1305 is not key-committing, so a dishonest sender
could craft one ciphertext that opens to different plaintexts under the keys
it gave different recipients; the signed hash pins the one plaintext all
recipients must see.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import nacl.exceptions
import nacl.public
import nacl.secret
import nacl.utils
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ledger.canonical import canonical_bytes, parse_json
from ledger.errors import ClientError, EncodingError, Forbidden, VerificationError
from ledger.hashing import sha256_hex

KEY_BYTES = nacl.secret.SecretBox.KEY_SIZE  # 32
NONCE_BYTES = nacl.secret.SecretBox.NONCE_SIZE  # 24
SALT_BYTES = 16
RECIPIENT_BYTES = 32 + 16 + KEY_BYTES  # crypto_box_seal of K: 80
RECIPIENTS_MAX = 50


class NotARecipient(Forbidden):
    default_code = "not_a_recipient"


class SealedIntegrityError(VerificationError):
    """The sealed object does not open, or opens to a plaintext that does not match."""


def x25519_private_bytes(key: X25519PrivateKey) -> bytes:
    """Raw 32 bytes of a ``cryptography`` X25519 key, as NaCl takes them."""
    return key.private_bytes_raw()


def seal(details: Mapping[str, Any], recipients: Mapping[str, bytes]) -> dict[str, Any]:
    """Encrypt ``details`` to each state's X25519 public key (raw 32 bytes)."""
    if not recipients or len(recipients) > RECIPIENTS_MAX:
        raise ClientError(
            f"sealed details need 1-{RECIPIENTS_MAX} recipient states",
            field="recipients",
            code="bad_recipients",
        )
    plaintext = canonical_bytes(
        {"details": dict(details), "salt": nacl.utils.random(SALT_BYTES).hex()}
    )
    key = nacl.utils.random(KEY_BYTES)
    nonce = nacl.utils.random(NONCE_BYTES)
    box = nacl.secret.SecretBox(key)
    ciphertext = box.encrypt(plaintext, nonce).ciphertext
    sealed_keys = {
        state: nacl.public.SealedBox(nacl.public.PublicKey(pub)).encrypt(key).hex()
        for state, pub in sorted(recipients.items())
    }
    return {
        "recipients": sealed_keys,
        "nonce": nonce.hex(),
        "ciphertext": ciphertext.hex(),
        "plaintext_sha256": sha256_hex(plaintext),
    }


def open_sealed(sealed: Mapping[str, Any], state: str, private_key: bytes) -> dict[str, Any]:
    """The details, for recipient ``state`` holding ``private_key`` (raw X25519).

    ``NotARecipient`` if ``state`` has no entry; ``SealedIntegrityError`` if
    anything fails to decrypt or the plaintext hash differs.
    """
    entry = (sealed.get("recipients") or {}).get(state)
    if entry is None:
        raise NotARecipient(
            f"{state} is not a recipient of these sealed details", field="sealed.recipients"
        )
    try:
        box = nacl.public.SealedBox(nacl.public.PrivateKey(private_key))
        key = box.decrypt(bytes.fromhex(entry))
        plaintext = nacl.secret.SecretBox(key).decrypt(
            bytes.fromhex(sealed["ciphertext"]), bytes.fromhex(sealed["nonce"])
        )
    except (nacl.exceptions.CryptoError, ValueError, KeyError, TypeError) as exc:
        raise SealedIntegrityError(
            f"sealed details do not decrypt for {state}: {type(exc).__name__}"
        ) from exc
    calculated = sha256_hex(plaintext)
    if calculated != sealed.get("plaintext_sha256"):
        raise SealedIntegrityError(
            f"plaintext hash mismatch: expected "
            f"{sealed.get('plaintext_sha256')}, calculated {calculated}"
        )
    try:
        wrapper = parse_json(plaintext)
    except EncodingError as exc:
        raise SealedIntegrityError(f"sealed plaintext is not canonical JSON: {exc}") from exc
    if not isinstance(wrapper, dict) or not isinstance(wrapper.get("details"), dict):
        raise SealedIntegrityError('sealed plaintext is not {"details": {...}, "salt": ...}')
    details: dict[str, Any] = wrapper["details"]
    return details
