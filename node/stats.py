"""Statistics for central authorities: time to answer and backlog (docs/STATISTICS.md).

Theory of operation
-------------------
A central authority needs to see how long its requests wait, abroad and at
home, and which ones still wait (seed 004 §17-22: case-management data on
processing times and backlogs, to adjust resources). The chain already holds
every request and every answer with the block time the consortium fixed, so
the statistics are a read of committed acts, never a second data entry.

The unit is a **leg**: one request as one of its requested states owes it an
answer. ``REQUESTED_STATES`` says, per request type, which states those are
(the states ``ledger/acts_context.py`` lets answer it, less the requester);
a request sent to two states is two legs. The answers of a leg are the
records of an answer type that ``ANSWERS`` (``ledger/acts_lifecycle.py``)
pairs with the request's type, naming it in ``refs[0]``, signed by that
state; an ``addressee_report`` is signed by the issuer (it records what the
provider in the establishment state reported) and counts for the requested
state. A leg's **first answer** is its first such record of any status; its
**final answer** the first whose status is in ``FINAL_STATUSES``. Durations
run from the request's block time to the answer's block time: commit times,
which no signer can backdate (an ``occurred_at`` is what the signer claims).

The window ``[from, to)`` selects requests by block time; ``at`` (default:
now) is the moment of the answer: records committed after it do not exist
for it, and a leg with no final answer committed by ``at`` is **backlog**,
aged from its request's block time to ``at``. Only new requests count: the
extension, termination or confirmation of a preservation is a phase of the
request it names, not a request.

The reader sees what its view reads (``node/evidence.py`` ``ChainView``): a
private act counts only when its content is visible to the caller (a body
reader's view of a party's node); for anyone else it is a header and is left
out, request or answer alike. So two callers may get different figures, and
neither learns from them what it may not read.

Work is bounded: at most ``SCAN_RECORDS_MAX`` records are read per answer,
over all scans, half of them at most for the requests (so the answers of the
requests read are read too); an answer that hit the bound says
``"truncated": true``.
Scans stop at the first record committed after ``to`` (requests) or ``at``
(answers), and answers are read from the first request in the window on.
"""

from __future__ import annotations

import csv
import io
import math
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from ledger import instruments
from ledger.acts_lifecycle import ANSWER_STATUS_FIELD, ANSWERS, is_final
from ledger.errors import ClientError, QueryInvalid
from ledger.records import Envelope, parse_time
from node.evidence import SCAN_RECORDS_MAX, ChainView
from node.queries import first_leaf_from

#: What a ``group_by`` may name, in the order the CSV columns give them.
DIMENSIONS: Final = ("state", "instrument", "type")
GROUP_BY_DEFAULT: Final = DIMENSIONS
#: Hours are rounded to 3 decimals (3.6 seconds): block times have milliseconds.
HOURS_DECIMALS: Final = 3
#: The p90 of ``nearest_rank`` (docs/STATISTICS.md "Definitions").
P90: Final = 90
#: A CSV cell starting with one of these is read as a formula by spreadsheets.
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def _listed(*names: str) -> Callable[[Mapping[str, Any]], list[str]]:
    """The states a request names in ``names`` (a state code or a list of them)."""

    def states(content: Mapping[str, Any]) -> list[str]:
        found: list[str] = []
        for name in names:
            value = content.get(name)
            found += [value] if isinstance(value, str) else list(value or [])
        return [s for s in found if isinstance(s, str)]

    return states


#: request type -> the states it asks for an answer (less its actor's own state).
REQUESTED_STATES: Final[Mapping[str, Callable[[Mapping[str, Any]], list[str]]]] = {
    "mla_request": _listed("requested_state"),
    "emergency_disclosure": _listed("territorial_states"),
    "preservation_request": _listed("territorial_states"),
    "direct_provider_request": _listed("provider_state"),
    "epoc": _listed("establishment_state"),
    "epoc_pr": _listed("establishment_state"),
    "eio": _listed("executing_state"),
    "jit_agreement": _listed("member_states"),
}
#: request type -> the answer types that answer it (``ANSWERS`` read the other way).
ANSWER_TYPES_OF: Final[Mapping[str, tuple[str, ...]]] = {
    request: tuple(sorted(a for a, requests in ANSWERS.items() if request in requests))
    for request in REQUESTED_STATES
}
#: Answers the requester signs itself, on behalf of what the requested side reported.
_ISSUER_RECORDED: Final = frozenset({"addressee_report"})
#: A later phase of a request is not a new request.
_NEW_PHASES: Final = frozenset({None, "initial"})


def normalise_instrument(text: object, actor: str = "", other: str = "") -> str | None:
    """``legal_basis.instrument`` as one group: the consortium's instrument id when the
    text names one of ``ledger/instruments.py`` (so "Budapest Convention" and "CETS 185"
    are both ``budapest``; a bilateral treaty is ``bilateral_mlat:<other state>`` as the
    actor's directory entry lists it), else the text in NFC with white space trimmed and
    collapsed; None when absent or blank."""
    if not isinstance(text, str):
        return None
    cleaned = " ".join(unicodedata.normalize("NFC", text).split())
    if not cleaned:
        return None
    return instruments.resolve(cleaned, actor, other) or cleaned


# --- query parameters ---------------------------------------------------------------------


def parse_group_by(text: str | None) -> tuple[str, ...]:
    """``group_by=state,type`` -> ("state", "type"); each dimension at most once."""
    if text is None:
        return GROUP_BY_DEFAULT
    names = tuple(text.split(","))
    if not names or not set(names) <= set(DIMENSIONS) or len(set(names)) != len(names):
        raise ClientError(
            f"group_by must name each of {', '.join(DIMENSIONS)} at most once, comma-separated",
            field="query.group_by",
            code="bad_query",
        )
    return names


def check_window(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and start > end:
        raise QueryInvalid("from must not be after to", field="query.from", code="bad_range")


# --- legs: one request, one requested state ---------------------------------------------------


@dataclass(slots=True)
class Leg:
    """One request as one requested state owes it an answer."""

    request: str
    state: str
    instrument: str | None
    type: str
    committed: datetime
    first: datetime | None = None
    final: datetime | None = None

    def key(self, group_by: Sequence[str]) -> tuple[str | None, ...]:
        values = {"state": self.state, "instrument": self.instrument, "type": self.type}
        return tuple(values[name] for name in group_by)


@dataclass
class _Budget:
    """Records read so far over every scan of one answer."""

    left: int
    truncated: bool = False


@dataclass
class _Requests:
    by_id: dict[str, tuple[Envelope, list[Leg]]] = field(default_factory=dict)
    first_leaf: int | None = None


def _scan(
    view: ChainView, type_name: str, budget: _Budget, after_leaf: int | None
) -> Iterator[tuple[int, Envelope, datetime]]:
    """Committed records of ``type_name`` whose content the view reads, with their block
    time, in commit order, within the budget."""
    if budget.left <= 0:
        budget.truncated = True
        return
    records = view.scan("type", type_name, after_leaf=after_leaf, max_records=budget.left)
    for leaf, envelope in records:
        budget.left -= 1  # counted here: the caller may stop reading at any record
        if envelope.type == type_name:  # else a private header this caller cannot read
            yield leaf, envelope, parse_time(view.position(envelope)["commit_time"], "time")
    budget.truncated |= view.truncated


def _legs_of(envelope: Envelope, committed: datetime) -> list[Leg]:
    content = envelope.content
    if content.get("phase") not in _NEW_PHASES:
        return []
    states = sorted(set(REQUESTED_STATES[envelope.type](content)) - {envelope.actor_state})
    basis = content.get("legal_basis")
    text = basis.get("instrument") if isinstance(basis, dict) else None
    return [
        Leg(
            envelope.id,
            s,
            normalise_instrument(text, envelope.actor_state, s),
            envelope.type,
            committed,
        )
        for s in states
    ]


def _requests(
    view: ChainView, budget: _Budget, start: datetime | None, end: datetime | None, at: datetime
) -> _Requests:
    found = _Requests()
    low = first_leaf_from(view.store, start) if start is not None else 0
    for type_name in sorted(REQUESTED_STATES):
        for leaf, envelope, committed in _scan(view, type_name, budget, low - 1 if low else None):
            if committed > at or (end is not None and committed >= end):
                break  # block times increase with the leaf: nothing later is in the window
            if start is not None and committed < start:
                continue
            legs = _legs_of(envelope, committed)
            if legs:
                found.by_id[envelope.id] = (envelope, legs)
                found.first_leaf = leaf if found.first_leaf is None else min(found.first_leaf, leaf)
    return found


def _answer_legs(answer: Envelope, requests: _Requests) -> list[Leg]:
    """The legs ``answer`` answers: its request's, for the state that signed it."""
    refs = answer.content.get("refs") or []
    entry = requests.by_id.get(refs[0]) if refs and isinstance(refs[0], str) else None
    if entry is None:
        return []
    request, legs = entry
    if request.type not in ANSWERS.get(answer.type, frozenset()):
        return []
    if answer.type in _ISSUER_RECORDED:
        return legs if answer.actor_state == request.actor_state else []
    return [leg for leg in legs if leg.state == answer.actor_state]


def _record_answers(view: ChainView, budget: _Budget, requests: _Requests, at: datetime) -> None:
    if requests.first_leaf is None:
        return
    answer_types = sorted({a for r in REQUESTED_STATES for a in ANSWER_TYPES_OF[r]})
    for type_name in answer_types:
        for _, answer, committed in _scan(view, type_name, budget, requests.first_leaf):
            if committed > at:
                break
            final = is_final(type_name, answer.content.get(ANSWER_STATUS_FIELD[type_name]))
            for leg in _answer_legs(answer, requests):
                leg.first = leg.first or committed
                if final:
                    leg.final = leg.final or committed


def collect(
    view: ChainView, at: datetime, *, start: datetime | None = None, end: datetime | None = None
) -> tuple[list[Leg], bool]:
    """Every leg of a request committed in ``[start, end)`` and by ``at``, with its answers
    committed by ``at``; and whether the scan bound cut the reading short."""
    # Half the bound for the requests, so the answers of the requests read are read too
    # (else a cut short scan would show every request read as backlog).
    budget = _Budget(left=SCAN_RECORDS_MAX // 2)
    requests = _requests(view, budget, start, end, at)
    budget.left += SCAN_RECORDS_MAX - SCAN_RECORDS_MAX // 2
    _record_answers(view, budget, requests, at)
    legs = [leg for _, legs in requests.by_id.values() for leg in legs]
    legs.sort(key=lambda leg: (leg.committed, leg.request, leg.state))
    return legs, budget.truncated


# --- aggregates --------------------------------------------------------------------------------


def nearest_rank(sorted_values: Sequence[float], percent: int) -> float:
    """The nearest-rank percentile: the ceil(percent/100 * n)-th smallest value."""
    if not sorted_values or not 0 < percent <= 100:
        raise ValueError("nearest_rank needs values and 0 < percent <= 100")
    return sorted_values[max(1, math.ceil(percent * len(sorted_values) / 100)) - 1]


def median(sorted_values: Sequence[float]) -> float:
    """The middle value; for an even count, the mean of the two middle values."""
    n = len(sorted_values)
    if n == 0:
        raise ValueError("median needs values")
    middle = n // 2
    if n % 2:
        return sorted_values[middle]
    return (sorted_values[middle - 1] + sorted_values[middle]) / 2


def _hours(seconds: float) -> float:
    return round(seconds / 3600, HOURS_DECIMALS)


def _summary(durations_s: Iterable[float]) -> dict[str, float | None]:
    values = sorted(durations_s)
    if not values:
        return {"median": None, "p90": None, "mean": None}
    return {
        "median": _hours(median(values)),
        "p90": _hours(nearest_rank(values, P90)),
        "mean": _hours(sum(values) / len(values)),
    }


def _since(leg: Leg, moment: datetime | None) -> float | None:
    return None if moment is None else (moment - leg.committed).total_seconds()


def aggregate(legs: Sequence[Leg], at: datetime) -> dict[str, Any]:
    """The figures of one group of legs."""
    first = [s for s in (_since(leg, leg.first) for leg in legs) if s is not None]
    final = [s for s in (_since(leg, leg.final) for leg in legs) if s is not None]
    waiting = [(at - leg.committed).total_seconds() for leg in legs if leg.final is None]
    return {
        "requests": len(legs),
        "answered": len(first),
        "final": len(final),
        "first_answer_hours": _summary(first),
        "final_answer_hours": _summary(final),
        "backlog": len(waiting),
        "backlog_oldest_hours": _hours(max(waiting)) if waiting else None,
    }


def _iso(moment: datetime) -> str:
    """``format_time``'s form with a four-digit year for any year (strftime's ``%Y``
    does not pad years before 1000 on every platform)."""
    m = moment.astimezone(UTC)
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:"
        f"{m.second:02d}.{m.microsecond // 1000:03d}Z"
    )


def _order(key: tuple[str | None, ...]) -> tuple[tuple[bool, str], ...]:
    return tuple((value is not None, value or "") for value in key)  # None first


def statistics(
    view: ChainView,
    at: datetime,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    group_by: Sequence[str] = GROUP_BY_DEFAULT,
) -> dict[str, Any]:
    """``GET /v1/stats``: the figures overall and per group (docs/STATISTICS.md)."""
    check_window(start, end)
    legs, truncated = collect(view, at, start=start, end=end)
    groups: dict[tuple[str | None, ...], list[Leg]] = {}
    for leg in legs:
        groups.setdefault(leg.key(group_by), []).append(leg)
    return {
        "from": _iso(start) if start else None,
        "to": _iso(end) if end else None,
        "at": _iso(at),
        "group_by": list(group_by),
        "overall": aggregate(legs, at),
        "groups": [
            {**dict(zip(group_by, key, strict=True)), **aggregate(groups[key], at)}
            for key in sorted(groups, key=_order)
        ],
        "truncated": truncated,
    }


# --- CSV -----------------------------------------------------------------------------------------

#: The CSV columns, always all of them in this order (docs/STATISTICS.md "CSV").
CSV_COLUMNS: Final = (
    "row",
    *DIMENSIONS,
    "requests",
    "answered",
    "final",
    "first_answer_median_hours",
    "first_answer_p90_hours",
    "first_answer_mean_hours",
    "final_answer_median_hours",
    "final_answer_p90_hours",
    "final_answer_mean_hours",
    "backlog",
    "backlog_oldest_hours",
)
#: A dimension the rows are not grouped by: every value.
ALL: Final = "*"


def _cell(value: object) -> str:
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _csv_row(kind: str, group_by: Sequence[str], row: Mapping[str, Any]) -> list[str]:
    dims = [_cell(row.get(name)) if name in group_by else ALL for name in DIMENSIONS]
    first, final = row["first_answer_hours"], row["final_answer_hours"]
    figures = [row["requests"], row["answered"], row["final"]]
    figures += [first["median"], first["p90"], first["mean"]]
    figures += [final["median"], final["p90"], final["mean"]]
    figures += [row["backlog"], row["backlog_oldest_hours"]]
    return [kind, *dims, *(_cell(v) for v in figures)]


def statistics_csv(result: Mapping[str, Any]) -> str:
    """RFC 4180 text: a header, the ``overall`` row, then one ``group`` row per group."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(CSV_COLUMNS)
    group_by = result["group_by"]
    writer.writerow(_csv_row("overall", (), result["overall"]))
    for row in result["groups"]:
        writer.writerow(_csv_row("group", group_by, row))
    return out.getvalue()
