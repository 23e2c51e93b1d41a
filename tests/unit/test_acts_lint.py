"""Clear fields of consortium acts (ledger/acts_lint.py): identifiers refused, ledger values not.

docs/ACTS.md "Visibility and clear fields": an act with ``visibility:
"consortium"`` is read in clear by every member, so a private field or an
obvious personal identifier in it is a 422 naming the field. Every kind has
positive examples and negatives that look alike (dates, times, hashes, record
ids, case references) and must pass.
"""

from __future__ import annotations

from typing import Any

import pytest

from ledger.acts import validate_act
from ledger.acts_lint import (
    PRIVATE_FIELDS,
    identifier_kind,
    lint_clear_fields,
    refuse_private_fields_in_clear,
)
from ledger.errors import RecordInvalid
from tests.unit.test_acts import VALID, H, make

POSITIVE: dict[str, list[str]] = {
    "an e-mail address": [
        "reply to a.b@example.org",
        "x+tag@mail.example.co.th",
        "<ops-team@provider.example>",
    ],
    "a phone number": [
        "call +86 138 0013 8000",
        "+66812345678",
        "tel:+442079460958",
        "(+66) 81 234 5678",
        "0044 20 7946 0958",
        "0812345678",
        "(02) 123 4567",
        "02-123-4567",
        "06 12 34 56 78",
        "(212) 555-0142",
        "212-555-0142",
        "13800138000",
        "138-0013-8000",
    ],
    "an IPv4 address": ["from 192.168.1.10:443", "host 10.0.0.1.", "src=203.0.113.7"],
    "an IPv6 address": [
        "addr 2001:db8::1 seen",
        "[fe80::1]:80",
        "::ffff:192.0.2.1",
        "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
    ],
    "an IBAN": [
        "IBAN DE89 3704 0044 0532 0130 00",
        "GB82WEST12345698765432",
        "FR14 2004 1010 0505 0001 3M02 606",
    ],
    "a payment card number": [
        "card 4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "5500005555555559",
        "3782 822463 10005",
    ],
}

NEGATIVE = [
    # dates and times
    "2026-03-01",
    "on 2026-03-01 at 12:00:00",
    "2026-03-01T12:00:00Z",
    "2026-03-01T12:00:00.123Z",
    "01/03/2026",
    "01.03.2026",
    "2026/03/01",
    "20260301",
    "12:30",
    "between 09:00 and 17:00",
    "06:00-18:00",
    "+07:00",
    "UTC+08:00",
    "2026-03-01 2026-04-01",
    "1767225600",
    "1767225600000",
    # hashes and record ids
    "ab" * 32,
    "see record " + "cd" * 32,
    "sha256 " + "AB12CD34EF56" * 5 + "AB12",
    # case and other references
    "CN-2026-0042",
    "case CN-2026-0042/3",
    "AUTH-2026-0001",
    "disk EX-0001",
    "server rack 4, disk serial EX-0001",
    "EX-0001-0002",
    # legal citations and ordinary numbers
    "Budapest Art 29",
    "Art 27(8)",
    "UNTOC Art 18(18)",
    "ISO/IEC 27037",
    "RFC 3339",
    "2019-2024",
    "1,000,000 victims",
    "10 000 000",
    "ticket 12345",
    "phase 2 of 3",
    "+5 days",
    "version 10.0.19041",
    "1.2.3",
    "1.2.3.4.5",
    "256.1.1.1",
    "3:2:1",
    "std::vector",
    "x.y@z",
    # check digits that fail
    "DE89370400440532013001",
    "4111 1111 1111 1112",
]


@pytest.mark.parametrize(
    ("kind", "text"), [(kind, text) for kind, texts in POSITIVE.items() for text in texts]
)
def test_identifier_is_found_in_a_consortium_act_naming_the_field(kind: str, text: str) -> None:
    assert identifier_kind(text) == kind
    record = make("mla_request", visibility="consortium", measures=["produce data", text])
    with pytest.raises(RecordInvalid) as caught:
        validate_act(record)
    assert (caught.value.status, caught.value.code) == (422, "personal_identifier")
    assert caught.value.field == "record.measures[1]"
    assert kind in caught.value.message
    assert text not in caught.value.message  # the refusal does not repeat the identifier


@pytest.mark.parametrize("text", NEGATIVE)
def test_lookalikes_are_not_identifiers(text: str) -> None:
    assert identifier_kind(text) is None
    validate_act(make("mla_request", visibility="consortium", measures=[text]))


@pytest.mark.parametrize(
    ("type_", "changes", "field"),
    [
        ("mla_response", {"reason": "account a.b@example.org"}, "record.reason"),
        (
            "eio",
            {
                "evidence": [
                    {"sha256": H},
                    {"sha256": "ef" * 32},
                    {"sha256": "12" * 32, "name": "10.1.2.3.pcap"},
                ]
            },
            "record.evidence[2].name",
        ),
        ("production_order", {"custodian": {"name": "+66 2 123 4567"}}, "record.custodian.name"),
        (
            "technical_measure",
            {"proportionality": {"seriousness": "a", "less_intrusive_alternatives": "2001:db8::7"}},
            "record.proportionality.less_intrusive_alternatives",
        ),
        (
            "spontaneous_information",
            {"conditions": "pay DE89 3704 0044 0532 0130 00 only"},
            "record.conditions",
        ),
        (
            "emergency_disclosure",
            {"justification": "card 4111111111111111 used"},
            "record.justification",
        ),
    ],
)
def test_the_field_path_is_dotted_and_indexed(
    type_: str, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(RecordInvalid) as caught:
        validate_act(make(type_, visibility="consortium", **changes))
    assert (caught.value.field, caught.value.code) == (field, "personal_identifier")


_PRIVATE_TYPES = {"remote_inspection", "search_seizure", "online_extraction", "art32_access"}


@pytest.mark.parametrize("type_", sorted(set(VALID) - _PRIVATE_TYPES))
def test_every_valid_example_passes_as_a_consortium_act(type_: str) -> None:
    """Hashes, refs, nonces, times, state codes and case refs are never linted."""
    assert validate_act(make(type_, visibility="consortium")).visibility == "consortium"


def test_ledger_identifier_fields_are_skipped_by_name() -> None:
    lint_clear_fields(
        {
            "evidence": [{"sha256": H, "tool_version": "1.2.3.4", "size": 4111111111111111}],
            "time_zone": "+07:00",
            "nonce": "13800138000",
            "case_ref": "CN-2026-0042",
        }
    )
    with pytest.raises(RecordInvalid) as caught:
        lint_clear_fields({"evidence": [{"sha256": H, "name": "1.2.3.4"}]})
    assert caught.value.field == "record.evidence[0].name"


@pytest.mark.parametrize("visibility", [None, "parties"])
def test_only_consortium_acts_are_linted(visibility: str | None) -> None:
    """Legacy acts (no visibility) keep validating; a parties act's body is not in clear."""
    changes: dict[str, Any] = {} if visibility is None else {"visibility": visibility}
    validate_act(make("mla_request", measures=["mail a.b@example.org"], **changes))
    validate_act(make("remote_inspection", target="panel at 10.0.0.1", **changes))


PRIVATE_ROWS: list[tuple[str, dict[str, Any], str]] = [
    ("remote_inspection", {}, "record.target"),
    ("search_seizure", {}, "record.medium_identity"),
    ("online_extraction", {}, "record.medium_location.description"),
    ("art32_access", {}, "record.consent.authority"),
]


@pytest.mark.parametrize(("type_", "changes", "field"), PRIVATE_ROWS)
def test_private_fields_are_refused_in_a_consortium_act(
    type_: str, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(RecordInvalid) as caught:
        validate_act(make(type_, visibility="consortium", **changes))
    assert (caught.value.status, caught.value.code) == (422, "private_field_in_clear")
    assert caught.value.field == field


@pytest.mark.parametrize("path", sorted(PRIVATE_FIELDS))
def test_each_private_field_is_named(path: str) -> None:
    record: dict[str, Any] = {}
    head, _, leaf = path.rpartition(".")
    (record.setdefault(head, {}) if head else record)[leaf] = "anything"
    with pytest.raises(RecordInvalid) as caught:
        refuse_private_fields_in_clear(record)
    assert (caught.value.field, caught.value.code) == (f"record.{path}", "private_field_in_clear")


def test_private_field_check_comes_before_the_linter() -> None:
    record = make("remote_inspection", visibility="consortium", target="panel at 10.0.0.1")
    with pytest.raises(RecordInvalid) as caught:
        validate_act(record)
    assert (caught.value.field, caught.value.code) == ("record.target", "private_field_in_clear")


def test_public_art32_access_may_be_a_consortium_act() -> None:
    validate_act(
        make("art32_access", ("consent",), basis="publicly_available", visibility="consortium")
    )


def test_visibility_is_accepted_on_every_act_type() -> None:
    for type_ in sorted(VALID):
        assert validate_act(make(type_, visibility="parties")).visibility == "parties"
