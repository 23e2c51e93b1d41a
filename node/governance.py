"""Governance in one place: one descriptor per governance record type, and its rules.

Theory of operation
-------------------
``GOVERNANCE`` maps each governance record type to one ``GovernanceType``:

* ``shape``: its field rule, a pure function of the record (``node.govshapes``);
* ``signers``: the roles that may sign it, its row of the role table
  (``ledger.roles``, which the layers below and the auditor read too);
* ``check``: its rules against the chain state before the block;
* ``conflict``: its key of block uniqueness, see below;
* ``apply``: its effect, a function from the state before to the state after;
* ``audited``: whether the offline auditor replays it (``ledger/audit/gov.py``).

Everything else derives from the registry: ``node.rules`` registers the
shapes, ``Application`` checks, keys and applies records through
``check``/``conflict_key``/``apply_block`` and replays the governance types
at start-up, and the tests hold the role table and the auditor's copies to
it. To add a governance type, add one entry here (and name it in the role
table of the roles that may sign it).

Records of one block are judged against the state before that block, so two
records that would conflict with each other (two votes of one state, two
enrolments of one key, ...) are kept apart by their conflict key: a block
holds at most one record per key. Enrolments and revocations of a key that
is an admin key share ``admins:<state>``: ``last_admin`` is judged against
the state before the block, so two admin revocations in one block could
otherwise leave the state with no admin at all (FINDINGS M2).

Keys: a revocation committed in block H is effective from block H+1: records
the key signed that are in H or earlier stay committed and valid, later ones
are refused with ``signer_revoked``.

Membership: ``member_proposal`` (action ``add``, ``remove`` or ``rotate_key``)
opens a proposal; ``member_vote`` records one vote per member state. Let H be
the height of the block that commits a vote and n the number of validators
(member states) of H. ``ledger.quorum.vote_outcome`` decides: the proposal
passes when more than 2/3 of them voted yes and is rejected as soon as it can
no longer pass; the new validator set applies from height H+2 on every node
(``validators_by_height[H + 2]``). Height H+1 keeps the old set so that, all
through H+1, every node already knows which set signs H+2: it links to and
authenticates a new validator (P2P ``peer_keys`` covers h+1 and h+2) before
that validator's votes are needed. A ``rotate_key`` proposal by the state's
own admin needs no vote: it is decided by the block that commits it, with the
same H+2 rule. A proposal committed at height P accepts votes in blocks
P+1 .. P+expiry (``genesis.consensus.proposal_expiry_blocks``) and is
``expired`` after.

Two actions change the state but not the validator set (``_STATE_CHANGES``):
``rotate_enc_key`` (a member's own admin, decided by the block H that commits
it, like ``rotate_key``) makes the new X25519 ``enc_pubkey`` the one to seal to
from H+1 and keeps the old one in ``MemberInfo.previous_enc_keys``; a key any
member ever had is never taken again. ``set_param`` (no ``state``: a parameter
is the consortium's) is voted like membership; decided in block H it sets the
named height parameter if its value is above H + ``CHANGE_DELAY_BLOCKS`` and
the value before is not already in force by then, else it is rejected. One
proposal per subject at a time (``govtypes.proposal_subject``: the state, or
``param:<name>``).

``add_observer`` and ``remove_observer`` (docs/GOVERNANCE.md, "Observer nodes")
are voted like membership and change neither the set nor signing rights: a
passed ``add_observer`` decided in H admits an observer node key (its ``state``,
a member's own observer or a foreign one, and a ``label``) whose P2P sync
requests peers serve from H+1; ``remove_observer`` ends that from H+1. An
observer key is a used key for ever (``key_in_use``). Their subject is the
``state`` like a member's, so the offline auditors replay them unchanged.

A ``misbehaviour`` record carries, under ``equivocation``, two signed consensus
messages of one validator for one (height, round, kind) with different
content, checked with ``consensus.messages.is_equivocation`` against the
validator set of that height. Its id is the slot (offender key, height,
round, kind), so each equivocation is recorded once however many nodes
report it.

Every function here is a deterministic function of the state and the record,
and none changes a state: an effect returns the next one (``node.state``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final

from consensus.messages import Equivocation, is_equivocation
from consensus.messages import slot as message_slot
from consensus.signing import Ed25519Verifier
from ledger.block import Validator, sorted_validators
from ledger.errors import Conflict, Forbidden, InvariantViolation, RecordInvalid
from ledger.quorum import vote_outcome
from ledger.records import Envelope, parse_time
from ledger.roles import ROLE_TYPES
from node import govshapes
from node.govdirectory import apply_directory, check_directory, directory_conflict
from node.govtypes import (
    CHANGE_DELAY_BLOCKS,
    OBSERVER_ACTIONS,
    SELF_ACTIONS,
    EncKey,
    KeyGrant,
    MemberInfo,
    MisbehaviourEntry,
    ObserverInfo,
    ParamChange,
    ProposalState,
    ValidatorChange,
    evidence_id,
    evidence_id_of,
    parse_evidence,
    proposal_subject,
)
from node.state import ChainState, expired

Shape = Callable[[Mapping[str, Any]], None]
Check = Callable[[ChainState, Envelope, datetime], None]
ConflictKey = Callable[[ChainState, Mapping[str, Any]], str]
Effect = Callable[[ChainState, int, Envelope], ChainState]


@dataclass(frozen=True, slots=True)
class GovernanceType:
    """Everything the node knows about one governance record type (module docstring)."""

    name: str
    shape: Shape
    check: Check
    conflict: ConflictKey
    apply: Effect
    audited: bool  # the offline auditor replays it: it changes signing rights or sets

    @property
    def signers(self) -> frozenset[str]:
        """The roles that may sign this type (its row of ``ledger.roles.ROLE_TYPES``)."""
        return frozenset(role for role, types in ROLE_TYPES.items() if self.name in types)


# --- keys -------------------------------------------------------------------------------


def check_enroll(state: ChainState, envelope: Envelope, at_time: datetime) -> None:
    record = envelope.record
    pubkey = record["pubkey"]
    grant = state.keys.get(pubkey)
    if grant is not None and grant.revoked_at is not None:
        raise Conflict(
            f"key was revoked at height {grant.revoked_at}; a revoked key is never "
            "enrolled again, enrol a new key",
            field="record.pubkey",
            code="key_revoked",
        )
    if grant is not None and not expired(grant, at_time):
        raise Conflict(
            f"key is already enrolled for {grant.state}",
            field="record.pubkey",
            code="key_already_enrolled",
        )
    if grant is not None and grant.state != envelope.actor_state:
        raise Forbidden(
            f"key was enrolled for {grant.state}; only it may renew the key",
            field="record.pubkey",
            code="wrong_state",
        )
    if grant is None and state.key_in_use(pubkey):
        raise Conflict(
            "key is a validator node key; node keys and signing keys are kept apart",
            field="record.pubkey",
            code="key_is_node_key",
        )
    not_after = record.get("not_after")
    if not_after is not None and parse_time(not_after, "record.not_after") <= at_time:
        raise RecordInvalid(
            "record.not_after is already past", field="record.not_after", code="not_after_past"
        )


def check_revoke(state: ChainState, envelope: Envelope, at_time: datetime) -> None:
    pubkey = envelope.record["pubkey"]
    grant = state.keys.get(pubkey)
    if grant is None:
        raise RecordInvalid(
            "record.pubkey is not an enrolled signing key",
            field="record.pubkey",
            code="key_not_enrolled",
        )
    if grant.state != envelope.actor_state:
        raise Forbidden(
            f"key belongs to {grant.state}; an admin revokes only its own state's keys",
            field="record.pubkey",
            code="wrong_state",
        )
    if grant.revoked_at is not None:
        raise Conflict(
            f"key was already revoked at height {grant.revoked_at}",
            field="record.pubkey",
            code="already_revoked",
        )
    if "admin" in grant.roles and not any(
        k != pubkey
        and g.state == grant.state
        and "admin" in g.roles
        and g.revoked_at is None
        and not expired(g, at_time)
        for k, g in state.keys.items()
    ):
        raise Conflict(
            f"key is the last active admin key of {grant.state}; enrol another admin first",
            field="record.pubkey",
            code="last_admin",
        )


def key_conflict(state: ChainState, record: Mapping[str, Any]) -> str:
    """Per admin-holding state, else per key (FINDINGS M2, module docstring).

    An enrolment and a revocation of one key always get the same key either
    way, so a revoked key is never renewed in the block that revokes it.
    """
    grant = state.keys.get(record["pubkey"])
    if grant is not None and "admin" in grant.roles:
        return f"admins:{grant.state}"
    return f"key:{record['pubkey']}"


def apply_enroll(state: ChainState, height: int, envelope: Envelope) -> ChainState:
    record = envelope.record
    grant = KeyGrant(
        record["actor"]["state"],
        frozenset(record["roles"]),
        record["agency"],
        not_after=record.get("not_after"),
        enrolled_at=height,
        record_id=envelope.id,
    )
    return state.with_key(record["pubkey"], grant)


def apply_revoke(state: ChainState, height: int, envelope: Envelope) -> ChainState:
    pubkey = envelope.record["pubkey"]
    grant = state.keys.get(pubkey)
    if grant is None or grant.state != envelope.actor_state:
        raise InvariantViolation(f"revoke of {pubkey} applied unchecked")
    return state.with_key(pubkey, replace(grant, revoked_at=height))


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
                field="record.name" if subject.startswith("param:") else "record.state",
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


def _refuse_enc_key_used(state: ChainState, pubkey: str) -> None:
    if state.enc_key_used(pubkey):
        raise Conflict(
            "this X25519 key is, or was, a member's enc_pubkey; a rotation takes a fresh key",
            field="record.enc_pubkey",
            code="enc_key_reused",
        )


def _param_refusal(state: ChainState, record: Mapping[str, Any], decided_at: int) -> str | None:
    """Why a ``set_param`` decided at ``decided_at`` may not apply, or None.

    The height it names must come after ``decided_at + CHANGE_DELAY_BLOCKS``, so
    every node knows the new value before the first block it governs; a value
    already in force by then is never moved, so no past block changes rules.
    """
    bound = decided_at + CHANGE_DELAY_BLOCKS
    current = state.param(record["name"])
    if current is not None and current <= bound:
        return "param_in_force"
    if record["value"] <= bound:
        return "height_too_early"
    return None


def _check_set_param(state: ChainState, record: Mapping[str, Any]) -> None:
    # A vote decides in the block after the proposal's at the earliest.
    refusal = _param_refusal(state, record, state.height + 2)
    if refusal == "param_in_force":
        raise Conflict(
            f"{record['name']} is in force from height {state.param(record['name'])}; "
            "a parameter already in force is never moved",
            field="record.name",
            code="param_in_force",
        )
    if refusal == "height_too_early":
        raise RecordInvalid(
            f"record.value must exceed the deciding height + {CHANGE_DELAY_BLOCKS}: "
            f"at least {state.height + 3 + CHANGE_DELAY_BLOCKS} now",
            field="record.value",
            code="height_too_early",
        )


def _check_own_state(subject: str, actor_state: str, what: str) -> None:
    if subject != actor_state:
        raise Forbidden(
            f"only {subject}'s own admin rotates its {what}",
            field="record.state",
            code="wrong_state",
        )


def check_proposal(state: ChainState, envelope: Envelope, at_time: datetime) -> None:
    record = envelope.record
    subject, action = proposal_subject(record), record["action"]
    latest = {v.state for v in state.latest_validators()}
    _refuse_open(state, subject)
    if action == "set_param":
        _check_set_param(state, record)
        return
    if action in OBSERVER_ACTIONS:
        _check_observer(state, envelope, latest)
        return
    if action == "add":
        if subject in latest:
            raise Conflict(
                f"{subject} is already a member", field="record.state", code="already_member"
            )
        _refuse_keys_in_use(state, [record["node_pubkey"], *record["admin_pubkeys"]])
        _refuse_enc_key_used(state, record["enc_pubkey"])
        return
    if subject not in latest:
        raise RecordInvalid(f"{subject} is not a member", field="record.state", code="not_a_member")
    if action == "remove" and len(latest) == 1:
        raise RecordInvalid(
            "the last member cannot be removed", field="record.state", code="last_member"
        )
    if action == "rotate_key":
        _check_own_state(subject, envelope.actor_state, "node key")
        _refuse_keys_in_use(state, [record["node_pubkey"]])
    if action == "rotate_enc_key":
        _check_own_state(subject, envelope.actor_state, "encryption key")
        _refuse_enc_key_used(state, record["enc_pubkey"])


def _check_observer(state: ChainState, envelope: Envelope, latest: set[str]) -> None:
    """An observer proposal (docs/GOVERNANCE.md, "Observer nodes"): a member's own
    observer is proposed by that member's admin; a foreign one by any member's."""
    record = envelope.record
    subject, pubkey = record["state"], record["node_pubkey"]
    if record["action"] == "add_observer":
        if subject in latest:
            _check_own_state(subject, envelope.actor_state, "observer nodes")
        _refuse_keys_in_use(state, [pubkey])
        return
    info = state.observer(pubkey)
    if info is None or info.state != subject:
        raise RecordInvalid(
            f"{pubkey[:16]}… is not an admitted observer of {subject}",
            field="record.node_pubkey",
            code="not_an_observer",
        )


def apply_proposal(state: ChainState, height: int, envelope: Envelope) -> ChainState:
    record = envelope.record
    proposal = ProposalState(
        envelope.id,
        record["action"],
        proposal_subject(record),
        envelope.actor_state,
        height,
        MappingProxyType(record),
    )
    if proposal.action in SELF_ACTIONS:
        return _decide(state, height, proposal, (envelope.id,))
    return state.with_proposal(proposal)


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


def apply_vote(state: ChainState, height: int, envelope: Envelope) -> ChainState:
    proposal = state.proposals[envelope.record["proposal"]]
    votes = (*proposal.votes, (envelope.actor_state, envelope.record["vote"], envelope.id))
    proposal = replace(proposal, votes=votes)
    members = set(state.member_states(height))
    yes = sum(1 for s, v, _ in votes if v == "yes" and s in members)
    no = sum(1 for s, v, _ in votes if v == "no" and s in members)
    outcome = vote_outcome(yes, no, len(members))
    if outcome == "passed":
        return _decide(state, height, proposal, (proposal.id, envelope.id))
    if outcome == "rejected":
        proposal = replace(proposal, status="rejected", decided_at=height)
    return state.with_proposal(proposal)


def _decide(
    state: ChainState, height: int, proposal: ProposalState, record_ids: tuple[str, ...]
) -> ChainState:
    """Schedule the change at height + 2, or reject it if it no longer applies."""
    effect = _STATE_CHANGES.get(proposal.action)
    if effect is not None:
        after = effect(state, height, proposal, record_ids)
        if after is None:
            return state.with_proposal(replace(proposal, status="rejected", decided_at=height))
        passed = replace(proposal, status="passed", decided_at=height, effective_at=height + 1)
        return after.with_proposal(passed)
    changed = _CHANGES[proposal.action](state, height, proposal, state.latest_validators())
    if changed is None:
        return state.with_proposal(replace(proposal, status="rejected", decided_at=height))
    state, new_set = changed
    effective = height + CHANGE_DELAY_BLOCKS
    change = ValidatorChange(effective, height, proposal.action, proposal.subject, record_ids)
    state = state.with_validator_change(change, sorted_validators(new_set))
    passed = replace(proposal, status="passed", decided_at=height, effective_at=effective)
    return state.with_proposal(passed)


#: The state with the change's side effects and the new set, or None: refused.
Changed = tuple[ChainState, tuple[Validator, ...]] | None


def _change_add(
    state: ChainState, height: int, proposal: ProposalState, latest: tuple[Validator, ...]
) -> Changed:
    record = proposal.record
    keys = [record["node_pubkey"], *record["admin_pubkeys"]]
    if proposal.subject in {v.state for v in latest} or any(state.key_in_use(k) for k in keys):
        return None  # something changed while the vote was open: refuse, never half-apply
    state = state.with_member(
        MemberInfo(
            proposal.subject,
            record["name"],
            record["node_pubkey"],
            tuple(record["admin_pubkeys"]),
            record["enc_pubkey"],
            record["p2p_url"],
            since_height=height + CHANGE_DELAY_BLOCKS,
            record_id=proposal.id,
        )
    )
    for admin in record["admin_pubkeys"]:
        grant = KeyGrant(
            proposal.subject,
            frozenset({"admin"}),
            f"{record['name']} administration",
            enrolled_at=height,
            record_id=proposal.id,
        )
        state = state.with_key(admin, grant)
    return state, (*latest, Validator(proposal.subject, record["node_pubkey"]))


def _change_remove(
    state: ChainState, height: int, proposal: ProposalState, latest: tuple[Validator, ...]
) -> Changed:
    remaining = tuple(v for v in latest if v.state != proposal.subject)
    if len(remaining) == len(latest) or not remaining:
        return None
    info = state.members[proposal.subject]
    state = state.with_member(replace(info, until_height=height + CHANGE_DELAY_BLOCKS))
    return state, remaining


def _change_rotate(
    state: ChainState, height: int, proposal: ProposalState, latest: tuple[Validator, ...]
) -> Changed:
    new_key = proposal.record["node_pubkey"]
    if proposal.subject not in {v.state for v in latest} or state.key_in_use(new_key):
        return None
    info = state.members[proposal.subject]
    state = state.with_member(replace(info, node_pubkey=new_key))
    rotated = tuple(
        Validator(v.state, new_key) if v.state == proposal.subject else v for v in latest
    )
    return state, rotated


_CHANGES: Final[
    Mapping[str, Callable[[ChainState, int, ProposalState, tuple[Validator, ...]], Changed]]
] = MappingProxyType({"add": _change_add, "remove": _change_remove, "rotate_key": _change_rotate})


def _change_enc_key(
    state: ChainState, height: int, proposal: ProposalState, record_ids: tuple[str, ...]
) -> ChainState | None:
    """The member's new X25519 key, for records from ``height + 1``; the old one kept."""
    new_key = proposal.record["enc_pubkey"]
    info = state.members.get(proposal.subject)
    if info is None or info.until_height is not None or state.enc_key_used(new_key):
        return None
    old = EncKey(info.enc_pubkey, height + 1, proposal.id)
    return state.with_member(
        replace(info, enc_pubkey=new_key, previous_enc_keys=(*info.previous_enc_keys, old))
    )


def _change_param(
    state: ChainState, height: int, proposal: ProposalState, record_ids: tuple[str, ...]
) -> ChainState | None:
    record = proposal.record
    if _param_refusal(state, record, height) is not None:
        return None  # too late by now, or already in force: refused, never half-applied
    return state.with_param(ParamChange(record["name"], record["value"], height, record_ids))


def _change_add_observer(
    state: ChainState, height: int, proposal: ProposalState, record_ids: tuple[str, ...]
) -> ChainState | None:
    """An admitted observer: peers serve its sync requests from the next block."""
    record = proposal.record
    if state.key_in_use(record["node_pubkey"]):
        return None  # taken while the vote was open: refused, never half-applied
    info = ObserverInfo(
        record["node_pubkey"], record["state"], record["label"], height + 1, proposal.id
    )
    return state.with_observer(info)


def _change_remove_observer(
    state: ChainState, height: int, proposal: ProposalState, record_ids: tuple[str, ...]
) -> ChainState | None:
    info = state.observer(proposal.record["node_pubkey"])
    if info is None or info.state != proposal.subject:
        return None
    return state.with_observer(replace(info, until_height=height + 1))


#: Decided actions that change the chain state but not the validator set.
_STATE_CHANGES: Final[
    Mapping[
        str,
        Callable[[ChainState, int, ProposalState, tuple[str, ...]], ChainState | None],
    ]
] = MappingProxyType(
    {
        "rotate_enc_key": _change_enc_key,
        "set_param": _change_param,
        "add_observer": _change_add_observer,
        "remove_observer": _change_remove_observer,
    }
)


# --- misbehaviour -------------------------------------------------------------------------


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


def apply_misbehaviour(state: ChainState, height: int, envelope: Envelope) -> ChainState:
    record = envelope.record
    first = parse_evidence(record).first
    h, r, kind = message_slot(first)
    entry = MisbehaviourEntry(
        evidence_id(first),
        envelope.id,
        height,
        envelope.actor_state,
        record["offender_state"],
        record["offender_pubkey"],
        h,
        r,
        kind,
    )
    return state.with_misbehaviour(entry)


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


# --- the registry -------------------------------------------------------------------------

GOVERNANCE: Final[Mapping[str, GovernanceType]] = MappingProxyType(
    {
        d.name: d
        for d in (
            GovernanceType(
                "enroll_key",
                shape=govshapes.check_enroll_key,
                check=check_enroll,
                conflict=key_conflict,
                apply=apply_enroll,
                audited=True,
            ),
            GovernanceType(
                "revoke_key",
                shape=govshapes.check_revoke_key,
                check=check_revoke,
                conflict=key_conflict,
                apply=apply_revoke,
                audited=True,
            ),
            GovernanceType(
                "member_proposal",
                shape=govshapes.check_member_proposal,
                check=check_proposal,
                conflict=lambda _, r: f"member:{proposal_subject(r)}",
                apply=apply_proposal,
                audited=True,
            ),
            GovernanceType(
                "member_vote",
                shape=govshapes.check_member_vote,
                check=check_vote,
                conflict=lambda _, r: f"vote:{r['proposal']}:{r['actor']['state']}",
                apply=apply_vote,
                audited=True,
            ),
            GovernanceType(
                "misbehaviour",
                shape=govshapes.check_misbehaviour,
                check=check_misbehaviour,
                conflict=lambda _, r: f"evidence:{evidence_id_of(r)}",
                apply=apply_misbehaviour,
                audited=False,  # it records evidence; signing rights and sets stay
            ),
            GovernanceType(
                "directory_entry",
                shape=govshapes.check_directory_entry,
                check=check_directory,
                conflict=directory_conflict,
                apply=apply_directory,
                audited=False,  # contact data and treaties; signing rights and sets stay
            ),
        )
    }
)


# --- dispatch: what Application calls -------------------------------------------------------


def check(state: ChainState, envelope: Envelope, at_time: datetime) -> None:
    """The state rules of a governance record (after ``ChainState.authorise``)."""
    descriptor = GOVERNANCE.get(envelope.type)
    if descriptor is not None:
        descriptor.check(state, envelope, at_time)


def conflict_key(state: ChainState, envelope: Envelope) -> str | None:
    """Records with the same key may not share a block (module docstring)."""
    descriptor = GOVERNANCE.get(envelope.type)
    return descriptor.conflict(state, envelope.record) if descriptor is not None else None


def apply_records(state: ChainState, height: int, envelopes: Sequence[Envelope]) -> ChainState:
    """The state after the governance records of block ``height`` (also the replay's step)."""
    for envelope in envelopes:
        descriptor = GOVERNANCE.get(envelope.type)
        if descriptor is not None:
            state = descriptor.apply(state, height, envelope)
    return state


def apply_block(state: ChainState, height: int, envelopes: Sequence[Envelope]) -> ChainState:
    """The state after committing block ``height``, the block after ``state.height``."""
    if height != state.height + 1:
        raise InvariantViolation(f"apply_block({height}) after {state.height}")
    return apply_records(state, height, envelopes).at_height(height)
