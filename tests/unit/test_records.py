"""Record envelopes: id, leaf bytes, signature, and a catalogue of bad envelopes.

The formats are docs/DESIGN.md's "Records and the public wire contract" and
docs/PROTOCOL.md §3-§5: id = hex SHA-256(JCS(record)), leaf = JCS(envelope),
signature = Ed25519 (RFC 8032) over JCS(record) (RFC 8785).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.canonical import canonical_bytes
from ledger.errors import (
    ClientError,
    EncodingError,
    RecordInvalid,
    SignatureInvalid,
    TooLarge,
)
from ledger.keys import SigningKey
from ledger.records import (
    MAX_RECORD_BYTES,
    TypeRegistry,
    format_time,
    parse_envelope,
    parse_envelope_bytes,
    parse_time,
    verify_signature,
)

KEY = SigningKey(bytes(range(32)))
OTHER_KEY = SigningKey(bytes(range(1, 33)))


def make_record(**fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "schema": "comity/1",
        "type": "evidence_submitted",
        "chain_id": "comity-test",
        "actor": {"state": "FR", "agency": "Gendarmerie nationale"},
        "nonce": "n0nce_0001-x",
        "occurred_at": "2026-01-31T12:00:00Z",
        "case_ref": "FR-2026-0001",
        "territorial_states": ["FR", "DE"],
        "evidence": [{"sha256": "ab" * 32, "name": "photo.jpg", "bytes": 1024}],
        "refs": ["cd" * 32],
    }
    record.update(fields)
    return record


def sign(record: Any, key: SigningKey = KEY) -> dict[str, Any]:
    return {
        "record": record,
        "signer": key.public_hex,
        "signature": key.sign(canonical_bytes(record)).hex(),
    }


# --- the valid path ------------------------------------------------------------------


def test_valid_envelope_parses_and_verifies() -> None:
    envelope = sign(make_record())
    body = canonical_bytes(envelope)
    parsed = parse_envelope_bytes(body)
    record_jcs = canonical_bytes(envelope["record"])
    assert parsed.id == hashlib.sha256(record_jcs).hexdigest()
    assert parsed.record_bytes == record_jcs
    assert parsed.leaf == body
    assert parsed.signer == KEY.public_hex
    assert parsed.type == "evidence_submitted"
    assert parsed.actor_state == "FR"
    assert parsed.to_json() == envelope
    verify_signature(parsed)  # does not raise


def test_leaf_and_id_of_a_fixed_record_are_stable() -> None:
    # A pinned vector: if these bytes change, every chain's hashes change.
    record = {
        "schema": "comity/1",
        "type": "note",
        "chain_id": "c",
        "nonce": "abcdefgh",
        "actor": {"state": "FR", "agency": "A"},
        "occurred_at": "2026-01-01T00:00:00Z",
    }
    jcs = (
        b'{"actor":{"agency":"A","state":"FR"},"chain_id":"c","nonce":"abcdefgh",'
        b'"occurred_at":"2026-01-01T00:00:00Z","schema":"comity/1","type":"note"}'
    )
    envelope = {"record": record, "signer": "00" * 32, "signature": "11" * 64}
    parsed = parse_envelope(envelope)
    assert parsed.record_bytes == jcs
    assert parsed.id == hashlib.sha256(jcs).hexdigest()
    assert parsed.leaf == (
        b'{"record":' + jcs + b',"signature":"' + b"11" * 64 + b'","signer":"' + b"00" * 32 + b'"}'
    )


def test_parse_accepts_any_key_order_and_whitespace() -> None:
    envelope = sign(make_record())
    loose = json.dumps(
        {
            "signature": envelope["signature"],
            "signer": envelope["signer"],
            "record": dict(reversed(list(envelope["record"].items()))),
        },
        indent=2,
        ensure_ascii=True,
    ).encode()
    parsed = parse_envelope_bytes(loose)
    assert parsed.leaf == canonical_bytes(envelope)
    verify_signature(parsed)


_agency = st.text(min_size=1, max_size=40)
_extra_keys = st.text(max_size=8).filter(lambda k: k not in make_record())
_extra_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1), st.text()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(
    agency=_agency,
    nonce=st.from_regex(r"\A[A-Za-z0-9_-]{8,64}\Z"),
    extra=st.dictionaries(_extra_keys, _extra_values, max_size=4),
    case_ref=st.text(min_size=1, max_size=128),
)
def test_generated_records_id_leaf_and_signature(
    agency: str, nonce: str, extra: dict[str, Any], case_ref: str
) -> None:
    record = make_record(
        actor={"state": "DE", "agency": agency}, nonce=nonce, case_ref=case_ref, **extra
    )
    envelope = sign(record)
    parsed = parse_envelope_bytes(json.dumps(envelope, ensure_ascii=False).encode())
    assert parsed.id == hashlib.sha256(rfc8785.dumps(record)).hexdigest()
    assert parsed.leaf == bytes(rfc8785.dumps(envelope))
    verify_signature(parsed)


def test_non_ascii_and_wide_keys_in_record() -> None:
    record = make_record(note="Straße \u20ac \U0001f600", **{"\ue000": 1, "\U0001f600": 2})
    parsed = parse_envelope(sign(record))
    assert parsed.record_bytes == bytes(rfc8785.dumps(record))
    assert parsed.leaf == bytes(rfc8785.dumps(sign(record)))
    verify_signature(parsed)


# --- the catalogue of bad envelopes ----------------------------------------------------

Mutation = Callable[[dict[str, Any]], Any]


def rec(**changes: Any) -> Mutation:
    """Set (or with value ``...`` delete) fields of the record."""

    def mutate(envelope: dict[str, Any]) -> Any:
        for name, value in changes.items():
            if value is ...:
                del envelope["record"][name]
            else:
                envelope["record"][name] = value
        return envelope

    return mutate


def env(**changes: Any) -> Mutation:
    """Set (or with value ``...`` delete) top-level envelope fields."""

    def mutate(envelope: dict[str, Any]) -> Any:
        for name, value in changes.items():
            if value is ...:
                del envelope[name]
            else:
                envelope[name] = value
        return envelope

    return mutate


def replace(value: Any) -> Mutation:
    return lambda envelope: value


E, R = EncodingError, RecordInvalid
A = {"state": "FR", "agency": "Police"}
CATALOGUE: list[Any] = [
    # envelope shape
    ("not-object-list", replace([]), E, "bad_type", "envelope"),
    ("not-object-string", replace("record"), E, "bad_type", "envelope"),
    ("not-object-null", replace(None), E, "bad_type", "envelope"),
    ("missing-record", env(record=...), E, "missing_field", "record"),
    ("missing-signer", env(signer=...), E, "missing_field", "signer"),
    ("missing-signature", env(signature=...), E, "missing_field", "signature"),
    ("unknown-top-level", env(id="00" * 32), E, "unknown_field", "id"),
    ("signer-not-hex", env(signer="zz" * 32), E, "bad_hex", "signer"),
    ("signer-uppercase", env(signer="AB" * 32), E, "bad_hex", "signer"),
    ("signer-short", env(signer="ab" * 31), E, "bad_hex", "signer"),
    ("signer-long", env(signer="ab" * 33), E, "bad_hex", "signer"),
    ("signer-not-string", env(signer=1), E, "bad_hex", "signer"),
    ("signature-short", env(signature="ab" * 63), E, "bad_hex", "signature"),
    ("signature-long", env(signature="ab" * 65), E, "bad_hex", "signature"),
    ("signature-uppercase", env(signature="AB" * 64), E, "bad_hex", "signature"),
    ("record-list", env(record=[]), E, "bad_type", "record"),
    ("record-string", env(record="{}"), E, "bad_type", "record"),
    # required fields
    *[
        (f"missing-{name}", rec(**{name: ...}), R, "missing_field", f"record.{name}")
        for name in ("schema", "type", "chain_id", "actor", "nonce", "occurred_at")
    ],
    ("schema-wrong", rec(schema="comity/2"), R, "bad_schema", "record.schema"),
    ("schema-case", rec(schema="Comity/1"), R, "bad_schema", "record.schema"),
    ("type-uppercase", rec(type="Evidence"), R, "bad_type", "record.type"),
    ("type-digit-first", rec(type="1note"), R, "bad_type", "record.type"),
    ("type-dash", rec(type="evidence-submitted"), R, "bad_type", "record.type"),
    ("type-empty", rec(type=""), R, "bad_type", "record.type"),
    ("type-too-long", rec(type="a" * 65), R, "bad_type", "record.type"),
    ("type-not-string", rec(type=7), R, "bad_type", "record.type"),
    ("chain-id-empty", rec(chain_id=""), R, "bad_type", "record.chain_id"),
    ("chain-id-int", rec(chain_id=1), R, "bad_type", "record.chain_id"),
    ("actor-string", rec(actor="FR"), R, "bad_type", "record.actor"),
    ("actor-list", rec(actor=["FR", "Police"]), R, "bad_type", "record.actor"),
    ("state-lowercase", rec(actor={**A, "state": "fr"}), R, "bad_state", "record.actor.state"),
    ("state-alpha3", rec(actor={**A, "state": "FRA"}), R, "bad_state", "record.actor.state"),
    ("state-missing", rec(actor={"agency": "Police"}), R, "bad_state", "record.actor.state"),
    ("agency-empty", rec(actor={**A, "agency": ""}), R, "bad_type", "record.actor.agency"),
    ("agency-long", rec(actor={**A, "agency": "x" * 201}), R, "bad_type", "record.actor.agency"),
    ("agency-missing", rec(actor={"state": "FR"}), R, "bad_type", "record.actor.agency"),
    ("nonce-7", rec(nonce="abcdefg"), R, "bad_nonce", "record.nonce"),
    ("nonce-65", rec(nonce="a" * 65), R, "bad_nonce", "record.nonce"),
    ("nonce-space", rec(nonce="abcd efgh"), R, "bad_nonce", "record.nonce"),
    ("nonce-punct", rec(nonce="abcdefgh!"), R, "bad_nonce", "record.nonce"),
    ("nonce-non-ascii", rec(nonce="n\u00f6ncenonce"), R, "bad_nonce", "record.nonce"),
    ("nonce-int", rec(nonce=12345678), R, "bad_nonce", "record.nonce"),
    ("time-space", rec(occurred_at="2026-01-31 12:00:00Z"), R, "bad_time", "record.occurred_at"),
    (
        "time-offset",
        rec(occurred_at="2026-01-31T12:00:00+01:00"),
        R,
        "bad_time",
        "record.occurred_at",
    ),
    ("time-lower-z", rec(occurred_at="2026-01-31t12:00:00z"), R, "bad_time", "record.occurred_at"),
    (
        "time-short-month",
        rec(occurred_at="2026-1-31T12:00:00Z"),
        R,
        "bad_time",
        "record.occurred_at",
    ),
    (
        "time-7-digit-fraction",
        rec(occurred_at="2026-01-31T12:00:00.1234567Z"),
        R,
        "bad_time",
        "record.occurred_at",
    ),
    ("time-feb-30", rec(occurred_at="2026-02-30T00:00:00Z"), R, "bad_time", "record.occurred_at"),
    (
        "time-feb-29-non-leap",
        rec(occurred_at="2026-02-29T00:00:00Z"),
        R,
        "bad_time",
        "record.occurred_at",
    ),
    ("time-hour-24", rec(occurred_at="2026-01-31T24:00:00Z"), R, "bad_time", "record.occurred_at"),
    (
        "time-arabic-digits",
        rec(occurred_at="\u0662\u0660\u0662\u0666-01-31T12:00:00Z"),
        R,
        "bad_time",
        "record.occurred_at",
    ),
    ("time-int", rec(occurred_at=1769860800), R, "bad_time", "record.occurred_at"),
    ("case-ref-129", rec(case_ref="c" * 129), R, "bad_type", "record.case_ref"),
    ("case-ref-empty", rec(case_ref=""), R, "bad_type", "record.case_ref"),
    ("case-ref-int", rec(case_ref=5), R, "bad_type", "record.case_ref"),
    ("states-empty", rec(territorial_states=[]), R, "bad_type", "record.territorial_states"),
    ("states-string", rec(territorial_states="FR"), R, "bad_type", "record.territorial_states"),
    ("states-51", rec(territorial_states=["FR"] * 51), R, "bad_type", "record.territorial_states"),
    (
        "states-lowercase",
        rec(territorial_states=["fr"]),
        R,
        "bad_state",
        "record.territorial_states[0]",
    ),
    (
        "states-alpha3",
        rec(territorial_states=["FR", "DEU"]),
        R,
        "bad_state",
        "record.territorial_states[1]",
    ),
    (
        "evidence-no-sha256",
        rec(evidence=[{"name": "x"}]),
        R,
        "bad_hex",
        "record.evidence[0].sha256",
    ),
    (
        "evidence-upper-hex",
        rec(evidence=[{"sha256": "ab" * 32}, {"sha256": "AB" * 32}]),
        R,
        "bad_hex",
        "record.evidence[1].sha256",
    ),
    (
        "evidence-short-hex",
        rec(evidence=[{"sha256": "ab" * 31}]),
        R,
        "bad_hex",
        "record.evidence[0].sha256",
    ),
    ("evidence-item-string", rec(evidence=["ab" * 32]), R, "bad_hex", "record.evidence[0].sha256"),
    ("evidence-not-list", rec(evidence={"sha256": "ab" * 32}), R, "bad_type", "record.evidence"),
    ("evidence-1001", rec(evidence=[0] * 1001), R, "bad_type", "record.evidence"),
    ("refs-not-hex", rec(refs=["xyz"]), R, "bad_hex", "record.refs[0]"),
    ("refs-upper", rec(refs=["cd" * 32, "CD" * 32]), R, "bad_hex", "record.refs[1]"),
    ("refs-int", rec(refs=[1]), R, "bad_hex", "record.refs[0]"),
    ("refs-string", rec(refs="cd" * 32), R, "bad_type", "record.refs"),
    ("refs-101", rec(refs=["cd" * 32] * 101), R, "bad_type", "record.refs"),
    # outside the canonical subset (RFC 8785 as restricted by docs/DESIGN.md "Canonical JSON")
    ("record-float", rec(amount=1.5), E, "float_not_allowed", "$.amount"),
    ("record-big-int", rec(amount=2**53), E, "integer_out_of_range", "$.amount"),
    ("record-too-large", rec(note="x" * MAX_RECORD_BYTES), TooLarge, "record_too_large", "record"),
]


@pytest.mark.parametrize(
    ("mutation", "exc", "code", "field"),
    [pytest.param(*case[1:], id=case[0]) for case in CATALOGUE],
)
def test_bad_envelope_catalogue(
    mutation: Mutation, exc: type[ClientError], code: str, field: str
) -> None:
    bad = mutation(copy.deepcopy(sign(make_record())))
    with pytest.raises(ClientError) as info:
        parse_envelope(bad)
    assert type(info.value) is exc
    assert (info.value.code, info.value.field) == (code, field)
    assert field in info.value.message or field.startswith("$") or field == "envelope"


def test_catalogue_ids_are_unique() -> None:
    names = [case[0] for case in CATALOGUE]
    assert len(names) == len(set(names))


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (b'{"record":{"a":1.5},"signer":"","signature":""}', "float_not_allowed", "$.record.a"),
        (b'{"record":{},"record":{},"signer":"","signature":""}', "duplicate_key", "$.record"),
        (b"[1,2", "malformed_json", None),
        (b'{"record":"\xff"}', "invalid_utf8", None),
    ],
)
def test_bad_envelope_bytes(body: bytes, code: str, field: str | None) -> None:
    with pytest.raises(EncodingError) as info:
        parse_envelope_bytes(body)
    assert (info.value.code, info.value.field) == (code, field)


def _padded_record(size: int) -> dict[str, Any]:
    record = make_record(note="")
    record["note"] = "x" * (size - len(canonical_bytes(record)))
    assert len(canonical_bytes(record)) == size
    return record


def test_record_size_limit_is_64_kib_of_canonical_bytes() -> None:
    assert MAX_RECORD_BYTES == 65536
    assert parse_envelope(sign(_padded_record(MAX_RECORD_BYTES))).id
    with pytest.raises(TooLarge) as info:
        parse_envelope(sign(_padded_record(MAX_RECORD_BYTES + 1)))
    assert (info.value.code, info.value.field, info.value.status) == (
        "record_too_large",
        "record",
        413,
    )


def test_size_limit_counts_utf8_bytes_not_characters() -> None:
    record = make_record(note="\u20ac" * 21_900)  # 3 bytes each in UTF-8
    with pytest.raises(TooLarge):
        parse_envelope(sign(record))


# --- signatures ------------------------------------------------------------------------


def _signature_refused(envelope: dict[str, Any]) -> SignatureInvalid:
    parsed = parse_envelope(envelope)  # the shape is fine
    with pytest.raises(SignatureInvalid) as info:
        verify_signature(parsed)
    assert (info.value.code, info.value.field, info.value.status) == (
        "bad_signature",
        "signature",
        422,
    )
    return info.value


def test_tampered_record_fails_signature() -> None:
    envelope = sign(make_record())
    envelope["record"]["case_ref"] = "FR-2026-0002"
    _signature_refused(envelope)


def test_signature_by_another_key_fails() -> None:
    envelope = sign(make_record(), OTHER_KEY)
    envelope["signer"] = KEY.public_hex
    _signature_refused(envelope)


def test_signature_over_non_canonical_bytes_fails() -> None:
    record = make_record()
    envelope = {
        "record": record,
        "signer": KEY.public_hex,
        "signature": KEY.sign(json.dumps(record).encode()).hex(),
    }
    _signature_refused(envelope)


def test_signature_from_another_chain_is_not_this_record() -> None:
    # A record replayed with another chain_id is a different record (different id) and
    # the original signature does not cover it.
    envelope = sign(make_record(chain_id="other-chain"))
    original_id = parse_envelope(envelope).id
    envelope["record"]["chain_id"] = "comity-test"
    assert parse_envelope(envelope).id != original_id
    _signature_refused(envelope)


# --- type registry -------------------------------------------------------------------


def test_unknown_type_refused() -> None:
    registry = TypeRegistry()
    registry.register("note")
    with pytest.raises(RecordInvalid) as info:
        registry.check(make_record(type="evidence_submitted"))
    assert (info.value.code, info.value.field) == ("unknown_type", "record.type")


def test_allow_unknown_types() -> None:
    TypeRegistry(allow_unknown=True).check(make_record(type="anything_goes"))


def test_registered_rule_runs() -> None:
    seen: list[Mapping[str, Any]] = []

    def rule(record: Mapping[str, Any]) -> None:
        seen.append(record)
        if not isinstance(record.get("bytes"), int):
            raise RecordInvalid(
                "record.bytes must be an integer", field="record.bytes", code="bad_type"
            )

    registry = TypeRegistry()
    registry.register("evidence_submitted", rule)
    registry.register("note")
    registry.check(make_record(bytes=10))
    with pytest.raises(RecordInvalid) as info:
        registry.check(make_record())
    assert (info.value.code, info.value.field) == ("bad_type", "record.bytes")
    assert len(seen) == 2
    registry.check(make_record(type="note"))  # default rule accepts
    assert registry.known() == ["evidence_submitted", "note"]


@pytest.mark.parametrize("name", ["Note", "", "1x", "a-b", "a" * 65])
def test_register_refuses_bad_type_names(name: str) -> None:
    with pytest.raises(ValueError, match="bad type name"):
        TypeRegistry().register(name)


# --- time -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-31T12:00:00Z", datetime(2026, 1, 31, 12, tzinfo=UTC)),
        ("2026-01-31T12:00:00.5Z", datetime(2026, 1, 31, 12, 0, 0, 500_000, tzinfo=UTC)),
        ("2026-01-31T12:00:00.123456Z", datetime(2026, 1, 31, 12, 0, 0, 123_456, tzinfo=UTC)),
        ("2024-02-29T23:59:59Z", datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_parse_time_rfc3339_utc(text: str, expected: datetime) -> None:
    # RFC 3339 §5.6 date-time, restricted to the "Z" offset.
    assert parse_time(text, "t") == expected


def test_format_time_is_utc_milliseconds() -> None:
    moment = datetime(2026, 11, 22, 8, 10, 10, 123_987, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(moment) == "2026-11-22T06:10:10.123Z"
    assert parse_time(format_time(moment), "t") == moment.replace(microsecond=123_000)
