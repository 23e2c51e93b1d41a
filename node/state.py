"""Chain state that decides who may write: enrolled keys and the validator set.

The state is a deterministic function of genesis and the committed chain, so
every node applies the same rules at the same height, both at ingress (the
mempool) and when it validates a proposed block. ``apply_block`` is the only
mutator; it is called once per committed block, in height order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger.block import Validator, sorted_validators
from ledger.errors import Forbidden
from ledger.records import Envelope
from ledger.roles import allowed_types
from node.genesis import Genesis


@dataclass(frozen=True, slots=True)
class KeyGrant:
    """An enrolled signing key: its state, roles and agency."""

    state: str
    roles: frozenset[str]
    agency: str
    revoked_at: int | None = None     # height of the block that revoked it
    not_after: str | None = None


@dataclass
class ChainState:
    genesis: Genesis
    keys: dict[str, KeyGrant] = field(default_factory=dict)
    validators_by_height: dict[int, tuple[Validator, ...]] = field(default_factory=dict)
    height: int = 0

    @classmethod
    def from_genesis(cls, genesis: Genesis) -> ChainState:
        state = cls(genesis)
        for member in genesis.members:
            for admin in member.admin_pubkeys:
                state.keys[admin] = KeyGrant(member.state, frozenset({"admin"}),
                                             f"{member.name} administration")
        for grant in genesis.enrollments:
            state.keys[grant.pubkey] = KeyGrant(grant.state, frozenset(grant.roles), grant.agency)
        state.validators_by_height[1] = genesis.validators()
        return state

    def validators(self, height: int) -> tuple[Validator, ...]:
        """The validator set of ``height`` (the latest change at or below it)."""
        best = max(h for h in self.validators_by_height if h <= max(height, 1))
        return self.validators_by_height[best]

    def member_states(self, height: int) -> list[str]:
        return [v.state for v in self.validators(height)]

    def authorise(self, envelope: Envelope) -> KeyGrant:
        """Raise ``Forbidden`` unless the signer may sign this record for its state."""
        grant = self.keys.get(envelope.signer)
        if grant is None:
            raise Forbidden("signer is not an enrolled key", field="signer",
                            code="signer_not_enrolled")
        if grant.revoked_at is not None:
            raise Forbidden(f"signer was revoked at height {grant.revoked_at}", field="signer",
                            code="signer_revoked")
        if envelope.actor_state != grant.state:
            raise Forbidden(f"record.actor.state is {envelope.actor_state} but the signer is "
                            f"enrolled for {grant.state}", field="record.actor.state",
                            code="wrong_state")
        if envelope.type not in allowed_types(tuple(grant.roles)):
            raise Forbidden(f"roles {sorted(grant.roles)} may not sign record.type "
                            f"{envelope.type!r}", field="record.type", code="role_not_allowed")
        return grant

    def apply_block(self, height: int, envelopes: Sequence[Envelope]) -> None:
        """Advance to ``height``; governance records change the state here."""
        assert height == self.height + 1, f"apply_block({height}) after {self.height}"
        self.apply_records(height, envelopes)
        self.height = height

    def apply_records(self, height: int, envelopes: Sequence[Envelope]) -> None:
        """Apply the governance records of block ``height`` (also used on replay)."""
        for envelope in envelopes:
            handler = _HANDLERS.get(envelope.type)
            if handler is not None:
                handler(self, height, envelope.record)


def _enroll(state: ChainState, height: int, record: Mapping[str, Any]) -> None:
    state.keys[record["pubkey"]] = KeyGrant(record["actor"]["state"],
                                            frozenset(record["roles"]), record["agency"],
                                            not_after=record.get("not_after"))


def _revoke(state: ChainState, height: int, record: Mapping[str, Any]) -> None:
    grant = state.keys.get(record["pubkey"])
    if grant is not None and grant.state == record["actor"]["state"]:
        state.keys[record["pubkey"]] = KeyGrant(grant.state, grant.roles, grant.agency,
                                                revoked_at=height, not_after=grant.not_after)


_HANDLERS = {"enroll_key": _enroll, "revoke_key": _revoke}


def with_validators(state: ChainState, height: int, validators: Sequence[Validator]) -> None:
    state.validators_by_height[height] = sorted_validators(validators)
