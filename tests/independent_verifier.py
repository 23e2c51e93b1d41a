"""A verifier of Comity's public formats that imports nothing from Comity.

It uses only the standard library (hashlib, json) and ``cryptography`` for
Ed25519, and re-implements from docs/PROTOCOL.md:

- JCS (RFC 8785) for the ASCII subset only: ``json.dumps(sort_keys=True,
  separators=(",", ":"), ensure_ascii=False)`` equals JCS when every key is
  ASCII (so code-point order equals UTF-16 order), strings hold no control
  characters below U+0020 other than those json escapes as JCS does, and
  every number is an integer (no float formatting). ``jcs`` refuses anything
  outside that subset rather than risk producing different bytes;
- RFC 6962 / RFC 9162 inclusion and consistency verification;
- block hashes, precommit sign-bytes and commit-certificate checks (§7-9).

The point is that a third party can check the chain without trusting the
node's code; ``tests/integration/test_independent_verifier.py`` runs it
against a live in-process cluster.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class VerifyError(Exception):
    """The chain data does not check out."""


# --- canonical JSON, ASCII subset --------------------------------------------------------


def _check_subset(value: Any, path: str = "$") -> None:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int):
        if abs(value) >= 2**53:
            raise VerifyError(f"{path}: integer outside the I-JSON range")
        return
    if isinstance(value, str):
        if not value.isascii() or any(ord(c) < 0x20 or c == "\x7f" for c in value):
            raise VerifyError(f"{path}: string outside the ASCII-printable subset")
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_subset(item, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            _check_subset(key, f"{path} key")
            _check_subset(item, f"{path}.{key}")
        return
    raise VerifyError(f"{path}: {type(value).__name__} is not in the JCS subset")


def jcs(value: Any) -> bytes:
    """RFC 8785 bytes of ``value``, for the ASCII-printable subset only (see module doc)."""
    _check_subset(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- RFC 6962 ----------------------------------------------------------------------------


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(leaf_h: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2."""
    if not 0 <= index < size or any(len(h) != 32 for h in (leaf_h, root, *proof)):
        return False
    fn, sn, r = index, size - 1, leaf_h
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2."""
    if not 0 < size1 <= size2:
        return False
    if size1 == size2:
        return not proof and root1 == root2
    if not proof or any(len(h) != 32 for h in (root1, root2, *proof)):
        return False
    if size1 & (size1 - 1) == 0:
        proof = [root1, *proof]
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == root1 and sr == root2


# --- signatures, blocks, certificates ------------------------------------------------------


def ed25519_ok(pubkey_hex: str, message: bytes, signature_hex: str) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(pubkey_hex)).verify(
            bytes.fromhex(signature_hex), message
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_envelope(envelope: dict[str, Any]) -> str:
    """Check the envelope's signature over JCS(record); return the record id."""
    record_bytes = jcs(envelope["record"])
    if not ed25519_ok(envelope["signer"], record_bytes, envelope["signature"]):
        raise VerifyError("envelope signature does not verify")
    return sha256_hex(record_bytes)


def quorum(n: int) -> int:
    return 2 * n // 3 + 1


def verify_block(
    header: dict[str, Any], commit: dict[str, Any], chain_id: str, validators: list[dict[str, str]]
) -> str:
    """Check header hash, validators_hash and the commit certificate; return the block hash."""
    block_hash = sha256_hex(jcs(header))
    rows = sorted(
        ({"pubkey": v["pubkey"], "state": v["state"]} for v in validators), key=lambda v: v["state"]
    )
    if sha256_hex(jcs(rows)) != header["validators_hash"]:
        raise VerifyError("validator set does not match header.validators_hash")
    if commit["height"] != header["height"] or commit["block_hash"] != block_hash:
        raise VerifyError("certificate is for another block")
    sign_bytes = jcs(
        {
            "type": "precommit",
            "chain_id": chain_id,
            "height": header["height"],
            "round": commit["round"],
            "block_hash": block_hash,
        }
    )
    members = {v["pubkey"] for v in validators}
    seen: set[str] = set()
    for entry in commit["signatures"]:
        who = entry["validator"]
        if who not in members or who in seen:
            raise VerifyError(f"certificate signer {who} is a stranger or repeated")
        if not ed25519_ok(who, sign_bytes, entry["signature"]):
            raise VerifyError(f"bad precommit signature by {who}")
        seen.add(who)
    if len(seen) < quorum(len(members)):
        raise VerifyError(f"{len(seen)} signatures, need {quorum(len(members))}")
    return block_hash
