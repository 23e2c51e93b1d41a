"""The act catalogue (ledger/acts.py): a valid and several invalid records per type.

Rows cite docs/DOMAIN.md ("Act types named in the sources") and the article the
rule comes from. Each invalid row names the exact field and code expected.
"""

from __future__ import annotations

import ast
import copy
import traceback
from pathlib import Path
from typing import Any, Final

import pytest

import ledger.acts as acts_module
from ledger.acts import ACT_TYPES, MODELS, json_schemas, register_acts, validate_act
from ledger.acts_fields import ActPolicy
from ledger.acts_templates import template
from ledger.errors import RecordInvalid
from ledger.records import TypeRegistry
from ledger.roles import AUTHORITY_ACTS, INTEGRATION_ACTS, INVESTIGATOR_ACTS

H = "ab" * 32
REF = "cd" * 32
T0 = "2026-03-01T00:00:00Z"
APPROVAL = {"reference": "J-1", "approved_by": "judge", "level": "judicial", "approved_at": T0}
CUSTODIAN = {"name": "Example Hosting Ltd", "state": "TH"}
REC = [{"sha256": H, "media_type": "video/mp4"}]
PROP = {"seriousness": "fraud ring", "less_intrusive_alternatives": "orders failed"}

COMMON: dict[str, Any] = {
    "schema": "comity/1",
    "chain_id": "comity-test",
    "actor": {"state": "CN", "agency": "Ministry of Public Security"},
    "nonce": "nonce-0001",
    "occurred_at": T0,
    "case_ref": "CN-2026-0042",
    "territorial_states": ["TH"],
    "evidence": [{"sha256": H}],
}

VALID: dict[str, dict[str, Any]] = {
    "mla_request": {
        "legal_basis": {"instrument": "Budapest Convention", "article": "Art 27"},
        "requesting_authority": "CN MPS",
        "requested_state": "TH",
        "requested_authority": "TH OAG",
        "measures": ["produce traffic data"],
    },
    "mla_response": {
        "refs": [REF],
        "status": "refused",
        "ground": "sovereignty_security_ordre_public",
        "reason": "essential interests",
        "actor": {"state": "TH", "agency": "OAG"},
    },
    "preservation_request": {
        "custodian": CUSTODIAN,
        "data_category": ["traffic"],
        "expires_at": "2026-05-30T00:00:00Z",
    },
    "production_order": {
        "legal_basis": {"instrument": "Budapest Convention"},
        "custodian": CUSTODIAN,
        "data_category": ["subscriber"],
    },
    "online_extraction": {
        "medium_location": {"state": "TH", "description": "cloud"},
        "reason": "public posts",
        "recordings": REC,
    },
    "remote_inspection": {
        "target": "panel",
        "recordings": REC,
        "technical_measures_used": True,
        "authorisation": APPROVAL,
    },
    "technical_measure": {
        "measure": "interception",
        "authorisation": APPROVAL,
        "proportionality": PROP,
        "ends_at": "2026-03-31T00:00:00Z",
    },
    "search_seizure": {"medium_identity": "disk EX-1", "mode": "remote", "original_seized": False},
    "realtime_collection": {
        "authorisation": APPROVAL,
        "data_category": ["traffic"],
        "starts_at": T0,
        "ends_at": "2026-03-10T00:00:00Z",
        "time_zone": "Asia/Bangkok",
    },
    "eio": {
        "issuing_state": "CN",
        "executing_state": "TH",
        "measures": ["hear witness"],
        "authorisation": APPROVAL,
    },
    "epoc": {
        "custodian": CUSTODIAN,
        "establishment_state": "TH",
        "substantial_connection": "offers services",
        "data_category": ["subscriber"],
        "authorisation": APPROVAL,
    },
    "epoc_pr": {
        "custodian": CUSTODIAN,
        "establishment_state": "TH",
        "substantial_connection": "offers services",
        "data_category": ["content"],
        "authorisation": APPROVAL,
        "expires_at": "2026-04-30T00:00:00Z",
    },
    "art32_access": {
        "basis": "consent",
        "consent": {"given_by": "account holder", "authority": "owner", "sha256": H},
    },
    "emergency_disclosure": {"justification": "risk to life", "respond_by": "2026-03-01T12:00:00Z"},
    "spontaneous_information": {"receiving_states": ["TH"]},
    "video_conference": {
        "legal_basis": {"instrument": "UNTOC", "article": "Art 18(18)"},
        "national_coordinator": "TH OAG",
        "participants": [{"role": "witness", "state": "TH"}],
        "recordings": REC,
    },
    "joint_investigation": {
        "legal_basis": {"instrument": "UNTOC", "article": "Art 19"},
        "member_agencies": [{"state": "CN", "agency": "MPS"}, {"state": "TH", "agency": "CCIB"}],
    },
    "custody_event": {
        "action": "transferred",
        "refs": [REF],
        "to": {"state": "TH", "agency": "CCIB"},
        "location": {"state": "CN", "place": "MPS evidence room, Beijing"},
        "purpose": {"code": "mutual_assistance", "text": "sent for TH's examination"},
    },
    "sovereignty_response": {
        "refs": [REF],
        "response": "objected",
        "reason": "no consent",
        "actor": {"state": "TH", "agency": "OAG"},
        "territorial_states": ["TH"],
    },
    "conditions_acknowledgement": {
        "refs": [REF],
        "accepted": True,
        "actor": {"state": "TH", "agency": "OAG"},
        "territorial_states": ["TH"],
    },
    "preservation_response": {
        "refs": [REF],
        "status": "preserved",
        "preserved_until": "2026-05-01T00:00:00Z",
        "actor": {"state": "TH", "agency": "OAG"},
        "territorial_states": ["TH"],
    },
    "traffic_path_disclosure": {
        "refs": [REF],
        "status": "disclosed",
        "next_hop_states": ["VN"],
        "actor": {"state": "TH", "agency": "CCIB"},
        "territorial_states": ["TH", "VN"],
    },
    "direct_provider_request": {
        "basis": "sap_7",
        "custodian": CUSTODIAN,
        "provider_state": "TH",
        "data_category": ["subscriber"],
        "notification_required": True,
    },
    "provider_request_answer": {
        "refs": [REF],
        "decision": "instruct_not_to_disclose",
        "ground": "prejudice_domestic_proceedings",
        "reason": "own investigation",
        "actor": {"state": "TH", "agency": "OAG"},
        "territorial_states": ["TH"],
    },
    "epoc_enforcing_decision": {
        "refs": [REF],
        "decision": "ground_raised",
        "ground": "ne_bis_in_idem",
        "reason": "finally tried",
        "actor": {"state": "TH", "agency": "OAG"},
        "territorial_states": ["TH"],
    },
    "addressee_report": {"refs": [REF], "outcome": "delivered"},
    "eio_response": {
        "refs": [REF],
        "status": "recognised",
        "actor": {"state": "TH", "agency": "OAG"},
        "territorial_states": ["TH"],
    },
    "jit_agreement": {
        "legal_basis": {"instrument": "Second Additional Protocol", "article": "Art 12"},
        "member_states": ["CN", "TH"],
        "agreement_sha256": H,
        "ends_at": "2027-03-01T00:00:00Z",
    },
    "jit_accession": {
        "refs": [REF],
        "agreement_sha256": H,
        "actor": {"state": "TH", "agency": "OAG"},
        "territorial_states": ["TH"],
    },
    # issue 19, docs/CHANNELS.md: what an e-CODEX message carried (ETSI EN 319 522 events)
    "exchange_receipt": {
        "refs": [REF],
        "territorial_states": ["CN"],
        "evidence": [],
        "channel": "e_codex",
        "external_id": "6f1c2a9e-1b7d-4c55-9e0a-2f9d1b3c4d5e",
        "document_sha256": H,
        "delivery_evidence": [
            {"kind": "submission", "sha256": "01" * 32, "at": "2026-02-28T23:00:00Z"},
            {"kind": "delivery", "sha256": "02" * 32, "at": "2026-02-28T23:05:00Z"},
        ],
        "sender_endpoint": "urn:oasis:names:tc:ebcore:partyid-type:unregistered:CN-MPS",
        "recipient_endpoint": "urn:oasis:names:tc:ebcore:partyid-type:unregistered:TH-OAG",
        "counterpart_state": "TH",
        "sent_at": "2026-02-28T23:00:00Z",
    },
}


#: A DKIM check as ``comity receipt email --dkim body`` wrote it before issue 19's verdict.
DKIM: Final = {
    "domain": "p.example",
    "selector": "s",
    "body_hash": "verified",
    "signature": "not_checked",
}


def make(type_: str, drop: tuple[str, ...] = (), **changes: Any) -> dict[str, Any]:
    record = {**copy.deepcopy(COMMON), "type": type_, **copy.deepcopy(VALID[type_])}
    for name in drop:
        record.pop(name, None)
    record.update(changes)
    return record


def test_catalogue_covers_every_act_type_of_the_role_table() -> None:
    assert ACT_TYPES == INVESTIGATOR_ACTS | AUTHORITY_ACTS | INTEGRATION_ACTS == set(VALID)


@pytest.mark.parametrize("type_", sorted(VALID))
def test_valid_example_passes(type_: str) -> None:
    assert validate_act(make(type_)).type == type_


@pytest.mark.parametrize("type_", sorted(VALID))
def test_template_of_every_type_passes(type_: str) -> None:
    record = template(type_, state="CN", territorial_states=("TH",))
    record.update(chain_id="comity-test", nonce="nonce-0002")
    validate_act(record)


# (type, drop, changes, field, why) -- every row expects code "invalid_act".
INVALID: list[tuple[str, tuple[str, ...], dict[str, Any], str, str]] = [
    # common fields (docs/DOMAIN.md "What an act record carries")
    ("preservation_request", ("case_ref",), {}, "record.case_ref", "case reference required"),
    (
        "preservation_request",
        ("territorial_states",),
        {},
        "record.territorial_states",
        "territorial states required",
    ),
    ("eio", (), {"territorial_states": []}, "record.territorial_states", "non-empty"),
    ("eio", (), {"territorial_states": ["TH", "TH"]}, "record.territorial_states", "repeat"),
    ("eio", (), {"case_ref": "Zhang San"}, "record.case_ref", "pseudonymous, no names"),
    ("eio", (), {"details": {"suspect": "x"}}, "record.details", "no free details in clear"),
    (
        "eio",
        (),
        {"evidence": [{"sha256": H, "owner": "x"}]},
        "record.evidence[0].owner",
        "evidence items are closed",
    ),
    ("eio", (), {"evidence": [{"sha256": H}, {"sha256": H}]}, "record.evidence", "dup hash"),
    ("eio", (), {"refs": [REF, REF]}, "record.refs", "repeated ref"),
    ("eio", (), {"occurred_at": "2026-03-01 00:00:00"}, "record.occurred_at", "RFC 3339"),
    (
        "eio",
        (),
        {
            "sealed": {
                "recipients": {},
                "nonce": "00" * 24,
                "ciphertext": "00" * 16,
                "plaintext_sha256": H,
            }
        },
        "record.sealed.recipients",
        "1+ recipient",
    ),
    # mla (Budapest Arts 25, 27)
    ("mla_request", ("legal_basis",), {}, "record.legal_basis", "legal basis required"),
    ("mla_request", (), {"requested_state": "CN"}, "record.requested_state", "foreign"),
    ("mla_request", (), {"requested_state": "VN"}, "record.requested_state", "territorial"),
    ("mla_request", (), {"measures": []}, "record.measures", "at least one measure"),
    ("mla_response", (), {"refs": []}, "record.refs", "names its request"),
    ("mla_response", ("ground",), {}, "record.ground", "Art 27(4): refusal gives ground"),
    ("mla_response", ("reason",), {}, "record.reason", "Art 27(7): refusal gives reasons"),
    ("mla_response", (), {"status": "executed"}, "record.ground", "ground only if refused"),
    ("mla_response", (), {"status": "lost"}, "record.status", "lifecycle values"),
    # preservation (Budapest Arts 16, 29)
    ("preservation_request", ("custodian",), {}, "record.custodian", "custodian required"),
    (
        "preservation_request",
        (),
        {"data_category": ["emails"]},
        "record.data_category[0]",
        "002 §11 categories",
    ),
    (
        "preservation_request",
        (),
        {"expires_at": "2026-05-31T00:00:01Z"},
        "record.expires_at",
        "over 90 days",
    ),
    ("preservation_request", (), {"expires_at": T0}, "record.expires_at", "after occurred"),
    ("preservation_request", (), {"phase": "extension"}, "record.refs", "extension refs"),
    ("production_order", ("custodian",), {}, "record.custodian", "provider required"),
    ("production_order", ("data_category",), {}, "record.data_category", "category"),
    # online extraction / remote inspection: recordings
    ("online_extraction", (), {"recordings": []}, "record.recordings", "hash of video"),
    (
        "online_extraction",
        (),
        {"medium_location": {"state": "VN", "description": "x"}},
        "record.medium_location.state",
        "medium state is territorial",
    ),
    ("remote_inspection", ("recordings",), {}, "record.recordings", "key step recordings"),
    (
        "remote_inspection",
        ("authorisation",),
        {},
        "record.authorisation",
        "measures used need approval",
    ),
    # technical measures (002 §10, 004 §66)
    ("technical_measure", ("ends_at",), {}, "record.ends_at", "mandatory end date"),
    ("technical_measure", ("authorisation",), {}, "record.authorisation", "approval"),
    ("technical_measure", ("proportionality",), {}, "record.proportionality", "reasons"),
    (
        "technical_measure",
        (),
        {"authorisation": {"reference": "J-1", "approved_by": "x"}},
        "record.authorisation.level",
        "approval level",
    ),
    (
        "technical_measure",
        (),
        {"ends_at": "2026-02-01T00:00:00Z"},
        "record.ends_at",
        "ends after start",
    ),
    ("search_seizure", ("original_seized",), {}, "record.original_seized", "Art 19"),
    ("search_seizure", (), {"original_seized": "no"}, "record.original_seized", "strict bool"),
    ("realtime_collection", (), {"ends_at": T0}, "record.ends_at", "window"),
    (
        "realtime_collection",
        (),
        {"data_category": ["subscriber"]},
        "record.data_category",
        "Arts 20-21: traffic or content",
    ),
    ("realtime_collection", (), {"time_zone": "somewhere east"}, "record.time_zone", "tz"),
    ("eio", (), {"issuing_state": "FR"}, "record.issuing_state", "issuer is actor"),
    ("eio", (), {"executing_state": "VN"}, "record.executing_state", "territorial"),
    ("epoc", ("substantial_connection",), {}, "record.substantial_connection", "why"),
    ("epoc_pr", (), {"establishment_state": "VN"}, "record.establishment_state", "territory"),
    # Budapest Art 32
    ("art32_access", ("consent",), {}, "record.consent", "Art 32(b) consent"),
    (
        "art32_access",
        (),
        {"consent": {"given_by": "x", "authority": "y", "sha256": "no"}},
        "record.consent.sha256",
        "hash of the consent",
    ),
    ("art32_access", (), {"basis": "publicly_available"}, "record.consent", "no consent"),
    ("emergency_disclosure", ("justification",), {}, "record.justification", "SAP Art 9-10"),
    ("emergency_disclosure", (), {"respond_by": T0}, "record.respond_by", "deadline later"),
    (
        "spontaneous_information",
        (),
        {"receiving_states": ["CN"]},
        "record.receiving_states",
        "Art 26: to another state",
    ),
    ("video_conference", ("recordings",), {}, "record.recordings", "session hash"),
    (
        "video_conference",
        (),
        {"participants": [{"role": "witness", "state": "TH", "name": "Somchai"}]},
        "record.participants[0].name",
        "no names",
    ),
    (
        "joint_investigation",
        (),
        {"member_agencies": [{"state": "CN", "agency": "MPS"}]},
        "record.member_agencies",
        "a team has two members",
    ),
    (
        "joint_investigation",
        (),
        {"member_agencies": [{"state": "FR", "agency": "a"}, {"state": "TH", "agency": "b"}]},
        "record.member_agencies",
        "actor is a member",
    ),
    # custody
    ("custody_event", ("to",), {}, "record.to", "transfer names receiver"),
    ("custody_event", (), {"action": "lost"}, "record.action", "state machine actions"),
    ("custody_event", (), {"evidence": []}, "record.evidence", "exactly one hash"),
    ("custody_event", (), {"refs": [REF, "ef" * 32]}, "record.refs", "exactly one ref"),
    ("custody_event", (), {"action": "examined"}, "record.to", "to only on transfer"),
    # custody, catalogue version 3 (docs/ACTS.md §5)
    ("custody_event", ("location",), {}, "record.location", "v3: where"),
    ("custody_event", ("purpose",), {}, "record.purpose", "v3: why"),
    ("custody_event", (), {"location": {"state": "CN"}}, "record.location.place", "place text"),
    (
        "custody_event",
        (),
        {"location": {"state": "cn", "place": "x"}},
        "record.location.state",
        "a state",
    ),
    ("custody_event", (), {"purpose": {"code": "fun"}}, "record.purpose.code", "enumerated"),
    ("custody_event", (), {"purpose": {"code": "other"}}, "record.purpose.text", "other says why"),
    ("custody_event", (), {"hash_check": "verified"}, "record.hash_check", "only on received"),
    ("custody_event", (), {"recomputed_sha256": H}, "record.recomputed_sha256", "only on received"),
    (
        "custody_event",
        (),
        {"evidence": [{"sha256": H}, {"sha256": "cd" * 32, "derived_from": H}]},
        "record.evidence",
        "a transfer derives nothing",
    ),
    (
        "custody_event",
        (),
        {
            "action": "acquired",
            "to": None,
            "evidence": [{"sha256": H}, {"sha256": "cd" * 32, "derived_from": "ef" * 32}],
        },
        "record.evidence[1].derived_from",
        "an image derives from the held item",
    ),
    (
        "custody_event",
        (),
        {
            **{
                "action": "received",
                "to": None,
                "refs": [REF, "ef" * 32],
                "hash_check": "verified",
                "recomputed_sha256": H,
            },
            "refs": [REF],
        },
        "record.refs",
        "received names the transfer",
    ),
    (
        "custody_event",
        (),
        {
            **{
                "action": "received",
                "to": None,
                "refs": [REF, "ef" * 32],
                "hash_check": "verified",
                "recomputed_sha256": H,
            },
            "hash_check": None,
        },
        "record.hash_check",
        "received checks",
    ),
    (
        "custody_event",
        (),
        {
            **{
                "action": "received",
                "to": None,
                "refs": [REF, "ef" * 32],
                "hash_check": "verified",
                "recomputed_sha256": H,
            },
            "recomputed_sha256": None,
        },
        "record.recomputed_sha256",
        "received recomputes",
    ),
    (
        "custody_event",
        (),
        {
            **{
                "action": "received",
                "to": None,
                "refs": [REF, "ef" * 32],
                "hash_check": "verified",
                "recomputed_sha256": H,
            },
            "recomputed_sha256": "cd" * 32,
        },
        "record.recomputed_sha256",
        "verified means equal",
    ),
    (
        "custody_event",
        (),
        {
            **{
                "action": "received",
                "to": None,
                "refs": [REF, "ef" * 32],
                "hash_check": "verified",
                "recomputed_sha256": H,
            },
            "hash_check": "mismatch",
        },
        "record.recomputed_sha256",
        "mismatch means different",
    ),
    # sovereignty
    ("sovereignty_response", ("reason",), {}, "record.reason", "objection gives reason"),
    ("sovereignty_response", (), {"response": "ignored"}, "record.response", "values"),
    ("sovereignty_response", (), {"refs": []}, "record.refs", "names the act"),
    (
        "sovereignty_response",
        (),
        {"territorial_states": ["TH", "VN"]},
        "record.territorial_states",
        "own territory only",
    ),
    # issue 18 quick wins: custodians, receivers and JIT members are territorial
    (
        "preservation_request",
        (),
        {"custodian": {"name": "Host", "state": "VN"}},
        "record.custodian.state",
        "custodian's state gets a notice",
    ),
    (
        "production_order",
        (),
        {"custodian": {"name": "Host", "state": "VN"}},
        "record.custodian.state",
        "custodian's state gets a notice",
    ),
    (
        "spontaneous_information",
        (),
        {"receiving_states": ["TH", "VN"]},
        "record.receiving_states[1]",
        "receivers are territorial",
    ),
    (
        "joint_investigation",
        (),
        {"member_agencies": [{"state": "CN", "agency": "a"}, {"state": "VN", "agency": "b"}]},
        "record.member_agencies[1].state",
        "JIT members are territorial",
    ),
    # item 4: an evidence transfer names what was transferred
    (
        "mla_response",
        ("ground", "reason"),
        {"status": "evidence_transferred", "evidence": []},
        "record.evidence",
        "evidence_transferred needs hashes",
    ),
    # item 5: EU orders are authorised; an EPOC-PR has an end (Reg 2023/1543 Art 11(1))
    ("eio", ("authorisation",), {}, "record.authorisation", "Directive Art 2(c) issuer"),
    ("epoc", ("authorisation",), {}, "record.authorisation", "Regulation Art 4 issuer"),
    ("epoc_pr", ("authorisation",), {}, "record.authorisation", "Regulation Art 4 issuer"),
    ("epoc_pr", ("expires_at",), {}, "record.expires_at", "Art 11(1) 60 days"),
    (
        "epoc_pr",
        (),
        {"expires_at": "2026-04-30T00:00:01Z"},
        "record.expires_at",
        "over 60 days",
    ),
    ("epoc_pr", (), {"expires_at": T0}, "record.expires_at", "after occurred_at"),
    ("epoc_pr", (), {"phase": "extension"}, "record.refs", "extension names the order"),
    # item 6: evidence items say what they are and in which language
    (
        "eio",
        (),
        {"evidence": [{"sha256": H, "role": "photo"}]},
        "record.evidence[0].role",
        "role values",
    ),
    (
        "eio",
        (),
        {"evidence": [{"sha256": H, "language": "english"}]},
        "record.evidence[0].language",
        "BCP 47 tag",
    ),
    # item 7: every request states its channel from a closed list
    ("mla_request", (), {"channel": "fax"}, "record.channel", "channel values"),
    ("search_seizure", (), {"channel": "direct"}, "record.channel", "requests only"),
    # issue 18 step 3: request/answer pairs
    (
        "preservation_request",
        (),
        {"basis": "budapest_29", "expires_at": "2026-04-29T23:59:59Z"},
        "record.expires_at",
        "Art 29(7) at least 60 days",
    ),
    ("preservation_request", (), {"basis": "art29"}, "record.basis", "basis values"),
    ("preservation_response", ("preserved_until",), {}, "record.preserved_until", "until"),
    (
        "preservation_response",
        (),
        {"preserved_until": T0},
        "record.preserved_until",
        "after occurred_at",
    ),
    (
        "preservation_response",
        ("preserved_until",),
        {"status": "refused", "reason": "x"},
        "record.ground",
        "Art 29(5) ground",
    ),
    (
        "preservation_response",
        ("preserved_until",),
        {"status": "refused", "reason": "x", "ground": "ne_bis_in_idem"},
        "record.ground",
        "only Art 29(4)-(5) grounds",
    ),
    (
        "preservation_response",
        ("preserved_until",),
        {"status": "future_availability_not_ensured"},
        "record.reason",
        "Art 29(6) says why",
    ),
    (
        "preservation_response",
        (),
        {"territorial_states": ["TH", "VN"]},
        "record.territorial_states",
        "own territory",
    ),
    ("traffic_path_disclosure", (), {"next_hop_states": []}, "record.next_hop_states", "hops"),
    ("traffic_path_disclosure", (), {"evidence": []}, "record.evidence", "the traffic data"),
    (
        "traffic_path_disclosure",
        (),
        {"next_hop_states": ["VN", "LA"]},
        "record.next_hop_states[1]",
        "next hop gets a notice",
    ),
    (
        "traffic_path_disclosure",
        (),
        {"status": "refused", "ground": "dual_criminality", "reason": "x", "next_hop_states": []},
        "record.ground",
        "Art 30(2) grounds only",
    ),
    (
        "direct_provider_request",
        ("notification_required",),
        {},
        "record.notification_required",
        "flag",
    ),
    ("direct_provider_request", (), {"provider_state": "CN"}, "record.provider_state", "foreign"),
    ("direct_provider_request", (), {"provider_state": "VN"}, "record.provider_state", "notice"),
    (
        "direct_provider_request",
        (),
        {"data_category": ["content"]},
        "record.data_category",
        "SAP Art 7 subscriber only",
    ),
    ("direct_provider_request", (), {"basis": "sap_6"}, "record.custodian.kind", "registrar"),
    ("provider_request_answer", ("ground",), {}, "record.ground", "instruction has a ground"),
    (
        "provider_request_answer",
        ("ground", "reason"),
        {"decision": "conditions"},
        "record.conditions",
        "conditions listed",
    ),
    (
        "epoc_enforcing_decision",
        (),
        {"ground": "political_offence"},
        "record.ground",
        "Art 12 grounds only",
    ),
    (
        "epoc_enforcing_decision",
        ("reason",),
        {"decision": "no_ground_raised"},
        "record.ground",
        "no ground without refusal",
    ),
    ("addressee_report", (), {"evidence": []}, "record.evidence", "delivered data hashed"),
    ("addressee_report", (), {"outcome": "impossible"}, "record.impossibility", "Annex III"),
    ("addressee_report", (), {"refs": []}, "record.refs", "names the order"),
    ("eio_response", (), {"status": "refused"}, "record.ground", "Art 11 ground"),
    (
        "eio_response",
        (),
        {"status": "refused", "reason": "x", "ground": "political_offence"},
        "record.ground",
        "Art 11 grounds only",
    ),
    (
        "eio_response",
        (),
        {"status": "acknowledged", "conditions": ["x"]},
        "record.conditions",
        "grant only",
    ),
    ("jit_agreement", (), {"member_states": ["TH", "VN"]}, "record.member_states", "actor member"),
    (
        "jit_agreement",
        (),
        {"member_states": ["CN", "VN"]},
        "record.member_states[1]",
        "members territorial",
    ),
    ("jit_agreement", ("agreement_sha256",), {}, "record.agreement_sha256", "agreement hash"),
    ("jit_agreement", (), {"ends_at": T0}, "record.ends_at", "ends later"),
    ("jit_accession", (), {"refs": []}, "record.refs", "names the agreement"),
    # EPOC issuing level (Regulation (EU) 2023/1543 Art 4) and identification data
    (
        "epoc",
        (),
        {
            "data_category": ["traffic"],
            "authorisation": {**APPROVAL, "level": "prosecutorial"},
        },
        "record.authorisation.level",
        "traffic data needs a judge",
    ),
    (
        "epoc",
        (),
        {"authorisation": {**APPROVAL, "level": "senior_police"}},
        "record.authorisation.level",
        "subscriber data needs a prosecutor",
    ),
    ("epoc", (), {"notification_required": "yes"}, "record.notification_required", "bool"),
    ("epoc_pr", (), {"phase": "production_confirmed", "refs": [REF]}, "record.expires_at", "kept"),
    ("mla_request", (), {"measure_codes": ["torture"]}, "record.measure_codes[0]", "codes"),
    (
        "mla_request",
        (),
        {"measure_codes": ["hearing", "hearing"]},
        "record.measure_codes",
        "no repeats",
    ),
    ("mla_request", (), {"urgency": "asap"}, "record.urgency", "urgency values"),
    # conditions of use (Budapest Arts 27(8), 28; SAP Art 14(10)) and their acceptance
    ("mla_request", (), {"confidential": "yes"}, "record.confidential", "strict bool"),
    ("mla_request", (), {"use_conditions": []}, "record.use_conditions", "1+ if given"),
    (
        "mla_request",
        (),
        {"use_conditions": ["only case X"] * 2},
        "record.use_conditions",
        "no repeats",
    ),
    (
        "spontaneous_information",
        (),
        {"use_conditions": [f"condition {i}" for i in range(21)]},
        "record.use_conditions",
        "bounded",
    ),
    ("eio", (), {"use_conditions": ["x" * 501]}, "record.use_conditions[0]", "Text bound"),
    ("epoc", (), {"onward_transfer": "allowed"}, "record.onward_transfer", "two values"),
    ("search_seizure", (), {"confidential": True}, "record.confidential", "requests only"),
    ("eio", (), {"visibility": "public"}, "record.visibility", "two values"),
    ("conditions_acknowledgement", ("accepted",), {}, "record.accepted", "says accepted"),
    ("conditions_acknowledgement", (), {"accepted": False}, "record.accepted", "true only"),
    ("conditions_acknowledgement", (), {"refs": []}, "record.refs", "names the act"),
    (
        "conditions_acknowledgement",
        (),
        {"refs": [REF, "ef" * 32]},
        "record.refs",
        "exactly one act",
    ),
    (
        "conditions_acknowledgement",
        (),
        {"territorial_states": ["TH", "CN"]},
        "record.territorial_states",
        "own territory only",
    ),
    (
        "conditions_acknowledgement",
        (),
        {"use_conditions": ["a", "a"]},
        "record.use_conditions",
        "no repeats",
    ),
    # exchange_receipt (issue 19, docs/CHANNELS.md)
    ("exchange_receipt", ("refs",), {}, "record.refs", "anchors one record"),
    ("exchange_receipt", (), {"refs": [REF, H]}, "record.refs", "anchors exactly one"),
    ("exchange_receipt", (), {"channel": "fax"}, "record.channel", "known channel"),
    ("exchange_receipt", (), {"channel": "e_mail"}, "record.channel", "spelled as listed"),
    ("exchange_receipt", ("external_id",), {}, "record.external_id", "message id required"),
    ("exchange_receipt", (), {"external_id": ""}, "record.external_id", "not empty"),
    ("exchange_receipt", (), {"external_id": "a b"}, "record.external_id", "no spaces"),
    ("exchange_receipt", (), {"external_id": "id\n"}, "record.external_id", "no newline"),
    ("exchange_receipt", (), {"external_id": "x" * 257}, "record.external_id", "bounded"),
    ("exchange_receipt", (), {"document_sha256": "AB" * 32}, "record.document_sha256", "hex"),
    ("exchange_receipt", ("document_sha256",), {}, "record.document_sha256", "required"),
    (
        "exchange_receipt",
        (),
        {"delivery_evidence": [{"kind": "opened", "sha256": H, "at": T0}]},
        "record.delivery_evidence[0].kind",
        "ETSI REM events only",
    ),
    (
        "exchange_receipt",
        (),
        {"delivery_evidence": [{"kind": "delivery", "sha256": H}]},
        "record.delivery_evidence[0].at",
        "event time required",
    ),
    (
        "exchange_receipt",
        (),
        {"delivery_evidence": [{"kind": "delivery", "sha256": H, "at": T0, "x": 1}]},
        "record.delivery_evidence[0].x",
        "no extra field",
    ),
    (
        "exchange_receipt",
        (),
        {"delivery_evidence": [{"kind": "delivery", "sha256": H, "at": T0}] * 2},
        "record.delivery_evidence[1]",
        "no repeated event",
    ),
    (
        "exchange_receipt",
        (),
        {"delivery_evidence": [{"kind": "delivery", "sha256": H, "at": T0}] * 21},
        "record.delivery_evidence",
        "bounded",
    ),
    (
        "exchange_receipt",
        (),
        {"delivery_evidence": [{"kind": "delivery", "sha256": H, "at": "2026-03-02T00:00:00Z"}]},
        "record.delivery_evidence[0].at",
        "not after the receipt",
    ),
    ("exchange_receipt", (), {"sent_at": "2026-03-02T00:00:00Z"}, "record.sent_at", "past"),
    ("exchange_receipt", (), {"sent_at": "yesterday"}, "record.sent_at", "RFC 3339"),
    ("exchange_receipt", ("sender_endpoint",), {}, "record.sender_endpoint", "required"),
    ("exchange_receipt", (), {"counterpart_state": "CN"}, "record.counterpart_state", "other"),
    ("exchange_receipt", ("counterpart_state",), {}, "record.counterpart_state", "required"),
    ("exchange_receipt", (), {"recipient_endpoint": "\t"}, "record.recipient_endpoint", "print"),
    (
        "exchange_receipt",
        (),
        {"territorial_states": ["TH"]},
        "record.territorial_states",
        "own territory only: a receipt is no act abroad",
    ),
    (
        "exchange_receipt",
        (),
        {
            "dkim": {
                "domain": "police.example",
                "selector": "s1",
                "body_hash": "verified",
                "signature": "not_checked",
            }
        },
        "record.dkim",
        "DKIM only for e-mail",
    ),
    (
        "exchange_receipt",
        (),
        {
            "channel": "email_24_7",
            "dkim": {"domain": "p.example", "selector": "s", "body_hash": "ok", "signature": "x"},
        },
        "record.dkim.body_hash",
        "verified or mismatch",
    ),
    # dkim.verified (issue 19): the verdict, its reason and key agree with the checks
    *[
        ("exchange_receipt", (), {"channel": "email_24_7", "dkim": {**DKIM, **dkim}}, f, why)
        for dkim, f, why in [
            ({"verified": "signature"}, "record.dkim.verified", "signature needs it verified"),
            ({"verified": "yes"}, "record.dkim.verified", "one of three verdicts"),
            ({"verified": "failed"}, "record.dkim.reason", "a failure names its reason"),
            (
                {"verified": "body_hash_only", "reason": "bad_key"},
                "record.dkim.reason",
                "no reason without a failure",
            ),
            (
                {"verified": "failed", "reason": "dns_timeout"},
                "record.dkim.reason",
                "a timeout is no verdict",
            ),
            (
                {"body_hash": "mismatch", "verified": "failed", "reason": "bad_signature"},
                "record.dkim.reason",
                "a body mismatch is its own reason",
            ),
            (
                {"verified": "failed", "reason": "body_hash_mismatch"},
                "record.dkim.reason",
                "body_hash_mismatch only with a mismatching body",
            ),
            (
                {"verified": "failed", "reason": "bad_signature"},
                "record.dkim.signature",
                "a signature failure has signature failed",
            ),
            (
                {"verified": "signature", "signature": "verified", "key_sha256": H},
                "record.dkim.key_source",
                "a checked signature names its key source",
            ),
            (
                {"verified": "signature", "signature": "verified", "key_source": "dns"},
                "record.dkim.key_sha256",
                "a verified signature pins its key",
            ),
            (
                {"verified": "body_hash_only", "key_sha256": H},
                "record.dkim.key_sha256",
                "no key without a check",
            ),
            ({"reason": "bad_key"}, "record.dkim.reason", "the older form has no reason"),
            ({"verified": "signature", "key_source": "ldap"}, "record.dkim.key_source", "dns"),
        ]
    ],
]
#: One invalid example for every remaining rule site of ``ledger/acts.py`` (the test
#: below finds the sites): a rule with no example here cannot be seen to hold.
INVALID += [
    (
        "mla_response",
        (),
        {"status": "executed", "ground": None, "reason": None, "conditions": ["a", "a"]},
        "record.conditions",
        "conditions not repeated",
    ),
    (
        "mla_response",
        (),
        {"status": "refused", "conditions": ["use only here"]},
        "record.conditions",
        "conditions only when granting",
    ),
    (
        "mla_response",
        ("ground",),
        {"status": "postponed", "reason": None},
        "record.reason",
        "postponement reasoned",
    ),
    (
        "preservation_request",
        (),
        {"phase": "termination", "refs": [REF], "expires_at": "2026-02-01T00:00:00Z"},
        "record.expires_at",
        "termination not before now",
    ),
    ("technical_measure", (), {"phase": "extension"}, "record.refs", "extension names the measure"),
    ("eio", (), {"executing_state": "CN"}, "record.executing_state", "executing state differs"),
    (
        "epoc_pr",
        (),
        {"phase": "termination", "refs": [REF], "expires_at": "2026-02-01T00:00:00Z"},
        "record.expires_at",
        "termination not before now",
    ),
    (
        "sovereignty_response",
        (),
        {"response": "consented", "reason": None, "ground": "dual_criminality"},
        "record.ground",
        "ground only on objection",
    ),
    (
        "sovereignty_response",
        (),
        {"conditions": ["use only here"]},
        "record.conditions",
        "conditions only when consenting",
    ),
    (
        "preservation_response",
        (),
        {"status": "refused", "ground": "dual_criminality", "reason": "x"},
        "record.preserved_until",
        "until only when preserved",
    ),
    (
        "preservation_response",
        (),
        {"conditions": ["a", "a"]},
        "record.conditions",
        "conditions not repeated",
    ),
    (
        "traffic_path_disclosure",
        (),
        {"refs": [REF, "ef" * 32]},
        "record.refs",
        "one preservation request",
    ),
    (
        "traffic_path_disclosure",
        (),
        {"status": "refused", "ground": "political_offence", "reason": "x"},
        "record.next_hop_states",
        "next hops only when disclosed",
    ),
    (
        "traffic_path_disclosure",
        (),
        {"next_hop_states": ["VN", "VN"]},
        "record.next_hop_states",
        "next hops not repeated",
    ),
    (
        "direct_provider_request",
        (),
        {"custodian": {"name": "Example Hosting Ltd", "state": "VN"}},
        "record.custodian.state",
        "custodian's state gets a notice",
    ),
    (
        "direct_provider_request",
        (),
        {"respond_by": "2026-02-01T00:00:00Z"},
        "record.respond_by",
        "respond_by after now",
    ),
    (
        "provider_request_answer",
        (),
        {"territorial_states": ["TH", "CN"]},
        "record.territorial_states",
        "own territory only",
    ),
    (
        "provider_request_answer",
        (),
        {"conditions": ["use only here"]},
        "record.conditions",
        "conditions only when granting",
    ),
    ("epoc_enforcing_decision", (), {"refs": []}, "record.refs", "names the EPOC"),
    (
        "addressee_report",
        (),
        {"impossibility": "data_not_held"},
        "record.impossibility",
        "reason only when impossible",
    ),
    ("eio_response", (), {"refs": [REF, "ef" * 32]}, "record.refs", "names the EIO"),
    (
        "jit_agreement",
        (),
        {"member_states": ["CN", "TH", "TH"], "territorial_states": ["TH"]},
        "record.member_states",
        "members not repeated",
    ),
]


@pytest.mark.parametrize(
    ("type_", "drop", "changes", "field", "why"), INVALID, ids=[f"{r[0]}:{r[4]}" for r in INVALID]
)
def test_invalid_example_names_field(
    type_: str, drop: tuple[str, ...], changes: dict[str, Any], field: str, why: str
) -> None:
    with pytest.raises(RecordInvalid) as caught:
        validate_act(make(type_, drop, **changes))
    assert (caught.value.field, caught.value.code) == (field, "invalid_act"), caught.value.message
    assert field in caught.value.message


@pytest.mark.parametrize(
    "dkim",
    [
        {},  # the older form, still valid
        {"verified": "body_hash_only"},
        {"verified": "signature", "signature": "verified", "key_source": "file", "key_sha256": H},
        {
            "verified": "failed",
            "signature": "failed",
            "reason": "key_not_found",
            "key_source": "dns",
        },
        {
            "verified": "failed",
            "signature": "failed",
            "reason": "bad_signature",
            "key_source": "dns",
            "key_sha256": H,
        },
        {"body_hash": "mismatch", "verified": "failed", "reason": "body_hash_mismatch"},
    ],
)
def test_dkim_verdicts_that_tell_one_story_pass(dkim: dict[str, str]) -> None:
    validate_act(make("exchange_receipt", channel="email_24_7", dkim={**DKIM, **dkim}))


def test_every_type_has_invalid_rows() -> None:
    assert {row[0] for row in INVALID} == set(VALID)


#: Calls in ``ledger/acts.py`` that refuse an act (the rule helpers and ``fail``).
_RULE_CALLS = frozenset(
    {
        "fail",
        "_requires",
        "_in_territory",
        "check_ground",
        "_conditions_rule",
        "_refusal_rules",
        "_answer_rules",
        "_phase_rules",
        "_issuing_level",
    }
)
#: Sites that cannot refuse: these answer types allow every ground of the vocabulary,
#: and a value outside it is refused by the schema before any rule runs.
_CANNOT_FAIL = frozenset({("MlaResponse", "check_ground"), ("SovereigntyResponse", "check_ground")})


def _rule_sites() -> dict[int, tuple[str, str]]:
    """Line -> (enclosing class or function, callee) of every rule call in ledger/acts.py."""
    source = Path(acts_module.__file__).read_text()
    sites: dict[int, tuple[str, str]] = {}
    for top in ast.parse(source).body:
        if not isinstance(top, ast.ClassDef | ast.FunctionDef):
            continue
        for node in ast.walk(top):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in _RULE_CALLS
                and (top.name, node.func.id) not in _CANNOT_FAIL
            ):
                sites[node.lineno] = (top.name, node.func.id)
    return sites


def test_every_rule_site_has_an_invalid_example() -> None:
    """Each place ledger/acts.py refuses an act is reached by some INVALID row (on the
    traceback of its refusal), so every rule of the catalogue is shown to refuse."""
    reached: set[int | None] = set()
    for type_, drop, changes, _field, _why in INVALID:
        with pytest.raises(RecordInvalid) as caught:
            validate_act(make(type_, drop, **changes))
        reached |= {
            frame.lineno
            for frame in traceback.extract_tb(caught.value.__traceback__)
            if frame.filename == acts_module.__file__
        }
    sites = _rule_sites()
    assert len(sites) > 90  # the walk found the catalogue's rules
    missing = {line: site for line, site in sites.items() if line not in reached}
    assert missing == {}, f"rules of ledger/acts.py with no invalid example: {missing}"


@pytest.mark.parametrize(
    ("type_", "changes"),
    [
        ("preservation_request", {"custodian": {"name": "Host", "state": "TH"}}),
        ("preservation_request", {"custodian": {"name": "Host"}}),  # state unknown
        ("spontaneous_information", {"receiving_states": ["TH"]}),
        ("mla_response", {"status": "evidence_transferred", "ground": None, "reason": None}),
        ("epoc_pr", {"expires_at": "2026-04-30T00:00:00Z"}),  # exactly 60 days
        ("epoc_pr", {"phase": "extension", "refs": [REF]}),
        ("epoc_pr", {"phase": "termination", "refs": [REF], "expires_at": T0}),
        (
            "eio",
            {
                "evidence": [
                    {"sha256": H, "role": "request_document", "language": "fr"},
                    {
                        "sha256": REF,
                        "role": "translation",
                        "language": "zh-Hans-CN",
                        "derived_from": H,
                    },
                ]
            },
        ),
        ("mla_request", {"channel": "interpol"}),
        ("eio", {"channel": "e_codex"}),
        ("emergency_disclosure", {"channel": "email_24_7"}),
        ("preservation_request", {"channel": "24_7_network"}),
        (
            "preservation_request",
            {"basis": "budapest_29", "expires_at": "2026-04-30T00:00:00Z"},
        ),  # exactly 60 days
        ("preservation_response", {"status": "partially_preserved", "reason": "one account"}),
        (
            "preservation_response",
            {"status": "preserved", "conditions": ["use only for the MLA request to follow"]},
        ),
        (
            "traffic_path_disclosure",
            {
                "status": "refused",
                "ground": "political_offence",
                "reason": "x",
                "next_hop_states": [],
            },
        ),
        (
            "direct_provider_request",
            {"basis": "sap_6", "custodian": {**CUSTODIAN, "kind": "registrar"}},
        ),
        ("direct_provider_request", {"basis": "cloud_agreement", "data_category": ["content"]}),
        (
            "epoc",
            {
                "data_category": ["identification"],
                "authorisation": {**APPROVAL, "level": "prosecutorial"},
            },
        ),
        ("epoc", {"data_category": ["content"], "notification_required": True, "emergency": True}),
        ("epoc_pr", {"phase": "production_confirmed", "refs": [REF], "expires_at": None}),
        (
            "addressee_report",
            {
                "outcome": "impossible",
                "impossibility": "data_not_held",
                "reason": "x",
                "evidence": [],
            },
        ),
        ("eio_response", {"status": "refused", "ground": "territoriality", "reason": "x"}),
        ("eio_response", {"status": "executed", "conditions": ["return the originals"]}),
        ("mla_request", {"measure_codes": ["production", "sap8_order"], "urgency": "expedited"}),
    ],
)
def test_quick_win_valid_examples(type_: str, changes: dict[str, Any]) -> None:
    record = make(type_, **changes)
    for name in [k for k, v in changes.items() if v is None]:
        record.pop(name)
    assert validate_act(record).type == type_


def test_preservation_cap_is_configurable() -> None:
    record = make("preservation_request", expires_at="2026-04-01T00:00:00Z")  # 31 days
    validate_act(record, ActPolicy(preservation_days_max=60))
    with pytest.raises(RecordInvalid, match="30 days") as caught:
        validate_act(record, ActPolicy(preservation_days_max=30))
    assert caught.value.field == "record.expires_at"


def test_termination_may_end_now() -> None:
    validate_act(make("preservation_request", phase="termination", refs=[REF], expires_at=T0))


def test_registry_rule_uses_the_models_and_policy() -> None:
    registry = TypeRegistry()
    register_acts(registry, ActPolicy(preservation_days_max=10))
    assert set(registry.known()) == ACT_TYPES
    registry.check(make("eio"))
    with pytest.raises(RecordInvalid) as caught:
        registry.check(make("preservation_request"))
    assert caught.value.field == "record.expires_at"


def test_json_schemas_publish_every_type_with_required_fields() -> None:
    schemas = json_schemas()
    assert schemas["schema"] == "comity/1"
    assert set(schemas["types"]) == set(MODELS)
    tm = schemas["types"]["technical_measure"]
    assert {
        "ends_at",
        "authorisation",
        "proportionality",
        "case_ref",
        "territorial_states",
        "schema",
    } <= set(tm["required"])
    assert tm["additionalProperties"] is False


ORIGINAL = "ef" * 32


@pytest.mark.parametrize(
    ("type_", "changes"),
    [
        (
            "mla_request",
            {
                "languages": ["en", "th"],
                "evidence": [
                    {"sha256": ORIGINAL, "role": "request_document", "language": "en"},
                    {
                        "sha256": H,
                        "role": "translation",
                        "language": "th",
                        "derived_from": ORIGINAL,
                    },
                ],
            },
        ),
        ("eio", {"evidence": [{"sha256": H, "role": "report", "derived_from": ORIGINAL}]}),
        ("eio", {"evidence": [{"sha256": H, "role": "consent", "language": "fr"}]}),
    ],
)
def test_attachments_with_roles_languages_and_origins(type_: str, changes: dict[str, Any]) -> None:
    assert validate_act(make(type_, **changes)).type == type_


@pytest.mark.parametrize(
    ("type_", "changes", "field"),
    [
        (
            "eio",
            {"evidence": [{"sha256": H, "role": "translation", "language": "th"}]},
            "record.evidence[0].derived_from",
        ),
        (
            "eio",
            {"evidence": [{"sha256": H, "derived_from": H}]},
            "record.evidence[0].derived_from",
        ),
        (
            "eio",
            {"evidence": [{"sha256": H, "derived_from": "x"}]},
            "record.evidence[0].derived_from",
        ),
        ("mla_request", {"languages": ["en", "en"]}, "record.languages"),
        ("mla_request", {"languages": []}, "record.languages"),
        ("mla_request", {"languages": ["english"]}, "record.languages[0]"),
        (
            "mla_request",
            {
                "languages": ["en"],
                "evidence": [{"sha256": H, "role": "request_document", "language": "th"}],
            },
            "record.evidence[0].language",
        ),
        ("search_seizure", {"languages": ["en"]}, "record.languages"),  # requests only
    ],
)
def test_bad_attachments_name_the_field(type_: str, changes: dict[str, Any], field: str) -> None:
    with pytest.raises(RecordInvalid) as caught:
        validate_act(make(type_, **changes))
    assert (caught.value.field, caught.value.code, caught.value.status) == (
        field,
        "invalid_act",
        422,
    ), caught.value.message
