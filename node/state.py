"""Chain state that decides who may write: keys, members, validator sets, proposals.

Theory of operation
-------------------
The state is a deterministic function of genesis and the committed chain, so
every node applies the same rules at the same height, both at ingress (the
mempool) and when it validates a proposed block. A record is checked against
the state after block ``height`` (``authorise``, then the type's rules in
``node.governance``); a block's governance records change the state only once
the whole block is committed (``node.governance.apply_block``, once per block,
in height order, and by the replay at start-up).

``ChainState`` is a value: a frozen dataclass over frozen values
(``node.govtypes``) and read-only maps (``node.frozen.FrozenMap``). A
transition (``with_key``, ``with_proposal``, ... ``at_height``) returns a new
state and leaves the old one as it was, so a reader that holds a state sees
one height throughout, and ``Application`` swaps in the next one on commit.
The rules that choose transitions are in ``node.governance``; this module
holds the data, its reads and the signing check every record meets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from ledger.acts_versions import VERSIONS, activation_param
from ledger.block import Validator
from ledger.directory import Entry
from ledger.errors import Forbidden
from ledger.private import check_class_role, is_private
from ledger.records import Envelope, parse_time
from ledger.roles import allowed_types
from node.frozen import FrozenMap
from node.genesis import Genesis
from node.govtypes import (
    DirectoryState,
    KeyGrant,
    MemberInfo,
    MisbehaviourEntry,
    ObserverInfo,
    ParamChange,
    ProposalState,
    ValidatorChange,
)


def _frozen_dict(items: Mapping[int, tuple[Validator, ...]]) -> Mapping[int, tuple[Validator, ...]]:
    # Validator sets change a few times in a chain's life: a copied, read-only dict.
    return MappingProxyType(dict(items))


_NO_DIRECTORY: Mapping[str, DirectoryState] = MappingProxyType({})
_NO_ENTRIES: Mapping[str, Entry] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ChainState:
    genesis: Genesis
    keys: FrozenMap[str, KeyGrant] = field(default_factory=FrozenMap)
    validators_by_height: Mapping[int, tuple[Validator, ...]] = field(
        default_factory=lambda: _frozen_dict({})
    )
    members: FrozenMap[str, MemberInfo] = field(default_factory=FrozenMap)
    changes: tuple[ValidatorChange, ...] = ()
    proposals: FrozenMap[str, ProposalState] = field(default_factory=FrozenMap)
    misbehaviour: FrozenMap[str, MisbehaviourEntry] = field(default_factory=FrozenMap)
    height: int = 0
    param_changes: tuple[ParamChange, ...] = ()  # passed set_param proposals, in order
    #: Each member's directory entry (``directory_entry`` records, docs/DIRECTORY.md):
    #: one per member at most, so a copied read-only dict (read on every act's check).
    directory: Mapping[str, DirectoryState] = field(default_factory=lambda: _NO_DIRECTORY)
    #: Observer nodes ever admitted (``add_observer``), by node key; a removed one
    #: keeps its entry with ``until_height`` set, so its key is never taken again.
    observers: FrozenMap[str, ObserverInfo] = field(default_factory=FrozenMap)

    @classmethod
    def from_genesis(cls, genesis: Genesis) -> ChainState:
        keys: dict[str, KeyGrant] = {}
        for member in genesis.members:
            for admin in member.admin_pubkeys:
                keys[admin] = KeyGrant(
                    member.state, frozenset({"admin"}), f"{member.name} administration"
                )
        for grant in genesis.enrollments:
            keys[grant.pubkey] = KeyGrant(grant.state, frozenset(grant.roles), grant.agency)
        return cls(
            genesis,
            keys=FrozenMap(keys),
            validators_by_height=_frozen_dict({1: genesis.validators()}),
            members=FrozenMap((m.state, MemberInfo.from_genesis(m)) for m in genesis.members),
        )

    # --- reads ----------------------------------------------------------------------

    def validators(self, height: int) -> tuple[Validator, ...]:
        """The validator set of ``height`` (the latest change at or below it)."""
        return self.validators_by_height[self.set_since(height)]

    def set_since(self, height: int) -> int:
        """The height from which the set of ``height`` holds."""
        return max(h for h in self.validators_by_height if h <= max(height, 1))

    def latest_validators(self) -> tuple[Validator, ...]:
        """The newest scheduled set: what a change decided now starts from."""
        return self.validators_by_height[max(self.validators_by_height)]

    def member_states(self, height: int) -> list[str]:
        return [v.state for v in self.validators(height)]

    def expiry_blocks(self) -> int:
        return self.genesis.consensus.proposal_expiry_blocks

    def enc_pubkey_at(self, state: str, height: int) -> str | None:
        """The X25519 key ``state``'s sealed entries in block ``height`` should use.

        None if the chain never knew ``state``. Each ``rotate_enc_key`` decided
        in block H moves the answer to the new key from H+1.
        """
        info = self.members.get(state)
        return None if info is None else info.enc_pubkey_at(height)

    def enc_key_used(self, pubkey: str) -> bool:
        """Any member's X25519 key, now or before: a rotation never reuses one."""
        return any(pubkey in info.enc_pubkeys() for info in self.members.values())

    def param(self, name: str) -> int | None:
        """A consortium parameter: the newest passed ``set_param``, else genesis."""
        for change in reversed(self.param_changes):
            if change.name == name:
                return change.value
        value: int | None = getattr(self.genesis.consensus, name)
        return value

    def need_to_know_from_height(self) -> int | None:
        return self.param("need_to_know_from_height")

    def need_to_know_active(self, height: int) -> bool:
        """Whether acts of block ``height`` follow the need-to-know rules (issue 17).

        False on a chain whose genesis leaves the parameter out until a passed
        ``set_param`` names a height; the height is always decided more than
        ``CHANGE_DELAY_BLOCKS`` blocks ahead, and never moved once reached, so
        every node gives the same answer for a height whenever it asks.
        """
        start = self.need_to_know_from_height()
        return start is not None and height >= start

    def catalogue_version(self, height: int) -> int:
        """The act catalogue version in force for acts of block ``height`` (issue 18).

        Version 1 from genesis; each later version from the height its
        ``catalogue_v<N>_from_height`` parameter names (genesis or a passed
        ``set_param``), decided ahead and never moved once reached, so every node
        gives the same answer for a height whenever it asks
        (``ledger/acts_versions.py``).
        """
        version = 1
        for candidate in VERSIONS[1:]:
            name = activation_param(candidate)
            start = self.param(name) if name is not None else None
            if start is None or height < start:
                break
            version = candidate
        return version

    def observer(self, pubkey: str) -> ObserverInfo | None:
        """The admitted, not removed, observer with node key ``pubkey``, or None."""
        info = self.observers.get(pubkey)
        return info if info is not None and info.until_height is None else None

    def observer_party_state(self, pubkey: str) -> str | None:
        """The member state an admitted observer is a party node for, or None (not an
        observer, or a foreign observer: its state is not a member of the next height)."""
        info = self.observer(pubkey)
        if info is None or info.state not in self.member_states(self.height + 1):
            return None
        return info.state

    def key_in_use(self, pubkey: str) -> bool:
        """Enrolled (ever) as a signing key, a node key of any known member, or of any
        observer ever admitted."""
        return (
            pubkey in self.keys
            or pubkey in self.observers
            or any(m.node_pubkey == pubkey for m in self.members.values())
            or any(v.pubkey == pubkey for vs in self.validators_by_height.values() for v in vs)
        )

    def authorise(self, envelope: Envelope, at_time: datetime) -> KeyGrant:
        """Raise ``Forbidden`` unless the signer may sign this record for its state now.

        Who may sign which type is the one role table, ``ledger.roles``; each
        governance descriptor shows its row as ``GovernanceType.signers``.
        """
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
        if expired(grant, at_time):
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
        if envelope.body is None and is_private(envelope.record):
            check_class_role(envelope.record, grant.roles)  # all a non-party can see
        elif envelope.type not in allowed_types(tuple(grant.roles)):
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

    # --- transitions: each returns a new state ------------------------------------------

    def with_key(self, pubkey: str, grant: KeyGrant) -> ChainState:
        return self._with(keys=self.keys.set(pubkey, grant))

    def with_member(self, info: MemberInfo) -> ChainState:
        return self._with(members=self.members.set(info.state, info))

    def with_proposal(self, proposal: ProposalState) -> ChainState:
        return self._with(proposals=self.proposals.set(proposal.id, proposal))

    def with_misbehaviour(self, entry: MisbehaviourEntry) -> ChainState:
        return self._with(misbehaviour=self.misbehaviour.set(entry.evidence_id, entry))

    def with_validator_change(
        self, change: ValidatorChange, validators: tuple[Validator, ...]
    ) -> ChainState:
        """The set ``validators`` applies from ``change.height``."""
        sets = _frozen_dict({**self.validators_by_height, change.height: validators})
        return self._with(validators_by_height=sets, changes=(*self.changes, change))

    def with_param(self, change: ParamChange) -> ChainState:
        return self._with(param_changes=(*self.param_changes, change))

    def with_observer(self, info: ObserverInfo) -> ChainState:
        return self._with(observers=self.observers.set(info.node_pubkey, info))

    def with_directory(self, state: str, entry: DirectoryState) -> ChainState:
        return self._with(directory=MappingProxyType({**self.directory, state: entry}))

    def directory_entries(self) -> Mapping[str, Entry]:
        """Each member's current directory entry, parsed (what the treaty rules read)."""
        if not self.directory:
            return _NO_ENTRIES
        return {state: d.entry for state, d in self.directory.items()}

    def at_height(self, height: int) -> ChainState:
        return self._with(height=height)

    def _with(
        self,
        *,
        keys: FrozenMap[str, KeyGrant] | None = None,
        validators_by_height: Mapping[int, tuple[Validator, ...]] | None = None,
        members: FrozenMap[str, MemberInfo] | None = None,
        changes: tuple[ValidatorChange, ...] | None = None,
        proposals: FrozenMap[str, ProposalState] | None = None,
        misbehaviour: FrozenMap[str, MisbehaviourEntry] | None = None,
        height: int | None = None,
        param_changes: tuple[ParamChange, ...] | None = None,
        directory: Mapping[str, DirectoryState] | None = None,
        observers: FrozenMap[str, ObserverInfo] | None = None,
    ) -> ChainState:
        # ``dataclasses.replace`` costs more than the map update itself; one record
        # is one call here, so the copy is spelt out.
        return ChainState(
            self.genesis,
            self.keys if keys is None else keys,
            self.validators_by_height if validators_by_height is None else validators_by_height,
            self.members if members is None else members,
            self.changes if changes is None else changes,
            self.proposals if proposals is None else proposals,
            self.misbehaviour if misbehaviour is None else misbehaviour,
            self.height if height is None else height,
            self.param_changes if param_changes is None else param_changes,
            self.directory if directory is None else directory,
            self.observers if observers is None else observers,
        )


def expired(grant: KeyGrant, at_time: datetime) -> bool:
    return grant.not_after is not None and at_time > parse_time(grant.not_after, "not_after")
