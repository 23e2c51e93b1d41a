"""Deadlines: preservations and measures that end, requests left unanswered.

Theory of operation
-------------------
Evidence is fragile (002) and preservation is urgent, so a node lists what
needs action soon (docs/ACTS.md, "Deadlines"). Items, each with a ``due_at``:

* ``preservation_expiry``: an open ``preservation_request`` reaches its
  ``expires_at`` (Budapest Art 16(2)/29(7): extend it, or the data may go);
* ``measure_end``: an open ``technical_measure`` reaches its ``ends_at``;
* ``request_unanswered``: an ``mla_request`` with no final ``mla_response``
  (executed, partially_executed, refused, evidence_transferred; from a state
  other than the requester) after ``unanswered_days`` days, or an
  ``emergency_disclosure`` with none by its ``respond_by``.

A preservation or measure is open unless a later record of the same type
refers to it with phase ``extension`` (the extension is then the open one)
or ``termination`` (closed). An item is listed when ``due_at`` is at most
``within_days`` from ``now``; ``status`` is ``expired``/``overdue`` when
``due_at`` has passed. ``now`` is a parameter, so the view is reproducible.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ledger.errors import InvariantViolation
from ledger.records import Envelope, format_time, parse_time
from node.evidence import ChainView, summary

UNANSWERED_DAYS_DEFAULT = 30
#: ``mla_response`` statuses that end a request (docs/ACTS.md §6). ``received``
#: and ``postponed`` only say the request is being handled: counting them
#: would let an acknowledgement hide an overdue emergency request.
FINAL_STATUSES = frozenset({"executed", "partially_executed", "refused", "evidence_transferred"})
WITHIN_DAYS_MAX = 3660
_ENDING = {
    "preservation_request": ("expires_at", "preservation_expiry"),
    "technical_measure": ("ends_at", "measure_end"),
}


def _of_type(view: ChainView, type_name: str) -> list[Envelope]:
    return [e for _, e in view.scan("type", type_name)]


def _ending_items(view: ChainView, type_name: str) -> list[tuple[datetime, str, Envelope]]:
    field, kind = _ENDING[type_name]
    records = _of_type(view, type_name)
    superseded = {
        e.content["refs"][0]
        for e in records
        if e.content.get("phase", "initial") != "initial" and e.content.get("refs")
    }
    return [
        (parse_time(e.content[field], field), kind, e)
        for e in records
        if e.id not in superseded and e.content.get("phase", "initial") != "termination"
    ]


def _requester(view: ChainView, record_id: str) -> str | None:
    # A self-answer committed before the rule refused it (FINDINGS L1) is no answer.
    if not view.store.has_record(record_id):
        return None
    return view.load(record_id).actor_state


def _unanswered_items(
    view: ChainView, unanswered_days: int
) -> list[tuple[datetime, str, Envelope]]:
    answered = {
        e.content["refs"][0]
        for e in _of_type(view, "mla_response")
        if e.content.get("refs")
        and e.content.get("status") in FINAL_STATUSES
        and e.actor_state != _requester(view, e.content["refs"][0])
    }
    items = []
    for envelope in _of_type(view, "mla_request"):
        if envelope.id not in answered:
            due = parse_time(envelope.content["occurred_at"], "occurred_at") + timedelta(
                days=unanswered_days
            )
            items.append((due, "request_unanswered", envelope))
    for envelope in _of_type(view, "emergency_disclosure"):
        if envelope.id not in answered:
            due = parse_time(envelope.content["respond_by"], "respond_by")
            items.append((due, "request_unanswered", envelope))
    return items


def deadlines(
    view: ChainView,
    now: datetime,
    *,
    within_days: int = 7,
    unanswered_days: int = UNANSWERED_DAYS_DEFAULT,
    state: str | None = None,
) -> dict[str, Any]:
    """Items due within ``within_days`` of ``now`` (or overdue), soonest first."""
    if not (0 <= within_days <= WITHIN_DAYS_MAX and 0 <= unanswered_days <= WITHIN_DAYS_MAX):
        raise InvariantViolation(  # the API validates both before it asks
            f"deadline window {within_days}/{unanswered_days} days outside [0, {WITHIN_DAYS_MAX}]"
        )
    horizon = now + timedelta(days=within_days)
    candidates = (
        _ending_items(view, "preservation_request")
        + _ending_items(view, "technical_measure")
        + _unanswered_items(view, unanswered_days)
    )
    items = []
    for due, kind, envelope in sorted(candidates, key=lambda c: (c[0], c[2].id)):
        if due > horizon or (state is not None and envelope.actor_state != state):
            continue
        passed = due <= now
        status = (
            ("overdue" if passed else "due")
            if kind == "request_unanswered"
            else ("expired" if passed else "expiring")
        )
        items.append(
            {
                "kind": kind,
                "status": status,
                "due_at": format_time(due),
                **summary(envelope),
                **view.position(envelope),
            }
        )
    return {
        "as_of": format_time(now),
        "within_days": within_days,
        "unanswered_days": unanswered_days,
        "state": state,
        "items": items,
        "truncated": view.truncated,
    }
