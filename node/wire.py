"""The peer-to-peer wire: signed JSON requests between member nodes.

Every P2P request is an HTTP POST whose body is a JSON object carrying
``chain_id``, ``from`` (the sender's node key, hex) and ``ts_ms`` (sender's
clock), signed as raw bytes by the sender's Ed25519 node key; the signature
travels in the ``x-comity-signature`` header. The receiver refuses the request
unless the body is within its size limit, the signature verifies, the sender
is a validator of the current (or next) height, the chain id is its own, and
``ts_ms`` is within ``MAX_TS_SKEW_MS`` of its clock (bounding replays; replayed
consensus messages and records are idempotent anyway).

Paths (all POST, all signed):

  /p2p/v1/batch    {"items": [...]}: consensus messages and gossiped
                   envelopes. A proposal is compact: {"msg", "header", "ids"}
                   (the block's header and record ids), and optionally
                   "records": {id: envelope} for records the receiver may lack
                   (all of a block up to 256 KiB; else the proposer's clients'
                   records some peer has not acknowledged). The receiver
                   rebuilds the block from its mempool and those records (an id
                   that does not match its envelope is a peer fault), or
                   fetches it whole.
  /p2p/v1/block    {"hash": H}: a proposed or committed block, in full.
  /p2p/v1/blocks   {"from_height": H, "limit": N}: committed blocks with their
                   certificates, for block sync.
  /p2p/v1/status   {}: the peer's committed height.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import orjson

from ledger.errors import PeerFault
from ledger.hashing import is_hex
from ledger.keys import SigningKey, verify_hex

SIGNATURE_HEADER = "x-comity-signature"
MAX_TS_SKEW_MS = 5 * 60 * 1000


def sign_request(key: SigningKey, chain_id: str, payload: dict[str, Any],
                 now_ms: int) -> tuple[bytes, dict[str, str]]:
    """Serialise ``payload`` with the envelope fields and sign the bytes."""
    body = orjson.dumps({**payload, "chain_id": chain_id, "from": key.public_hex,
                         "ts_ms": now_ms})
    headers = {SIGNATURE_HEADER: key.sign(body).hex(), "content-type": "application/json"}
    return body, headers


def open_request(body: bytes, signature: str | None, *, chain_id: str,
                 allowed: Collection[str], now_ms: int) -> tuple[str, dict[str, Any]]:
    """Authenticate a signed P2P body; return (sender key, payload) or raise PeerFault."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PeerFault(f"P2P body is not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise PeerFault("P2P body must be a JSON object")
    sender = obj.get("from")
    if not isinstance(sender, str) or not is_hex(sender, 32):
        raise PeerFault("P2P body has no valid 'from' node key")
    if sender not in allowed:
        raise PeerFault(f"P2P sender {sender[:16]}… is not a current validator")
    if signature is None or not verify_hex(sender, body, signature):
        raise PeerFault("P2P body signature does not verify")
    if obj.get("chain_id") != chain_id:
        raise PeerFault(f"P2P body is for chain {obj.get('chain_id')!r}, not {chain_id!r}")
    ts_ms = obj.get("ts_ms")
    if type(ts_ms) is not int or abs(ts_ms - now_ms) > MAX_TS_SKEW_MS:
        raise PeerFault("P2P body timestamp is missing or too far from our clock")
    return sender, obj
