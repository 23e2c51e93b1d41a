"""The chain-of-custody state machine of one evidence hash, under one act.

Theory of operation
-------------------
Courts accept evidence whose reliability is intact and whose collection was
lawful (002 §11); 004 asks for a documented chain of custody. Comity records
each step as a ``custody_event`` whose ``evidence[0]`` is the hash and whose
``refs[0]`` is the act that introduced it. A custody CHAIN is keyed by
(hash, introducing act): two states that both hold a copy of one file keep
two chains, and neither can touch the other's. The events of one chain, in
commit order, must follow this machine (docs/ACTS.md §5):

    none ──identified──▶ identified ──collected | acquired | preserved──▶ (held)
    none ──collected | acquired | preserved──▶ (held)
    (held) ──acquired | preserved | examined | translated──▶ (held)
    (held) ──transferred, version 2──▶ transferred (held by ``to``)
    (held) ──transferred, version 3──▶ in_transit ──received by ``to``──▶ received
                                                   └─received, mismatch─▶ hash_mismatch
    (held) | hash_mismatch ──returned | destroyed──▶ terminal: nothing after

* A chain starts held by the state of the introducing act (``start``): only
  that state may record the first event. Without this any state could
  "collect" and then "destroy" another state's evidence.
* Every later event is signed for the current holder's state; while the item
  is in transit, only by the receiver the transfer named (403
  ``not_named_receiver``), and only a ``received`` naming that transfer in
  ``refs[1]``.
* Catalogue version 3 (``ledger/acts_versions.py``) changed what a
  ``transferred`` means: under version 2 the receiver holds the item at once;
  under version 3 it is in transit until the receiver records ``received``
  with the hash it recomputed. An event's version is read from the event: every
  version-3 event carries ``location`` (required from version 3, refused
  before), so a chain written under version 2 replays unchanged, and a chain
  that spans the activation height folds each event under its own rules.
* A ``received`` whose recomputed hash differs leaves the item with the
  receiver but the chain flagged ``hash_mismatch`` for good: it may only be
  returned or destroyed, and the view keeps ``integrity: hash_mismatch``.
* An event's ``occurred_at`` is not earlier than the previous event's.

``step`` and the folds are pure: the same events give the same state on
every node.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from ledger.errors import ClientError
from ledger.records import parse_time

TERMINAL: Final = frozenset({"returned", "destroyed"})
_HOLDING_NEXT: Final = frozenset(
    {"acquired", "preserved", "transferred", "examined", "translated", "returned", "destroyed"}
)
_HELD: Final = (
    "collected",
    "acquired",
    "preserved",
    "transferred",
    "received",
    "examined",
    "translated",
)
#: status -> actions allowed next.
TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "none": frozenset({"identified", "collected", "acquired", "preserved"}),
    "identified": frozenset({"collected", "acquired", "preserved"}),
    **{status: _HOLDING_NEXT for status in _HELD},
    "in_transit": frozenset({"received"}),
    "hash_mismatch": TERMINAL,
    "returned": frozenset(),
    "destroyed": frozenset(),
}


#: The API's status and field for a refused event, by its code (else 422 on
#: ``record.action``); ledger/acts_context.py answers a client with these.
_STATUS_FIELD: Final = {
    "not_custody_holder": (403, "record.actor.state"),
    "not_named_receiver": (403, "record.actor.state"),
    "custody_wrong_transfer": (422, "record.refs[1]"),
}


class CustodyViolation(ClientError):
    """An event that the machine refuses; ``code`` is the API's stable code.

    A client error like any other: out of order or after the chain closed is a
    422 on ``record.action``; by a state that does not hold the item (or is not
    the receiver a transfer in transit named), a 403 on ``record.actor.state``;
    a ``received`` naming another transfer, a 422 on ``record.refs[1]``."""

    status = 422
    default_code = "custody_out_of_order"

    def __init__(self, message: str, code: str) -> None:
        status, field = _STATUS_FIELD.get(code, (422, "record.action"))
        super().__init__(message, field=field, code=code)
        self.status = status


@dataclass(frozen=True, slots=True)
class CustodyState:
    status: str = "none"
    holder: str | None = None  # state holding the item now (or that introduced it)
    last_at: str | None = None  # occurred_at of the last event
    events: int = 0
    receiver: str | None = None  # in transit: the state the transfer names
    transfer_id: str | None = None  # in transit: the transfer's record id
    since: str | None = None  # in transit: the transfer's occurred_at
    integrity: str = "intact"  # "hash_mismatch" once a receiver's hash differed

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def next_actor(self) -> str | None:
        """The state that may sign the next event: the receiver while in transit."""
        return self.receiver if self.status == "in_transit" else self.holder

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.status,
            "holder": self.holder,
            "last_at": self.last_at,
            "events": self.events,
            "terminal": self.terminal,
            "integrity": self.integrity,
        }
        if self.status == "in_transit":
            out["in_transit"] = {
                "from": self.holder,
                "to": self.receiver,
                "transfer_id": self.transfer_id,
                "since": self.since,
            }
        return out


def _refuse_order(state: CustodyState, action: str) -> None:
    if action in TRANSITIONS[state.status]:
        return
    if state.terminal:
        raise CustodyViolation(
            f"evidence was already {state.status}; no custody event may follow",
            "custody_closed",
        )
    raise CustodyViolation(
        f"action {action!r} cannot follow {state.status!r} (allowed: "
        f"{', '.join(sorted(TRANSITIONS[state.status]))})",
        "custody_out_of_order",
    )


def _refuse_actor(state: CustodyState, actor: str) -> None:
    if actor == state.next_actor:  # fails closed on a state not made by ``start``
        return
    if state.status == "in_transit":
        raise CustodyViolation(
            f"the item is in transit from {state.holder} to {state.receiver}; only "
            f"{state.receiver} may record it received, not {actor}",
            "not_named_receiver",
        )
    raise CustodyViolation(
        f"{actor} does not hold this evidence under this act; {state.holder} does",
        "not_custody_holder",
    )


def _received(state: CustodyState, record: Mapping[str, Any], occurred: str) -> CustodyState:
    refs = record.get("refs") or []
    named = refs[1] if len(refs) > 1 else None
    if named != state.transfer_id:
        raise CustodyViolation(
            f"record.refs[1] must name the transfer in transit ({state.transfer_id})",
            "custody_wrong_transfer",
        )
    verified = record.get("recomputed_sha256") == record["evidence"][0]["sha256"]
    return CustodyState(
        "received" if verified else "hash_mismatch",
        state.receiver,
        occurred,
        state.events + 1,
        integrity=state.integrity if verified else "hash_mismatch",
    )


def step(state: CustodyState, record: Mapping[str, Any], record_id: str = "") -> CustodyState:
    """The state after the custody event ``record`` (id ``record_id``), or ``CustodyViolation``."""
    action = str(record["action"])
    _refuse_order(state, action)
    _refuse_actor(state, str(record["actor"]["state"]))
    occurred = str(record["occurred_at"])
    if state.last_at is not None and parse_time(occurred, "occurred_at") < parse_time(
        state.last_at, "occurred_at"
    ):
        raise CustodyViolation(
            f"occurred_at {occurred} is before the previous custody event ({state.last_at})",
            "custody_out_of_order",
        )
    if action == "received":
        return _received(state, record, occurred)
    moved = replace(state, status=action, last_at=occurred, events=state.events + 1)
    if action != "transferred":
        return moved
    receiver = str(record["to"]["state"])
    if "location" not in record:  # version 2: the receiver holds at once
        return replace(moved, holder=receiver)
    return replace(
        moved, status="in_transit", receiver=receiver, transfer_id=record_id, since=occurred
    )


def start(introduced_by: str) -> CustodyState:
    """The state of a chain with no event yet: held by the introducing act's state."""
    return CustodyState(holder=introduced_by)


def chain_key(record: Mapping[str, Any]) -> tuple[str, str] | None:
    """(evidence hash, introducing act id) of a custody event: the chain it belongs to.

    None for an event without them, which the catalogue refuses but a store
    written before the catalogue was wired may hold: it belongs to no chain.
    """
    evidence, refs = record.get("evidence"), record.get("refs")
    if (
        not isinstance(evidence, list)
        or not evidence
        or not isinstance(evidence[0], dict)
        or not isinstance(refs, list)
        or not refs
    ):
        return None
    return str(evidence[0].get("sha256")), str(refs[0])


Event = tuple[str, Mapping[str, Any]]  # (record id, content)


def derives(record: Mapping[str, Any], sha256: str) -> bool:
    """Whether custody event ``record`` made ``sha256`` from the item it holds (version 3).

    Such an event introduces the new item: its chain is keyed by the event and
    starts held by the event's state, the holder of the original.
    """
    evidence = record.get("evidence")
    if not isinstance(evidence, list) or not evidence or not isinstance(evidence[0], dict):
        return False
    held = evidence[0].get("sha256")
    return any(
        isinstance(item, dict) and item.get("sha256") == sha256 and item.get("derived_from") == held
        for item in evidence[1:]
    )


def replay(records: Iterable[Event], introduced_by: str) -> CustodyState:
    """Fold one chain's events (commit order); raises ``CustodyViolation`` on a bad history."""
    state = start(introduced_by)
    for record_id, record in records:
        state = step(state, record, record_id)
    return state


def fold_lenient(
    state: CustodyState, records: Iterable[Event]
) -> tuple[CustodyState, list[tuple[int, CustodyViolation]]]:
    """Fold committed events of one chain, skipping (and reporting) those the machine refuses.

    The chain only commits events that passed ``step``, so a refused one means
    it was admitted under older or weaker rules (e.g. before chains were keyed
    by their introducing act). Skipping it keeps later checks deterministic
    instead of blocking the item forever; the read side shows the anomaly.
    """
    anomalies: list[tuple[int, CustodyViolation]] = []
    for index, (record_id, record) in enumerate(records):
        try:
            state = step(state, record, record_id)
        except CustodyViolation as exc:
            anomalies.append((index, exc))
    return state, anomalies


def replay_lenient(
    records: Iterable[Event], introduced_by: str
) -> tuple[CustodyState, list[tuple[int, CustodyViolation]]]:
    """``fold_lenient`` from the start of a chain introduced by ``introduced_by``."""
    return fold_lenient(start(introduced_by), records)
