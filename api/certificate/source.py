"""Build a certificate's ``CaseModel`` from a node's HTTP views.

The node is not trusted: every reply is read field by field, a value of the
wrong type is dropped (or the build fails with ``ClientFailure`` naming it),
strings are clipped, and at most ``TIMELINE_ENTRIES_MAX + 1`` timeline entries
are read, so a hostile node cannot make the build unbounded. A model built
here carries checks ``not_run`` unless ``checks`` are passed in: reading views
verifies nothing, and the certificate says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote

from api.cli.client import ClientFailure
from ledger.audit.certificate_model import (
    CHECK_NAMES,
    TIMELINE_ENTRIES_MAX,
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
from ledger.audit.chain import genesis_hash

PAGE_LIMIT = 100
EVIDENCE_HASHES_MAX = 100
STATUS_FIELDS = ("status", "response", "decision", "outcome", "action", "phase")


class Client(Protocol):
    """What the builder needs of ``api.cli.client.NodeClient``."""

    def status(self) -> dict[str, Any]: ...
    def members(self) -> dict[str, Any]: ...
    def get(self, path: str, **params: Any) -> dict[str, Any]: ...


def model_from_node(
    client: Client,
    case_ref: str,
    bundle_sha256: str,
    *,
    source: str = "node",
    checks: Iterable[Check] | None = None,
    now: datetime | None = None,
) -> CaseModel:
    """The case ``case_ref`` as ``client``'s node shows it to the caller's token."""
    status = client.status()
    entries, more = _timeline(client, case_ref)
    acts = [_act_view(client, entry) for entry in entries]
    contents = [_content(client, act) if _is_id(act.get("id")) else None for act in acts]
    timeline = tuple(_entry(e, a, c) for e, a, c in zip(entries, acts, contents, strict=True))
    hashes = _evidence_hashes(contents)
    custody = tuple(c for sha in hashes for c in _custody(client, sha))
    model = CaseModel(
        case_ref=case_ref,
        generated_at=(now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        chain_id=_str(status.get("chain_id")) or "",
        genesis_hash=_genesis_hash(client),
        bundle_sha256=bundle_sha256,
        source=source,
        checks=tuple(checks) if checks is not None else _unchecked(),
        parties=_parties(client, timeline),
        timeline=timeline,
        sovereignty=tuple(s for e, a in zip(timeline, acts, strict=True) for s in _sov(e, a)),
        custody=custody,
        omitted={"timeline": 1} if more else {},
    )
    return bounded(model)


def _unchecked() -> tuple[Check, ...]:
    detail = "read from a node's views; verify the case bundle to check this"
    return tuple(Check(name, "not_run", detail) for name in CHECK_NAMES)


def _timeline(client: Client, case_ref: str) -> tuple[list[dict[str, Any]], bool]:
    """Up to TIMELINE_ENTRIES_MAX entries in commit order; whether more exist."""
    out: list[dict[str, Any]] = []
    cursor: str | None = None
    while len(out) < TIMELINE_ENTRIES_MAX:
        params: dict[str, Any] = {"limit": PAGE_LIMIT}
        if cursor is not None:
            params["cursor"] = cursor
        page = client.get(f"/v1/cases/{quote(case_ref, safe='')}", **params)
        rows = page.get("entries")
        if not isinstance(rows, list):
            raise ClientFailure(200, "bad_reply", "case view without entries")
        out += [r for r in rows if isinstance(r, dict) and _is_id(r.get("id"))]
        cursor = _str(page.get("next_cursor"))
        if cursor is None or not rows:
            return out[:TIMELINE_ENTRIES_MAX], len(out) > TIMELINE_ENTRIES_MAX
    return out[:TIMELINE_ENTRIES_MAX], True


def _act_view(client: Client, entry: dict[str, Any]) -> dict[str, Any]:
    try:
        return client.get(f"/v1/acts/{entry['id']}")
    except ClientFailure as exc:
        if exc.status in (400, 404):  # not an act (e.g. a governance record): header only
            return {}
        raise


def _record(act: dict[str, Any]) -> dict[str, Any]:
    envelope = act.get("envelope")
    record = envelope.get("record") if isinstance(envelope, dict) else None
    return record if isinstance(record, dict) else {}


def _content(client: Client, act: dict[str, Any]) -> dict[str, Any] | None:
    """The act as a party reads it: the envelope's record, or for a private act its
    content from ``/v1/records/{id}/private`` (an access-logged read); None when this
    node or token may not read it (header only)."""
    record = _record(act)
    if record.get("type") != "private_act":
        return record or None
    try:
        reply = client.get(f"/v1/records/{act.get('id')}/private")
    except ClientFailure as exc:
        if exc.status in (401, 403, 404):  # not a party, no body reader, body not held
            return None
        raise
    content = reply.get("content")
    return content if isinstance(content, dict) else None


def _entry(
    row: dict[str, Any], act: dict[str, Any], content: dict[str, Any] | None
) -> TimelineEntry:
    record = content or {}
    basis = record.get("legal_basis")
    basis = basis if isinstance(basis, dict) else {}
    auth = record.get("authorisation")
    return TimelineEntry(
        record_id=str(row["id"]),
        occurred_at=_str(row.get("occurred_at")) or "",
        commit_time=_str(row.get("commit_time")),
        height=_int(row.get("height")),
        actor_state=_str(row.get("actor_state")) or "",
        agency=_str(row.get("agency")) or "",
        type=_str(row.get("type")) or "",
        territorial_states=_strs(row.get("territorial_states")),
        instrument=_str(basis.get("instrument")),
        article=_str(basis.get("article")),
        authorisation=Authorisation(
            level=_str(auth.get("level")),
            reference=_str(auth.get("reference")),
            approved_by=_str(auth.get("approved_by")),
        )
        if isinstance(auth, dict)
        else None,
        status=next((_str(row.get(k)) for k in STATUS_FIELDS if _str(row.get(k))), None),
        answers=tuple(_answer(a) for a in _dicts(act.get("answers"))),
        private_header_only=content is None,
    )


def _answer(row: dict[str, Any]) -> Answer:
    return Answer(
        record_id=_str(row.get("id")) or "",
        type=_str(row.get("type")) or "",
        state=_str(row.get("state")) or "",
        answer=_str(row.get("answer")),
        final=row.get("final") is True,
        occurred_at=_str(row.get("occurred_at")) or "",
        height=_int(row.get("height")),
        ground=_str(row.get("ground")),
        reason=_str(row.get("reason")),
        conditions=_strs(row.get("conditions")),
    )


def _sov(entry: TimelineEntry, act: dict[str, Any]) -> list[SovereigntyAnswer]:
    answers = act.get("sovereignty")
    if not isinstance(answers, dict):
        return []
    return [
        SovereigntyAnswer(entry.record_id, entry.type, state, answer)
        for state, answer in sorted(answers.items())
        if isinstance(state, str) and isinstance(answer, str)
    ]


def _evidence_hashes(contents: list[dict[str, Any] | None]) -> list[str]:
    seen: dict[str, None] = {}
    for content in contents:
        for item in _dicts((content or {}).get("evidence")):
            sha = item.get("sha256")
            if isinstance(sha, str) and _is_id(sha):
                seen.setdefault(sha)
    return list(seen)[:EVIDENCE_HASHES_MAX]


def _custody(client: Client, sha256: str) -> list[CustodyChain]:
    view = client.get(f"/v1/evidence/{sha256}")
    return [
        CustodyChain(
            sha256=sha256,
            introducing_act=_str(chain.get("ref")) or "",
            introduced_by=_str(chain.get("introduced_by")) or "",
            status=_str(chain.get("status")) or "",
            holder=_str(chain.get("holder")),
            events=tuple(_event(e) for e in _dicts(chain.get("events"))),
            anomalies=tuple(
                _str(a.get("code")) or "anomaly" for a in _dicts(chain.get("anomalies"))
            ),
        )
        for chain in _dicts(view.get("custody_chains"))
    ]


def _event(row: dict[str, Any]) -> CustodyEvent:
    to = row.get("to")
    to = to if isinstance(to, dict) else {}
    return CustodyEvent(
        record_id=_str(row.get("id")) or "",
        action=_str(row.get("action")) or "",
        actor_state=_str(row.get("actor_state")) or "",
        occurred_at=_str(row.get("occurred_at")) or "",
        to_state=_str(to.get("state")),
        to_agency=_str(to.get("agency")),
        location=_str(row.get("location")),
        purpose=_str(row.get("purpose")),
    )


def _parties(client: Client, timeline: tuple[TimelineEntry, ...]) -> tuple[Party, ...]:
    names = {
        m["state"]: _str(m.get("name")) or m["state"]
        for m in _dicts(client.members().get("members"))
        if isinstance(m.get("state"), str)
    }
    states = sorted(
        {e.actor_state for e in timeline if e.actor_state}
        | {s for e in timeline for s in e.territorial_states}
    )
    return tuple(Party(state, names.get(state, state)) for state in states)


def _genesis_hash(client: Client) -> str:
    """SHA-256 of the canonical JSON of the node's genesis (docs/AUDIT.md): as claimed."""
    return genesis_hash(client.get("/v1/genesis"))


def _str(value: Any) -> str | None:
    return clip(value) if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _strs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(s for s in (_str(v) for v in value[:PAGE_LIMIT]) if s is not None)


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _is_id(value: Any) -> bool:
    return (
        isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    )
