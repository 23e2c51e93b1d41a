"""Private acts (ledger/private.py): header and body shapes, commitment, parties, class roles."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger.acts_templates import template
from ledger.errors import ClientError, Forbidden, RecordInvalid
from ledger.private import (
    TYPE_CLASSES,
    check_body,
    check_class_role,
    check_header,
    check_parties,
    check_purge_shape,
    check_violation_shape,
    class_of,
    class_roles,
    commitment,
    content,
    derive_parties,
    named_states,
    parse_body,
    split,
)
from ledger.records import CONTENT_FIELDS, Envelope, check_common_fields, format_time
from ledger.roles import AUTHORITY_ACTS, INVESTIGATOR_ACTS

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
UNTIL = format_time(NOW + timedelta(days=365))


def _act(type_: str = "preservation_request", **fields: Any) -> dict[str, Any]:
    record = template(type_, state="CN", territorial_states=("TH",), now=NOW)
    record.update(chain_id="comity-test", nonce="nonce-0001", **fields)
    return record


def _no_refs(record_id: str) -> list[str]:
    del record_id
    return []


def test_split_gives_a_header_every_member_can_check_and_a_body_only_parties_hold() -> None:
    header, body = split(_act(), retain_until=UNTIL, ref_parties=_no_refs)
    check_common_fields(header)
    check_header(header)
    assert header["type"] == "private_act" and header["class"] == "request"
    assert header["parties"] == ["CN", "TH"]
    assert header["commitment"] == commitment(body)
    assert "case_ref" not in header and "custodian" not in header
    assert body["act"]["type"] == "preservation_request" and len(body["salt"]) == 32
    check_body(header, body)
    merged = content(header, body)
    assert merged["custodian"]["state"] == "TH" and merged["actor"] == header["actor"]


def test_two_splits_of_one_act_commit_differently_so_a_guess_cannot_be_confirmed() -> None:
    first, _ = split(_act(), retain_until=UNTIL, ref_parties=_no_refs)
    second, _ = split(_act(), retain_until=UNTIL, ref_parties=_no_refs)
    assert first["commitment"] != second["commitment"]


def test_a_body_that_differs_by_one_byte_does_not_match() -> None:
    header, body = split(_act(), retain_until=UNTIL, ref_parties=_no_refs)
    changed = copy.deepcopy(body)
    changed["act"]["case_ref"] = "CASE-2026-0002"
    with pytest.raises(RecordInvalid) as info:
        check_body(header, changed)
    assert (info.value.code, info.value.field) == ("commitment_mismatch", "private")


def test_a_body_of_another_class_is_refused() -> None:
    header, body = split(_act(), retain_until=UNTIL, ref_parties=_no_refs)
    header["class"] = "measure"
    header["commitment"] = commitment(body)
    with pytest.raises(RecordInvalid) as info:
        check_body(header, body)
    assert info.value.code == "wrong_class"


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"case_ref": "X"}, "field_not_in_header", "record.case_ref"),
        ({"class": "gossip"}, "bad_class", "record.class"),
        ({"visibility": "consortium"}, "bad_visibility", "record.visibility"),
        ({"parties": ["TH", "CN"]}, "bad_parties", "record.parties"),
        ({"parties": ["CN", "CN"]}, "bad_parties", "record.parties"),
        ({"parties": []}, "bad_parties", "record.parties"),
        ({"parties": ["TH"]}, "actor_not_party", "record.parties"),
        ({"parties": ["CN", "th"]}, "bad_state", "record.parties[1]"),
        ({"commitment": "00"}, "bad_hex", "record.commitment"),
        ({"retain_until": "tomorrow"}, "bad_time", "record.retain_until"),
        ({"retain_until": "2026-01-01T00:00:00Z"}, "bad_retention", "record.retain_until"),
    ],
)
def test_header_rules_name_the_field(change: dict[str, Any], code: str, field: str) -> None:
    header, _ = split(_act(), retain_until=UNTIL, ref_parties=_no_refs)
    header.update(change)
    with pytest.raises(RecordInvalid) as info:
        check_header(header)
    assert (info.value.code, info.value.field) == (code, field)


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ([], "bad_private", "private"),
        ({"act": {"type": "x"}}, "bad_private", "private"),
        ({"act": {"type": "x"}, "salt": "zz" * 16}, "bad_hex", "private.salt"),
        ({"act": {"type": "x"}, "salt": "ab" * 8}, "bad_hex", "private.salt"),
        ({"act": {}, "salt": "ab" * 16}, "bad_type", "private.act"),
        (
            {"act": {"type": "x", "nonce": "n"}, "salt": "ab" * 16},
            "field_in_body",
            "private.act.nonce",
        ),
        (
            {"act": {"type": "x", "parties": []}, "salt": "ab" * 16},
            "field_in_body",
            "private.act.parties",
        ),
    ],
)
def test_body_shape_errors_name_the_field(body: Any, code: str, field: str) -> None:
    with pytest.raises(ClientError) as info:
        parse_body(body, max_bytes=65536)
    assert (info.value.code, info.value.field) == (code, field)


def test_a_body_over_the_record_limit_is_refused() -> None:
    body = {"act": {"type": "x", "summary": "a" * 2000}, "salt": "ab" * 16}
    with pytest.raises(ClientError) as info:
        parse_body(body, max_bytes=1000)
    assert info.value.code == "record_too_large"


def test_parties_are_every_state_the_act_names_at_any_depth() -> None:
    act = {
        "actor": {"state": "CN"},
        "territorial_states": ["TH"],
        "requested_state": "VN",
        "custodian": {"state": "SG"},
        "member_agencies": [{"state": "FR"}, {"state": "DE"}],
        "receiving_states": ["BR"],
        "note": "state FR",  # free text is no state field
    }
    assert named_states(act) == {"CN", "TH", "VN", "SG", "FR", "DE", "BR"}


def test_parties_include_the_parties_of_referenced_private_acts() -> None:
    act = _act("sovereignty_response", refs=["ab" * 32])
    act["actor"] = {"state": "TH", "agency": "x"}
    assert derive_parties(act, lambda ref: ["CN", "TH", "VN"]) == ["CN", "TH", "VN"]


def test_a_header_that_names_other_parties_than_the_act_is_refused() -> None:
    header, body = split(_act(), retain_until=UNTIL, ref_parties=_no_refs)
    header["parties"] = ["CN", "FR", "TH"]  # FR is not concerned: it must not see
    with pytest.raises(RecordInvalid) as info:
        check_parties(header, content(header, body), _no_refs)
    assert (info.value.code, info.value.field) == ("parties_mismatch", "record.parties")
    header["parties"] = ["CN"]  # TH is concerned: it must see
    with pytest.raises(RecordInvalid):
        check_parties(header, content(header, body), _no_refs)


def test_every_act_type_is_in_exactly_one_class() -> None:
    acts = INVESTIGATOR_ACTS | AUTHORITY_ACTS
    classed = [t for types in TYPE_CLASSES.values() for t in types]
    assert len(classed) == len(set(classed))
    assert acts <= set(classed)
    assert all(class_of(t) is not None for t in acts)
    assert class_of("enroll_key") is None


def test_a_class_admits_the_roles_that_may_sign_some_type_of_it() -> None:
    assert class_roles("answer") == frozenset({"authority"})
    assert class_roles("request") == frozenset({"investigator", "authority"})
    header, _ = split(_act("mla_response"), retain_until=UNTIL, ref_parties=_no_refs)
    check_class_role(header, frozenset({"authority"}))
    with pytest.raises(Forbidden) as info:
        check_class_role(header, frozenset({"investigator", "auditor"}))
    assert info.value.code == "role_not_allowed"


def test_a_governance_type_cannot_be_made_private() -> None:
    with pytest.raises(RecordInvalid) as info:
        split(_act(type="enroll_key"), retain_until=UNTIL, ref_parties=_no_refs)
    assert info.value.code == "not_an_act"


def test_an_envelope_with_a_body_reads_as_the_act_but_serialises_as_the_header() -> None:
    header, body = split(_act(), retain_until=UNTIL, ref_parties=_no_refs)
    plain = Envelope(header, "aa" * 32, "bb" * 64, "cc" * 32, b"{}", b"{}")
    held = plain.with_body(body)
    assert plain.type == "private_act" and held.type == "preservation_request"
    assert held.content["case_ref"] == body["act"]["case_ref"]
    assert held.to_json() == plain.to_json() and "salt" not in str(held.to_json())
    assert held.with_body(None).content is header
    assert set(CONTENT_FIELDS) - {"refs"} <= set(held.content)  # no refs here


@pytest.mark.parametrize(
    ("record", "check", "code"),
    [
        ({"type": "body_purge", "refs": []}, check_purge_shape, "missing_field"),
        (
            {"type": "body_purge", "refs": ["ab" * 32], "why": "x"},
            check_purge_shape,
            "unknown_field",
        ),
        (
            {"type": "body_violation", "refs": ["ab" * 32], "rule": "r"},
            check_violation_shape,
            "bad_type",
        ),
        (
            {"type": "body_violation", "refs": ["ab" * 32, "cd" * 32], "rule": "r", "field": "f"},
            check_violation_shape,
            "bad_refs",
        ),
    ],
)
def test_node_record_shapes(record: dict[str, Any], check: Any, code: str) -> None:
    with pytest.raises(RecordInvalid) as info:
        check(record)
    assert info.value.code == code
