"""Consensus messages: PROPOSAL, PREVOTE and PRECOMMIT, and equivocation evidence.

These are the three messages of Algorithm 1 in Buchman, Kwon, Milosevic,
"The latest gossip on BFT consensus" (arXiv:1807.04938). A value is named by
its block hash (``id(v)``, 64 lowercase hex); the engine never sees bodies.

The sign-bytes are the public formats of ``ledger.block``
(``vote_sign_bytes`` / ``proposal_sign_bytes``, JCS objects that include the
chain id), so a message signed for one chain never verifies on another and a
precommit is exactly a ``CommitSignature`` of a certificate.

``from_json`` is the strict reader for peer input: exact field set, integers
that are not booleans, lowercase hex of the right length, ``-1 <= vr < r``.
It raises ``EncodingError`` (a peer's fault, never ours).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from consensus.signing import Verifier
from ledger.block import proposal_sign_bytes, vote_sign_bytes
from ledger.errors import EncodingError
from ledger.hashing import is_hex

PREVOTE: Final = "prevote"
PRECOMMIT: Final = "precommit"
VOTE_TYPES: Final = (PREVOTE, PRECOMMIT)
HASH_BYTES: Final = 32
KEY_BYTES: Final = 32
# Ed25519 signatures are 64 bytes; the simulator's hash signatures are 32.
# Accept both lengths here and let the Verifier decide what is genuine.
SIGNATURE_HEX_LENGTHS: Final = (64, 128)
MAX_HEIGHT: Final = 2**53 - 1
MAX_ROUND: Final = 2**31 - 1


@dataclass(frozen=True, slots=True)
class Proposal:
    """PROPOSAL(h, r, v, vr) signed by proposer(h, r); ``valid_round`` is -1 or < round."""

    height: int
    round: int
    block_hash: str
    valid_round: int
    proposer: str  # 64 hex public key
    signature: str  # hex

    @property
    def signer(self) -> str:
        return self.proposer

    def sign_bytes(self, chain_id: str) -> bytes:
        return _proposal_bytes(chain_id, self.height, self.round, self.block_hash, self.valid_round)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "proposal",
            "height": self.height,
            "round": self.round,
            "block_hash": self.block_hash,
            "valid_round": self.valid_round,
            "proposer": self.proposer,
            "signature": self.signature,
        }

    @classmethod
    def from_json(cls, obj: Any) -> Proposal:
        fields = ("kind", "height", "round", "block_hash", "valid_round", "proposer", "signature")
        _check_fields(obj, fields, "proposal")
        if obj["kind"] != "proposal":
            raise EncodingError("proposal.kind must be 'proposal'", field="proposal.kind")
        height, round_ = _height_round(obj, "proposal")
        valid_round = _int(obj, "valid_round", "proposal", -1, round_ - 1)
        _hex(obj, "block_hash", "proposal", HASH_BYTES)
        _hex(obj, "proposer", "proposal", KEY_BYTES)
        _signature(obj, "proposal")
        return cls(
            height, round_, obj["block_hash"], valid_round, obj["proposer"], obj["signature"]
        )


@dataclass(frozen=True, slots=True)
class Vote:
    """PREVOTE or PRECOMMIT (h, r, id(v)); ``block_hash`` None is a nil vote."""

    type: str  # "prevote" | "precommit"
    height: int
    round: int
    block_hash: str | None
    validator: str  # 64 hex public key
    signature: str  # hex

    @property
    def signer(self) -> str:
        return self.validator

    def sign_bytes(self, chain_id: str) -> bytes:
        return _vote_bytes(self.type, chain_id, self.height, self.round, self.block_hash)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "vote",
            "type": self.type,
            "height": self.height,
            "round": self.round,
            "block_hash": self.block_hash,
            "validator": self.validator,
            "signature": self.signature,
        }

    @classmethod
    def from_json(cls, obj: Any) -> Vote:
        fields = ("kind", "type", "height", "round", "block_hash", "validator", "signature")
        _check_fields(obj, fields, "vote")
        if obj["kind"] != "vote":
            raise EncodingError("vote.kind must be 'vote'", field="vote.kind")
        if obj["type"] not in VOTE_TYPES:
            raise EncodingError("vote.type must be 'prevote' or 'precommit'", field="vote.type")
        height, round_ = _height_round(obj, "vote")
        if obj["block_hash"] is not None:
            _hex(obj, "block_hash", "vote", HASH_BYTES)
        _hex(obj, "validator", "vote", KEY_BYTES)
        _signature(obj, "vote")
        return cls(
            obj["type"], height, round_, obj["block_hash"], obj["validator"], obj["signature"]
        )


Message = Proposal | Vote

# Every peer's copy of a message needs the same sign-bytes; encoding them once
# per distinct message is pure and bounded, so memoise.
_vote_bytes = lru_cache(maxsize=8192)(vote_sign_bytes)
_proposal_bytes = lru_cache(maxsize=1024)(proposal_sign_bytes)


@dataclass(frozen=True, slots=True)
class Equivocation:
    """Two different messages signed by one key for the same (h, r, kind).

    Self-contained: anyone holding the chain id and the validator set can
    check both signatures (``is_equivocation``). For votes, ``first`` is the
    one the engine counted.
    """

    first: Proposal | Vote
    second: Proposal | Vote

    def to_json(self) -> dict[str, Any]:
        return {"first": self.first.to_json(), "second": self.second.to_json()}


def message_from_json(obj: Any) -> Proposal | Vote:
    """Parse a wire message by its ``kind`` (dispatch, not if/elif over types)."""
    if not isinstance(obj, dict):
        raise EncodingError("a consensus message must be an object", field="message")
    reader = _READERS.get(str(obj.get("kind")))
    if reader is None:
        raise EncodingError("message.kind must be 'proposal' or 'vote'", field="message.kind")
    return reader(obj)


_READERS: dict[str, Callable[[Any], Proposal | Vote]] = {
    "proposal": Proposal.from_json,
    "vote": Vote.from_json,
}


def slot(msg: Proposal | Vote) -> tuple[int, int, str]:
    """The (height, round, kind) at which one key may sign only one message."""
    if isinstance(msg, Proposal):
        return (msg.height, msg.round, "proposal")
    return (msg.height, msg.round, msg.type)


def is_equivocation(ev: Equivocation, chain_id: str, verifier: Verifier) -> bool:
    """True if ``ev`` is two validly signed, different messages of one key in one slot."""
    a, b = ev.first, ev.second
    if type(a) is not type(b) or a.signer != b.signer or slot(a) != slot(b) or a == b:
        return False
    if _content(a) == _content(b):
        return False  # same content, two signatures: not a conflict of votes
    return verifier.verify(a.signer, a.sign_bytes(chain_id), a.signature) and verifier.verify(
        b.signer, b.sign_bytes(chain_id), b.signature
    )


def _content(msg: Proposal | Vote) -> tuple[object, ...]:
    if isinstance(msg, Proposal):
        return (msg.block_hash, msg.valid_round)
    return (msg.block_hash,)


def _check_fields(obj: Any, fields: tuple[str, ...], name: str) -> None:
    if not isinstance(obj, dict):
        raise EncodingError(f"{name} must be an object", field=name)
    if set(obj) != set(fields):
        raise EncodingError(f"{name} fields must be exactly {sorted(fields)}", field=name)


def _int(obj: dict[str, Any], key: str, name: str, low: int, high: int) -> int:
    value = obj[key]
    if type(value) is not int or not low <= value <= high:
        raise EncodingError(
            f"{name}.{key} must be an integer in [{low}, {high}]", field=f"{name}.{key}"
        )
    return value


def _height_round(obj: dict[str, Any], name: str) -> tuple[int, int]:
    return _int(obj, "height", name, 1, MAX_HEIGHT), _int(obj, "round", name, 0, MAX_ROUND)


def _hex(obj: dict[str, Any], key: str, name: str, n_bytes: int) -> None:
    if not is_hex(obj[key], n_bytes):
        raise EncodingError(
            f"{name}.{key} must be {2 * n_bytes} lowercase hex", field=f"{name}.{key}"
        )


def _signature(obj: dict[str, Any], name: str) -> None:
    sig = obj["signature"]
    if not any(is_hex(sig, length // 2) for length in SIGNATURE_HEX_LENGTHS):
        raise EncodingError(
            f"{name}.signature must be 64 or 128 lowercase hex", field=f"{name}.signature"
        )
