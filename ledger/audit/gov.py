"""Governance replay for the offline auditor: who validates and who may sign, per height.

Theory of operation
-------------------
An auditor must know, for every height H, the validator set that signs the
certificate of block H and which keys may sign which record types for which
state. Both are deterministic functions of the genesis document and the
governance records of blocks 1..H-1 (docs/GOVERNANCE.md). This module
re-implements that function from the documentation, independently of
``node/state.py`` and ``node/governance.py``, with the standard library only:

* keys: genesis admin keys (role ``admin``) and genesis enrolments;
  ``enroll_key`` grants (or renews) a key from the next block, ``revoke_key``
  refuses it in every later block; ``not_after`` is compared with the block time;
* a validator node key of height H may sign ``misbehaviour`` (role ``node``);
* membership: ``member_proposal`` opens a proposal (``rotate_key`` and
  ``rotate_enc_key`` are decided by the block that commits it; ``set_param``
  is about ``param:<name>``, not a state, and sets ``params`` when it passes
  with a height above the deciding one + 2); ``member_vote`` tallies the votes of the
  member states of H and ``ledger.quorum.vote_outcome`` decides (more than
  2/3 yes passes; rejected once 2/3 can no longer be reached); a proposal
  committed at P takes votes in P+1..P+expiry. A decision in block H
  schedules the new set at H+2, built from the newest scheduled set;
  ``add_observer``/``remove_observer`` (about their ``state``) change no set,
  but an observer's node key counts as used, as the node's rules say.

Simplifications, on purpose: this replay checks what decides validator sets
and signing rights (unknown/closed/expired proposals, double votes, re-keying
another state, an open proposal about the same state) but not the remaining
state rules of governance records (``last_admin``, ``key_already_enrolled``,
``not_after_past``, misbehaviour evidence) nor act field rules, nonce
uniqueness or clock skew: those the certificate's quorum vouches for. A
record that would break them does not change what the replay derives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple

from ledger.errors import VerificationError
from ledger.quorum import vote_outcome

#: The auditor's tables are copies, as data: it does not import the node's code.
#: tests/unit/test_audit_core.py checks each against ``ledger/roles.py`` and the node's
#: governance registry (``node/governance.py`` GOVERNANCE).
#:
#: A copy of ``ledger/roles.py`` ROLE_TYPES.
ROLE_TYPES: Final[dict[str, frozenset[str]]] = {
    "investigator": frozenset(
        {
            "art32_access",
            "custody_event",
            "direct_provider_request",
            "eio",
            "emergency_disclosure",
            "epoc",
            "epoc_pr",
            "exchange_receipt",
            "joint_investigation",
            "online_extraction",
            "preservation_request",
            "production_order",
            "realtime_collection",
            "remote_inspection",
            "search_seizure",
            "spontaneous_information",
            "technical_measure",
            "video_conference",
        }
    ),
    "authority": frozenset(
        {
            "addressee_report",
            "conditions_acknowledgement",
            "custody_event",
            "direct_provider_request",
            "eio",
            "eio_response",
            "epoc_enforcing_decision",
            "emergency_disclosure",
            "epoc",
            "epoc_pr",
            "exchange_receipt",
            "jit_accession",
            "jit_agreement",
            "joint_investigation",
            "mla_request",
            "mla_response",
            "preservation_request",
            "preservation_response",
            "production_order",
            "provider_request_answer",
            "sovereignty_response",
            "spontaneous_information",
            "technical_measure",
            "traffic_path_disclosure",
        }
    ),
    "integration": frozenset({"exchange_receipt"}),
    "auditor": frozenset(),
    "admin": frozenset(
        {
            "directory_entry",
            "enroll_key",
            "member_proposal",
            "member_vote",
            "misbehaviour",
            "revoke_key",
        }
    ),
    "node": frozenset({"body_purge", "body_violation", "misbehaviour"}),
}
#: A copy of ``ledger/private.py`` TYPE_CLASSES: what a private act's header names
#: instead of its type (a signer needs a role that may sign some type of the class).
TYPE_CLASSES: Final[dict[str, frozenset[str]]] = {
    "request": frozenset(
        {
            "mla_request",
            "preservation_request",
            "production_order",
            "eio",
            "epoc",
            "epoc_pr",
            "emergency_disclosure",
            "direct_provider_request",
        }
    ),
    "answer": frozenset(
        {
            "mla_response",
            "sovereignty_response",
            "conditions_acknowledgement",
            "preservation_response",
            "traffic_path_disclosure",
            "provider_request_answer",
            "epoc_enforcing_decision",
            "addressee_report",
            "eio_response",
        }
    ),
    "measure": frozenset(
        {
            "online_extraction",
            "remote_inspection",
            "technical_measure",
            "search_seizure",
            "realtime_collection",
            "art32_access",
            "video_conference",
        }
    ),
    "custody": frozenset({"custody_event"}),
    "cooperation": frozenset(
        {"spontaneous_information", "joint_investigation", "jit_agreement", "jit_accession"}
    ),
    "receipt": frozenset({"exchange_receipt"}),
}
#: Every governance record type (the node registry's names).
GOVERNANCE_TYPES: Final = frozenset(
    {
        "enroll_key",
        "revoke_key",
        "member_proposal",
        "member_vote",
        "misbehaviour",
        "directory_entry",
    }
)
#: The governance types this replay applies: those that change signing rights or
#: validator sets (the registry's ``audited``). ``misbehaviour`` records evidence
#: only, and ``directory_entry`` contact data and treaties: neither changes who signs.
REPLAYED_TYPES: Final = ("enroll_key", "revoke_key", "member_proposal", "member_vote")
#: A change decided in block H applies from H + 2.
CHANGE_DELAY_BLOCKS: Final = 2
#: member_proposal actions: those that change the validator set, those a state's
#: own admin decides alone, and the parameters ``set_param`` may set.
SET_ACTIONS: Final = ("add", "remove", "rotate_key")
SELF_ACTIONS: Final = ("rotate_key", "rotate_enc_key")
#: Observer nodes: voted like membership; they change who may read, not who signs.
OBSERVER_ACTIONS: Final = ("add_observer", "remove_observer")
PARAMS: Final = (
    "need_to_know_from_height",
    "catalogue_v2_from_height",
    "catalogue_v3_from_height",
)


class AuditFailure(VerificationError):
    """The chain or bundle fails a check. ``height`` is where (None: not tied to one)."""

    def __init__(self, code: str, detail: str, *, height: int | None = None) -> None:
        where = f"height {height}: " if height is not None else ""
        super().__init__(f"{where}{code}: {detail}")
        self.code = code
        self.detail = detail
        self.height = height


class Seat(NamedTuple):
    """One validator: a member state and its node key."""

    state: str
    pubkey: str


@dataclass(slots=True)
class Grant:
    state: str
    roles: frozenset[str]
    not_after: str | None = None
    revoked_at: int | None = None


@dataclass(slots=True)
class Proposal:
    id: str
    action: str
    subject: str
    height: int
    record: Mapping[str, Any]
    votes: dict[str, str] = field(default_factory=dict)
    status: str = "open"  # open | passed | rejected; "expired" is derived


@dataclass(frozen=True, slots=True)
class Change:
    """A validator-set change: effective from ``height``, decided by ``record_ids``."""

    height: int
    decided_at: int
    action: str
    state: str
    record_ids: tuple[str, ...]


def parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


class GovState:
    """The replayed governance state after the blocks applied so far."""

    def __init__(self, genesis: Mapping[str, Any]) -> None:
        self.chain_id: str = genesis["chain_id"]
        self.expiry_blocks: int = genesis["consensus"]["proposal_expiry_blocks"]
        self.keys: dict[str, Grant] = {}
        self.proposals: dict[str, Proposal] = {}
        self.changes: list[Change] = []
        for member in genesis["members"]:
            for admin in member["admin_pubkeys"]:
                self.keys[admin] = Grant(member["state"], frozenset({"admin"}))
        for grant in genesis["enrollments"]:
            self.keys[grant["pubkey"]] = Grant(grant["state"], frozenset(grant["roles"]))
        first = tuple(sorted(Seat(m["state"], m["node_pubkey"]) for m in genesis["members"]))
        self.sets: dict[int, tuple[Seat, ...]] = {1: first}
        self.node_keys: set[str] = {s.pubkey for s in first}
        #: Observer node keys ever admitted, and the admitted ones' states.
        self.observer_keys: set[str] = set()
        self.observers: dict[str, str] = {}
        #: Height parameters (``need_to_know_from_height``): genesis, then passed set_param.
        self.params: dict[str, int] = {
            name: genesis["consensus"][name]
            for name in PARAMS
            if genesis["consensus"].get(name) is not None
        }

    # --- reads ----------------------------------------------------------------------------

    def validators(self, height: int) -> tuple[Seat, ...]:
        """The set of ``height``: the latest scheduled at or below it."""
        return self.sets[max(h for h in self.sets if h <= max(height, 1))]

    def known_through(self) -> int:
        """Sets are known up to this height (the newest scheduled change)."""
        return max(self.sets)

    def authorise(
        self, height: int, block_time: datetime, signer: str, record: Mapping[str, Any]
    ) -> tuple[str, str] | None:
        """None if ``signer`` may sign ``record`` in block ``height``, else (code, detail)."""
        seats = self.validators(height)
        grant = self.keys.get(signer) or next(
            (Grant(s.state, frozenset({"node"})) for s in seats if s.pubkey == signer), None
        )
        if grant is None:
            return "signer_not_enrolled", f"signer {signer[:16]}… is not an enrolled key"
        if grant.revoked_at is not None:
            return "signer_revoked", f"signer was revoked at height {grant.revoked_at}"
        if grant.not_after is not None and block_time > parse_utc(grant.not_after):
            return "signer_expired", f"signer's enrolment ended at {grant.not_after}"
        actor = record["actor"]["state"]
        if actor != grant.state:
            return (
                "wrong_state",
                f"actor.state {actor} but the signer is enrolled for {grant.state}",
            )
        if grant.state not in {s.state for s in seats}:
            return "state_not_member", f"{grant.state} is not a member at height {height}"
        allowed = frozenset().union(*(ROLE_TYPES.get(r, frozenset()) for r in grant.roles))
        if record["type"] == "private_act":  # a header: the class is all anyone sees
            if allowed & TYPE_CLASSES.get(str(record.get("class")), frozenset()):
                return None
            return (
                "role_not_allowed",
                f"roles {sorted(grant.roles)} may not sign acts of class {record.get('class')!r}",
            )
        if record["type"] not in allowed:
            return (
                "role_not_allowed",
                f"roles {sorted(grant.roles)} may not sign {record['type']!r}",
            )
        return None

    def _key_in_use(self, pubkey: str) -> bool:
        return pubkey in self.keys or pubkey in self.node_keys or pubkey in self.observer_keys

    # --- effects of one block --------------------------------------------------------------

    def apply_block(self, height: int, records: list[tuple[str, Mapping[str, Any]]]) -> None:
        """Apply the governance records (id, record) of block ``height``, in block order."""
        for record_id, record in records:
            handler = _HANDLERS.get(record["type"])
            if handler is None:
                continue
            try:
                handler(self, height, record_id, record)
            except (KeyError, TypeError, ValueError) as exc:
                raise AuditFailure(
                    "bad_governance_record",
                    f"record {record_id} is malformed ({exc!r})",
                    height=height,
                ) from exc

    def _enroll(self, height: int, record_id: str, record: Mapping[str, Any]) -> None:
        self.keys[record["pubkey"]] = Grant(
            record["actor"]["state"], frozenset(record["roles"]), not_after=record.get("not_after")
        )

    def _revoke(self, height: int, record_id: str, record: Mapping[str, Any]) -> None:
        grant = self.keys.get(record["pubkey"])
        if grant is None or grant.state != record["actor"]["state"]:
            raise AuditFailure(
                "bad_revocation",
                f"record {record_id} revokes a key that is not enrolled for its state",
                height=height,
            )
        grant.revoked_at = height

    def _propose(self, height: int, record_id: str, record: Mapping[str, Any]) -> None:
        action = record["action"]
        subject = f"param:{record['name']}" if action == "set_param" else record["state"]
        for other in self.proposals.values():
            if other.subject == subject and self._status(other, height) == "open":
                raise AuditFailure(
                    "proposal_open",
                    f"record {record_id} proposes about {subject} while {other.id} is open",
                    height=height,
                )
        if action in SELF_ACTIONS and subject != record["actor"]["state"]:
            raise AuditFailure(
                "wrong_state",
                f"record {record_id}: {record['actor']['state']} re-keys {subject}'s node",
                height=height,
            )
        proposal = Proposal(record_id, action, subject, height, record)
        self.proposals[record_id] = proposal
        if action in SELF_ACTIONS:
            self._decide(height, proposal, (record_id,))

    def _vote(self, height: int, record_id: str, record: Mapping[str, Any]) -> None:
        proposal = self.proposals.get(record["proposal"])
        voter = record["actor"]["state"]
        if proposal is None:
            raise AuditFailure(
                "unknown_proposal",
                f"vote {record_id} is for {record['proposal']}, not a committed proposal",
                height=height,
            )
        status = self._status(proposal, height)
        if status != "open" or voter in proposal.votes:
            why = "already voted" if status == "open" else f"proposal is {status}"
            raise AuditFailure("bad_vote", f"vote {record_id} by {voter}: {why}", height=height)
        proposal.votes[voter] = record["vote"]
        members = {s.state for s in self.validators(height)}
        n = len(members)
        yes = sum(1 for s, v in proposal.votes.items() if v == "yes" and s in members)
        no = sum(1 for s, v in proposal.votes.items() if v == "no" and s in members)
        outcome = vote_outcome(yes, no, n)
        if outcome == "passed":
            self._decide(height, proposal, (proposal.id, record_id))
        elif outcome == "rejected":
            proposal.status = "rejected"

    def _status(self, proposal: Proposal, height: int) -> str:
        if proposal.status == "open" and height > proposal.height + self.expiry_blocks:
            return "expired"
        return proposal.status

    def _decide(self, height: int, proposal: Proposal, record_ids: tuple[str, ...]) -> None:
        if proposal.action in OBSERVER_ACTIONS:  # no set or signing right changes, but a
            # node key an observer holds is used for ever: no member may take it after
            proposal.status = "passed" if self._observer(proposal.record) else "rejected"
            return
        if proposal.action not in SET_ACTIONS:  # the set stays; only a parameter may change
            proposal.status = "passed" if self._set_param(height, proposal.record) else "rejected"
            return
        latest = self.sets[max(self.sets)]
        new_set = self._new_set(height, proposal, latest)
        if new_set is None:  # no longer applicable when decided: refused, never half-applied
            proposal.status = "rejected"
            return
        proposal.status = "passed"
        self.sets[height + CHANGE_DELAY_BLOCKS] = tuple(sorted(new_set))
        self.node_keys.update(s.pubkey for s in new_set)
        self.changes.append(
            Change(
                height + CHANGE_DELAY_BLOCKS, height, proposal.action, proposal.subject, record_ids
            )
        )

    def _observer(self, record: Mapping[str, Any]) -> bool:
        """A decided observer proposal: ``add_observer`` applies if its key is unused
        (it is then used for ever); ``remove_observer`` of an admitted one applies."""
        key = record["node_pubkey"]
        if record["action"] == "add_observer":
            if self._key_in_use(key):
                return False
            self.observers[key] = record["state"]
            self.observer_keys.add(key)
            return True
        if self.observers.get(key) != record["state"]:
            return False
        del self.observers[key]
        return True

    def _set_param(self, height: int, record: Mapping[str, Any]) -> bool:
        """A ``set_param`` decided in ``height``: applied if it names a later height than
        ``height + CHANGE_DELAY_BLOCKS`` and the value before is not in force by then."""
        if record["action"] != "set_param":
            return True  # rotate_enc_key: no signing right or set depends on it
        bound = height + CHANGE_DELAY_BLOCKS
        current = self.params.get(record["name"])
        if (current is not None and current <= bound) or record["value"] <= bound:
            return False
        self.params[record["name"]] = int(record["value"])
        return True

    def _new_set(
        self, height: int, proposal: Proposal, latest: tuple[Seat, ...]
    ) -> tuple[Seat, ...] | None:
        record, subject = proposal.record, proposal.subject
        states = {s.state for s in latest}
        if proposal.action == "add":
            keys = [record["node_pubkey"], *record["admin_pubkeys"]]
            if subject in states or any(self._key_in_use(k) for k in keys):
                return None
            for admin in record["admin_pubkeys"]:
                self.keys[admin] = Grant(subject, frozenset({"admin"}))
            return (*latest, Seat(subject, record["node_pubkey"]))
        if proposal.action == "remove":
            remaining = tuple(s for s in latest if s.state != subject)
            return remaining if remaining and len(remaining) < len(latest) else None
        if proposal.action == "rotate_key":
            key = record["node_pubkey"]
            if subject not in states or self._key_in_use(key):
                return None
            return tuple(Seat(s.state, key) if s.state == subject else s for s in latest)
        raise ValueError(f"unknown action {proposal.action!r}")


_HANDLERS = {
    "enroll_key": GovState._enroll,
    "revoke_key": GovState._revoke,
    "member_proposal": GovState._propose,
    "member_vote": GovState._vote,
}
