"""Blocks, vote sign-bytes and commit certificates (public byte formats).

A block header is a JSON object; the block hash is SHA-256(JCS(header)).
Heights start at 1; block 1's ``prev_hash`` is the genesis hash
(SHA-256 of JCS(genesis document)), which pins every chain to its genesis.
``ledger_size``/``ledger_root`` are the state of the ledger-wide RFC 6962 log
after this block's records are appended, so a certificate over the header
is a signed checkpoint of the whole history.

A commit certificate holds precommit signatures of at least a quorum of
distinct validators of the block's height over the sign-bytes
``JCS({"type":"precommit","chain_id":C,"height":H,"round":R,"block_hash":B})``.
docs/PROTOCOL.md restates all of this byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger.canonical import canonical_bytes
from ledger.errors import CertificateError, EncodingError
from ledger.hashing import is_hex, sha256, sha256_hex
from ledger.keys import verify_hex
from ledger.quorum import quorum

HEADER_FIELDS = (
    "chain_id",
    "height",
    "time",
    "prev_hash",
    "proposer",
    "record_count",
    "ledger_size",
    "ledger_root",
    "validators_hash",
)
VOTE_TYPES = ("prevote", "precommit")


@dataclass(frozen=True, slots=True)
class Validator:
    state: str  # ISO 3166-1 alpha-2 code of the member state
    pubkey: str  # 64 lowercase hex: the node key


def sorted_validators(validators: Iterable[Validator]) -> tuple[Validator, ...]:
    return tuple(sorted(validators, key=lambda v: v.state))


def validators_hash(validators: Iterable[Validator]) -> str:
    """SHA-256 of JCS of [{"state","pubkey"}...] sorted by state code, as hex."""
    rows = [{"state": v.state, "pubkey": v.pubkey} for v in sorted_validators(validators)]
    return sha256_hex(canonical_bytes(rows))


@dataclass(frozen=True, slots=True)
class BlockHeader:
    chain_id: str
    height: int
    time: str  # RFC 3339 UTC, millisecond precision, e.g. 2026-11-22T06:10:10.123Z
    prev_hash: str  # hex; genesis hash for height 1
    proposer: str  # state code of the proposer of the committing round
    record_count: int
    ledger_size: int
    ledger_root: str  # hex RFC 6962 root after this block
    validators_hash: str  # hex, validators of this height

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in HEADER_FIELDS}

    def hash(self) -> str:
        return sha256_hex(canonical_bytes(self.to_json()))

    @classmethod
    def from_json(cls, obj: Any) -> BlockHeader:
        if not isinstance(obj, dict):
            raise EncodingError("header must be an object", field="header")
        extra = set(obj) - set(HEADER_FIELDS)
        if extra:
            raise EncodingError(f"header has unknown fields {sorted(extra)}", field="header")
        for name in HEADER_FIELDS:
            if name not in obj:
                raise EncodingError(f"header.{name} is missing", field=f"header.{name}")
        for name in ("height", "record_count", "ledger_size"):
            if type(obj[name]) is not int or obj[name] < 0:
                raise EncodingError(
                    f"header.{name} must be a non-negative integer", field=f"header.{name}"
                )
        for name in ("prev_hash", "ledger_root", "validators_hash"):
            if not is_hex(obj[name], 32):
                raise EncodingError(
                    f"header.{name} must be 64 lowercase hex", field=f"header.{name}"
                )
        for name in ("chain_id", "time", "proposer"):
            if not isinstance(obj[name], str):
                raise EncodingError(f"header.{name} must be a string", field=f"header.{name}")
        return cls(**{name: obj[name] for name in HEADER_FIELDS})


def vote_sign_bytes(
    vote_type: str, chain_id: str, height: int, round_: int, block_hash: str | None
) -> bytes:
    """Bytes a validator signs for a prevote or precommit; ``None`` is a nil vote."""
    if vote_type not in VOTE_TYPES:
        raise ValueError(f"unknown vote type {vote_type!r}")
    return canonical_bytes(
        {
            "type": vote_type,
            "chain_id": chain_id,
            "height": height,
            "round": round_,
            "block_hash": block_hash,
        }
    )


def proposal_sign_bytes(
    chain_id: str, height: int, round_: int, block_hash: str, valid_round: int
) -> bytes:
    """Bytes the proposer of (height, round) signs for its proposal."""
    return canonical_bytes(
        {
            "type": "proposal",
            "chain_id": chain_id,
            "height": height,
            "round": round_,
            "block_hash": block_hash,
            "valid_round": valid_round,
        }
    )


@dataclass(frozen=True, slots=True)
class CommitSignature:
    validator: str  # hex public key
    signature: str  # hex Ed25519 signature over the precommit sign-bytes


@dataclass(frozen=True, slots=True)
class CommitCertificate:
    height: int
    round: int
    block_hash: str
    signatures: tuple[CommitSignature, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "round": self.round,
            "block_hash": self.block_hash,
            "signatures": [
                {"validator": s.validator, "signature": s.signature} for s in self.signatures
            ],
        }

    @classmethod
    def from_json(cls, obj: Any) -> CommitCertificate:
        try:
            sigs = tuple(
                CommitSignature(str(s["validator"]), str(s["signature"])) for s in obj["signatures"]
            )
            height, round_, block_hash = obj["height"], obj["round"], obj["block_hash"]
        except (KeyError, TypeError) as exc:
            raise EncodingError(f"malformed commit certificate: {exc}", field="commit") from exc
        if type(height) is not int or type(round_) is not int or not is_hex(block_hash, 32):
            raise EncodingError(
                "commit height/round must be integers and block_hash hex", field="commit"
            )
        return cls(height, round_, block_hash, sigs)


def verify_certificate(
    cert: CommitCertificate,
    chain_id: str,
    validators: Sequence[Validator],
    block_hash: str,
    height: int,
) -> None:
    """Check ``cert`` commits ``block_hash`` at ``height``; raise CertificateError if not.

    Counts only distinct validators of ``validators`` whose signatures verify;
    any signature by a stranger or a bad signature makes the certificate invalid,
    since an honest node never assembles one.
    """
    if cert.height != height:
        raise CertificateError(
            f"certificate is for height {cert.height}, block is {height}",
            height=height,
            field="commit.height",
            expected=height,
            actual=cert.height,
        )
    if cert.block_hash != block_hash:
        raise CertificateError(
            f"certificate commits {cert.block_hash}, block hash is {block_hash}",
            height=height,
            field="commit.block_hash",
            expected=block_hash,
            actual=cert.block_hash,
        )
    members = {v.pubkey for v in validators}
    message = vote_sign_bytes("precommit", chain_id, height, cert.round, block_hash)
    seen: set[str] = set()
    for sig in cert.signatures:
        if sig.validator not in members:
            raise CertificateError(
                f"signer {sig.validator} is not a validator of height {height}",
                height=height,
                field="commit.signatures.validator",
                actual=sig.validator,
            )
        if sig.validator in seen:
            raise CertificateError(
                f"validator {sig.validator} signed twice",
                height=height,
                field="commit.signatures.validator",
                actual=sig.validator,
            )
        if not verify_hex(sig.validator, message, sig.signature):
            raise CertificateError(
                f"bad precommit signature by {sig.validator}",
                height=height,
                field="commit.signatures.signature",
                actual=sig.validator,
            )
        seen.add(sig.validator)
    need = quorum(len(members))
    if len(seen) < need:
        raise CertificateError(
            f"certificate has {len(seen)} signatures, quorum of {len(members)} is {need}",
            height=height,
            field="commit.signatures",
            expected=need,
            actual=len(seen),
        )


def genesis_hash(genesis: dict[str, Any]) -> str:
    return sha256(canonical_bytes(genesis)).hex()
