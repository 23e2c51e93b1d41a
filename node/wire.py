"""The peer-to-peer wire: authenticated requests and replies between member nodes.

Theory of operation
-------------------
Every P2P request is an HTTP POST whose body is a JSON object (the payload
only). What authenticates it travels in headers, so a receiver can refuse a
request before it reads one byte of the body:

  x-comity-from         the sender's node key (64 lowercase hex)
  x-comity-to           the receiver's node key, as the sender expects it
  x-comity-ts           the sender's clock, milliseconds since the epoch (decimal)
  x-comity-nonce        16 random bytes (32 lowercase hex), fresh for each request
  x-comity-body-sha256  SHA-256 of the body (64 lowercase hex)
  x-comity-signature    Ed25519 by the sender's node key (128 lowercase hex) over
                        ``request_sign_bytes``: canonical JSON of
                        {"domain": "comity-p2p-request-v1", "chain_id", "path",
                         "from", "to", "ts_ms", "nonce", "body_sha256"}

The receiver checks, in this order and before reading the body: the headers'
syntax, ``to`` is its own key, ``from`` is a validator of the next two heights,
``ts_ms`` is within ``MAX_TS_SKEW_MS`` of its clock, the (from, nonce) pair is
not in its ``ReplayCache``, and the signature (which binds its own chain id and
the route's path). Only then does it stream the body, hashing as it reads,
up to its byte limit, and compare the hash with the signed one (a body that
does not arrive intact releases the nonce again). A refusal is a
``WireRefusal`` carrying a fixed reason code (never text a peer chose).

Every reply whose request had well-formed headers is signed by the server's
node key, errors included:

  x-comity-from         the server's node key
  x-comity-signature    Ed25519 over ``reply_sign_bytes``: canonical JSON of
                        {"domain": "comity-p2p-reply-v1", "chain_id", "path",
                         "nonce", "request_from", "request_sha256", "from",
                         "status", "body_sha256"}

binding the reply to the exact request (its nonce, sender and body hash), so
a reply can neither be forged by whoever answers at a peer's URL nor be
replayed as the answer to another request. The client checks the signature
against the node key it expects at that peer (from chain state) and treats
an unsigned or badly signed reply as a transport error.

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

The payloads are encoded and decoded here too (``proposal_item``,
``compact_proposal``, ``carried_records``, ``block_wire``, ``decode_block``,
``sync_blocks``, ``decode_sync_reply``, ``status_reply``): the sender and the
receiver of each path read one definition of its bytes (docs/PROTOCOL.md §13).
Envelopes travel as their leaf (their JCS bytes), embedded without being
encoded again.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from consensus.messages import Proposal, Vote
from ledger import merkle
from ledger.block import BlockHeader, CommitCertificate
from ledger.canonical import canonical_bytes
from ledger.errors import PeerFault, StoreError
from ledger.hashing import is_hex, sha256_hex
from ledger.keys import KeySigner, verify_hex
from ledger.records import Envelope, parse_envelope
from ledger.store import Store
from node.application import Block

REQUEST_DOMAIN = "comity-p2p-request-v1"
REPLY_DOMAIN = "comity-p2p-reply-v1"

FROM_HEADER = "x-comity-from"
TO_HEADER = "x-comity-to"
TS_HEADER = "x-comity-ts"
NONCE_HEADER = "x-comity-nonce"
BODY_HASH_HEADER = "x-comity-body-sha256"
SIGNATURE_HEADER = "x-comity-signature"

NONCE_BYTES = 16
#: A request's clock may differ from ours by this much. The consortium already
#: needs clocks within ``block_time_skew_ms`` (30 s by default) to accept blocks;
#: the window also bounds how long a nonce must be remembered.
MAX_TS_SKEW_MS = 60 * 1000
_TS_DIGITS_MAX = 16

#: Fixed reason codes of a refused request (what ``node.peer_faults`` counts).
REASONS = {
    "wire_bad_headers": "P2P request headers are missing or malformed",
    "wire_wrong_receiver": "P2P request is addressed to another node key",
    "wire_unknown_sender": "P2P sender is not a current validator",
    "wire_stale": "P2P request timestamp is too far from our clock",
    "wire_replay": "P2P request nonce was already used",
    "wire_bad_signature": "P2P request signature does not verify",
    "wire_body_too_large": "P2P request body is over the byte limit",
    "wire_body_mismatch": "P2P request body does not match its signed SHA-256",
    "wire_bad_body": "P2P request body is not a JSON object",
}


class WireRefusal(PeerFault):
    """A P2P request refused by the wire checks; ``reason`` is a key of ``REASONS``."""

    def __init__(self, reason: str) -> None:
        super().__init__(REASONS[reason])
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What a request's headers claim (checked by ``check_request``)."""

    sender: str
    receiver: str
    ts_ms: int
    nonce: str
    body_sha256: str
    signature: str

    def headers(self) -> dict[str, str]:
        return {
            FROM_HEADER: self.sender,
            TO_HEADER: self.receiver,
            TS_HEADER: str(self.ts_ms),
            NONCE_HEADER: self.nonce,
            BODY_HASH_HEADER: self.body_sha256,
            SIGNATURE_HEADER: self.signature,
            "content-type": "application/json",
        }


def request_sign_bytes(
    chain_id: str, path: str, sender: str, receiver: str, ts_ms: int, nonce: str, body_sha256: str
) -> bytes:
    """The bytes a request's signature covers."""
    return canonical_bytes(
        {
            "domain": REQUEST_DOMAIN,
            "chain_id": chain_id,
            "path": path,
            "from": sender,
            "to": receiver,
            "ts_ms": ts_ms,
            "nonce": nonce,
            "body_sha256": body_sha256,
        }
    )


def sign_request(
    key: KeySigner,
    chain_id: str,
    path: str,
    receiver: str,
    payload: dict[str, Any],
    now_ms: int,
    nonce: str | None = None,
) -> tuple[bytes, SignedRequest]:
    """Serialise ``payload`` and sign a request for ``path`` at node key ``receiver``."""
    body = orjson.dumps(payload)
    nonce = nonce if nonce is not None else os.urandom(NONCE_BYTES).hex()
    digest = sha256_hex(body)
    signature = key.sign(
        request_sign_bytes(chain_id, path, key.public_hex, receiver, now_ms, nonce, digest)
    ).hex()
    return body, SignedRequest(key.public_hex, receiver, now_ms, nonce, digest, signature)


def parse_request_headers(headers: Mapping[str, str]) -> SignedRequest:
    """The authentication headers of a request, syntax-checked, or WireRefusal."""
    sender, receiver = headers.get(FROM_HEADER), headers.get(TO_HEADER)
    ts, nonce = headers.get(TS_HEADER), headers.get(NONCE_HEADER)
    digest, signature = headers.get(BODY_HASH_HEADER), headers.get(SIGNATURE_HEADER)
    if not (
        is_hex(sender, 32)
        and is_hex(receiver, 32)
        and is_hex(nonce, NONCE_BYTES)
        and is_hex(digest, 32)
        and is_hex(signature, 64)
        and isinstance(ts, str)
        and 0 < len(ts) <= _TS_DIGITS_MAX
        and ts.isascii()
        and ts.isdigit()
    ):
        raise WireRefusal("wire_bad_headers")
    assert sender and receiver and nonce and digest and signature  # for the type checker
    return SignedRequest(sender, receiver, int(ts), nonce, digest, signature)


def check_request(
    request: SignedRequest,
    *,
    chain_id: str,
    path: str,
    own_key: str,
    allowed: Collection[str],
    now_ms: int,
    replay: ReplayCache,
) -> None:
    """Authenticate a request from its headers alone (cheapest checks first); on
    success its nonce is remembered, so the same request is refused next time."""
    if request.receiver != own_key:
        raise WireRefusal("wire_wrong_receiver")
    if request.sender not in allowed:
        raise WireRefusal("wire_unknown_sender")
    if abs(request.ts_ms - now_ms) > MAX_TS_SKEW_MS:
        raise WireRefusal("wire_stale")
    if replay.is_replay(request.sender, request.nonce, request.ts_ms):
        raise WireRefusal("wire_replay")
    signed = request_sign_bytes(
        chain_id,
        path,
        request.sender,
        request.receiver,
        request.ts_ms,
        request.nonce,
        request.body_sha256,
    )
    if not verify_hex(request.sender, signed, request.signature):
        raise WireRefusal("wire_bad_signature")
    replay.remember(request.sender, request.nonce, request.ts_ms, now_ms)


def check_body(request: SignedRequest, body_sha256: str) -> None:
    """The body read is the one the sender signed."""
    if body_sha256 != request.body_sha256:
        raise WireRefusal("wire_body_mismatch")


def open_payload(body: bytes) -> dict[str, Any]:
    """An authenticated body's JSON object (the payload)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise WireRefusal("wire_bad_body") from exc
    if not isinstance(payload, dict):
        raise WireRefusal("wire_bad_body")
    return payload


# --- replies ------------------------------------------------------------------------------


def reply_sign_bytes(
    chain_id: str, path: str, request: SignedRequest, server: str, status: int, body_sha256: str
) -> bytes:
    """The bytes a reply's signature covers: the reply, bound to its exact request."""
    return canonical_bytes(
        {
            "domain": REPLY_DOMAIN,
            "chain_id": chain_id,
            "path": path,
            "nonce": request.nonce,
            "request_from": request.sender,
            "request_sha256": request.body_sha256,
            "from": server,
            "status": status,
            "body_sha256": body_sha256,
        }
    )


def sign_reply(
    key: KeySigner, chain_id: str, path: str, request: SignedRequest, status: int, body: bytes
) -> dict[str, str]:
    """The headers that authenticate a reply (``body`` with HTTP ``status``)."""
    signed = reply_sign_bytes(chain_id, path, request, key.public_hex, status, sha256_hex(body))
    return {FROM_HEADER: key.public_hex, SIGNATURE_HEADER: key.sign(signed).hex()}


def reply_is_authentic(
    server: str,
    chain_id: str,
    path: str,
    request: SignedRequest,
    status: int,
    body: bytes,
    headers: Mapping[str, str],
) -> bool:
    """True if the reply was signed by node key ``server`` for ``request``."""
    signature = headers.get(SIGNATURE_HEADER)
    if headers.get(FROM_HEADER) != server or not is_hex(signature, 64):
        return False
    assert signature is not None
    signed = reply_sign_bytes(chain_id, path, request, server, status, sha256_hex(body))
    return verify_hex(server, signed, signature)


# --- replay cache -------------------------------------------------------------------------


@dataclass(slots=True)
class _Seen:
    nonces: OrderedDict[str, int] = field(default_factory=OrderedDict)  # nonce -> ts_ms
    #: Requests at or below this timestamp are refused: nonces up to it were forgotten.
    floor_ms: int = -1

    def forget_oldest(self) -> None:
        _, ts_ms = self.nonces.popitem(last=False)
        self.floor_ms = max(self.floor_ms, ts_ms)


class ReplayCache:
    """The nonces of authenticated requests still inside the timestamp window.

    Each sender has its own arrival-ordered table with a hard cap, so a busy
    or hostile peer forgets only its own nonces, never another's. A forgotten
    nonce never becomes usable again: forgetting one raises the sender's floor,
    and a request at or below the floor is refused as a replay. Nonces whose
    timestamp has left the window are dropped as new ones arrive (and raise the
    floor too, so even a clock stepping back cannot revive them). Only senders
    whose signature verified get a table; past ``senders_max`` of them the
    least recently heard one is dropped, and past ``total_max`` nonces the
    largest table gives up its oldest.
    """

    def __init__(
        self,
        window_ms: int = MAX_TS_SKEW_MS,
        per_sender_max: int = 65_536,
        total_max: int = 262_144,
        senders_max: int = 256,
    ) -> None:
        self.window_ms = window_ms
        self.per_sender_max = per_sender_max
        self.total_max = total_max
        self.senders_max = senders_max
        self._by_sender: OrderedDict[str, _Seen] = OrderedDict()
        self._total = 0

    def __len__(self) -> int:
        return self._total

    def is_replay(self, sender: str, nonce: str, ts_ms: int) -> bool:
        seen = self._by_sender.get(sender)
        return seen is not None and (ts_ms <= seen.floor_ms or nonce in seen.nonces)

    def forget(self, sender: str, nonce: str) -> None:
        """Release a nonce whose signed body never arrived intact (too large, altered
        or cut off on the way): the request did nothing, and its sender may retry it."""
        seen = self._by_sender.get(sender)
        if seen is not None and seen.nonces.pop(nonce, None) is not None:
            self._total -= 1

    def remember(self, sender: str, nonce: str, ts_ms: int, now_ms: int) -> None:
        seen = self._by_sender.get(sender)
        if seen is None:
            seen = self._by_sender[sender] = _Seen()
        self._by_sender.move_to_end(sender)
        before = len(seen.nonces)
        while seen.nonces and next(iter(seen.nonces.values())) < now_ms - self.window_ms:
            seen.forget_oldest()
        seen.nonces[nonce] = ts_ms
        while len(seen.nonces) > self.per_sender_max:
            seen.forget_oldest()
        self._total += len(seen.nonces) - before
        while len(self._by_sender) > self.senders_max:
            _, dropped = self._by_sender.popitem(last=False)
            self._total -= len(dropped.nonces)
        while self._total > self.total_max:
            max(self._by_sender.values(), key=lambda s: len(s.nonces)).forget_oldest()
            self._total -= 1


# --- payloads -----------------------------------------------------------------------------

#: A proposed block up to this size travels with all its records (a peer parses
#: only those it lacks); a larger one with just the records that may be missing.
CARRY_ALL_BYTES_MAX = 256 * 1024
#: A block-sync reply holds whole blocks up to about this size (at least one block).
#: Small enough that the receiver's pipeline (one reply verified while the one
#: before is applied) keeps little in memory, large enough to amortise a request.
SYNC_REPLY_BYTES_MAX = 4 * 1024 * 1024

#: A consensus message item and its estimated size on the wire.
Item = tuple[dict[str, Any], int]


def proposal_item(
    msg: Proposal | Vote, block: Block | None, spreading: Callable[[str], bool]
) -> Item:
    """A consensus message as a batch item; a proposal of a block we hold is compact.

    A compact block is the header and the record ids. Peers hold most records
    already (gossip) and rebuild the block from their mempool. Records that may
    not have reached them go along in full: all of a small block's (a gossip
    batch from a third node may still be on its way), and of a large one the
    records ``spreading`` names (our clients' records some peer has not
    acknowledged). A peer that still misses some fetches the whole block."""
    item: dict[str, Any] = {"msg": msg.to_json()}
    size = 400
    if isinstance(msg, Proposal) and block is not None:
        item["header"] = block.header.to_json()
        item["ids"] = [e.id for e in block.envelopes]
        # Each record's envelope by its leaf hash: one record id may name two
        # envelopes (finding C1), and a peer must rebuild this very body.
        item["leaves"] = [merkle.leaf_hash(e.leaf).hex() for e in block.envelopes]
        size += 140 * len(block.envelopes)
        every = sum(len(e.leaf) for e in block.envelopes) <= CARRY_ALL_BYTES_MAX
        carried = {e.id: e.leaf for e in block.envelopes if every or spreading(e.id)}
        if carried:
            item["records"] = {rid: orjson.Fragment(leaf) for rid, leaf in carried.items()}
            size += sum(len(leaf) + 70 for leaf in carried.values())
    return item, size


def block_wire(block: Block) -> dict[str, Any]:
    """``Block.to_json`` for orjson, each envelope embedded as its leaf (its JCS
    bytes) instead of being encoded again."""
    return {
        "header": block.header.to_json(),
        "envelopes": [orjson.Fragment(envelope.leaf) for envelope in block.envelopes],
    }


def decode_block(obj: Any, *, max_record_bytes: int, max_records: int) -> Block:
    """A whole block as a peer sent it (``block_wire``), parsed; raises ClientError."""
    return Block.from_json(obj, max_record_bytes=max_record_bytes, max_records=max_records)


@dataclass(frozen=True, slots=True)
class CompactProposal:
    """A compact proposal's body as named: the header, and each record's id and
    leaf hash (``named``: only when every id and leaf is a string)."""

    header: BlockHeader
    ids: list[Any]
    named: dict[str, str]


def compact_proposal(item: Mapping[str, Any], *, max_records: int) -> CompactProposal:
    """Decode the header, ids and leaves of a compact proposal; raises PeerFault."""
    header = BlockHeader.from_json(item["header"])
    ids, leaves = item.get("ids"), item.get("leaves")
    if not isinstance(ids, list) or len(ids) != header.record_count or len(ids) > max_records:
        raise PeerFault("compact proposal: ids do not match the header's record_count")
    if not isinstance(leaves, list) or len(leaves) != len(ids):
        raise PeerFault("compact proposal: leaves must name each record's leaf hash")
    named = (
        dict(zip(ids, leaves, strict=True)) if all(isinstance(x, str) for x in ids + leaves) else {}
    )
    return CompactProposal(header, ids, named)


def carried_records(
    raw: Any, named: dict[str, str], held: Callable[[str, str | None], bool], max_record_bytes: int
) -> dict[str, Envelope]:
    """The records a compact proposal carries in full (``{id: envelope}``) that are
    not ``held`` already, parsed; their signatures are checked with the block's."""
    if raw is None:
        return {}
    if not isinstance(raw, dict) or len(raw) > len(named):
        raise PeerFault("compact proposal: records must map at most as many ids as the block holds")
    out: dict[str, Envelope] = {}
    for record_id, obj in raw.items():
        if held(record_id, named.get(record_id)):
            continue
        envelope = parse_envelope(obj, max_record_bytes=max_record_bytes)
        if envelope.id != record_id:
            raise PeerFault(
                f"compact proposal: a record carried as {record_id[:16]}… has "
                f"id {envelope.id[:16]}…"
            )
        out[record_id] = envelope
    return out


def status_reply(store: Store, height: int, state: str, asked_for: object) -> dict[str, Any]:
    """A status reply: our committed height, and when the asker is behind, the header
    and certificate of its next height, which prove that we hold that height."""
    reply: dict[str, Any] = {"height": height, "state": state}
    if type(asked_for) is int and 0 <= asked_for < height:
        header, certificate = store.get_header(asked_for + 1), store.get_certificate(asked_for + 1)
        if header is not None and certificate is not None:
            reply["next"] = {"header": header.to_json(), "commit": certificate.to_json()}
    return reply


def sync_blocks(store: Store, height: int, start: int, limit: int) -> list[dict[str, Any]]:
    """Committed blocks from ``start`` (at most ``limit``, and about
    ``SYNC_REPLY_BYTES_MAX`` bytes) as block sync sends them; ``height`` is the
    node's committed height. Envelopes go as the stored leaf bytes, without
    being parsed and encoded again: the receiver checks everything anyway."""
    out: list[dict[str, Any]] = []
    size = 0
    for h in range(start, min(height, start + limit - 1) + 1):
        header, certificate = store.get_header(h), store.get_certificate(h)
        if header is None or certificate is None:
            break
        leaves = [store.get_envelope_bytes(rid) for rid in store.get_block_record_ids(h)]
        if any(leaf is None for leaf in leaves):
            raise StoreError(f"block {h} lists a record whose envelope is missing")
        size += sum(len(leaf) for leaf in leaves if leaf is not None) + 2048
        if out and size > SYNC_REPLY_BYTES_MAX:
            break
        out.append(
            {
                "block": {
                    "header": header.to_json(),
                    "envelopes": [orjson.Fragment(leaf) for leaf in leaves if leaf is not None],
                },
                "commit": certificate.to_json(),
            }
        )
    return out


def decode_sync_reply(
    reply: Mapping[str, Any], *, max_record_bytes: int, max_records: int
) -> tuple[tuple[Block, CommitCertificate], ...]:
    """The (block, certificate) pairs of a block-sync reply; raises ClientError,
    KeyError or TypeError on a malformed one."""
    return tuple(
        (
            decode_block(item["block"], max_record_bytes=max_record_bytes, max_records=max_records),
            CommitCertificate.from_json(item["commit"]),
        )
        for item in reply.get("blocks", [])
    )
