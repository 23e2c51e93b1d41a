"""How long a party node keeps an act's private body: Comity's default per act type.

Theory of operation
-------------------
The Second Additional Protocol to the Budapest Convention, Art 14(5), asks
each Party to keep personal data only as long as necessary and appropriate for
the purposes it was received for, and to review that periodically; the UNTOC
working-group paper (seed 004 §61) asks for set retention periods for the same
reason. Neither gives a number, so Comity gives a default per act type
(``RETENTION_DAYS``, documented with its reasoning in docs/ACTS.md
"Retention defaults"), counted from the act's ``occurred_at``:

* ``SHORT`` (one year): acts whose purpose ends quickly: an emergency request
  (answered within days), a preservation (90 days at most, Budapest Art 16(2),
  plus its extensions and the request that follows it) and unasked
  information, which is kept only if a request follows it;
* ``CASE`` (five years): requests, orders and answers that live as long as
  the investigation they serve;
* ``EVIDENCE`` (ten years): acts that gather or hand over evidence, and its
  custody, which a court may need until the last appeal; and the answers to
  acts (sovereignty responses, acknowledgements of conditions), so that an
  answer is never purged before the act it answers.

``default_retain_until(record)`` is a pure function of the record: the author
of a ``parties`` act fills ``retain_until`` with it unless it sets a shorter
date itself; once that time passes, every party node purges the body and keeps
the header and its commitment.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import Any, Final

from ledger.errors import RecordInvalid
from ledger.records import format_time, parse_time

SHORT: Final = 365
CASE: Final = 1826
EVIDENCE: Final = 3653

RETENTION_DAYS: Final[Mapping[str, int]] = MappingProxyType(
    {
        "emergency_disclosure": SHORT,
        "preservation_request": SHORT,
        "epoc_pr": SHORT,
        "spontaneous_information": SHORT,
        "mla_request": CASE,
        "mla_response": CASE,
        "production_order": CASE,
        "eio": CASE,
        "epoc": CASE,
        "art32_access": CASE,
        "joint_investigation": CASE,
        "online_extraction": EVIDENCE,
        "remote_inspection": EVIDENCE,
        "technical_measure": EVIDENCE,
        "search_seizure": EVIDENCE,
        "realtime_collection": EVIDENCE,
        "video_conference": EVIDENCE,
        "custody_event": EVIDENCE,
        "sovereignty_response": EVIDENCE,
        "conditions_acknowledgement": EVIDENCE,
        "direct_provider_request": CASE,
        "jit_agreement": CASE,
        "preservation_response": EVIDENCE,
        "traffic_path_disclosure": EVIDENCE,
        "provider_request_answer": EVIDENCE,
        "epoc_enforcing_decision": EVIDENCE,
        "addressee_report": EVIDENCE,
        "eio_response": EVIDENCE,
        "jit_accession": EVIDENCE,
        "exchange_receipt": EVIDENCE,
    }
)


def default_retain_until(
    record: Mapping[str, Any], days: Mapping[str, int] = RETENTION_DAYS
) -> str:
    """``occurred_at`` plus the type's retention, as RFC 3339 UTC (millisecond precision)."""
    type_ = record.get("type")
    if not isinstance(type_, str) or type_ not in days:
        raise RecordInvalid(
            f"record.type {type_!r} has no retention default",
            field="record.type",
            code="unknown_type",
        )
    occurred = parse_time(record.get("occurred_at"), "record.occurred_at")
    return format_time(occurred + timedelta(days=days[type_]))
