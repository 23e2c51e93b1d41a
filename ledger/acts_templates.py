"""A valid example record of every act type: ``comity act new TYPE`` prints these.

Each template passes ``validate_act`` once ``chain_id`` and ``nonce`` are
filled in (``node.authoring.complete_record`` does that, as ``comity submit``
does). Placeholder hashes and record ids are all zeros: replace them with the
real SHA-256 of the evidence and the real id of the referenced record, or the
contextual rules (``ledger/acts_context.py``) will refuse the record.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from ledger.acts import MODELS
from ledger.records import SCHEMA, format_time

PLACEHOLDER_HASH = "0" * 64
PLACEHOLDER_REF = "0" * 64

Fields = dict[str, Any]
Maker = Callable[[str, str, datetime], Fields]


def _basis(instrument: str, article: str) -> Fields:
    return {"instrument": instrument, "article": article}


def _approval(now: datetime) -> Fields:
    return {
        "reference": "AUTH-2026-0001",
        "approved_by": "investigating judge",
        "level": "judicial",
        "approved_at": format_time(now),
    }


def _proportionality() -> Fields:
    return {
        "seriousness": "organised online fraud, many victims",
        "less_intrusive_alternatives": "a production order was tried and failed",
    }


def _recording() -> list[Fields]:
    return [{"sha256": PLACEHOLDER_HASH, "media_type": "video/mp4"}]


def _custodian(where: str) -> Fields:
    return {"name": "Example Hosting Ltd", "kind": "service_provider", "state": where}


def _later(now: datetime, days: int) -> str:
    return format_time(now + timedelta(days=days))


def _fields(type_: str, actor: str, where: str, now: datetime) -> Fields:
    """Type-specific fields of the template; ``where`` is the first territorial state."""
    return _TABLE[type_](actor, where, now)


def _provider_order(where: str, now: datetime) -> Fields:
    return {
        "custodian": _custodian(where),
        "establishment_state": where,
        "substantial_connection": "the provider offers its service in the issuing state",
        "data_category": ["subscriber"],
        "authorisation": _approval(now),
    }


#: type -> (actor state, first territorial state, now) -> its fields.
_TABLE: dict[str, Maker] = {
    "mla_request": lambda actor, where, now: {
        "legal_basis": _basis("Budapest Convention", "Art 27"),
        "requesting_authority": f"{actor} central authority",
        "requested_state": where,
        "requested_authority": f"{where} central authority",
        "measures": ["produce subscriber and traffic data of the preserved accounts"],
    },
    "mla_response": lambda actor, where, now: {"refs": [PLACEHOLDER_REF], "status": "executed"},
    "preservation_request": lambda actor, where, now: {
        "custodian": _custodian(where),
        "data_category": ["subscriber", "traffic"],
        "expires_at": _later(now, 90),
        "channel": "24_7_network",
        "legal_basis": _basis("Budapest Convention", "Art 29"),
    },
    "production_order": lambda actor, where, now: {
        "legal_basis": _basis("Budapest Convention", "Art 18"),
        "custodian": _custodian(where),
        "data_category": ["subscriber"],
    },
    "online_extraction": lambda actor, where, now: {
        "medium_location": {"state": where, "description": "cloud storage of the provider"},
        "reason": "public posts offering stolen card data",
        "recordings": _recording(),
    },
    "remote_inspection": lambda actor, where, now: {
        "target": "web administration panel of the fraud site",
        "recordings": _recording(),
        "technical_measures_used": False,
    },
    "technical_measure": lambda actor, where, now: {
        "measure": "interception",
        "authorisation": _approval(now),
        "proportionality": _proportionality(),
        "ends_at": _later(now, 30),
    },
    "search_seizure": lambda actor, where, now: {
        "medium_identity": "server rack 4, disk serial EX-0001",
        "mode": "on_site",
        "original_seized": False,
    },
    "realtime_collection": lambda actor, where, now: {
        "authorisation": _approval(now),
        "data_category": ["traffic"],
        "starts_at": format_time(now),
        "ends_at": _later(now, 14),
        "time_zone": "UTC",
    },
    "eio": lambda actor, where, now: {
        "issuing_state": actor,
        "executing_state": where,
        "measures": ["hear a witness by video conference"],
        "authorisation": _approval(now),
    },
    "epoc": lambda actor, where, now: _provider_order(where, now),
    "epoc_pr": lambda actor, where, now: {
        **_provider_order(where, now),
        "expires_at": _later(now, 60),
    },
    "art32_access": lambda actor, where, now: {
        "basis": "consent",
        "consent": {
            "given_by": "account holder (subject A)",
            "authority": "holder of the account and its stored data",
            "sha256": PLACEHOLDER_HASH,
        },
    },
    "emergency_disclosure": lambda actor, where, now: {
        "justification": "imminent risk to the life of a person",
        "respond_by": _later(now, 1),
        "legal_basis": _basis("Second Additional Protocol", "Art 10"),
    },
    "spontaneous_information": lambda actor, where, now: {"receiving_states": [where]},
    "video_conference": lambda actor, where, now: {
        "legal_basis": _basis("UNTOC", "Art 18(18)"),
        "national_coordinator": f"{where} central authority",
        "participants": [{"role": "witness", "state": where}, {"role": "judge", "state": actor}],
        "recordings": _recording(),
    },
    "joint_investigation": lambda actor, where, now: {
        "legal_basis": _basis("UNTOC", "Art 19"),
        "member_agencies": [
            {"state": actor, "agency": f"{actor} cybercrime unit"},
            {"state": where, "agency": f"{where} cybercrime unit"},
        ],
    },
    "custody_event": lambda actor, where, now: {
        "action": "collected",
        "refs": [PLACEHOLDER_REF],
        "location": {"state": actor, "place": f"{actor} evidence room"},
        "purpose": {"code": "investigation"},
    },
    "sovereignty_response": lambda actor, where, now: {
        "refs": [PLACEHOLDER_REF],
        "response": "acknowledged",
    },
    "conditions_acknowledgement": lambda actor, where, now: {
        "refs": [PLACEHOLDER_REF],
        "accepted": True,
    },
    "preservation_response": lambda actor, where, now: {
        "refs": [PLACEHOLDER_REF],
        "status": "preserved",
        "preserved_until": _later(now, 60),
    },
    "traffic_path_disclosure": lambda actor, where, now: {
        "refs": [PLACEHOLDER_REF],
        "status": "disclosed",
        "next_hop_states": [where],
    },
    "direct_provider_request": lambda actor, where, now: {
        "basis": "sap_7",
        "custodian": _custodian(where),
        "provider_state": where,
        "data_category": ["subscriber"],
        "notification_required": True,
        "respond_by": _later(now, 30),
    },
    "provider_request_answer": lambda actor, where, now: {
        "refs": [PLACEHOLDER_REF],
        "decision": "no_objection",
    },
    "epoc_enforcing_decision": lambda actor, where, now: {
        "refs": [PLACEHOLDER_REF],
        "decision": "no_ground_raised",
    },
    "addressee_report": lambda actor, where, now: {
        "refs": [PLACEHOLDER_REF],
        "outcome": "delivered",
    },
    "eio_response": lambda actor, where, now: {"refs": [PLACEHOLDER_REF], "status": "recognised"},
    "jit_agreement": lambda actor, where, now: {
        "legal_basis": _basis("Second Additional Protocol", "Art 12"),
        "member_states": [actor, where],
        "agreement_sha256": PLACEHOLDER_HASH,
        "ends_at": _later(now, 365),
    },
    "jit_accession": lambda actor, where, now: {
        "refs": [PLACEHOLDER_REF],
        "agreement_sha256": PLACEHOLDER_HASH,
    },
    "exchange_receipt": lambda actor, where, now: {
        "refs": [PLACEHOLDER_REF],
        "channel": "e_codex",
        "external_id": "00000000-0000-0000-0000-000000000000@domibus",
        "document_sha256": PLACEHOLDER_HASH,
        "delivery_evidence": [
            {"kind": "submission", "sha256": PLACEHOLDER_HASH, "at": format_time(now)}
        ],
        "sender_endpoint": f"urn:oasis:names:tc:ebcore:partyid-type:unregistered:{actor}",
        "recipient_endpoint": "urn:oasis:names:tc:ebcore:partyid-type:unregistered:YY",
        "counterpart_state": "YY" if actor != "YY" else "ZZ",
        "sent_at": format_time(now),
    },
}

#: Types whose only territory is the signer's own (an answer, not an act abroad).
_OWN_TERRITORY = frozenset(
    {
        "sovereignty_response",
        "conditions_acknowledgement",
        "preservation_response",
        "provider_request_answer",
        "epoc_enforcing_decision",
        "eio_response",
        "jit_accession",
        "exchange_receipt",
    }
)


def template(
    type_: str,
    *,
    state: str = "XX",
    agency: str = "cybercrime unit",
    case_ref: str = "CASE-2026-0001",
    territorial_states: tuple[str, ...] = (),
    now: datetime | None = None,
) -> Fields:
    """A record of ``type_`` that is valid once ``chain_id`` and ``nonce`` are added."""
    if type_ not in MODELS:
        raise KeyError(type_)
    moment = now or datetime.now().astimezone()
    where = list(territorial_states) or ["YY"]
    if type_ in _OWN_TERRITORY:
        where = [state]  # an answer concerns the answering state's own territory
    record: Fields = {
        "schema": SCHEMA,
        "type": type_,
        "actor": {"state": state, "agency": agency},
        "occurred_at": format_time(moment),
        "case_ref": case_ref,
        "territorial_states": where,
        "evidence": [{"sha256": PLACEHOLDER_HASH}],
    }
    record.update(_fields(type_, state, where[0], moment))
    if type_ in ("traffic_path_disclosure", "jit_agreement") and where[0] == state:
        other = "YY" if state != "YY" else "ZZ"
        record["territorial_states"] = [*where, other]
        field = "next_hop_states" if type_ == "traffic_path_disclosure" else "member_states"
        record[field] = [other] if field == "next_hop_states" else [state, other]
    if type_ == "spontaneous_information" and state in record["receiving_states"]:
        other = "YY" if state != "YY" else "ZZ"
        record["receiving_states"] = [other]
        record["territorial_states"] = [*where, other]  # a receiver is territorial
    return record
