"""Record envelopes: structure, record id, signature, and pluggable type rules.

An envelope is ``{"record": {...}, "signer": <64 hex>, "signature": <128 hex>}``.
The signature is Ed25519 by ``signer`` over ``JCS(record)``; the record id is
the lowercase hex SHA-256 of ``JCS(record)``. The ledger leaf for an envelope
is ``JCS(envelope)``. Every record carries ``schema``, ``type``, ``chain_id``,
``actor`` {``state``, ``agency``}, ``nonce`` and ``occurred_at``; since the
record (with its chain id and nonce) is what is signed, a record replayed on
this chain has the same id and is refused as a duplicate, and one replayed on
another chain fails that chain's ``chain_id`` check.

Checks are split so each is done once per node: ``parse_envelope`` checks the
shape and computes the id and leaf bytes (cheap); ``verify_signature`` runs
Ed25519 (about 75 µs); type rules come from a ``TypeRegistry`` so the act
catalogue and governance records plug in without touching this module.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ledger.canonical import canonical_bytes, parse_json
from ledger.errors import EncodingError, RecordInvalid, SignatureInvalid, TooLarge
from ledger.hashing import is_hex, sha256_hex
from ledger.keys import verify

SCHEMA = "comity/1"
MAX_RECORD_BYTES = 64 * 1024
ENVELOPE_FIELDS = frozenset({"record", "signer", "signature"})
REQUIRED_FIELDS = ("schema", "type", "chain_id", "actor", "nonce", "occurred_at")

#: The header fields a private act's content takes back (``ledger.private.COMMON_FIELDS``).
CONTENT_FIELDS = (
    "schema",
    "chain_id",
    "actor",
    "nonce",
    "occurred_at",
    "refs",
    "visibility",
    "parties",
    "retain_until",
)

_STATE_RE = re.compile(r"[A-Z]{2}")
_TYPE_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")
_TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")


@dataclass(frozen=True, slots=True)
class Envelope:
    """A parsed envelope; ``leaf`` and ``record_bytes`` are computed once.

    ``record`` is what was signed. For a private act (``ledger/private.py``) that
    is its public header; ``body`` is then the private body when this node holds
    it (a party), and ``content`` the act the rules read: the body's act with
    the header's common fields. For every other record ``content`` is
    ``record``. The leaf, the id and ``to_json`` are always the signed record's:
    a body never leaves through an envelope."""

    record: dict[str, Any]
    signer: str
    signature: str
    id: str
    record_bytes: bytes = field(repr=False)
    leaf: bytes = field(repr=False)
    body: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    content: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        merged = self.record
        if self.body is not None:
            merged = dict(self.body["act"])
            merged.update((k, self.record[k]) for k in CONTENT_FIELDS if k in self.record)
        object.__setattr__(self, "content", merged)

    @property
    def type(self) -> str:
        """The act's type when this node can see it, else the signed record's."""
        return str(self.content["type"])

    @property
    def signed_type(self) -> str:
        return str(self.record["type"])

    def with_body(self, body: dict[str, Any] | None) -> Envelope:
        """This envelope with a private body attached (or detached with None)."""
        return Envelope(
            self.record, self.signer, self.signature, self.id, self.record_bytes, self.leaf, body
        )

    @property
    def actor_state(self) -> str:
        return str(self.record["actor"]["state"])

    def to_json(self) -> dict[str, Any]:
        return {"record": self.record, "signer": self.signer, "signature": self.signature}


def parse_time(text: object, field_name: str) -> datetime:
    """Parse an RFC 3339 UTC timestamp (``Z`` suffix), naming ``field_name`` on error."""
    if type(text) is str:
        parsed = _parse_utc(text)
        if type(parsed) is datetime:
            return parsed
    else:
        parsed = None
    if parsed is None:
        raise RecordInvalid(
            f"{field_name} must be an RFC 3339 UTC time like 2026-01-31T12:00:00Z",
            field=field_name,
            code="bad_time",
        )
    raise RecordInvalid(
        f"{field_name} is not a real date/time: {parsed}", field=field_name, code="bad_time"
    )


@functools.lru_cache(maxsize=16384)
def _parse_utc(text: str) -> datetime | str | None:
    """``text`` as an aware UTC datetime; None if it is not of the form, or why it is
    not a real date. Cached: a record's times are parsed at admission, again when
    its block is built or validated, and many records share a time."""
    if not _TIME_RE.fullmatch(text):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError as exc:
        return str(exc)


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with millisecond precision, the form Comity writes."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def check_state_code(value: object, field_name: str) -> str:
    if not isinstance(value, str) or not _STATE_RE.fullmatch(value):
        raise RecordInvalid(
            f'{field_name} must be an ISO 3166-1 alpha-2 code such as "FR"',
            field=field_name,
            code="bad_state",
        )
    return value


def parse_envelope(obj: Any, *, max_record_bytes: int = MAX_RECORD_BYTES) -> Envelope:
    """Check the envelope's shape and the common record fields; compute id and leaf.

    Does not check the signature (see ``verify_signature``) nor type rules.
    """
    if not isinstance(obj, dict):
        raise EncodingError("envelope must be a JSON object", field="envelope", code="bad_type")
    missing = [k for k in ("record", "signer", "signature") if k not in obj]
    if missing:
        raise EncodingError(
            f"envelope.{missing[0]} is missing", field=missing[0], code="missing_field"
        )
    extra = sorted(set(obj) - ENVELOPE_FIELDS)
    if extra:
        raise EncodingError(
            f"envelope has unknown field {extra[0]!r}", field=extra[0], code="unknown_field"
        )
    if not is_hex(obj["signer"], 32):
        raise EncodingError(
            "signer must be 64 lowercase hex characters (an Ed25519 public key)",
            field="signer",
            code="bad_hex",
        )
    if not is_hex(obj["signature"], 64):
        raise EncodingError(
            "signature must be 128 lowercase hex characters", field="signature", code="bad_hex"
        )
    record = obj["record"]
    if not isinstance(record, dict):
        raise EncodingError("record must be a JSON object", field="record", code="bad_type")
    record_bytes = canonical_bytes(record)
    if len(record_bytes) > max_record_bytes:
        raise TooLarge(
            f"record is {len(record_bytes)} bytes canonical, limit is {max_record_bytes}",
            field="record",
            code="record_too_large",
        )
    check_common_fields(record)
    leaf = (
        b'{"record":'
        + record_bytes
        + b',"signature":"'
        + obj["signature"].encode()
        + b'","signer":"'
        + obj["signer"].encode()
        + b'"}'
    )
    return Envelope(
        record, obj["signer"], obj["signature"], sha256_hex(record_bytes), record_bytes, leaf
    )


def parse_envelope_bytes(data: bytes, *, max_record_bytes: int = MAX_RECORD_BYTES) -> Envelope:
    return parse_envelope(parse_json(data), max_record_bytes=max_record_bytes)


def check_common_fields(record: Mapping[str, Any]) -> None:
    for name in REQUIRED_FIELDS:
        if name not in record:
            raise RecordInvalid(
                f"record.{name} is missing", field=f"record.{name}", code="missing_field"
            )
    if record["schema"] != SCHEMA:
        raise RecordInvalid(
            f"record.schema must be {SCHEMA!r}", field="record.schema", code="bad_schema"
        )
    if not isinstance(record["type"], str) or not _TYPE_RE.fullmatch(record["type"]):
        raise RecordInvalid(
            "record.type must be a snake_case name", field="record.type", code="bad_type"
        )
    if not isinstance(record["chain_id"], str) or not record["chain_id"]:
        raise RecordInvalid(
            "record.chain_id must be a non-empty string", field="record.chain_id", code="bad_type"
        )
    _check_actor(record["actor"])
    if not isinstance(record["nonce"], str) or not _NONCE_RE.fullmatch(record["nonce"]):
        raise RecordInvalid(
            "record.nonce must be 8-64 characters of [A-Za-z0-9_-]",
            field="record.nonce",
            code="bad_nonce",
        )
    parse_time(record["occurred_at"], "record.occurred_at")
    _check_optional_indexed(record)


def _check_actor(actor: object) -> None:
    if not isinstance(actor, dict):
        raise RecordInvalid(
            "record.actor must be an object with state and agency",
            field="record.actor",
            code="bad_type",
        )
    check_state_code(actor.get("state"), "record.actor.state")
    agency = actor.get("agency")
    if not isinstance(agency, str) or not 1 <= len(agency) <= 200:
        raise RecordInvalid(
            "record.actor.agency must be a string of 1-200 characters",
            field="record.actor.agency",
            code="bad_type",
        )


def _check_optional_indexed(record: Mapping[str, Any]) -> None:
    """Shapes of the optional fields that the store indexes."""
    case_ref = record.get("case_ref")
    if case_ref is not None and (not isinstance(case_ref, str) or not 1 <= len(case_ref) <= 128):
        raise RecordInvalid(
            "record.case_ref must be a string of 1-128 characters",
            field="record.case_ref",
            code="bad_type",
        )
    states = record.get("territorial_states")
    if states is not None:
        if not isinstance(states, list) or not 1 <= len(states) <= 50:
            raise RecordInvalid(
                "record.territorial_states must be a list of 1-50 state codes",
                field="record.territorial_states",
                code="bad_type",
            )
        for i, state in enumerate(states):
            check_state_code(state, f"record.territorial_states[{i}]")
    for i, item in enumerate(_list_field(record, "evidence", 1000)):
        if not isinstance(item, dict) or not is_hex(item.get("sha256"), 32):
            raise RecordInvalid(
                f"record.evidence[{i}].sha256 must be 64 lowercase hex",
                field=f"record.evidence[{i}].sha256",
                code="bad_hex",
            )
    for i, ref in enumerate(_list_field(record, "refs", 100)):
        if not is_hex(ref, 32):
            raise RecordInvalid(
                f"record.refs[{i}] must be a record id (64 lowercase hex)",
                field=f"record.refs[{i}]",
                code="bad_hex",
            )


def _list_field(record: Mapping[str, Any], name: str, limit: int) -> list[Any]:
    value = record.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > limit:
        raise RecordInvalid(
            f"record.{name} must be a list of at most {limit} items",
            field=f"record.{name}",
            code="bad_type",
        )
    return value


def verify_signature(envelope: Envelope) -> None:
    if not verify(
        bytes.fromhex(envelope.signer), envelope.record_bytes, bytes.fromhex(envelope.signature)
    ):
        raise SignatureInvalid(
            "signature does not verify for signer over JCS(record)",
            field="signature",
            code="bad_signature",
        )


def evidence_hashes(record: Mapping[str, Any]) -> list[str]:
    return [item["sha256"] for item in record.get("evidence") or []]


TypeRule = Callable[[Mapping[str, Any]], None]
#: A rule that depends on the catalogue version in force (``ledger/acts_versions.py``).
VersionedRule = Callable[[Mapping[str, Any], int | None], None]


class TypeRegistry:
    """Which record types exist and the extra rules each must meet.

    A rule raises ``RecordInvalid`` naming the field. Later layers (the act
    catalogue, governance) register their types here. The act catalogue's rules
    take the catalogue version in force at the record's height (None: the
    latest), which ``check`` passes on.
    """

    def __init__(self, *, allow_unknown: bool = False) -> None:
        self._rules: dict[str, VersionedRule] = {}
        self.allow_unknown = allow_unknown

    def register(self, type_name: str, rule: TypeRule | None = None) -> None:
        plain = rule or (lambda record: None)
        self.register_versioned(type_name, lambda record, version: plain(record))

    def register_versioned(self, type_name: str, rule: VersionedRule) -> None:
        if not _TYPE_RE.fullmatch(type_name):
            raise ValueError(f"bad type name {type_name!r}")
        self._rules[type_name] = rule

    def known(self) -> list[str]:
        return sorted(self._rules)

    def check(self, record: Mapping[str, Any], version: int | None = None) -> None:
        rule = self._rules.get(record["type"])
        if rule is None:
            if self.allow_unknown:
                return
            raise RecordInvalid(
                f"record.type {record['type']!r} is not a known record type",
                field="record.type",
                code="unknown_type",
            )
        rule(record, version)
