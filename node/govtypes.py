"""The values governance is made of: keys, members, proposals, validator-set changes, evidence.

Why a module of its own: the chain state (``node.state``) holds these values
and the governance rules (``node.governance``) make them, so both import
them from here and neither imports the other's home. Every type is frozen:
a state transition replaces a value, it never edits one. The parsing of a
``misbehaviour`` record's evidence is here too, because both its field rule
(``node.govshapes``) and its state rule (``node.governance``) read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from consensus.messages import Equivocation, Proposal, Vote, message_from_json
from consensus.messages import slot as message_slot
from ledger.canonical import canonical_bytes
from ledger.directory import Entry
from ledger.errors import EncodingError, RecordInvalid
from ledger.hashing import sha256_hex
from node.genesis import Member

ACTIONS = (
    "add",
    "remove",
    "rotate_key",
    "rotate_enc_key",
    "set_param",
    "add_observer",
    "remove_observer",
)
#: Actions about an observer node (docs/GOVERNANCE.md, "Observer nodes"): voted like
#: membership, they change who may read by P2P, never the validator set.
OBSERVER_ACTIONS = ("add_observer", "remove_observer")
#: Actions that change the validator set when decided (the others change the state only).
SET_ACTIONS = ("add", "remove", "rotate_key")
#: Actions a member's own admin decides alone, in the block that commits them.
SELF_ACTIONS = ("rotate_key", "rotate_enc_key")
VOTES = ("yes", "no")
#: A change decided in block H applies from H + 2 (docs/GOVERNANCE.md,
#: "Membership and the validator set").
CHANGE_DELAY_BLOCKS = 2
#: The consortium parameters a ``set_param`` proposal may set (each names a height).
PARAMS = ("need_to_know_from_height", "catalogue_v2_from_height", "catalogue_v3_from_height")


def proposal_subject(record: Mapping[str, Any]) -> str:
    """What a member_proposal is about: its member state, or ``param:<name>``.

    At most one proposal per subject is open at a time, and a block holds at
    most one proposal per subject (``node.governance``).
    """
    if record.get("action") == "set_param":
        return f"param:{record['name']}"
    return str(record["state"])


@dataclass(frozen=True, slots=True)
class EncKey:
    """A member's former X25519 ``enc_pubkey``: sealers used it below ``until_height``."""

    pubkey: str
    until_height: int  # the first height whose records are sealed to the next key
    record_id: str  # the rotate_enc_key proposal that replaced it


@dataclass(frozen=True, slots=True)
class ParamChange:
    """A consortium parameter set by a passed ``set_param`` proposal."""

    name: str
    value: int
    decided_at: int
    record_ids: tuple[str, ...]  # the proposal, then the deciding vote


@dataclass(frozen=True, slots=True)
class KeyGrant:
    """An enrolled signing key: its state, roles and agency."""

    state: str
    roles: frozenset[str]
    agency: str
    revoked_at: int | None = None  # height of the block that revoked it
    not_after: str | None = None
    enrolled_at: int = 0  # 0: genesis
    record_id: str | None = None  # the enroll_key record (None: genesis)


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """A member state as the chain knows it; ``until_height`` set once it is removed."""

    state: str
    name: str
    node_pubkey: str
    admin_pubkeys: tuple[str, ...]
    enc_pubkey: str
    p2p_url: str
    since_height: int = 1
    until_height: int | None = None
    record_id: str | None = None  # the proposal that admitted it (None: genesis)
    #: Former ``enc_pubkey`` values, oldest first (``rotate_enc_key``); not served
    #: by ``to_json``, read through ``ChainState.enc_pubkey_at``.
    previous_enc_keys: tuple[EncKey, ...] = ()

    def enc_pubkey_at(self, height: int) -> str:
        """The key a record of block ``height`` should be sealed to."""
        for old in self.previous_enc_keys:
            if height < old.until_height:
                return old.pubkey
        return self.enc_pubkey

    def enc_pubkeys(self) -> tuple[str, ...]:
        """Every X25519 key this member has had, oldest first, the current one last."""
        return (*(old.pubkey for old in self.previous_enc_keys), self.enc_pubkey)

    @classmethod
    def from_genesis(cls, member: Member) -> MemberInfo:
        return cls(
            member.state,
            member.name,
            member.node_pubkey,
            tuple(member.admin_pubkeys),
            member.enc_pubkey,
            member.p2p_url,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "name": self.name,
            "node_pubkey": self.node_pubkey,
            "admin_pubkeys": list(self.admin_pubkeys),
            "enc_pubkey": self.enc_pubkey,
            "p2p_url": self.p2p_url,
            "since_height": self.since_height,
            "until_height": self.until_height,
            "record_id": self.record_id,
        }


@dataclass(frozen=True, slots=True)
class ObserverInfo:
    """An admitted observer node: it follows the chain by P2P sync and never votes.

    ``state`` is the jurisdiction it belongs to: a member state's own observer is a
    party node for that state (it fetches that state's private bodies); any other
    code is a foreign observer (headers only). ``until_height`` is set once removed.
    """

    node_pubkey: str
    state: str
    label: str
    since_height: int  # the first height after the deciding block
    record_id: str  # the proposal that admitted it
    until_height: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "node_pubkey": self.node_pubkey,
            "state": self.state,
            "label": self.label,
            "since_height": self.since_height,
            "until_height": self.until_height,
            "record_id": self.record_id,
        }


@dataclass(frozen=True, slots=True)
class ProposalState:
    id: str
    action: str
    subject: str  # the state added, removed or re-keyed
    proposer: str  # the state whose admin proposed
    height: int  # committed at
    record: Mapping[str, Any] = field(repr=False)
    votes: tuple[tuple[str, str, str], ...] = ()  # (state, "yes"|"no", vote record id)
    status: str = "open"  # open | passed | rejected (expired is derived)
    decided_at: int | None = None
    effective_at: int | None = None

    def status_for(self, next_height: int, expiry_blocks: int) -> str:
        """Status as seen by a record of block ``next_height``."""
        if self.status == "open" and next_height > self.height + expiry_blocks:
            return "expired"
        return self.status

    def to_json(self, next_height: int, expiry_blocks: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "action": self.action,
            "state": self.subject,
            "proposer": self.proposer,
            "height": self.height,
            "expires_after": self.height + expiry_blocks,
            "status": self.status_for(next_height, expiry_blocks),
            "votes": [{"state": s, "vote": v, "record_id": r} for s, v, r in self.votes],
            "decided_at": self.decided_at,
            "effective_at": self.effective_at,
            "record": dict(self.record),
        }


@dataclass(frozen=True, slots=True)
class ValidatorChange:
    height: int  # first height of the new set
    decided_at: int  # the block that committed the deciding record
    action: str
    state: str
    record_ids: tuple[str, ...]  # the proposal, then the deciding vote (if any)

    def to_json(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "decided_at": self.decided_at,
            "action": self.action,
            "state": self.state,
            "record_ids": list(self.record_ids),
        }


@dataclass(frozen=True, slots=True)
class MisbehaviourEntry:
    evidence_id: str
    record_id: str
    committed_at: int
    reporter_state: str
    offender_state: str
    offender_pubkey: str
    height: int
    round: int
    kind: str

    def to_json(self) -> dict[str, Any]:
        return {
            "evidence_id": self.evidence_id,
            "record_id": self.record_id,
            "committed_at": self.committed_at,
            "reporter_state": self.reporter_state,
            "offender_state": self.offender_state,
            "offender_pubkey": self.offender_pubkey,
            "height": self.height,
            "round": self.round,
            "kind": self.kind,
        }


@dataclass(frozen=True, slots=True)
class DirectoryRecord:
    """One committed ``directory_entry``: where it is on the chain."""

    record_id: str
    height: int
    content_hash: str  # ``ledger.directory.content_hash``: same content, same entry


@dataclass(frozen=True, slots=True)
class DirectoryState:
    """A member's current directory entry and every entry it committed before, oldest first.

    Only the current entry is kept parsed; the history is kept by id and height, so
    the state stays small, and ``GET /v1/directory/{state}`` loads the old records.
    """

    entry: Entry = field(repr=False)
    current: DirectoryRecord
    history: tuple[DirectoryRecord, ...] = ()


# --- misbehaviour evidence ----------------------------------------------------------------


def evidence_id(msg: Proposal | Vote) -> str:
    """The slot of an equivocation: one record per offender key and (h, r, kind)."""
    height, round_, kind = message_slot(msg)
    return sha256_hex(
        canonical_bytes({"offender": msg.signer, "height": height, "round": round_, "kind": kind})
    )


def parse_evidence(record: Mapping[str, Any]) -> Equivocation:
    """The two messages of a misbehaviour record; ``RecordInvalid`` if malformed."""
    evidence = record.get("equivocation")
    if not isinstance(evidence, dict) or set(evidence) != {"first", "second"}:
        raise RecordInvalid(
            "record.equivocation must be an object with exactly first and second",
            field="record.equivocation",
            code="bad_evidence",
        )
    try:
        return Equivocation(
            message_from_json(evidence["first"]), message_from_json(evidence["second"])
        )
    except EncodingError as exc:
        raise RecordInvalid(
            f"record.equivocation: {exc}", field="record.equivocation", code="bad_evidence"
        ) from exc


def evidence_id_of(record: Mapping[str, Any]) -> str:
    return evidence_id(parse_evidence(record).first)
