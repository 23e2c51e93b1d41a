"""The deadline engine (node/deadlines.py): each clock of the table starts, warns, falls
overdue and stops as docs/ACTS.md §6 says, and a non-final answer never stops it.

Two kinds of test. On a real ``Application`` chain (``Chain`` of test_governance),
the clocks of the act types the catalogue has today, written by its own rules.
On a small in-memory view, every row of the table, including the rows for act
types the catalogue does not have yet: the engine reads records by type and
field, so the rows are checked the same way before those types exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast, get_args

import pytest

from ledger.acts import MODELS
from ledger.canonical import canonical_bytes
from ledger.errors import ClientError
from ledger.keys import SigningKey
from ledger.records import SCHEMA, Envelope, format_time, parse_envelope
from ledger.store import Store
from node import deadlines as dl
from node.clock import utcnow
from node.deadlines import CLOCKS, Clock, DeadlineWatch, evaluate
from node.evidence import ChainView
from tests.unit.test_governance import Chain

T0 = datetime(2026, 3, 1, tzinfo=UTC)
KEY = SigningKey.generate()


# --- an in-memory view: records by type, in commit order ---------------------------------


@dataclass
class _Header:
    time: str


@dataclass
class _Store:
    records: list[Envelope] = field(default_factory=list)

    def search(
        self, index: str, value: str, *, after_leaf: int | None, limit: int, sealed: bool
    ) -> list[tuple[int, str]]:
        assert index == "type"
        start = -1 if after_leaf is None else after_leaf
        return [
            (leaf, e.id) for leaf, e in enumerate(self.records) if e.type == value and leaf > start
        ][:limit]

    def has_record(self, record_id: str) -> bool:
        return any(e.id == record_id for e in self.records)

    def locate(self, record_id: str) -> tuple[int, int] | None:
        leaf = next(i for i, e in enumerate(self.records) if e.id == record_id)
        return leaf + 1, leaf

    def get_header(self, height: int) -> _Header:
        return _Header(format_time(T0))

    def load(self, record_id: str) -> Envelope:
        return next(e for e in self.records if e.id == record_id)


class Ledger:
    """Records of any type (known to the catalogue or not), for the engine to read."""

    def __init__(self) -> None:
        self.store = _Store()
        self.nonce = 0

    def add(
        self,
        state: str,
        type_: str,
        *,
        at: datetime = T0,
        refs: tuple[str, ...] | list[str] = (),
        **fields: Any,
    ) -> Envelope:
        self.nonce += 1
        record = {
            "schema": SCHEMA,
            "type": type_,
            "chain_id": "unit",
            "actor": {"state": state, "agency": "unit"},
            "nonce": f"fake{self.nonce:012d}",
            "occurred_at": format_time(at),
            "case_ref": "C-1",
            "territorial_states": [state, "TH"] if state != "TH" else ["TH"],
            **({"refs": list(refs)} if refs else {}),
            **fields,
        }
        envelope = parse_envelope(
            {
                "record": record,
                "signer": KEY.public_hex,
                "signature": KEY.sign(canonical_bytes(record)).hex(),
            }
        )
        self.store.records.append(envelope)
        return envelope

    def view(self) -> ChainView:
        return ChainView(cast(Store, self.store), self.store.load)

    def status(self, clock_id: str, act: Envelope, now: datetime) -> str | None:
        found = [
            i for i in evaluate(self.view(), now) if i.clock.id == clock_id and i.act.id == act.id
        ]
        assert len(found) <= 1
        return found[0].status if found else None


def _clock(clock_id: str) -> Clock:
    return next(c for c in CLOCKS if c.id == clock_id)


# --- every row: a valid start, its due time, its stop, and a non-final answer ------------

#: clock -> (start act's type and fields, the stopping record's type and fields, who
#: stops it: the requested state "TH" or the actor "CN", a non-final answer or None)
ROWS: dict[str, tuple[str, dict[str, Any], str, dict[str, Any], str, dict[str, Any] | None]] = {
    "preservation_expiry": (
        "preservation_request",
        {"expires_at": format_time(T0 + timedelta(days=40))},
        "preservation_request",
        {"phase": "termination", "expires_at": format_time(T0)},
        "CN",
        None,
    ),
    "mla_before_preservation_expiry": (
        "preservation_request",
        {"expires_at": format_time(T0 + timedelta(days=40))},
        "mla_request",
        {},
        "CN",
        None,
    ),
    "art29_minimum_preservation": (
        "preservation_request",
        {"expires_at": format_time(T0 + timedelta(days=90)), "channel": "24_7_network"},
        "mla_request",
        {},
        "CN",
        None,
    ),
    "measure_end": (
        "technical_measure",
        {"ends_at": format_time(T0 + timedelta(days=5))},
        "technical_measure",
        {"phase": "termination", "ends_at": format_time(T0)},
        "CN",
        None,
    ),
    "mla_answer": (
        "mla_request",
        {},
        "mla_response",
        {"status": "partially_executed"},
        "TH",
        {"status": "received"},
    ),
    "emergency_answer": (
        "emergency_disclosure",
        {"respond_by": format_time(T0 + timedelta(days=1))},
        "mla_response",
        {"status": "refused"},
        "TH",
        {"status": "received"},
    ),
    "epoc_transmission": (
        "epoc",
        {},
        "addressee_report",
        {"outcome": "delivered"},
        "CN",
        {"outcome": "received"},
    ),
    "epoc_transmission_emergency": (
        "epoc",
        {"emergency": True},
        "addressee_report",
        {"outcome": "impossible"},
        "CN",
        {"outcome": "received"},
    ),
    "epoc_enforcing_decision": (
        "epoc",
        {"notification_required": True},
        "epoc_enforcing_decision",
        {"decision": "ground_raised"},
        "TH",
        {"decision": "received"},
    ),
    "epoc_enforcing_decision_emergency": (
        "epoc",
        {"notification_required": True, "emergency": True},
        "epoc_enforcing_decision",
        {"decision": "no_ground_raised"},
        "TH",
        {"decision": "acknowledged"},
    ),
    "epoc_pr_expiry": (
        "epoc_pr",
        {},
        "epoc_pr",
        {"phase": "production_confirmed"},
        "CN",
        None,
    ),
    "eio_recognition": (
        "eio",
        {},
        "eio_response",
        {"status": "recognised"},
        "TH",
        {"status": "acknowledged"},
    ),
    "sap7_disclosure": (
        "direct_provider_request",
        {"basis": "sap_7"},
        "provider_request_answer",
        {"decision": "instruct_not_to_disclose"},
        "TH",
        {"decision": "conditions"},
    ),
}
#: clock -> the expected due time of the ROWS start acts (occurred_at = T0)
DUE = {
    "preservation_expiry": T0 + timedelta(days=40),
    "mla_before_preservation_expiry": T0 + timedelta(days=40),
    "art29_minimum_preservation": T0 + timedelta(days=60),
    "measure_end": T0 + timedelta(days=5),
    "mla_answer": T0 + timedelta(days=30),
    "emergency_answer": T0 + timedelta(days=1),
    "epoc_transmission": T0 + timedelta(days=10),
    "epoc_transmission_emergency": T0 + timedelta(hours=8),
    "epoc_enforcing_decision": T0 + timedelta(days=10),
    "epoc_enforcing_decision_emergency": T0 + timedelta(hours=96),
    "epoc_pr_expiry": T0 + timedelta(days=60),
    "eio_recognition": T0 + timedelta(days=30),
    "sap7_disclosure": T0 + timedelta(days=30),
}


@pytest.mark.parametrize("clock_id", sorted(ROWS))
def test_each_clock_runs_warns_falls_overdue_and_stops_on_a_final_answer(clock_id: str) -> None:
    start_type, start_fields, stop_type, stop_fields, stopper, non_final = ROWS[clock_id]
    clock = _clock(clock_id)
    ledger = Ledger()
    act = ledger.add("CN", start_type, **start_fields)
    [item] = [i for i in evaluate(ledger.view(), T0) if i.clock.id == clock_id]
    assert (item.start, item.due) == (T0, DUE[clock_id])
    due = DUE[clock_id]
    warned = due - clock.warning
    assert ledger.status(clock_id, act, warned - timedelta(seconds=1)) == "running"
    assert ledger.status(clock_id, act, warned) == "warning"
    assert ledger.status(clock_id, act, due) == "overdue"
    if non_final is not None:  # an acknowledgement is no answer: the clock runs on
        ledger.add(stopper, stop_type, at=T0 + timedelta(hours=1), refs=[act.id], **non_final)
        assert ledger.status(clock_id, act, due) == "overdue"
    wrong = "TH" if stopper == "CN" else "CN"  # the right record from the wrong state
    ledger.add(wrong, stop_type, at=T0 + timedelta(hours=1), refs=[act.id], **stop_fields)
    assert ledger.status(clock_id, act, due) == "overdue"
    stop = ledger.add(stopper, stop_type, at=T0 + timedelta(hours=2), refs=[act.id], **stop_fields)
    assert ledger.status(clock_id, act, due) == "stopped"
    [item] = [
        i for i in evaluate(ledger.view(), due) if i.clock.id == clock_id and i.act.id == act.id
    ]
    assert item.stopped_by is not None and item.stopped_by.id == stop.id


def test_every_row_of_the_table_is_tested_or_has_a_test_of_its_own() -> None:
    own = {
        "preserved_until",
        "realtime_collection_end",
        "joint_investigation_end",
        "epoc_pr_extension_expiry",
        "eio_execution",
        # The directory's clocks: tests/unit/test_treaty_matrix.py.
        "sap7_notification",
        "translation_missing",
    }
    assert set(ROWS) | own == dl.CLOCK_IDS
    assert set(ROWS) == set(DUE)


def test_preserved_until_stops_when_the_requester_sends_the_mla_request() -> None:
    """Art 29(7): once the MLA request has come, preservation continues pending it."""
    ledger = Ledger()
    request = ledger.add("CN", "preservation_request", expires_at=format_time(T0 + 90 * dl.DAY))
    until = T0 + timedelta(days=60)
    answer = ledger.add(
        "TH", "preservation_response", refs=[request.id], preserved_until=format_time(until)
    )
    assert ledger.status("preserved_until", answer, until) == "overdue"
    ledger.add("TH", "mla_request", refs=[request.id])  # not the requester's
    assert ledger.status("preserved_until", answer, until) == "overdue"
    ledger.add("CN", "mla_request", refs=[request.id])
    assert ledger.status("preserved_until", answer, until) == "stopped"


def test_eio_execution_runs_90_days_from_recognition_until_executed() -> None:
    ledger = Ledger()
    eio = ledger.add("CN", "eio")
    acknowledged = ledger.add("TH", "eio_response", refs=[eio.id], status="acknowledged")
    recognised = ledger.add(
        "TH", "eio_response", at=T0 + 5 * dl.DAY, refs=[eio.id], status="recognised"
    )
    due = T0 + timedelta(days=95)
    assert ledger.status("eio_execution", acknowledged, due) is None  # no recognition
    assert ledger.status("eio_execution", recognised, due) == "overdue"
    assert ledger.status("eio_recognition", eio, due) == "stopped"
    ledger.add("TH", "eio_response", refs=[eio.id], status="acknowledged")
    assert ledger.status("eio_execution", recognised, due) == "overdue"
    ledger.add("TH", "eio_response", refs=[eio.id], status="executed")
    assert ledger.status("eio_execution", recognised, due) == "stopped"


def test_epoc_pr_is_extended_once_and_the_extension_has_its_own_clock() -> None:
    ledger = Ledger()
    order = ledger.add("CN", "epoc_pr", expires_at=format_time(T0 + 60 * dl.DAY))
    extended_to = T0 + timedelta(days=90)
    extension = ledger.add(
        "CN",
        "epoc_pr",
        at=T0 + 50 * dl.DAY,
        refs=[order.id],
        phase="extension",
        expires_at=format_time(extended_to),
    )
    assert ledger.status("epoc_pr_expiry", order, extended_to) == "stopped"
    assert ledger.status("epoc_pr_expiry", extension, extended_to) is None
    assert ledger.status("epoc_pr_extension_expiry", extension, extended_to) == "overdue"
    ledger.add("CN", "epoc_pr", refs=[extension.id], phase="production_confirmed")
    assert ledger.status("epoc_pr_extension_expiry", extension, extended_to) == "stopped"


@pytest.mark.parametrize(
    ("type_", "clock_id"),
    [
        ("realtime_collection", "realtime_collection_end"),
        ("joint_investigation", "joint_investigation_end"),
        ("jit_agreement", "joint_investigation_end"),
    ],
)
def test_periods_that_end_are_due_at_their_ends_at(type_: str, clock_id: str) -> None:
    ledger = Ledger()
    ends = T0 + timedelta(days=20)
    act = ledger.add("CN", type_, ends_at=format_time(ends))
    assert ledger.status(clock_id, act, ends - timedelta(days=15)) == "running"
    assert ledger.status(clock_id, act, ends) == "overdue"
    without = ledger.add("CN", type_)  # a team without an end has no clock
    assert ledger.status(clock_id, without, ends) is None


def test_a_domestic_preservation_has_no_mla_clock() -> None:
    ledger = Ledger()
    act = ledger.add("TH", "preservation_request", expires_at=format_time(T0 + 40 * dl.DAY))
    assert ledger.status("preservation_expiry", act, T0) == "running"
    assert ledger.status("mla_before_preservation_expiry", act, T0) is None


def test_a_private_header_matches_no_clock() -> None:
    ledger = Ledger()
    header = ledger.add("CN", "private_act", parties=["CN", "TH"])
    assert [i for i in evaluate(ledger.view(), T0) if i.act.id == header.id] == []


# --- the table against the catalogue ------------------------------------------------------

#: Fields and answer values the table expects from act types the catalogue is being
#: extended with (issue 18): checked once they are in ``ledger/acts.py``.
#: Names the catalogue does not have (yet): none since the lifecycle types landed.
AWAITED: set[tuple[str, str]] = set()


def _literals(annotation: Any) -> set[object]:
    args = get_args(annotation)
    if not args:
        return set()
    if all(not get_args(a) and not isinstance(a, type) for a in args):
        return set(args)
    return set().union(*(_literals(a) for a in args))


def test_the_table_names_fields_and_final_values_the_catalogue_has() -> None:
    for clock in CLOCKS:
        for type_name in clock.types & set(MODELS):
            fields = MODELS[type_name].model_fields
            named = [clock.start_field, *(n for n, _ in clock.match)]
            named += [clock.due_field] if clock.due_field else []
            for name in named:
                top = name.split(".")[0]
                assert top in fields or (type_name, top) in AWAITED, (clock.id, name)
        for rule in clock.stops:
            for type_name in rule.types & set(MODELS):
                fields = MODELS[type_name].model_fields
                if rule.field is None or (type_name, rule.field) in AWAITED:
                    continue
                assert rule.field in fields, (clock.id, type_name, rule.field)
                allowed = _literals(fields[rule.field].annotation)
                for value in rule.final:
                    assert value in allowed or (type_name, value) in AWAITED, (clock.id, value)
                assert not {"received", "acknowledged", "postponed"} & rule.final, clock.id


# --- the route's shape, pages and filters ------------------------------------------------


def test_the_view_lists_clock_source_times_status_and_acts_in_pages() -> None:
    ledger = Ledger()
    acts = [ledger.add("CN", "mla_request", at=T0 + i * dl.HOUR) for i in range(3)]
    now = T0 + timedelta(days=29)
    first = dl.deadlines(ledger.view(), now, limit=2)
    assert [i["id"] for i in first["items"]] == [a.id for a in acts[:2]]
    item = first["items"][0]
    assert {k: item[k] for k in ("clock", "source", "status", "start", "due_at", "acts")} == {
        "clock": "mla_answer",
        "source": _clock("mla_answer").source,
        "status": "warning",
        "start": format_time(T0),
        "due_at": format_time(T0 + 30 * dl.DAY),
        "acts": [acts[0].id],
    }
    assert item["stopped_by"] is None and item["height"] == 1
    rest = dl.deadlines(ledger.view(), now, limit=2, after=dl.parse_cursor(first["next_cursor"]))
    assert [i["id"] for i in rest["items"]] == [acts[2].id] and rest["next_cursor"] is None
    answer = ledger.add("TH", "mla_response", refs=[acts[0].id], status="executed")
    open_ = dl.deadlines(ledger.view(), now)
    assert [i["id"] for i in open_["items"]] == [a.id for a in acts[1:]]
    stopped = dl.deadlines(ledger.view(), now, statuses=frozenset({"stopped"}))
    [done] = stopped["items"]
    assert done["acts"] == [acts[0].id, answer.id] and done["stopped_by"]["id"] == answer.id
    longer = dl.deadlines(ledger.view(), now, unanswered_days=60)
    assert longer["items"] == []  # due in 60 days: beyond the 7-day horizon
    assert dl.deadlines(ledger.view(), now, state="FR")["items"] == []


@pytest.mark.parametrize(
    ("parse", "text", "field_name"),
    [
        (dl.parse_cursor, "12", "cursor"),
        (dl.parse_statuses, "running,late", "status"),
        (dl.parse_clocks, "mla_answer,nope", "clock"),
    ],
)
def test_bad_filters_are_4xx_naming_the_field(parse: Any, text: str, field_name: str) -> None:
    with pytest.raises(ClientError) as info:
        parse(text)
    assert (info.value.field, info.value.status) == (field_name, 400)


# --- transitions for the SSE event --------------------------------------------------------


def test_each_transition_is_announced_once() -> None:
    ledger = Ledger()
    act = ledger.add("CN", "emergency_disclosure", respond_by=format_time(T0 + dl.DAY))
    watch = DeadlineWatch()
    assert watch.transitions(ledger.view(), T0) == []  # running: nothing to say
    warned = T0 + 13 * dl.HOUR
    [warning] = watch.transitions(ledger.view(), warned)
    assert (warning["clock"], warning["status"], warning["id"]) == (
        "emergency_answer",
        "warning",
        act.id,
    )
    assert watch.transitions(ledger.view(), warned) == []
    [overdue] = watch.transitions(ledger.view(), T0 + dl.DAY)
    assert overdue["status"] == "overdue"
    assert watch.transitions(ledger.view(), T0 + 2 * dl.DAY) == []
    ledger.add("TH", "mla_response", refs=[act.id], status="executed")
    assert watch.transitions(ledger.view(), T0 + 2 * dl.DAY) == []
    assert watch.seen == {}  # a stopped clock is forgotten


def test_one_pass_announces_a_bounded_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dl, "TRANSITIONS_PER_TICK_MAX", 2)
    ledger = Ledger()
    for _ in range(3):
        ledger.add("CN", "emergency_disclosure", respond_by=format_time(T0 + dl.HOUR))
    watch = DeadlineWatch()
    assert len(watch.transitions(ledger.view(), T0 + dl.DAY)) == 2
    assert len(watch.transitions(ledger.view(), T0 + dl.DAY)) == 1


# --- on a real chain: the catalogue's own records -----------------------------------------


def _view(chain: Chain) -> ChainView:
    return ChainView(chain.store, chain.app.load_envelope)


def _clocks_of(chain: Chain, act: Envelope, now: datetime) -> dict[str, str]:
    return {i.clock.id: i.status for i in evaluate(_view(chain), now) if i.act.id == act.id}


def test_on_a_chain_a_foreign_preservation_runs_three_clocks_until_the_mla_request() -> None:
    chain = Chain()
    cn = chain.keys("CN")
    expires = utcnow() + timedelta(days=80)
    preservation = chain.env(
        "CN",
        cn.investigator,
        "preservation_request",
        expires_at=format_time(expires),
        channel="24_7_network",
        case_ref="CN-2026-1",
    )
    chain.commit(preservation)
    later = utcnow() + timedelta(days=75)
    assert _clocks_of(chain, preservation, later) == {
        "preservation_expiry": "warning",
        "mla_before_preservation_expiry": "warning",
        "art29_minimum_preservation": "overdue",
    }
    mla = chain.env(
        "CN",
        cn.authority,
        "mla_request",
        refs=[preservation.id],
        requested_state="TH",
        case_ref="CN-2026-1",
    )
    chain.commit(mla)
    assert _clocks_of(chain, preservation, later) == {
        "preservation_expiry": "warning",
        "mla_before_preservation_expiry": "stopped",
        "art29_minimum_preservation": "stopped",
    }
    answer = chain.env(
        "TH",
        chain.keys("TH").authority,
        "mla_response",
        refs=[mla.id],
        territorial_states=["TH"],
        status="received",
        case_ref="CN-2026-1",
    )
    chain.commit(answer)
    assert _clocks_of(chain, mla, utcnow() + timedelta(days=31)) == {"mla_answer": "overdue"}


def test_on_a_chain_an_epoc_and_an_eio_start_their_answer_clocks() -> None:
    chain = Chain()
    cn = chain.keys("CN")
    epoc = chain.env("CN", cn.authority, "epoc")
    eio = chain.env("CN", cn.authority, "eio")
    chain.commit(epoc, eio)
    soon = utcnow() + timedelta(days=9)
    assert _clocks_of(chain, epoc, soon) == {"epoc_transmission": "warning"}
    assert _clocks_of(chain, eio, soon) == {"eio_recognition": "running"}
