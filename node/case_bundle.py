"""Assembling a whole-case bundle (ledger/audit/case.py) from a node's committed records.

Theory of operation
-------------------
``case_bundle`` works out which records a case's bundle holds, then lets
``ledger.audit_source.build_bundle`` lay out their proofs. Through the
caller's ``ChainView`` (``api/routers/private.party_view``), so a private act
is reached, and its body added, only for a token that may read it. The
records, each with the reasons it is in (docs/AUDIT.md "Whole-case bundles"):

1. ``case_record``: every committed record with the case_ref (the index);
2. ``answer``: every answer to a case record (``evidence.answers_to``);
3. ``custody_event``: every custody event listing an evidence hash of a case
   record or an answer (the evidence index);
4. ``referenced``: every record any of the above names in ``refs``, and so on
   until none is missing, so that the verifier can demand the closure.

Everything is bounded: more than ``CASE_BUNDLE_RECORDS_MAX`` records, or an
index scan that hit its bound (``ChainView.truncated``), is refused with 413
``case_too_large`` naming the cap rather than served incomplete.
"""

from __future__ import annotations

from typing import Any, Final

from ledger.acts_custody import chain_key
from ledger.audit.bundle import CASE_FORMAT
from ledger.audit_source import StoreSource, build_bundle
from ledger.errors import NotFound, StoreError, TooLarge
from ledger.records import Envelope
from node import evidence
from node.evidence import ChainView

#: Records in one case bundle, every reason counted once (docs/AUDIT.md).
CASE_BUNDLE_RECORDS_MAX: Final = 2000

Reason = dict[str, str]


class _Collector:
    """The records found so far, each with its reasons, bounded."""

    def __init__(self, view: ChainView, case_ref: str, records_max: int) -> None:
        self.view, self.case_ref, self.records_max = view, case_ref, records_max
        self.reasons: dict[str, list[Reason]] = {}
        self.envelopes: dict[str, Envelope] = {}

    def add(self, envelope: Envelope, reason: Reason) -> bool:
        """Record ``reason`` for ``envelope``; whether the record is new."""
        new = envelope.id not in self.reasons
        if new and len(self.reasons) >= self.records_max:
            raise self.too_large()
        self.envelopes.setdefault(envelope.id, envelope)
        reasons = self.reasons.setdefault(envelope.id, [])
        if reason not in reasons:
            reasons.append(reason)
        return new

    def too_large(self) -> TooLarge:
        return TooLarge(
            f"case {self.case_ref} needs more than {self.records_max} records "
            "(CASE_BUNDLE_RECORDS_MAX) or more than an index scan allows; export "
            "single records with comity bundle export",
            field="case_ref",
            code="case_too_large",
        )


def collect(view: ChainView, case_ref: str, *, records_max: int | None = None) -> _Collector:
    """The case's records with their reasons (module doc), as ``view`` may see them;
    at most ``records_max`` (default ``CASE_BUNDLE_RECORDS_MAX``)."""
    evidence.check_case_ref(case_ref)
    records_max = CASE_BUNDLE_RECORDS_MAX if records_max is None else records_max
    found = _Collector(view, case_ref, records_max)
    for _, envelope in view.scan("case_ref", case_ref, max_records=records_max + 1):
        found.add(envelope, {"reason": "case_record"})
    for act in list(found.envelopes.values()):
        for answer in evidence.answers_to(view, act):
            known = found.envelopes.get(answer["id"]) or view.load(answer["id"])
            found.add(known, {"reason": "answer", "to": act.id})
    hashes = sorted({h for e in found.envelopes.values() for h in _hashes(e)})
    for sha256 in hashes:
        for _, envelope in view.scan("evidence", sha256, max_records=records_max + 1):
            if envelope.type == "custody_event" and chain_key(envelope.content) is not None:
                found.add(envelope, {"reason": "custody_event", "sha256": sha256})
    _close_refs(found)
    if view.truncated:
        raise found.too_large()
    return found


def _hashes(envelope: Envelope) -> list[str]:
    items = envelope.content.get("evidence") or []
    return [e["sha256"] for e in items if isinstance(e, dict) and isinstance(e.get("sha256"), str)]


def _close_refs(found: _Collector) -> None:
    todo = list(found.envelopes.values())
    while todo:
        envelope = todo.pop()
        for ref in envelope.content.get("refs") or []:
            if not found.view.store.has_record(ref):
                raise StoreError(f"committed record {envelope.id} names {ref}, not committed")
            target = found.envelopes.get(ref) or found.view.load(ref)
            if found.add(target, {"reason": "referenced", "by": envelope.id}):
                todo.append(target)


def _leaf(view: ChainView, record_id: str) -> int:
    located = view.store.locate(record_id)
    if located is None:
        raise StoreError(f"indexed record {record_id} has no locator")
    return located[1]


async def case_bundle(
    view: ChainView,
    genesis: dict[str, Any],
    case_ref: str,
    *,
    records_max: int | None = None,
) -> dict[str, Any]:
    """The ``comity-case/1`` bundle of ``case_ref`` as ``view`` may see it, with the
    latest checkpoint (docs/AUDIT.md)."""
    found = collect(view, case_ref, records_max=records_max)
    if not found.reasons:
        raise NotFound(
            f"no committed record of case {case_ref} that this caller may see",
            field="case_ref",
            code="case_not_found",
        )
    ordered = sorted(found.reasons, key=lambda rid: _leaf(view, rid))
    doc = await build_bundle(StoreSource(view.store, genesis), ordered, latest=True)
    doc["format"] = CASE_FORMAT
    doc["case"] = {
        "case_ref": case_ref,
        "records": [{"id": rid, "reasons": found.reasons[rid]} for rid in ordered],
    }
    bodies = {rid: found.envelopes[rid].body for rid in ordered if found.envelopes[rid].body}
    if bodies:
        doc["private"] = bodies
    return doc
