"""Need to know: an act's public header on the chain, its private body only at the parties.

Theory of operation
-------------------
docs/PRIVACY.md. An act recorded with ``visibility: "parties"`` is signed and
committed as a *header*, a record of type ``private_act`` that every member
stores and verifies::

    {"schema": "comity/1", "type": "private_act", "class": "request",
     "chain_id": ..., "actor": {"state": "CN", "agency": ...}, "nonce": ...,
     "occurred_at": ..., "visibility": "parties", "parties": ["CN", "TH"],
     "commitment": <64 hex>, "retain_until": ..., "refs": [<record id>, ...]}

``commitment`` is SHA-256 of ``JCS(body)``, where the *private body* is
``{"act": A, "salt": S}``: ``A`` holds the act's type and every field that is
not a header field, ``S`` is 32 hex characters of fresh randomness, so that the
commitment cannot confirm a guessed act (acts are short and often guessable).
The act a party works with, its *content*, is ``A`` with the header's common
fields (schema, chain id, actor, nonce, time, refs, visibility, parties,
retain_until) added back; every act rule runs on the content exactly as on a
clear act.

``parties`` is not chosen by the signer: it must equal the actor's state, every
state the content names (any field ``state``, ``*_state`` or ``*_states`` at
any depth: territorial, requested, executing, receiving, the custodian's, JIT
members) and the parties of every referenced private act. A non-party checks
the header alone: the signer is enrolled for the actor's state with a role that
may sign some type of the header's ``class``; the refs are committed; the
parties include the refs' parties. A party also checks the body: the commitment,
the derived parties, the exact type's role, the schema and the context rules.

Nothing here does I/O; the functions are pure.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from ledger.canonical import canonical_bytes
from ledger.errors import EncodingError, Forbidden, RecordInvalid, TooLarge
from ledger.hashing import is_hex, sha256_hex
from ledger.records import CONTENT_FIELDS, check_state_code, parse_time
from ledger.roles import AUTHORITY_ACTS, INTEGRATION_ACTS, INVESTIGATOR_ACTS, ROLE_TYPES

HEADER_TYPE: Final = "private_act"
VISIBILITIES: Final = ("consortium", "parties")
SALT_HEX: Final = 32
PARTIES_MAX: Final = 50

#: Header fields a private act's content takes back from its header.
COMMON_FIELDS: Final = CONTENT_FIELDS
HEADER_FIELDS: Final = frozenset({*COMMON_FIELDS, "type", "class", "commitment"})

#: The type class a non-party sees instead of the type. Each act type is in one
#: class; a class's roles are those that may sign some type in it.
TYPE_CLASSES: Final[Mapping[str, frozenset[str]]] = {
    "request": frozenset(
        {
            "mla_request",
            "preservation_request",
            "production_order",
            "eio",
            "epoc",
            "epoc_pr",
            "emergency_disclosure",
            "direct_provider_request",
        }
    ),
    "answer": frozenset(
        {
            "mla_response",
            "sovereignty_response",
            "conditions_acknowledgement",
            "preservation_response",
            "traffic_path_disclosure",
            "provider_request_answer",
            "epoc_enforcing_decision",
            "addressee_report",
            "eio_response",
        }
    ),
    "measure": frozenset(
        {
            "online_extraction",
            "remote_inspection",
            "technical_measure",
            "search_seizure",
            "realtime_collection",
            "art32_access",
            "video_conference",
        }
    ),
    "custody": frozenset({"custody_event"}),
    "cooperation": frozenset(
        {"spontaneous_information", "joint_investigation", "jit_agreement", "jit_accession"}
    ),
    "receipt": frozenset({"exchange_receipt"}),
}
ACT_TYPES: Final = INVESTIGATOR_ACTS | AUTHORITY_ACTS | INTEGRATION_ACTS


def class_of(type_name: str) -> str | None:
    """The class a non-party sees for ``type_name``; None for a type outside every class."""
    return next((name for name, types in TYPE_CLASSES.items() if type_name in types), None)


def class_roles(class_name: str) -> frozenset[str]:
    """The roles that may sign some type of ``class_name``."""
    types = TYPE_CLASSES[class_name]
    return frozenset(role for role, allowed in ROLE_TYPES.items() if allowed & types)


def is_private(record: Mapping[str, Any]) -> bool:
    return record.get("type") == HEADER_TYPE


def commitment(body: Mapping[str, Any]) -> str:
    return sha256_hex(canonical_bytes(body))


# --- shapes ---------------------------------------------------------------------------


def check_header(record: Mapping[str, Any]) -> None:
    """A ``private_act`` header's own fields (the common ones are ``records``')."""
    extra = sorted(set(record) - HEADER_FIELDS)
    if extra:
        raise RecordInvalid(
            f"record.{extra[0]} is not a header field of a private act: it belongs in the body",
            field=f"record.{extra[0]}",
            code="field_not_in_header",
        )
    if record.get("class") not in TYPE_CLASSES:
        raise RecordInvalid(
            f"record.class must be one of {sorted(TYPE_CLASSES)}",
            field="record.class",
            code="bad_class",
        )
    if record.get("visibility") != "parties":
        raise RecordInvalid(
            'record.visibility of a private_act must be "parties"',
            field="record.visibility",
            code="bad_visibility",
        )
    parties = record.get("parties")
    if (
        not isinstance(parties, list)
        or not 1 <= len(parties) <= PARTIES_MAX
        or parties != sorted(set(parties))
    ):
        raise RecordInvalid(
            f"record.parties must be 1-{PARTIES_MAX} distinct state codes in sorted order",
            field="record.parties",
            code="bad_parties",
        )
    for i, state in enumerate(parties):
        check_state_code(state, f"record.parties[{i}]")
    if record["actor"]["state"] not in parties:
        raise RecordInvalid(
            "record.parties must include the actor's state",
            field="record.parties",
            code="actor_not_party",
        )
    if not is_hex(record.get("commitment"), 32):
        raise RecordInvalid(
            "record.commitment must be 64 lowercase hex (SHA-256 of the private body)",
            field="record.commitment",
            code="bad_hex",
        )
    until = parse_time(record.get("retain_until"), "record.retain_until")
    if until <= parse_time(record["occurred_at"], "record.occurred_at"):
        raise RecordInvalid(
            "record.retain_until must be after record.occurred_at",
            field="record.retain_until",
            code="bad_retention",
        )


def parse_body(obj: Any, *, max_bytes: int) -> dict[str, Any]:
    """A private body's shape: ``{"act": {..., "type": ...}, "salt": <32 hex>}``."""
    if not isinstance(obj, dict) or set(obj) != {"act", "salt"}:
        raise EncodingError(
            'private must be an object {"act": {...}, "salt": <32 hex>}',
            field="private",
            code="bad_private",
        )
    salt = obj["salt"]
    if not isinstance(salt, str) or not is_hex(salt, SALT_HEX // 2):
        raise EncodingError(
            f"private.salt must be {SALT_HEX} lowercase hex characters",
            field="private.salt",
            code="bad_hex",
        )
    act = obj["act"]
    if not isinstance(act, dict) or not isinstance(act.get("type"), str):
        raise EncodingError(
            "private.act must be an object with a type", field="private.act", code="bad_type"
        )
    size = len(canonical_bytes(obj))
    if size > max_bytes:
        raise TooLarge(
            f"private body is {size} bytes canonical, limit is {max_bytes}",
            field="private",
            code="record_too_large",
        )
    shared = sorted(set(act) & HEADER_FIELDS - {"type"})
    if shared:
        raise RecordInvalid(
            f"private.act.{shared[0]} is a header field: it goes in the signed record",
            field=f"private.act.{shared[0]}",
            code="field_in_body",
        )
    return obj


def check_body(header: Mapping[str, Any], body: Mapping[str, Any]) -> None:
    """``body`` is the one the header commits to, of a type of the header's class."""
    if commitment(body) != header["commitment"]:
        raise RecordInvalid(
            "private body does not match record.commitment",
            field="private",
            code="commitment_mismatch",
        )
    type_name = body["act"]["type"]
    if type_name not in TYPE_CLASSES[header["class"]]:
        raise RecordInvalid(
            f"private.act.type {type_name!r} is not of class {header['class']!r}",
            field="private.act.type",
            code="wrong_class",
        )


def content(header: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """The act a party works with: the body's act with the header's common fields."""
    out = dict(body["act"])
    out.update((name, header[name]) for name in COMMON_FIELDS if name in header)
    return out


def schema_view(act_content: Mapping[str, Any]) -> dict[str, Any]:
    """The content as the act catalogue's schema reads it: without the header's
    visibility fields, which the catalogue's models need not know."""
    return {
        k: v for k, v in act_content.items() if k not in ("visibility", "parties", "retain_until")
    }


# --- parties --------------------------------------------------------------------------


def named_states(act: Any) -> set[str]:
    """Every state an act's fields name: ``state``, ``*_state``, ``*_states`` at any depth."""
    found: set[str] = set()
    stack = [act]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key == "state" or key.endswith("_state"):
                    if isinstance(value, str):
                        found.add(value)
                elif key.endswith("_states") and isinstance(value, list):
                    found.update(v for v in value if isinstance(v, str))
                if isinstance(value, (dict, list)):
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
    return found


def derive_parties(
    act_content: Mapping[str, Any], ref_parties: Callable[[str], Iterable[str]]
) -> list[str]:
    """The parties an act's content implies, given each ref's parties (empty for a clear ref)."""
    parties = named_states(act_content)
    for ref in act_content.get("refs") or []:
        parties.update(ref_parties(ref))
    return sorted(parties)


def check_parties(
    header: Mapping[str, Any],
    act_content: Mapping[str, Any],
    ref_parties: Callable[[str], Iterable[str]],
) -> None:
    derived = derive_parties(act_content, ref_parties)
    if derived != header["parties"]:
        raise RecordInvalid(
            f"record.parties must be exactly the states the act concerns: {derived}",
            field="record.parties",
            code="parties_mismatch",
        )


def check_class_role(header: Mapping[str, Any], roles: frozenset[str]) -> None:
    """What a non-party can check of the signer: a role allowed for the class."""
    if not roles & class_roles(header["class"]):
        raise Forbidden(
            f"roles {sorted(roles)} may not sign acts of class {header['class']!r}",
            field="record.class",
            code="role_not_allowed",
        )


# --- the records a party's node signs ---------------------------------------------------

_NODE_RECORD_FIELDS: Final = frozenset(
    {"schema", "type", "chain_id", "actor", "nonce", "occurred_at", "refs"}
)


def _check_only(record: Mapping[str, Any], fields: frozenset[str]) -> None:
    extra = sorted(set(record) - fields)
    if extra:
        raise RecordInvalid(
            f"record.{extra[0]} is not a field of {record['type']}",
            field=f"record.{extra[0]}",
            code="unknown_field",
        )
    if not record.get("refs"):
        raise RecordInvalid(
            "record.refs must name 1-100 private acts", field="record.refs", code="missing_field"
        )


def check_violation_shape(record: Mapping[str, Any]) -> None:
    """``body_violation``: a party's node found the body of ``refs[0]`` breaks ``rule``."""
    _check_only(record, _NODE_RECORD_FIELDS | {"rule", "field"})
    if len(record["refs"]) != 1:
        raise RecordInvalid(
            "record.refs must name the one private act", field="record.refs", code="bad_refs"
        )
    for name, limit in (("rule", 64), ("field", 200)):
        value = record.get(name)
        if not isinstance(value, str) or not 1 <= len(value) <= limit:
            raise RecordInvalid(
                f"record.{name} must be a string of 1-{limit} characters",
                field=f"record.{name}",
                code="bad_type",
            )


def check_purge_shape(record: Mapping[str, Any]) -> None:
    """``body_purge``: a party's node erased its copy of the bodies of ``refs``."""
    _check_only(record, _NODE_RECORD_FIELDS)


# --- authoring ------------------------------------------------------------------------


def split(
    act_record: Mapping[str, Any],
    *,
    retain_until: str,
    ref_parties: Callable[[str], Iterable[str]],
    salt: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A complete clear act (common fields filled in) as (header, private body)."""
    type_name = str(act_record["type"])
    class_name = class_of(type_name)
    if class_name is None:
        raise RecordInvalid(
            f"record.type {type_name!r} cannot be a private act",
            field="record.type",
            code="not_an_act",
        )
    act = {k: v for k, v in act_record.items() if k not in HEADER_FIELDS or k == "type"}
    body = {"act": act, "salt": salt or secrets.token_hex(SALT_HEX // 2)}
    header: dict[str, Any] = {
        k: act_record[k] for k in COMMON_FIELDS if k in act_record and k != "parties"
    }
    header.update(type=HEADER_TYPE, visibility="parties", retain_until=retain_until)
    header["class"] = class_name
    header["parties"] = derive_parties({**act, **header}, ref_parties)
    header["commitment"] = commitment(body)
    return header, body
