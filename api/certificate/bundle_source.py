"""Build a certificate's ``CaseModel`` from a verified whole-case bundle, offline.

``ledger.audit.case.load_case_bundle`` proves every record of the bundle against
the court's own genesis file (signatures, inclusion proofs, commit certificates,
the validator-set chain) and raises on any failure, so every check of a model
built here has passed, and every line of the certificate comes from a proven
record: no node is asked anything. The answers and custody chains are rebuilt
from the proven records with the catalogue's own tables
(``ledger/acts_lifecycle.py``, ``ledger/acts_custody.py``), as the node's views
build them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from api.certificate.source import STATUS_FIELDS
from ledger.acts_custody import replay_lenient
from ledger.acts_lifecycle import ANSWER_STATUS_FIELD, is_final
from ledger.audit.case import load_case_bundle
from ledger.audit.certificate_model import (
    CHECK_NAMES,
    Answer,
    Authorisation,
    CaseModel,
    Check,
    CustodyChain,
    CustodyEvent,
    Party,
    SovereigntyAnswer,
    TimelineEntry,
    bounded,
    clip,
)


def model_from_bundle(
    bundle: Path, genesis: Path, *, now: datetime | None = None
) -> tuple[CaseModel, dict[str, Any]]:
    """The verified case of ``bundle`` under the court's ``genesis`` file, and what
    ``load_case_bundle`` returned (``AuditFailure`` if anything does not verify)."""
    loaded = load_case_bundle(bundle, genesis)
    records = {r["id"]: r for r in loaded["records"]}
    case_records = [
        r for r in loaded["records"] if any(x["reason"] == "case_record" for x in r["reasons"])
    ]
    timeline = tuple(_entry(r, loaded["answers"].get(r["id"], []), records) for r in case_records)
    detail = (
        f"{len(loaded['records'])} records, {loaded['verification']['blocks']} blocks, "
        f"proven offline against genesis {genesis.name}"
    )
    model = CaseModel(
        case_ref=loaded["case_ref"],
        generated_at=(now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        chain_id=loaded["chain_id"],
        genesis_hash=loaded["genesis_hash"],
        bundle_sha256=loaded["bundle_sha256"],
        source=f"bundle {bundle.name}",
        checks=tuple(Check(name, "passed", detail) for name in CHECK_NAMES),
        parties=_parties(genesis, timeline),
        timeline=timeline,
        sovereignty=tuple(s for r in case_records for s in _sovereignty(r, loaded, records)),
        custody=tuple(_chain(sha, ids, records) for sha, ids in sorted(loaded["custody"].items())),
    )
    return bounded(model), loaded


def _content(record: Mapping[str, Any]) -> dict[str, Any]:
    content = record.get("content")
    return content if isinstance(content, dict) and not record.get("header_only") else {}


def _status(content: Mapping[str, Any]) -> str | None:
    return next((clip(str(content[k])) for k in STATUS_FIELDS if content.get(k)), None)


def _entry(
    record: Mapping[str, Any], answer_ids: list[str], records: Mapping[str, Any]
) -> TimelineEntry:
    content = _content(record)
    actor = content.get("actor") or (record.get("content") or {}).get("actor") or {}
    basis = content.get("legal_basis") if isinstance(content.get("legal_basis"), dict) else {}
    auth = content.get("authorisation")
    return TimelineEntry(
        record_id=record["id"],
        occurred_at=str(content.get("occurred_at") or ""),
        commit_time=record.get("block_time"),
        height=record.get("height"),
        actor_state=str(actor.get("state") or ""),
        agency=clip(str(actor.get("agency") or "")) or "",
        type=str(content.get("type") or record.get("type") or ""),
        territorial_states=tuple(content.get("territorial_states") or ()),
        instrument=clip(basis.get("instrument")) if basis else None,
        article=clip(basis.get("article")) if basis else None,
        authorisation=Authorisation(
            level=auth.get("level"),
            reference=clip(auth.get("reference")),
            approved_by=clip(auth.get("approved_by")),
        )
        if isinstance(auth, dict)
        else None,
        status=_status(content),
        answers=tuple(_answer(records[i]) for i in answer_ids if i in records),
        private_header_only=not content,
    )


def _answer(record: Mapping[str, Any]) -> Answer:
    content = _content(record)
    kind = str(content.get("type") or record.get("type") or "")
    field = ANSWER_STATUS_FIELD.get(kind, "status")
    value = kind if field == "type" else content.get(field)
    answer = value if isinstance(value, str) else None
    return Answer(
        record_id=record["id"],
        type=kind,
        state=str((content.get("actor") or {}).get("state") or ""),
        answer=answer,
        final=is_final(kind, answer),
        occurred_at=str(content.get("occurred_at") or ""),
        height=record.get("height"),
        ground=content.get("ground"),
        reason=clip(content.get("reason")),
        conditions=tuple(clip(c) or "" for c in content.get("conditions") or ()),
    )


def _sovereignty(
    record: Mapping[str, Any], loaded: Mapping[str, Any], records: Mapping[str, Any]
) -> list[SovereigntyAnswer]:
    """Each territorial state's latest sovereignty answer to the act (``pending`` if none),
    as ``node.evidence.sovereignty_status`` counts them."""
    content = _content(record)
    if not content:
        return []
    actor = (content.get("actor") or {}).get("state")
    status = {s: "pending" for s in content.get("territorial_states") or () if s != actor}
    for answer_id in loaded["answers"].get(record["id"], []):
        answer = _content(records.get(answer_id, {}))
        state = (answer.get("actor") or {}).get("state")
        if answer.get("type") == "sovereignty_response" and state in status:
            status[state] = str(answer.get("response"))
    kind = str(content.get("type"))
    return [SovereigntyAnswer(record["id"], kind, s, a) for s, a in sorted(status.items())]


def _chain(sha256: str, event_ids: list[str], records: Mapping[str, Any]) -> CustodyChain:
    events = [(i, _content(records[i])) for i in event_ids if i in records]
    events = [(i, c) for i, c in events if c]
    introducing = str(((events[0][1].get("refs") or [""])[0]) if events else "")
    introduced_by = _introducer(records.get(introducing, {}), events)
    state, anomalies = replay_lenient(events, introduced_by)
    return CustodyChain(
        sha256=sha256,
        introducing_act=introducing,
        introduced_by=introduced_by,
        status=state.status,
        holder=state.holder,
        events=tuple(_event(i, c) for i, c in events),
        anomalies=tuple(exc.code for _, exc in anomalies),
    )


def _introducer(act: Mapping[str, Any], events: list[tuple[str, dict[str, Any]]]) -> str:
    content = _content(act) or (act.get("content") or {})
    state = (content.get("actor") or {}).get("state")
    if isinstance(state, str):
        return state
    return str((events[0][1].get("actor") or {}).get("state") or "") if events else ""


def _event(record_id: str, content: Mapping[str, Any]) -> CustodyEvent:
    raw_to = content.get("to")
    to: Mapping[str, Any] = raw_to if isinstance(raw_to, dict) else {}
    location = content.get("location")
    if isinstance(location, dict):
        location = ", ".join(str(v) for v in location.values() if v)
    purpose = content.get("purpose")
    if isinstance(purpose, dict):
        purpose = ", ".join(str(v) for v in purpose.values() if v)
    return CustodyEvent(
        record_id=record_id,
        action=str(content.get("action") or ""),
        actor_state=str((content.get("actor") or {}).get("state") or ""),
        occurred_at=str(content.get("occurred_at") or ""),
        to_state=to.get("state"),
        to_agency=clip(to.get("agency")),
        location=clip(location) if isinstance(location, str) else None,
        purpose=clip(purpose) if isinstance(purpose, str) else None,
    )


def _parties(genesis: Path, timeline: tuple[TimelineEntry, ...]) -> tuple[Party, ...]:
    """The states of the case, named as the court's genesis names the members."""
    members = json.loads(genesis.read_text(encoding="utf-8")).get("members") or []
    names = {m["state"]: str(m.get("name") or m["state"]) for m in members if "state" in m}
    states = sorted(
        {e.actor_state for e in timeline if e.actor_state}
        | {s for e in timeline for s in e.territorial_states}
    )
    return tuple(Party(state, names.get(state, state)) for state in states)
