"""Read-side views of acts: sovereignty notices and report, act answers, cases, evidence.

Theory of operation
-------------------
Everything here reads COMMITTED records through the store's secondary
indexes (``ledger/keyspace.py``: case_ref, evidence, territorial_state, type,
actor_state), always in commit order, and never writes. Each function
returns plain JSON-able dicts (shapes in docs/ACTS.md), so the routers stay
thin. Every node holds the whole chain, so every node gives the same answer
for the same height; only "notices" depend on the node (its own state).

Answers to an act (``sovereignty_response`` and the answer types of its
type, ``ledger/acts_lifecycle.ANSWERS``) carry the act's ``case_ref`` and come
from a state the contextual rules let answer (``ledger/acts_context.py``,
``answering_states``). So the answers of state S are the records in three
indexes at once: case_ref, type and actor_state == S
(``ledger/acts_index.intersect``). That costs at most
the shortest of the three lists, and no other state can lengthen S's own
records: a state that floods a case cannot hide another state's answer.

Scans are bounded (``SCAN_RECORDS_MAX``); a view that hit the bound says so
with ``"truncated": true`` rather than pretending to be complete.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger.acts import ACT_TYPES
from ledger.acts_context import answering_states
from ledger.acts_custody import chain_key, replay_lenient
from ledger.acts_index import SeekBudget, intersect
from ledger.acts_lifecycle import ANSWER_STATUS_FIELD, ANSWERS, answer_types_of, is_final, lifecycle
from ledger.acts_treaty import route_to
from ledger.directory import Entry
from ledger.errors import ClientError, NotFound, StoreError
from ledger.hashing import is_hex
from ledger.records import Envelope, parse_time
from ledger.store import SEARCH_LIMIT_MAX, Store
from node.application import CommittedRecords
from node.queries import query_time
from node.state import ChainState

SCAN_RECORDS_MAX = 100_000
PAGE_MAX = 500
CASE_REF_CHARS_MAX = 128
#: Index seeks to find one state's answers of one type to one act.
ANSWER_SEEKS_MAX = 100_000
SOVEREIGNTY_ONLY = frozenset({"sovereignty_response"})


@dataclass
class ChainView:
    """Committed records by index, with their position and commit time."""

    store: Store
    load: Callable[[str], Envelope]
    truncated: bool = False
    #: Whether ``load`` gives private acts' content (a body reader's view).
    private: bool = False
    #: Each member's current directory entry (docs/DIRECTORY.md): notices' ``route_to``
    #: and the directory's clocks (``node/deadlines.py``) read it.
    directory: Mapping[str, Entry] = field(default_factory=dict)
    _times: dict[int, str] = field(default_factory=dict)

    def scan(
        self,
        index: str,
        value: str,
        *,
        after_leaf: int | None = None,
        max_records: int = SCAN_RECORDS_MAX,
    ) -> Iterator[tuple[int, Envelope]]:
        """(leaf_index, envelope) of ``index == value`` in commit order, bounded."""
        seen = 0
        while seen < max_records:
            page = self.store.search(
                index,
                value,
                after_leaf=after_leaf,
                limit=min(SEARCH_LIMIT_MAX, max_records - seen),
                sealed=self.private,
            )
            for leaf, record_id in page:
                yield leaf, self.load(record_id)
            seen += len(page)
            if len(page) < SEARCH_LIMIT_MAX:
                return
            after_leaf = page[-1][0]
        self.truncated = True

    def position(self, envelope: Envelope) -> dict[str, Any]:
        located = self.store.locate(envelope.id)
        if located is None:
            raise StoreError(f"indexed record {envelope.id} has no locator")
        height, leaf = located
        return {"height": height, "leaf_index": leaf, "commit_time": self.commit_time(height)}

    def commit_time(self, height: int) -> str:
        if height not in self._times:
            header = self.store.get_header(height)
            if header is None:
                raise StoreError(f"no header at committed height {height}")
            self._times[height] = header.time
        return self._times[height]


def view_of(records: CommittedRecords) -> ChainView:
    """A ``ChainView`` over the committed records (a node's ``Application``), with the
    chain's directory when the records come with a chain state."""
    return ChainView(records.store, records.load_envelope, directory=directory_of(records))


def directory_of(records: object) -> Mapping[str, Entry]:
    state = getattr(records, "state", None)
    return state.directory_entries() if isinstance(state, ChainState) else {}


def parse_cursor(cursor: str | None) -> int | None:
    """A page cursor (the last leaf index of the previous page) or None."""
    if cursor is None:
        return None
    if not cursor.isdigit() or len(cursor) > 18:
        raise ClientError(
            "cursor must be the next_cursor of a previous page", field="cursor", code="bad_cursor"
        )
    return int(cursor)


def summary(envelope: Envelope) -> dict[str, Any]:
    record = envelope.content
    return {
        "id": envelope.id,
        "type": envelope.type,
        "actor_state": envelope.actor_state,
        "agency": record["actor"]["agency"],
        "case_ref": record.get("case_ref"),
        "occurred_at": record["occurred_at"],
        "territorial_states": record.get("territorial_states") or [],
        "refs": record.get("refs") or [],
        "sealed": "sealed" in record,
    }


# --- answers ---------------------------------------------------------------------------


def answers_to(
    view: ChainView,
    act: Envelope,
    *,
    states: Sequence[str] | None = None,
    types: frozenset[str] | None = None,
) -> list[dict[str, Any]]:
    """Committed answers naming ``act``, in commit order.

    ``types`` (default: ``sovereignty_response`` and every answer type of the
    act's type, ``ledger/acts_lifecycle.ANSWERS``) and ``states`` (default, per
    type: the states that may sign it, ``acts_context.answering_states``)
    narrow the answers looked for.
    """
    case_ref = act.content.get("case_ref")
    located = view.store.locate(act.id)
    if not isinstance(case_ref, str) or located is None:
        return []
    wanted = types if types is not None else SOVEREIGNTY_ONLY | set(answer_types_of(act.type))
    found: list[tuple[int, Envelope]] = []
    for type_name in sorted(wanted):
        if type_name != "sovereignty_response" and act.type not in ANSWERS.get(type_name, ()):
            continue
        who = states if states is not None else sorted(answering_states(type_name, act))
        for state in who:
            found += _answers_of(
                view,
                act,
                located[1],
                (("actor_state", state), ("type", type_name), ("case_ref", case_ref)),
            )
    return [_answer(view, envelope) for _, envelope in sorted(found, key=lambda f: f[0])]


def _mla_referenced(view: ChainView, act: Envelope) -> bool:
    """Whether the act's own state has committed an ``mla_request`` naming it."""
    case_ref = act.content.get("case_ref")
    located = view.store.locate(act.id)
    if not isinstance(case_ref, str) or located is None:
        return False
    terms = (("actor_state", act.actor_state), ("type", "mla_request"), ("case_ref", case_ref))
    return bool(_answers_of(view, act, located[1], terms))


def _answers_of(
    view: ChainView, act: Envelope, after: int, terms: tuple[tuple[str, str], ...]
) -> list[tuple[int, Envelope]]:
    budget = SeekBudget(ANSWER_SEEKS_MAX)
    out = [
        (leaf, envelope)
        for leaf, envelope in (
            (leaf, view.load(rid))
            for leaf, rid in intersect(view.store, terms, budget, after_leaf=after)
        )
        if act.id in (envelope.content.get("refs") or [])
    ]
    view.truncated |= budget.exhausted
    return out


def _answer(view: ChainView, envelope: Envelope) -> dict[str, Any]:
    record = envelope.content
    status_field = ANSWER_STATUS_FIELD.get(envelope.type, "status")
    answer = envelope.type if status_field == "type" else record.get(status_field)
    return {
        "id": envelope.id,
        "type": envelope.type,
        "state": envelope.actor_state,
        "answer": answer,
        "final": is_final(envelope.type, answer),
        "ground": record.get("ground"),
        "reason": record.get("reason"),
        "conditions": record.get("conditions") or [],
        "occurred_at": record["occurred_at"],
        **view.position(envelope),
    }


def sovereignty_status(act: Envelope, answers: list[dict[str, Any]]) -> dict[str, str]:
    """Latest sovereignty answer of each territorial state other than the actor."""
    status = {
        state: "pending"
        for state in act.content.get("territorial_states") or []
        if state != act.actor_state
    }
    for answer in answers:
        if answer["type"] == "sovereignty_response" and answer["state"] in status:
            status[answer["state"]] = answer["answer"]
    return status


def act_view(view: ChainView, record_id: str) -> dict[str, Any]:
    if not is_hex(record_id, 32):
        raise ClientError("record id must be 64 lowercase hex", field="id", code="bad_hex")
    if not view.store.has_record(record_id):
        raise NotFound(
            f"no committed record with id {record_id}", field="id", code="record_not_found"
        )
    act = view.load(record_id)
    answers = answers_to(view, act)
    referenced = act.type == "preservation_request" and _mla_referenced(view, act)
    return {
        **summary(act),
        **view.position(act),
        "envelope": act.to_json(),
        "answers": answers,
        "lifecycle": lifecycle(act.type, answers, mla_referenced=referenced),
        "sovereignty": sovereignty_status(act, answers),
    }


# --- sovereignty notices and report ------------------------------------------------------


def is_foreign_act(envelope: Envelope, state: str) -> bool:
    return (
        envelope.type in ACT_TYPES
        and envelope.type != "sovereignty_response"
        and envelope.actor_state != state
    )


def _notice(view: ChainView, act: Envelope, state: str) -> dict[str, Any]:
    mine = answers_to(view, act, states=[state], types=SOVEREIGNTY_ONLY)
    notice = {
        **summary(act),
        **view.position(act),
        "status": "answered" if mine else "pending",
        "response": mine[-1] if mine else None,
    }
    if act.content.get("notification_required") is True:
        notice["notification_required"] = True  # e.g. SAP Art 7(5)(a), declared
    entry = view.directory.get(state)
    if entry is not None:
        notice["route_to"] = route_json(act, state, entry)
    return notice


def route_json(act: Envelope, state: str, entry: Entry) -> dict[str, Any] | None:
    """The authority of ``state``'s directory entry a notice goes to (docs/DIRECTORY.md)."""
    authority = route_to(act.content, act.actor_state, state, entry)
    if authority is None:
        return None
    return {
        "state": state,
        "authority": authority.id,
        "name": authority.name,
        "roles": list(authority.roles),
        "channels": [c.model_dump(exclude_none=True) for c in authority.channels],
    }


def notices(
    view: ChainView,
    state: str,
    *,
    status: str | None = None,
    after_leaf: int | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """Acts of foreign states on ``state``'s territory, oldest first, with their answer."""
    if status not in (None, "pending", "answered"):
        raise ClientError("status must be pending or answered", field="status", code="bad_query")
    limit = max(1, min(limit, PAGE_MAX))
    out: list[dict[str, Any]] = []
    last: int | None = None
    for leaf, envelope in view.scan("territorial_state", state, after_leaf=after_leaf):
        last = leaf
        if not is_foreign_act(envelope, state):
            continue
        item = _notice(view, envelope, state)
        if status is None or item["status"] == status:
            out.append(item)
            if len(out) >= limit:
                break
    more = len(out) >= limit and last is not None
    return {
        "state": state,
        "notices": out,
        "truncated": view.truncated,
        "next_cursor": str(last) if more else None,
    }


def notices_in_block(envelopes: list[Envelope], state: str) -> list[dict[str, Any]]:
    """The new notices a committed block brings ``state`` (for an SSE ``notice`` event)."""
    return [
        summary(e)
        for e in envelopes
        if is_foreign_act(e, state) and state in (e.content.get("territorial_states") or [])
    ]


REPORT_TIME_FIELDS = ("occurred", "committed")


def sovereignty_report(
    view: ChainView,
    state: str,
    *,
    from_time: str | None = None,
    to_time: str | None = None,
    time_field: str = "occurred",
) -> dict[str, Any]:
    """Counts of foreign acts on ``state``'s territory by actor state, type and answer.

    ``from_time`` (inclusive) and ``to_time`` (exclusive) bound the acts'
    ``occurred_at`` (``time_field="occurred"``, what the actor claims) or their
    block's time (``"committed"``, what the consortium fixed: a report by commit
    time cannot be changed later by backdating). The answer counted is
    ``state``'s latest, or "pending".
    """
    if time_field not in REPORT_TIME_FIELDS:
        raise ClientError("time must be occurred or committed", field="time", code="bad_query")
    start = query_time(from_time, "from") if from_time else None
    end = query_time(to_time, "to") if to_time else None
    counts: Counter[tuple[str, str, str]] = Counter()
    for _, envelope in view.scan("territorial_state", state):
        if not is_foreign_act(envelope, state):
            continue
        when = (
            envelope.content["occurred_at"]
            if time_field == "occurred"
            else view.position(envelope)["commit_time"]
        )
        moment = parse_time(when, "time")
        if (start is not None and moment < start) or (end is not None and moment >= end):
            continue
        answers = answers_to(view, envelope, states=[state], types=SOVEREIGNTY_ONLY)
        answer = sovereignty_status(envelope, answers).get(state, "pending")
        counts[(envelope.actor_state, envelope.type, answer)] += 1
    rows = [
        {"actor_state": a, "type": t, "response": r, "count": n}
        for (a, t, r), n in sorted(counts.items())
    ]
    return {
        "state": state,
        "from": from_time,
        "to": to_time,
        "time_field": time_field,
        "total": sum(counts.values()),
        "rows": rows,
        "truncated": view.truncated,
    }


REPORT_COLUMNS = ("actor_state", "type", "response", "count")


def report_csv(report: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=REPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(report["rows"])
    return out.getvalue()


# --- cases and evidence ------------------------------------------------------------------


def check_case_ref(case_ref: str) -> None:
    if not 1 <= len(case_ref) <= CASE_REF_CHARS_MAX:
        raise ClientError(
            f"case_ref must be 1-{CASE_REF_CHARS_MAX} characters",
            field="case_ref",
            code="bad_query",
        )


def case_timeline(
    view: ChainView, case_ref: str, *, after_leaf: int | None = None, limit: int = 100
) -> dict[str, Any]:
    """Every committed record of a case across states, in commit order."""
    check_case_ref(case_ref)
    limit = max(1, min(limit, PAGE_MAX))
    entries: list[dict[str, Any]] = []
    for _, envelope in view.scan("case_ref", case_ref, after_leaf=after_leaf, max_records=limit):
        entries.append(
            {**summary(envelope), **view.position(envelope), **_highlights(envelope.content)}
        )
    states = sorted(
        {e["actor_state"] for e in entries} | {s for e in entries for s in e["territorial_states"]}
    )
    more = len(entries) >= limit
    return {
        "case_ref": case_ref,
        "states": states,
        "entries": entries,
        "next_cursor": str(entries[-1]["leaf_index"]) if more else None,
    }


_HIGHLIGHTS = (
    "response",
    "status",
    "decision",
    "outcome",
    "ground",
    "action",
    "phase",
    "expires_at",
    "ends_at",
    "respond_by",
    "requested_state",
)


def _highlights(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record[k] for k in _HIGHLIGHTS if k in record}


def evidence_view(view: ChainView, sha256: str) -> dict[str, Any]:
    """Every committed record listing ``sha256``, each custody chain's state, and derivations.

    A chain is keyed by (hash, introducing act), the ``evidence[0]`` and
    ``refs[0]`` of its events (``ledger/acts_custody.py``): one state's events
    never change another state's chain of the same hash, and an event that
    only lists ``sha256`` as an item it derived belongs to its original's chain.
    """
    if not is_hex(sha256, 32):
        raise ClientError("sha256 must be 64 lowercase hex", field="sha256", code="bad_hex")
    records = [e for _, e in view.scan("evidence", sha256)]
    if not records:
        raise NotFound(
            f"no committed record lists evidence {sha256}",
            field="sha256",
            code="evidence_not_found",
        )
    chains: dict[str, list[Envelope]] = {}
    for envelope in records:
        key = chain_key(envelope.content) if envelope.type == "custody_event" else None
        if key is not None and key[0] == sha256:
            chains.setdefault(key[1], []).append(envelope)
    return {
        "sha256": sha256,
        "records": [{**summary(e), **view.position(e)} for e in records],
        "custody_chains": [_custody_chain(view, ref, events) for ref, events in chains.items()],
        **_derivations(records, sha256),
        "truncated": view.truncated,
    }


def _derivations(records: list[Envelope], sha256: str) -> dict[str, list[dict[str, Any]]]:
    """``derived_from``: the items this one was made from; ``derivatives``: those made from it.

    Read from the records listing this hash: an item of theirs that is this
    hash and names its source, or that names this hash as its source (an
    image an ``acquired`` event made, a translation listed with its original).
    """
    sources: list[dict[str, Any]] = []
    made: list[dict[str, Any]] = []
    for envelope in records:
        for item in envelope.content.get("evidence") or []:
            origin = item.get("derived_from")
            link = {"record_id": envelope.id, "type": envelope.type, "role": item.get("role")}
            if item.get("sha256") == sha256 and origin is not None:
                sources.append({"sha256": origin, **link})
            elif origin == sha256:
                made.append({"sha256": item.get("sha256"), **link})
    return {"derived_from": sources, "derivatives": made}


_EVENT_FIELDS = ("to", "location", "purpose", "hash_check", "recomputed_sha256")


def _event(envelope: Envelope) -> dict[str, Any]:
    content = envelope.content
    out: dict[str, Any] = {
        "id": envelope.id,
        "action": content["action"],
        "actor_state": envelope.actor_state,
        "occurred_at": content["occurred_at"],
        "refs": list(content.get("refs") or []),
        "to": content.get("to"),
    }
    out.update({name: content[name] for name in _EVENT_FIELDS if name in content})
    derived = [item["sha256"] for item in (content.get("evidence") or [])[1:]]
    if derived:
        out["derived"] = derived
    return out


def _custody_chain(view: ChainView, ref: str, events: list[Envelope]) -> dict[str, Any]:
    # The contextual rule made refs[0] a committed act before the event committed; an
    # older store may lack it, and then no event of the chain is valid ("" is no state).
    owner = view.load(ref).actor_state if view.store.has_record(ref) else ""
    state, anomalies = replay_lenient(((e.id, e.content) for e in events), owner)
    return {
        "ref": ref,
        "introduced_by": owner,
        **state.to_json(),
        "events": [_event(e) for e in events],
        "anomalies": [
            {"event_id": events[i].id, "code": exc.code, "message": str(exc)}
            for i, exc in anomalies
        ],
    }
