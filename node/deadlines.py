"""One deadline engine: every legal clock of the catalogue is a row of a table.

Theory of operation
-------------------
A central authority asks "what is due, when, and from whom?" (issue 18). Each
answer is a **clock**: it starts on an act of some type, runs to a due time
(a field of the act, or a duration from its start), warns some time before,
and stops when a later record answers it with a *final* status. Clocks are
DATA (``CLOCKS``, docs/ACTS.md §6): adding one, or one for an act type that
does not exist yet, is a new row, not new code. A row whose type, fields or
answers are not on the chain simply matches nothing.

A clock is **stopped** by a record that

* is of one of the stop rule's types and, if the rule names a field, holds
  one of its final values there (a ``received`` or ``acknowledged`` never
  stops a clock: only final statuses count as answered);
* names the act (in ``refs[0]``, or anywhere in ``refs`` for rules such as
  "an MLA request follows the preservation"), or, for ``on="request"``,
  names the request the act answers;
* comes from the right state: ``other`` than the act's actor (an answer),
  the ``same`` (the actor's own extension, termination or MLA), or ``any``.

Status at ``now``: ``stopped``; else ``overdue`` once the due time has
passed; else ``warning`` within the clock's warning window; else
``running``. Reads are the bounded index scans of ``node/evidence.py``; a
view that hit a bound says so with ``truncated``. Acts the view cannot read
(a private act's header, for a reader without its body) match no clock.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from ledger.acts_treaty import TREATY_TYPES, untranslated_states
from ledger.directory import Entry
from ledger.errors import ClientError, InvariantViolation
from ledger.records import Envelope, format_time, parse_time
from node.evidence import PAGE_MAX, ChainView, summary

Relation = Literal["other", "same", "any"]
STATUSES = ("running", "warning", "overdue", "stopped")
UNANSWERED_DAYS_DEFAULT = 30
WITHIN_DAYS_MAX = 3660
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
#: Values a stop rule may test for "absent" (a field the act does not carry).
ABSENT = None


@dataclass(frozen=True, slots=True)
class Stop:
    """Which later record stops a clock (see the module docstring)."""

    types: frozenset[str]
    field: str | None = "status"
    final: frozenset[str] = frozenset()
    by: Relation = "other"
    on: Literal["act", "request"] = "act"
    first_ref: bool = True
    #: Only a record carrying an evidence item of this role (e.g. ``translation``).
    role: str | None = None

    def stops(self, record: Envelope) -> bool:
        return (
            record.type in self.types
            and (self.field is None or record.content.get(self.field) in self.final)
            and (self.role is None or _has_role(record, self.role))
        )


def _has_role(record: Envelope, role: str) -> bool:
    return any(
        isinstance(item, Mapping) and item.get("role") == role
        for item in record.content.get("evidence") or []
    )


@dataclass(frozen=True, slots=True)
class Clock:
    """One legal clock: where it starts, when it is due, what stops it, and why."""

    id: str
    types: frozenset[str]
    source: str
    what: str
    warning: timedelta
    due_field: str | None = None
    duration: timedelta | None = None
    start_field: str = "occurred_at"
    #: (field, allowed values) the act must hold; ``None`` in the values means absent.
    match: tuple[tuple[str, frozenset[object]], ...] = ()
    #: Only acts that touch a state other than their actor (a foreign request).
    foreign: bool = False
    stops: tuple[Stop, ...] = ()
    verified: bool = True
    #: A condition on the act and the chain's directory (docs/DIRECTORY.md); the clock
    #: runs only for acts that meet it. None: the act's own fields decide.
    needs: Callable[[Envelope, Mapping[str, Entry]], bool] | None = None


def _supersede(type_name: str, *phases: str) -> Stop:
    """The actor's own later record of the same type: an extension or an end."""
    return Stop(frozenset({type_name}), "phase", frozenset(phases), by="same")


_MLA_ANSWER = Stop(
    frozenset({"mla_response"}),
    final=frozenset({"executed", "partially_executed", "refused", "evidence_transferred"}),
)
_MLA_FOLLOWS = Stop(frozenset({"mla_request"}), None, by="same", first_ref=False)
_NOT_EMERGENCY = ("emergency", frozenset({ABSENT, False}))
_EMERGENCY = ("emergency", frozenset({True}))
_NOTIFIED = ("notification_required", frozenset({True}))
#: The issuing state records the addressee's report (ledger/acts_context.py), so the
#: report that stops the clock is the act's own state's.
_EPOC_DELIVERED = Stop(
    frozenset({"addressee_report"}), "outcome", frozenset({"delivered", "impossible"}), by="same"
)
_EPOC_DECIDED = Stop(
    frozenset({"epoc_enforcing_decision"}),
    "decision",
    frozenset({"ground_raised", "no_ground_raised"}),
)
_EIO_RECOGNITION = Stop(frozenset({"eio_response"}), final=frozenset({"recognised", "refused"}))
#: A termination ends its clock; it starts none of its own.
_OPEN = ("phase", frozenset({ABSENT, "initial", "extension"}))
_INITIAL = ("phase", frozenset({ABSENT, "initial"}))
_REG = "Regulation (EU) 2023/1543"
_EIO = "Directive 2014/41/EU"
#: An answer of the other state to a request (any value): it took the request up.
_ANSWER_TYPES = frozenset(
    {
        "sovereignty_response",
        "mla_response",
        "preservation_response",
        "provider_request_answer",
        "eio_response",
        "epoc_enforcing_decision",
    }
)


def _untranslated(act: Envelope, directory: Mapping[str, Entry]) -> bool:
    return bool(untranslated_states(act, directory))


#: The table of clocks (docs/ACTS.md §6 shows it with the text each number comes from).
CLOCKS: tuple[Clock, ...] = (
    Clock(
        "preservation_expiry",
        frozenset({"preservation_request"}),
        "Budapest Convention Art 16(2), Art 29(7)",
        "an open preservation reaches its end: extend it, or the data may go",
        7 * DAY,
        due_field="expires_at",
        match=(_OPEN,),
        stops=(_supersede("preservation_request", "extension", "termination"),),
    ),
    Clock(
        "mla_before_preservation_expiry",
        frozenset({"preservation_request"}),
        "Budapest Convention Art 29(1), 29(7)",
        "the MLA request the preservation was for is due before the preservation ends",
        14 * DAY,
        due_field="expires_at",
        foreign=True,
        match=(_OPEN,),
        stops=(_MLA_FOLLOWS, _supersede("preservation_request", "extension", "termination")),
    ),
    Clock(
        "art29_minimum_preservation",
        frozenset({"preservation_request"}),
        "Budapest Convention Art 29(7)",
        "the requested state preserves at least 60 days for the MLA request to follow",
        14 * DAY,
        duration=60 * DAY,
        foreign=True,
        match=(_INITIAL, ("channel", frozenset({"24_7_network", "central_authority", "direct"}))),
        stops=(_MLA_FOLLOWS, _supersede("preservation_request", "termination")),
    ),
    Clock(
        "preserved_until",
        frozenset({"preservation_response"}),
        "Budapest Convention Art 29(7)",
        "the requested state's preservation ends unless the MLA request has come",
        14 * DAY,
        due_field="preserved_until",
        stops=(Stop(frozenset({"mla_request"}), None, by="same", on="request", first_ref=False),),
    ),
    Clock(
        "measure_end",
        frozenset({"technical_measure"}),
        "the measure's authorisation (docs/DOMAIN.md, 002 §10)",
        "an open technical measure reaches its set end",
        2 * DAY,
        due_field="ends_at",
        match=(_OPEN,),
        stops=(_supersede("technical_measure", "extension", "termination"),),
    ),
    Clock(
        "realtime_collection_end",
        frozenset({"realtime_collection"}),
        "Budapest Convention Arts 20-21 (the authorised period)",
        "real-time collection reaches its authorised end",
        2 * DAY,
        due_field="ends_at",
    ),
    Clock(
        "joint_investigation_end",
        frozenset({"joint_investigation", "jit_agreement"}),
        "UNTOC Art 19; Second Additional Protocol Art 12 (the agreed period)",
        "a joint investigation team reaches the end of its agreed period",
        14 * DAY,
        due_field="ends_at",
    ),
    Clock(
        "mla_answer",
        frozenset({"mla_request"}),
        "consortium policy (Budapest Convention Arts 25, 27 set no time limit)",
        "an MLA request without a final answer from the requested state",
        7 * DAY,
        duration=UNANSWERED_DAYS_DEFAULT * DAY,
        stops=(_MLA_ANSWER,),
    ),
    Clock(
        "emergency_answer",
        frozenset({"emergency_disclosure"}),
        "Second Additional Protocol Arts 9-10 (the requester's respond_by)",
        "an emergency request without a final answer by its respond_by",
        12 * HOUR,
        due_field="respond_by",
        stops=(_MLA_ANSWER,),
    ),
    Clock(
        "epoc_transmission",
        frozenset({"epoc"}),
        f"{_REG} Art 10(2), 10(3)",
        "the addressee transmits the data within (or, if notified, at the end of) 10 days",
        2 * DAY,
        duration=10 * DAY,
        match=(_NOT_EMERGENCY,),
        stops=(_EPOC_DELIVERED,),
    ),
    Clock(
        "epoc_transmission_emergency",
        frozenset({"epoc"}),
        f"{_REG} Art 10(4)",
        "in an emergency the addressee transmits the data within 8 hours",
        2 * HOUR,
        duration=8 * HOUR,
        match=(_EMERGENCY,),
        stops=(_EPOC_DELIVERED,),
    ),
    Clock(
        "epoc_enforcing_decision",
        frozenset({"epoc"}),
        f"{_REG} Arts 10(2), 12(1)",
        "the notified enforcing authority may raise a ground for refusal within 10 days",
        2 * DAY,
        duration=10 * DAY,
        match=(_NOTIFIED, _NOT_EMERGENCY),
        stops=(_EPOC_DECIDED,),
    ),
    Clock(
        "epoc_enforcing_decision_emergency",
        frozenset({"epoc"}),
        f"{_REG} Arts 10(4), 12(1)",
        "in an emergency the notified enforcing authority objects within 96 hours",
        12 * HOUR,
        duration=96 * HOUR,
        match=(_NOTIFIED, _EMERGENCY),
        stops=(_EPOC_DECIDED,),
    ),
    Clock(
        "epoc_pr_expiry",
        frozenset({"epoc_pr"}),
        f"{_REG} Art 11(1)",
        "preservation ceases after 60 days unless production is confirmed or extended",
        7 * DAY,
        due_field="expires_at",
        duration=60 * DAY,
        match=(_INITIAL,),
        stops=(_supersede("epoc_pr", "extension", "production_confirmed", "termination"),),
    ),
    Clock(
        "epoc_pr_extension_expiry",
        frozenset({"epoc_pr"}),
        f"{_REG} Art 11(1) (one further 30 days)",
        "the extended preservation ceases unless production is confirmed",
        7 * DAY,
        due_field="expires_at",
        match=(("phase", frozenset({"extension"})),),
        stops=(_supersede("epoc_pr", "production_confirmed", "termination"),),
    ),
    Clock(
        "eio_recognition",
        frozenset({"eio"}),
        f"{_EIO} Art 12(3)",
        "the executing authority decides on recognition within 30 days of receipt",
        7 * DAY,
        duration=30 * DAY,
        stops=(_EIO_RECOGNITION,),
    ),
    Clock(
        "eio_execution",
        frozenset({"eio_response"}),
        f"{_EIO} Art 12(4)",
        "the executing authority carries out the measure within 90 days of recognising it",
        14 * DAY,
        duration=90 * DAY,
        match=(("status", frozenset({"recognised"})),),
        stops=(Stop(frozenset({"eio_response"}), final=frozenset({"executed"}), on="request"),),
    ),
    Clock(
        "sap7_disclosure",
        frozenset({"direct_provider_request"}),
        "Second Additional Protocol Art 7 (30 days; unverified)",
        "the provider discloses subscriber information within 30 days",
        7 * DAY,
        duration=30 * DAY,
        match=(("basis", frozenset({"sap_7"})),),
        stops=(
            Stop(
                frozenset({"addressee_report"}),
                "outcome",
                frozenset({"delivered", "impossible"}),
                by="any",
            ),
            Stop(
                frozenset({"provider_request_answer"}),
                "decision",
                frozenset({"instruct_not_to_disclose"}),
            ),
        ),
        verified=False,
    ),
    Clock(
        "sap7_notification",
        frozenset({"direct_provider_request"}),
        "Second Additional Protocol Art 7(5)(a), (c) (the notified state instructs "
        '"without undue delay", before the 30 days of Art 7; unverified)',
        "the notified provider state may instruct the provider not to disclose before it discloses",
        7 * DAY,
        duration=30 * DAY,
        match=(("basis", frozenset({"sap_7"})), _NOTIFIED),
        stops=(
            Stop(
                frozenset({"provider_request_answer"}),
                "decision",
                frozenset({"no_objection", "conditions", "instruct_not_to_disclose"}),
            ),
        ),
        verified=False,
    ),
    Clock(
        "translation_missing",
        TREATY_TYPES,
        "Second Additional Protocol Art 4 (unverified); Regulation (EU) 2023/1543 Art 16; "
        'the PC-OC national-procedures form ("Language requirements")',
        "the request is in no language the requested state accepts (its directory "
        "entry) and carries no translation into one: it may not be acted on",
        timedelta(0),
        duration=timedelta(0),
        stops=(
            Stop(frozenset(_ANSWER_TYPES), None),
            Stop(TREATY_TYPES, None, by="same", first_ref=False, role="translation"),
        ),
        verified=False,
        needs=_untranslated,
    ),
)
CLOCK_IDS = frozenset(c.id for c in CLOCKS)


@dataclass(frozen=True, slots=True)
class Item:
    """One clock of one act at ``now``."""

    clock: Clock
    act: Envelope
    start: datetime
    due: datetime
    status: str
    stopped_by: Envelope | None = None
    request: str | None = None

    @property
    def key(self) -> tuple[int, str, str]:
        return (_micros(self.due), self.act.id, self.clock.id)


def _micros(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def _get(content: Mapping[str, Any], path: str) -> Any:
    value: Any = content
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _matches(clock: Clock, act: Envelope) -> bool:
    content = act.content
    if clock.foreign and not set(content.get("territorial_states") or []) - {act.actor_state}:
        return False
    return all(_get(content, name) in allowed for name, allowed in clock.match)


def _due(clock: Clock, content: Mapping[str, Any]) -> tuple[datetime, datetime] | None:
    start_text = content.get(clock.start_field)
    if not isinstance(start_text, str):
        return None
    start = parse_time(start_text, clock.start_field)
    due_text = content.get(clock.due_field) if clock.due_field else None
    if isinstance(due_text, str):
        return start, parse_time(due_text, clock.due_field or "due")
    if clock.duration is not None:
        return start, start + clock.duration
    return None


@dataclass
class _Records:
    """Committed records by type, each type scanned once per evaluation (a private
    body is then read, and its read logged, once), and indexed by the ids they name."""

    view: ChainView
    by_type: dict[str, list[Envelope]] = field(default_factory=dict)
    by_ref: dict[tuple[str, bool], dict[str, list[Envelope]]] = field(default_factory=dict)

    def of_type(self, type_name: str) -> list[Envelope]:
        if type_name not in self.by_type:
            self.by_type[type_name] = [e for _, e in self.view.scan("type", type_name)]
        return self.by_type[type_name]

    def naming(self, type_name: str, first_ref: bool, record_id: str) -> list[Envelope]:
        key = (type_name, first_ref)
        if key not in self.by_ref:
            index: dict[str, list[Envelope]] = {}
            for envelope in self.of_type(type_name):
                refs = envelope.content.get("refs") or []
                for ref in refs[:1] if first_ref else refs:
                    index.setdefault(ref, []).append(envelope)
            self.by_ref[key] = index
        return self.by_ref[key].get(record_id, [])


def _load(view: ChainView, record_id: str | None) -> Envelope | None:
    if not isinstance(record_id, str) or not view.store.has_record(record_id):
        return None
    return view.load(record_id)


def _related(by: Relation, record: Envelope, target: Envelope) -> bool:
    if by == "any":
        return True
    same = record.actor_state == target.actor_state
    return same if by == "same" else not same


def _stopper(view: ChainView, records: _Records, clock: Clock, act: Envelope) -> Envelope | None:
    for rule in clock.stops:
        target = act if rule.on == "act" else _load(view, (act.content.get("refs") or [None])[0])
        if target is None:
            continue
        for type_name in sorted(rule.types):
            for record in records.naming(type_name, rule.first_ref, target.id):
                if rule.stops(record) and _related(rule.by, record, target):
                    return record
    return None


def _status(clock: Clock, due: datetime, now: datetime, stopped: bool) -> str:
    if stopped:
        return "stopped"
    if due <= now:
        return "overdue"
    return "warning" if due - clock.warning <= now else "running"


def evaluate(
    view: ChainView,
    now: datetime,
    *,
    clocks: Iterable[Clock] = CLOCKS,
    durations: Mapping[str, timedelta] | None = None,
) -> list[Item]:
    """Every clock of every act the view reads, at ``now``, soonest due first."""
    records = _Records(view)
    items: list[Item] = []
    for clock in clocks:
        if clock.needs is not None and not view.directory:
            continue  # a clock of the directory, on a chain without one
        if durations and clock.id in durations:
            clock = _with_duration(clock, durations[clock.id])
        for type_name in sorted(clock.types):
            for act in records.of_type(type_name):
                item = _item(view, records, clock, act, now)
                if item is not None:
                    items.append(item)
    return sorted(items, key=lambda i: i.key)


def _with_duration(clock: Clock, duration: timedelta) -> Clock:
    return dataclasses.replace(clock, duration=duration)


def _item(
    view: ChainView, records: _Records, clock: Clock, act: Envelope, now: datetime
) -> Item | None:
    if act.type not in clock.types or not _matches(clock, act):
        return None  # e.g. a private act's header: this reader cannot see its fields
    if clock.needs is not None and not clock.needs(act, view.directory):
        return None
    times = _due(clock, act.content)
    if times is None:
        return None
    stopper = _stopper(view, records, clock, act)
    refs = act.content.get("refs") or []
    return Item(
        clock,
        act,
        times[0],
        times[1],
        _status(clock, times[1], now, stopper is not None),
        stopper,
        refs[0] if refs and any(s.on == "request" for s in clock.stops) else None,
    )


def item_json(view: ChainView, item: Item) -> dict[str, Any]:
    """The shape of one deadline in ``GET /v1/deadlines`` and the SSE event."""
    stopper = item.stopped_by
    acts = [item.act.id] + ([item.request] if item.request else [])
    return {
        "clock": item.clock.id,
        "source": item.clock.source,
        "source_verified": item.clock.verified,
        "what": item.clock.what,
        "status": item.status,
        "start": format_time(item.start),
        "due_at": format_time(item.due),
        "warning_from": format_time(item.due - item.clock.warning),
        "acts": acts + ([stopper.id] if stopper else []),
        "stopped_by": None
        if stopper is None
        else {
            "id": stopper.id,
            "type": stopper.type,
            "occurred_at": stopper.content["occurred_at"],
        },
        **summary(item.act),
        **view.position(item.act),
    }


# --- the route's view --------------------------------------------------------------------

CURSOR_PATTERN = r"^(\d{1,20})\.([0-9a-f]{64})\.([a-z0-9_]{1,64})$"
_CURSOR = re.compile(CURSOR_PATTERN)


def parse_cursor(text: str | None) -> tuple[int, str, str] | None:
    """A deadline page cursor (the ``next_cursor`` of a previous page) or None."""
    if text is None:
        return None
    found = _CURSOR.fullmatch(text)
    if found is None:
        raise ClientError(
            "cursor must be the next_cursor of a previous page", field="cursor", code="bad_cursor"
        )
    return int(found[1]), found[2], found[3]


def parse_statuses(text: str | None) -> frozenset[str]:
    """``status=warning,overdue`` -> those statuses; default: all but stopped."""
    if not text:
        return frozenset(STATUSES) - {"stopped"}
    wanted = frozenset(text.split(","))
    if not wanted <= set(STATUSES):
        raise ClientError(
            f"status must be a comma-separated list of {', '.join(STATUSES)}",
            field="status",
            code="bad_query",
        )
    return wanted


def parse_clocks(text: str | None) -> frozenset[str] | None:
    if not text:
        return None
    wanted = frozenset(text.split(","))
    if not wanted <= CLOCK_IDS:
        raise ClientError(
            f"clock must be a comma-separated list of {', '.join(sorted(CLOCK_IDS))}",
            field="clock",
            code="bad_query",
        )
    return wanted


def deadlines(
    view: ChainView,
    now: datetime,
    *,
    within_days: int = 7,
    unanswered_days: int = UNANSWERED_DAYS_DEFAULT,
    state: str | None = None,
    statuses: frozenset[str] = frozenset(STATUSES) - {"stopped"},
    clocks: frozenset[str] | None = None,
    after: tuple[int, str, str] | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """Deadlines due within ``within_days`` of ``now`` (or overdue), soonest first, paged."""
    if not (0 <= within_days <= WITHIN_DAYS_MAX and 0 <= unanswered_days <= WITHIN_DAYS_MAX):
        raise InvariantViolation(  # the API validates both before it asks
            f"deadline window {within_days}/{unanswered_days} days outside [0, {WITHIN_DAYS_MAX}]"
        )
    limit = max(1, min(limit, PAGE_MAX))
    horizon = now + timedelta(days=within_days)
    chosen = [c for c in CLOCKS if clocks is None or c.id in clocks]
    found = evaluate(
        view, now, clocks=chosen, durations={"mla_answer": timedelta(days=unanswered_days)}
    )
    page: list[Item] = []
    more = False
    for item in found:
        if item.due > horizon or item.status not in statuses:
            continue
        if (state is not None and item.act.actor_state != state) or (
            after is not None and item.key <= after
        ):
            continue
        if len(page) == limit:
            more = True
            break
        page.append(item)
    last = page[-1].key if more else None
    return {
        "as_of": format_time(now),
        "within_days": within_days,
        "unanswered_days": unanswered_days,
        "state": state,
        "statuses": sorted(statuses),
        "items": [item_json(view, item) for item in page],
        "next_cursor": None if last is None else f"{last[0]}.{last[1]}.{last[2]}",
        "truncated": view.truncated,
    }


# --- transitions, for the SSE ``deadline`` event ---------------------------------------

#: Transitions one tick announces at most; the rest come on the next tick.
TRANSITIONS_PER_TICK_MAX = 500
ANNOUNCED = ("warning", "overdue")


@dataclass
class DeadlineWatch:
    """Which deadlines entered their warning window or became overdue since last asked.

    Each (clock, act) transition is announced once per watch (one per node
    process): the watch remembers the last status it announced, and forgets
    a deadline once it is stopped or gone, so memory follows the open ones.
    """

    seen: dict[tuple[str, str], str] = field(default_factory=dict)

    def transitions(
        self, view: ChainView, now: datetime, acts: Callable[[Envelope], bool] | None = None
    ) -> list[dict[str, Any]]:
        """The new transitions, of the clocks of the ``acts`` chosen (default: all)."""
        current: dict[tuple[str, str], Item] = {
            (item.clock.id, item.act.id): item
            for item in evaluate(view, now)
            if acts is None or acts(item.act)
        }
        for key in [k for k in self.seen if k not in current or current[k].status == "stopped"]:
            del self.seen[key]
        out: list[dict[str, Any]] = []
        for key, item in current.items():
            if item.status not in ANNOUNCED or self.seen.get(key) == item.status:
                continue
            if len(out) == TRANSITIONS_PER_TICK_MAX:
                break
            self.seen[key] = item.status
            out.append(item_json(view, item))
        return out
