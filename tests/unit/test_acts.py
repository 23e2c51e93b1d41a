"""The act catalogue (ledger/acts.py): a valid and several invalid records per type.

Rows cite docs/DOMAIN.md ("Act types named in the sources") and the article the
rule comes from. Each invalid row names the exact field and code expected.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ledger.acts import ACT_TYPES, MODELS, json_schemas, register_acts, validate_act
from ledger.acts_fields import ActPolicy
from ledger.acts_templates import template
from ledger.errors import RecordInvalid
from ledger.records import TypeRegistry
from ledger.roles import AUTHORITY_ACTS, INVESTIGATOR_ACTS

H = "ab" * 32
REF = "cd" * 32
T0 = "2026-03-01T00:00:00Z"
APPROVAL = {"reference": "J-1", "approved_by": "judge", "level": "judicial"}
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
    "eio": {"issuing_state": "CN", "executing_state": "TH", "measures": ["hear witness"]},
    "epoc": {
        "custodian": CUSTODIAN,
        "establishment_state": "TH",
        "substantial_connection": "offers services",
        "data_category": ["subscriber"],
    },
    "epoc_pr": {
        "custodian": CUSTODIAN,
        "establishment_state": "TH",
        "substantial_connection": "offers services",
        "data_category": ["content"],
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
}


def make(type_: str, drop: tuple[str, ...] = (), **changes: Any) -> dict[str, Any]:
    record = {**copy.deepcopy(COMMON), "type": type_, **copy.deepcopy(VALID[type_])}
    for name in drop:
        record.pop(name, None)
    record.update(changes)
    return record


def test_catalogue_covers_every_act_type_of_the_role_table() -> None:
    assert ACT_TYPES == INVESTIGATOR_ACTS | AUTHORITY_ACTS == set(VALID)


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


def test_every_type_has_invalid_rows() -> None:
    assert {row[0] for row in INVALID} == set(VALID)


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
