"""Chain state that decides who may write: keys, members, validator sets, proposals.

Theory of operation
-------------------
The state is a deterministic function of genesis and the committed chain, so
every node applies the same rules at the same height, both at ingress (the
mempool) and when it validates a proposed block. A record is checked against
the state after block ``height`` (``authorise`` then ``check``); a block's
governance records change the state only once the whole block is committed
(``apply_block``, called once per block, in height order, and by the replay
at start-up). Two consequences, both documented in docs/GOVERNANCE.md:

* a revocation committed in block H is effective from block H+1: records the
  key signed that are in H or earlier stay committed and valid, later ones
  are refused with ``signer_revoked``;
* records of one block are judged against the state before that block, so
  two records that would conflict with each other (two votes of one state,
  two enrolments of one key, ...) are kept apart by ``conflict_key``: a block
  holds at most one record per key. Enrolments and revocations of a key that
  is an admin key share ``admins:<state>``: ``last_admin`` is judged against
  the state before the block, so two admin revocations in one block could
  otherwise leave the state with no admin at all.

Membership and validator-set changes are in ``node.governance``; this module
holds keys and the dispatch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from ledger.block import Validator
from ledger.errors import Conflict, Forbidden, InvariantViolation, RecordInvalid
from ledger.records import Envelope, parse_time
from ledger.roles import allowed_types
from node import governance as gov
from node.genesis import Genesis


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


@dataclass
class ChainState:
    genesis: Genesis
    keys: dict[str, KeyGrant] = field(default_factory=dict)
    validators_by_height: dict[int, tuple[Validator, ...]] = field(default_factory=dict)
    members: dict[str, gov.MemberInfo] = field(default_factory=dict)
    changes: list[gov.ValidatorChange] = field(default_factory=list)
    proposals: dict[str, gov.ProposalState] = field(default_factory=dict)
    misbehaviour: dict[str, gov.MisbehaviourEntry] = field(default_factory=dict)
    height: int = 0

    @classmethod
    def from_genesis(cls, genesis: Genesis) -> ChainState:
        state = cls(genesis)
        for member in genesis.members:
            state.members[member.state] = gov.MemberInfo.from_genesis(member)
            for admin in member.admin_pubkeys:
                state.keys[admin] = KeyGrant(
                    member.state, frozenset({"admin"}), f"{member.name} administration"
                )
        for grant in genesis.enrollments:
            state.keys[grant.pubkey] = KeyGrant(grant.state, frozenset(grant.roles), grant.agency)
        state.validators_by_height[1] = genesis.validators()
        return state

    # --- reads ----------------------------------------------------------------------

    def validators(self, height: int) -> tuple[Validator, ...]:
        """The validator set of ``height`` (the latest change at or below it)."""
        best = max(h for h in self.validators_by_height if h <= max(height, 1))
        return self.validators_by_height[best]

    def latest_validators(self) -> tuple[Validator, ...]:
        """The newest scheduled set: what a change decided now starts from."""
        return self.validators_by_height[max(self.validators_by_height)]

    def member_states(self, height: int) -> list[str]:
        return [v.state for v in self.validators(height)]

    def expiry_blocks(self) -> int:
        return self.genesis.consensus.proposal_expiry_blocks

    def key_in_use(self, pubkey: str) -> bool:
        """Enrolled (ever) as a signing key, or a node key of any known member."""
        return (
            pubkey in self.keys
            or any(m.node_pubkey == pubkey for m in self.members.values())
            or any(v.pubkey == pubkey for vs in self.validators_by_height.values() for v in vs)
        )

    def set_origin(self, height: int) -> dict[str, Any]:
        """Since which height the set of ``height`` holds, and the records that made it."""
        since = max(h for h in self.validators_by_height if h <= max(height, 1))
        return {
            "since_height": since,
            "changes": [c.to_json() for c in self.changes if c.height == since],
        }

    def members_view(self) -> list[dict[str, Any]]:
        """Every member the chain has known; ``validating`` is for the next height."""
        current = set(self.member_states(self.height + 1))
        return [
            {**info.to_json(), "validating": state in current}
            for state, info in sorted(self.members.items())
        ]

    def proposals_view(self, status: str | None) -> list[dict[str, Any]]:
        rows = [
            p.to_json(self.height + 1, self.expiry_blocks())
            for p in sorted(self.proposals.values(), key=lambda p: (p.height, p.id))
        ]
        return [row for row in rows if status is None or row["status"] == status]

    def misbehaviour_view(self, offender_state: str | None) -> list[dict[str, Any]]:
        rows = sorted(self.misbehaviour.values(), key=lambda m: (m.committed_at, m.record_id))
        return [
            m.to_json()
            for m in rows
            if offender_state is None or m.offender_state == offender_state
        ]

    # --- rules ----------------------------------------------------------------------

    def authorise(self, envelope: Envelope, at_time: datetime) -> KeyGrant:
        """Raise ``Forbidden`` unless the signer may sign this record for its state now."""
        grant = self.keys.get(envelope.signer) or self._node_grant(envelope.signer)
        if grant is None:
            raise Forbidden(
                "signer is not an enrolled key", field="signer", code="signer_not_enrolled"
            )
        if grant.revoked_at is not None:
            raise Forbidden(
                f"signer was revoked at height {grant.revoked_at}",
                field="signer",
                code="signer_revoked",
            )
        if _expired(grant, at_time):
            raise Forbidden(
                f"signer's enrolment ended at {grant.not_after}",
                field="signer",
                code="signer_expired",
            )
        if envelope.actor_state != grant.state:
            raise Forbidden(
                f"record.actor.state is {envelope.actor_state} but the signer is "
                f"enrolled for {grant.state}",
                field="record.actor.state",
                code="wrong_state",
            )
        if grant.state not in self.member_states(self.height + 1):
            raise Forbidden(
                f"{grant.state} is not a member state at height {self.height + 1}",
                field="record.actor.state",
                code="state_not_member",
            )
        if envelope.type not in allowed_types(tuple(grant.roles)):
            raise Forbidden(
                f"roles {sorted(grant.roles)} may not sign record.type {envelope.type!r}",
                field="record.type",
                code="role_not_allowed",
            )
        return grant

    def _node_grant(self, pubkey: str) -> KeyGrant | None:
        """A validator node key of the next height acts with the ``node`` role."""
        for validator in self.validators(self.height + 1):
            if validator.pubkey == pubkey:
                return KeyGrant(validator.state, frozenset({"node"}), "validator node")
        return None

    def check(self, envelope: Envelope, at_time: datetime) -> None:
        """The state-dependent rules of governance records (after ``authorise``)."""
        rule = _CHECKS.get(envelope.type)
        if rule is not None:
            rule(self, envelope, at_time)

    def conflict_key(self, envelope: Envelope) -> str | None:
        """Records with the same key may not share a block (see the module docstring)."""
        keyer = _CONFLICT_KEYS.get(envelope.type)
        return keyer(self, envelope.record) if keyer is not None else None

    def _key_conflict(self, record: Mapping[str, Any]) -> str:
        # Per admin-holding state, else per key: an enrolment and a revocation of one
        # key always get the same key either way, so a revoked key is never renewed
        # in the block that revokes it.
        grant = self.keys.get(record["pubkey"])
        if grant is not None and "admin" in grant.roles:
            return f"admins:{grant.state}"
        return f"key:{record['pubkey']}"

    # --- mutation -------------------------------------------------------------------

    def apply_block(self, height: int, envelopes: Sequence[Envelope]) -> None:
        """Advance to ``height``; governance records change the state here."""
        if height != self.height + 1:
            raise InvariantViolation(f"apply_block({height}) after {self.height}")
        self.apply_records(height, envelopes)
        self.height = height

    def apply_records(self, height: int, envelopes: Sequence[Envelope]) -> None:
        """Apply the governance records of block ``height`` (also used on replay)."""
        for envelope in envelopes:
            handler = _HANDLERS.get(envelope.type)
            if handler is not None:
                handler(self, height, envelope)


def _expired(grant: KeyGrant, at_time: datetime) -> bool:
    return grant.not_after is not None and at_time > parse_time(grant.not_after, "not_after")


# --- keys: rules and effects --------------------------------------------------------------


def _check_enroll(state: ChainState, envelope: Envelope, at_time: datetime) -> None:
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
    if grant is not None and not _expired(grant, at_time):
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


def _check_revoke(state: ChainState, envelope: Envelope, at_time: datetime) -> None:
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
        and not _expired(g, at_time)
        for k, g in state.keys.items()
    ):
        raise Conflict(
            f"key is the last active admin key of {grant.state}; enrol another admin first",
            field="record.pubkey",
            code="last_admin",
        )


def _enroll(state: ChainState, height: int, envelope: Envelope) -> None:
    record = envelope.record
    state.keys[record["pubkey"]] = KeyGrant(
        record["actor"]["state"],
        frozenset(record["roles"]),
        record["agency"],
        not_after=record.get("not_after"),
        enrolled_at=height,
        record_id=envelope.id,
    )


def _revoke(state: ChainState, height: int, envelope: Envelope) -> None:
    grant = state.keys.get(envelope.record["pubkey"])
    if grant is None or grant.state != envelope.actor_state:
        raise InvariantViolation(f"revoke of {envelope.record['pubkey']} applied unchecked")
    state.keys[envelope.record["pubkey"]] = replace(grant, revoked_at=height)


# --- dispatch tables ------------------------------------------------------------------------

Check = Callable[[ChainState, Envelope, datetime], None]
Handler = Callable[[ChainState, int, Envelope], None]

_CHECKS: dict[str, Check] = {
    "enroll_key": _check_enroll,
    "revoke_key": _check_revoke,
    "member_proposal": gov.check_proposal,
    "member_vote": gov.check_vote,
    "misbehaviour": gov.check_misbehaviour,
}
_HANDLERS: dict[str, Handler] = {
    "enroll_key": _enroll,
    "revoke_key": _revoke,
    "member_proposal": gov.apply_proposal,
    "member_vote": gov.apply_vote,
    "misbehaviour": gov.apply_misbehaviour,
}
_CONFLICT_KEYS: dict[str, Callable[[ChainState, Mapping[str, Any]], str]] = {
    "enroll_key": ChainState._key_conflict,
    "revoke_key": ChainState._key_conflict,
    "member_proposal": lambda _, r: f"member:{r['state']}",
    "member_vote": lambda _, r: f"vote:{r['proposal']}:{r['actor']['state']}",
    "misbehaviour": lambda _, r: f"evidence:{gov.evidence_id_of(r)}",
}
