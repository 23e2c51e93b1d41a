"""Membership, validator-set changes and misbehaviour: rules and effects on the chain state.

Theory of operation
-------------------
``member_proposal`` (action ``add``, ``remove`` or ``rotate_key``) opens a
proposal; ``member_vote`` records one vote per member state. Let H be the
height of the block that commits a vote and n the number of validators
(member states) of H. The proposal passes when more than 2/3 of them voted
yes (``3 * yes > 2 * n``) and is rejected as soon as it can no longer pass
(``3 * (n - no) <= 2 * n``); the new validator set applies from height H+2 on
every node (``validators_by_height[H + 2]``). Height H+1 keeps the old set so
that, all through H+1, every node already knows which set signs H+2: it links
to and authenticates a new validator (P2P ``peer_keys`` covers h+1 and h+2)
before that validator's votes are needed.
A ``rotate_key`` proposal by the state's own admin needs no vote: it is
decided by the block that commits it, with the same H+2 rule. A proposal
committed at height P accepts votes in blocks P+1 .. P+expiry
(``genesis.consensus.proposal_expiry_blocks``) and is ``expired`` after.

A ``misbehaviour`` record carries, under ``equivocation``, two signed consensus messages of one
validator for one (height, round, kind) with different content, checked with
``consensus.messages.is_equivocation`` against the validator set of that
height. Its id is the slot (offender key, height, round, kind), so each
equivocation is recorded once however many nodes report it.

Every function here is a deterministic function of the state and the record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from consensus.messages import Equivocation, Proposal, Vote, is_equivocation, message_from_json
from consensus.messages import slot as message_slot
from consensus.signing import Ed25519Verifier
from ledger.block import Validator, sorted_validators
from ledger.canonical import canonical_bytes
from ledger.errors import Conflict, EncodingError, Forbidden, RecordInvalid
from ledger.hashing import sha256_hex
from ledger.records import Envelope
from node.genesis import Member

if TYPE_CHECKING:
    from node.state import ChainState

ACTIONS = ("add", "remove", "rotate_key")
VOTES = ("yes", "no")
CHANGE_DELAY_BLOCKS = 2


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


# --- proposals and votes ------------------------------------------------------------------


def _refuse_open(state: ChainState, subject: str) -> None:
    next_height = state.height + 1
    for proposal in state.proposals.values():
        if (
            proposal.subject == subject
            and proposal.status_for(next_height, state.expiry_blocks()) == "open"
        ):
            raise Conflict(
                f"proposal {proposal.id} about {subject} is still open",
                field="record.state",
                code="proposal_open",
            )


def _refuse_keys_in_use(state: ChainState, keys: list[str]) -> None:
    for key in keys:
        if state.key_in_use(key):
            raise Conflict(
                f"key {key[:16]}… is already in use on this chain",
                field="record",
                code="key_in_use",
            )


def check_proposal(state: ChainState, envelope: Envelope, at_time: datetime) -> None:
    record = envelope.record
    subject, action = record["state"], record["action"]
    latest = {v.state for v in state.latest_validators()}
    _refuse_open(state, subject)
    if action == "add":
        if subject in latest:
            raise Conflict(
                f"{subject} is already a member", field="record.state", code="already_member"
            )
        _refuse_keys_in_use(state, [record["node_pubkey"], *record["admin_pubkeys"]])
        return
    if subject not in latest:
        raise RecordInvalid(f"{subject} is not a member", field="record.state", code="not_a_member")
    if action == "remove" and len(latest) == 1:
        raise RecordInvalid(
            "the last member cannot be removed", field="record.state", code="last_member"
        )
    if action == "rotate_key":
        if subject != envelope.actor_state:
            raise Forbidden(
                f"only {subject}'s own admin rotates its node key",
                field="record.state",
                code="wrong_state",
            )
        _refuse_keys_in_use(state, [record["node_pubkey"]])


def apply_proposal(state: ChainState, height: int, envelope: Envelope) -> None:
    record = envelope.record
    proposal = ProposalState(
        envelope.id, record["action"], record["state"], envelope.actor_state, height, record
    )
    if proposal.action == "rotate_key":
        proposal = _decide(state, height, proposal, (envelope.id,))
    state.proposals[envelope.id] = proposal


def check_vote(state: ChainState, envelope: Envelope, at_time: datetime) -> None:
    proposal = state.proposals.get(envelope.record["proposal"])
    if proposal is None:
        raise RecordInvalid(
            "record.proposal is not a committed member_proposal",
            field="record.proposal",
            code="unknown_proposal",
        )
    status = proposal.status_for(state.height + 1, state.expiry_blocks())
    if status == "expired":
        raise Conflict(
            f"proposal expired after height {proposal.height + state.expiry_blocks()}",
            field="record.proposal",
            code="proposal_expired",
        )
    if status != "open":
        raise Conflict(
            f"proposal is already {status}", field="record.proposal", code="proposal_closed"
        )
    if any(voter == envelope.actor_state for voter, _, _ in proposal.votes):
        raise Conflict(
            f"{envelope.actor_state} already voted on this proposal",
            field="record.actor.state",
            code="already_voted",
        )


def apply_vote(state: ChainState, height: int, envelope: Envelope) -> None:
    proposal = state.proposals[envelope.record["proposal"]]
    votes = (*proposal.votes, (envelope.actor_state, envelope.record["vote"], envelope.id))
    proposal = replace(proposal, votes=votes)
    members = set(state.member_states(height))
    n = len(members)
    yes = sum(1 for s, v, _ in votes if v == "yes" and s in members)
    no = sum(1 for s, v, _ in votes if v == "no" and s in members)
    if 3 * yes > 2 * n:
        proposal = _decide(state, height, proposal, (proposal.id, envelope.id))
    elif 3 * (n - no) <= 2 * n:
        proposal = replace(proposal, status="rejected", decided_at=height)
    state.proposals[proposal.id] = proposal


def _decide(
    state: ChainState, height: int, proposal: ProposalState, record_ids: tuple[str, ...]
) -> ProposalState:
    """Schedule the change at height + 2, or reject it if it no longer applies."""
    change = _CHANGES[proposal.action]
    latest = state.latest_validators()
    new_set = change(state, height, proposal, latest)
    if new_set is None:
        return replace(proposal, status="rejected", decided_at=height)
    effective = height + CHANGE_DELAY_BLOCKS
    state.validators_by_height[effective] = sorted_validators(new_set)
    state.changes.append(
        ValidatorChange(effective, height, proposal.action, proposal.subject, record_ids)
    )
    return replace(proposal, status="passed", decided_at=height, effective_at=effective)


NewSet = tuple[Validator, ...] | None


def _change_add(
    state: ChainState, height: int, proposal: ProposalState, latest: tuple[Validator, ...]
) -> NewSet:
    from node.state import KeyGrant  # the state module imports this one

    record = proposal.record
    keys = [record["node_pubkey"], *record["admin_pubkeys"]]
    if proposal.subject in {v.state for v in latest} or any(state.key_in_use(k) for k in keys):
        return None  # something changed while the vote was open: refuse, never half-apply
    state.members[proposal.subject] = MemberInfo(
        proposal.subject,
        record["name"],
        record["node_pubkey"],
        tuple(record["admin_pubkeys"]),
        record["enc_pubkey"],
        record["p2p_url"],
        since_height=height + CHANGE_DELAY_BLOCKS,
        record_id=proposal.id,
    )
    for admin in record["admin_pubkeys"]:
        state.keys[admin] = KeyGrant(
            proposal.subject,
            frozenset({"admin"}),
            f"{record['name']} administration",
            enrolled_at=height,
            record_id=proposal.id,
        )
    return (*latest, Validator(proposal.subject, record["node_pubkey"]))


def _change_remove(
    state: ChainState, height: int, proposal: ProposalState, latest: tuple[Validator, ...]
) -> NewSet:
    remaining = tuple(v for v in latest if v.state != proposal.subject)
    if len(remaining) == len(latest) or not remaining:
        return None
    info = state.members[proposal.subject]
    state.members[proposal.subject] = replace(info, until_height=height + CHANGE_DELAY_BLOCKS)
    return remaining


def _change_rotate(
    state: ChainState, height: int, proposal: ProposalState, latest: tuple[Validator, ...]
) -> NewSet:
    new_key = proposal.record["node_pubkey"]
    if proposal.subject not in {v.state for v in latest} or state.key_in_use(new_key):
        return None
    info = state.members[proposal.subject]
    state.members[proposal.subject] = replace(info, node_pubkey=new_key)
    return tuple(Validator(v.state, new_key) if v.state == proposal.subject else v for v in latest)


_CHANGES: dict[str, Callable[[ChainState, int, ProposalState, tuple[Validator, ...]], NewSet]] = {
    "add": _change_add,
    "remove": _change_remove,
    "rotate_key": _change_rotate,
}


# --- misbehaviour -------------------------------------------------------------------------


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


def check_misbehaviour(state: ChainState, envelope: Envelope, at_time: datetime) -> None:
    record = envelope.record
    ev = parse_evidence(record)
    offender = ev.first.signer
    if record["offender_pubkey"] != offender:
        raise RecordInvalid(
            "record.offender_pubkey is not the signer of the evidence",
            field="record.offender_pubkey",
            code="bad_evidence",
        )
    height = ev.first.height
    if height > state.height + 1:
        raise RecordInvalid(
            f"evidence is for height {height}, beyond the next height",
            field="record.equivocation",
            code="bad_evidence",
        )
    if Validator(record["offender_state"], offender) not in state.validators(height):
        raise RecordInvalid(
            f"{offender[:16]}… is not {record['offender_state']}'s validator "
            f"key at height {height}",
            field="record.offender_state",
            code="not_a_validator",
        )
    if not is_equivocation(ev, state.genesis.chain_id, Ed25519Verifier()):
        raise RecordInvalid(
            "evidence is not two validly signed, conflicting messages of one slot",
            field="record.equivocation",
            code="not_equivocation",
        )
    if evidence_id(ev.first) in state.misbehaviour:
        raise Conflict(
            "this equivocation is already recorded",
            field="record.equivocation",
            code="duplicate_evidence",
        )


def apply_misbehaviour(state: ChainState, height: int, envelope: Envelope) -> None:
    record = envelope.record
    first = parse_evidence(record).first
    h, r, kind = message_slot(first)
    eid = evidence_id(first)
    state.misbehaviour[eid] = MisbehaviourEntry(
        eid,
        envelope.id,
        height,
        envelope.actor_state,
        record["offender_state"],
        record["offender_pubkey"],
        h,
        r,
        kind,
    )


def misbehaviour_record(
    ev: Equivocation, *, reporter_state: str, agency: str, offender_state: str
) -> dict[str, Any]:
    """The body of a misbehaviour record (the caller adds schema, chain, nonce, time)."""
    return {
        "type": "misbehaviour",
        "actor": {"state": reporter_state, "agency": agency},
        "offender_state": offender_state,
        "offender_pubkey": ev.first.signer,
        "equivocation": ev.to_json(),
    }
