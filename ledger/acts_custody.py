"""The chain-of-custody state machine of one evidence hash, under one act.

Theory of operation
-------------------
Courts accept evidence whose reliability is intact and whose collection was
lawful (002 §11); 004 asks for a documented chain of custody. Comity records
each step as a ``custody_event`` holding exactly one evidence hash, whose
``refs[0]`` is the act that introduced the hash. A custody CHAIN is keyed by
(hash, introducing act): two states that both hold a copy of one file keep
two chains, and neither can touch the other's. The events of one chain, in
commit order, must follow this machine (docs/ACTS.md):

    none ──collected──▶ collected
    collected | transferred | examined | translated
        ──transferred (to another holder)──▶ transferred
        ──examined / translated──▶ examined / translated
        ──returned / destroyed──▶ returned / destroyed   (terminal: nothing after)

* A chain starts held by the state of the introducing act (``start``): only
  that state may record the first event, ``collected``. Without this any
  state could "collect" and then "destroy" another state's evidence.
* Every later event is signed for the current holder's state: only the state
  holding the item can hand it on, examine, return or destroy it.
  ``transferred`` names the receiving ``to`` state, which becomes the holder.
* An event's ``occurred_at`` is not earlier than the previous event's.

``step`` and the folds are pure: the same events give the same state on
every node.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ledger.errors import ClientError
from ledger.records import parse_time

TERMINAL: Final = frozenset({"returned", "destroyed"})
_AFTER_COLLECTION: Final = frozenset(
    {"transferred", "examined", "translated", "returned", "destroyed"}
)
#: status -> actions allowed next.
TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "none": frozenset({"collected"}),
    "collected": _AFTER_COLLECTION,
    "transferred": _AFTER_COLLECTION,
    "examined": _AFTER_COLLECTION,
    "translated": _AFTER_COLLECTION,
    "returned": frozenset(),
    "destroyed": frozenset(),
}


#: The API's status and field for a refused event, by its code (else 422 on
#: ``record.action``); ledger/acts_context.py answers a client with these.
_STATUS_FIELD: Final = {"not_custody_holder": (403, "record.actor.state")}


class CustodyViolation(ClientError):
    """An event that the machine refuses; ``code`` is the API's stable code.

    A client error like any other: out of order or after the chain closed is a
    422 on ``record.action``; by a state that does not hold the item, a 403 on
    ``record.actor.state``."""

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

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "holder": self.holder,
            "last_at": self.last_at,
            "events": self.events,
            "terminal": self.terminal,
        }


def step(state: CustodyState, record: Mapping[str, Any]) -> CustodyState:
    """The state after the custody event ``record``, or ``CustodyViolation``."""
    action = str(record["action"])
    actor = str(record["actor"]["state"])
    if action not in TRANSITIONS[state.status]:
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
    if actor != state.holder:  # fails closed on a state not made by ``start``
        raise CustodyViolation(
            f"{actor} does not hold this evidence under this act; {state.holder} does",
            "not_custody_holder",
        )
    occurred = str(record["occurred_at"])
    if state.last_at is not None and parse_time(occurred, "occurred_at") < parse_time(
        state.last_at, "occurred_at"
    ):
        raise CustodyViolation(
            f"occurred_at {occurred} is before the previous custody event ({state.last_at})",
            "custody_out_of_order",
        )
    holder = actor if action == "collected" else state.holder
    if action == "transferred":
        holder = str(record["to"]["state"])
    return CustodyState(action, holder, occurred, state.events + 1)


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


def replay(records: Iterable[Mapping[str, Any]], introduced_by: str) -> CustodyState:
    """Fold one chain's events (commit order); raises ``CustodyViolation`` on a bad history."""
    state = start(introduced_by)
    for record in records:
        state = step(state, record)
    return state


def fold_lenient(
    state: CustodyState, records: Iterable[Mapping[str, Any]]
) -> tuple[CustodyState, list[tuple[int, CustodyViolation]]]:
    """Fold committed events of one chain, skipping (and reporting) those the machine refuses.

    The chain only commits events that passed ``step``, so a refused one means
    it was admitted under older or weaker rules (e.g. before chains were keyed
    by their introducing act). Skipping it keeps later checks deterministic
    instead of blocking the item forever; the read side shows the anomaly.
    """
    anomalies: list[tuple[int, CustodyViolation]] = []
    for index, record in enumerate(records):
        try:
            state = step(state, record)
        except CustodyViolation as exc:
            anomalies.append((index, exc))
    return state, anomalies


def replay_lenient(
    records: Iterable[Mapping[str, Any]], introduced_by: str
) -> tuple[CustodyState, list[tuple[int, CustodyViolation]]]:
    """``fold_lenient`` from the start of a chain introduced by ``introduced_by``."""
    return fold_lenient(start(introduced_by), records)
