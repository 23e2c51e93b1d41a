"""Deterministic test data: keys, signed envelopes and valid chains of blocks.

Everything is derived from labels and counters, never from the global random
source, so two processes building the same chain get byte-identical blocks
(the store's crash test relies on this to check what survived a SIGKILL).

* ``key(label)`` - an Ed25519 SigningKey whose seed is SHA-256 of the label;
* ``EnvelopeMaker`` - signs records with the common ``ledger.records`` fields,
  a fresh nonce each time;
* ``ChainBuilder`` - builds successive blocks whose headers carry the right
  ``prev_hash``, ``ledger_size`` and ``ledger_root`` (computed with its own
  ``merkle.MemoryHashStore``, independent of any store under test) and a
  commit certificate really signed by ``VALIDATOR_KEYS``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from ledger import merkle
from ledger.block import (
    BlockHeader,
    CommitCertificate,
    CommitSignature,
    Validator,
    genesis_hash,
    validators_hash,
    vote_sign_bytes,
)
from ledger.canonical import canonical_bytes
from ledger.hashing import sha256, sha256_hex
from ledger.keys import SigningKey
from ledger.records import SCHEMA, Envelope, format_time, parse_envelope

CHAIN_ID = "comity-test"
OCCURRED_AT = "2026-01-01T00:00:00Z"
BLOCK_TIME_START = datetime(2026, 1, 1, tzinfo=UTC)
VALIDATOR_STATES = ("DE", "ES", "FR", "IT")


@lru_cache(maxsize=256)
def key(label: str) -> SigningKey:
    """A deterministic Ed25519 key named by ``label``."""
    return SigningKey(sha256(b"comity-test-key:" + label.encode()))


VALIDATOR_KEYS = {state: key(f"validator-{state}") for state in VALIDATOR_STATES}
VALIDATORS = tuple(Validator(state, k.public_hex) for state, k in VALIDATOR_KEYS.items())
GENESIS: dict[str, Any] = {
    "chain_id": CHAIN_ID,
    "members": [{"state": v.state, "node_key": v.pubkey} for v in VALIDATORS],
}
GENESIS_HASH = genesis_hash(GENESIS)


def evidence_digest(label: str) -> str:
    """A stand-in SHA-256 of an evidence file."""
    return sha256_hex(b"evidence:" + label.encode())


def sign_record(signer: SigningKey, record: dict[str, Any]) -> Envelope:
    signature = signer.sign(canonical_bytes(record)).hex()
    return parse_envelope({"record": record, "signer": signer.public_hex, "signature": signature})


@dataclass
class EnvelopeMaker:
    """Signs records for one chain; nonces count up so every record is new."""

    chain_id: str = CHAIN_ID
    nonce_prefix: str = "n"
    counter: int = 0

    def make(
        self,
        signer: SigningKey,
        *,
        type_: str = "evidence_submitted",
        state: str = "FR",
        agency: str = "police-judiciaire",
        case_ref: str | None = None,
        territorial_states: Sequence[str] | None = None,
        evidence: Sequence[str] = (),
        nonce: str | None = None,
        **extra_fields: Any,
    ) -> Envelope:
        """A signed envelope; ``evidence`` is a list of sha256 hex digests."""
        self.counter += 1
        record: dict[str, Any] = {
            "schema": SCHEMA,
            "type": type_,
            "chain_id": self.chain_id,
            "actor": {"state": state, "agency": agency},
            "nonce": nonce or f"{self.nonce_prefix}{self.counter:08d}",
            "occurred_at": OCCURRED_AT,
        }
        if case_ref is not None:
            record["case_ref"] = case_ref
        if territorial_states is not None:
            record["territorial_states"] = list(territorial_states)
        if evidence:
            record["evidence"] = [{"sha256": digest} for digest in evidence]
        record.update(extra_fields)
        return sign_record(signer, record)


@dataclass(frozen=True, slots=True)
class Block:
    header: BlockHeader
    envelopes: tuple[Envelope, ...]
    certificate: CommitCertificate


def certify(
    header: BlockHeader, *, round_: int = 0, signers: Sequence[str] = VALIDATOR_STATES
) -> CommitCertificate:
    """A commit certificate over ``header`` signed by the named validators."""
    message = vote_sign_bytes("precommit", header.chain_id, header.height, round_, header.hash())
    signatures = tuple(
        CommitSignature(VALIDATOR_KEYS[state].public_hex, VALIDATOR_KEYS[state].sign(message).hex())
        for state in signers
    )
    return CommitCertificate(header.height, round_, header.hash(), signatures)


@dataclass
class ChainBuilder:
    """Builds valid successive blocks; ``build`` previews, ``append`` advances."""

    chain_id: str = CHAIN_ID
    prev_hash: str = GENESIS_HASH
    height: int = 0
    size: int = 0
    log: merkle.MemoryHashStore = field(default_factory=merkle.MemoryHashStore)
    blocks: list[Block] = field(default_factory=list)

    def build(self, envelopes: Sequence[Envelope]) -> Block:
        """The next block over ``envelopes``, without advancing the builder."""
        _, size, root = self._append(envelopes)
        height = self.height + 1
        header = BlockHeader(
            chain_id=self.chain_id,
            height=height,
            time=format_time(BLOCK_TIME_START + timedelta(seconds=height)),
            prev_hash=self.prev_hash,
            proposer=VALIDATOR_STATES[height % len(VALIDATORS)],
            record_count=len(envelopes),
            ledger_size=size,
            ledger_root=root.hex(),
            validators_hash=validators_hash(VALIDATORS),
        )
        return Block(header, tuple(envelopes), certify(header))

    def append(self, block: Block) -> Block:
        """Advance past ``block`` (which must be this builder's next block)."""
        nodes, size, root = self._append(block.envelopes)
        if block.header.height != self.height + 1 or block.header.ledger_root != root.hex():
            raise ValueError(f"block {block.header.height} is not this builder's next block")
        self.log.put_nodes(nodes)
        self.height, self.size, self.prev_hash = block.header.height, size, block.header.hash()
        self.blocks.append(block)
        return block

    def next_block(self, envelopes: Sequence[Envelope]) -> Block:
        return self.append(self.build(envelopes))

    def _append(
        self, envelopes: Sequence[Envelope]
    ) -> tuple[dict[merkle.NodeKey, bytes], int, bytes]:
        leaf_hashes = [merkle.leaf_hash(envelope.leaf) for envelope in envelopes]
        return merkle.append_leaves(self.size, leaf_hashes, self.log)

    def root(self, size: int) -> bytes:
        return merkle.root(size, self.log)


RECORD_TYPES = ("evidence_submitted", "case_opened", "request_sent")


def varied_envelopes(maker: EnvelopeMaker, height: int) -> list[Envelope]:
    """A deterministic mix of records for block ``height`` (every fifth block is empty).

    Signers, types, case refs, territorial states and evidence digests repeat
    with different periods so every index holds several values, each spread
    over several blocks.
    """
    envelopes = []
    for _ in range(height % 5):
        n = maker.counter
        state = VALIDATOR_STATES[n % len(VALIDATOR_STATES)]
        envelopes.append(
            maker.make(
                key(f"investigator-{state}"),
                type_=RECORD_TYPES[n % len(RECORD_TYPES)],
                state=state,
                case_ref=f"CASE-{n % 7}",
                territorial_states=sorted({state, VALIDATOR_STATES[n % 3]}),
                evidence=[evidence_digest(str(n % 11)), evidence_digest(str(n % 4))],
            )
        )
    return envelopes
