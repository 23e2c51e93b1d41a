"""The record types this node accepts and their type-specific rules.

Acts carry the common fields checked in ``ledger.records``; the act catalogue
adds per-type rules through ``TypeRegistry.register``. Key enrolment and
revocation are checked here because the chain state applies them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ledger.errors import RecordInvalid
from ledger.hashing import is_hex
from ledger.records import TypeRegistry, parse_time
from ledger.roles import AUTHORITY_ACTS, INVESTIGATOR_ACTS, ROLES


def _check_pubkey(record: Mapping[str, Any]) -> None:
    if not is_hex(record.get("pubkey"), 32):
        raise RecordInvalid("record.pubkey must be 64 lowercase hex (an Ed25519 public key)",
                            field="record.pubkey", code="bad_hex")


def check_enroll_key(record: Mapping[str, Any]) -> None:
    _check_pubkey(record)
    roles = record.get("roles")
    if not isinstance(roles, list) or not roles or len(roles) > len(ROLES) or \
            any(role not in ROLES for role in roles) or len(set(roles)) != len(roles):
        raise RecordInvalid(f"record.roles must be a non-empty list of distinct roles from "
                            f"{list(ROLES)}", field="record.roles", code="bad_roles")
    agency = record.get("agency")
    if not isinstance(agency, str) or not 1 <= len(agency) <= 200:
        raise RecordInvalid("record.agency must be a string of 1-200 characters",
                            field="record.agency", code="bad_type")
    if record.get("not_after") is not None:
        parse_time(record["not_after"], "record.not_after")


def check_revoke_key(record: Mapping[str, Any]) -> None:
    _check_pubkey(record)
    reason = record.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 500):
        raise RecordInvalid("record.reason must be a string of at most 500 characters",
                            field="record.reason", code="bad_type")


def build_registry() -> TypeRegistry:
    registry = TypeRegistry()
    for type_name in sorted(INVESTIGATOR_ACTS | AUTHORITY_ACTS):
        registry.register(type_name)
    registry.register("enroll_key", check_enroll_key)
    registry.register("revoke_key", check_revoke_key)
    return registry
