"""Field rules of the governance record types: pure functions of the record.

Each rule checks one governance type's own fields (keys are 64 lowercase hex,
roles come from ``ledger.roles.ROLES``, ...) and raises ``RecordInvalid``
naming the field. It reads nothing but the record, so its result can be
cached by record id (``Application``). The rules that depend on the chain
state are in ``node.governance``, whose registry names each type's rule here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ledger.canonical import MAX_SAFE_INT
from ledger.directory import parse_entry
from ledger.errors import RecordInvalid
from ledger.hashing import is_hex
from ledger.records import check_state_code, parse_time
from ledger.roles import ROLES
from node.govtypes import ACTIONS, PARAMS, VOTES, parse_evidence

ADMIN_KEYS_MAX = 16
URL_CHARS_MAX = 300


def _check_key(record: Mapping[str, Any], name: str, kind: str = "an Ed25519") -> None:
    if not is_hex(record.get(name), 32):
        raise RecordInvalid(
            f"record.{name} must be 64 lowercase hex ({kind} public key)",
            field=f"record.{name}",
            code="bad_hex",
        )


def _check_text(
    record: Mapping[str, Any], name: str, limit: int, *, optional: bool = False
) -> None:
    value = record.get(name)
    if value is None and optional:
        return
    if not isinstance(value, str) or not 1 <= len(value) <= limit:
        raise RecordInvalid(
            f"record.{name} must be a string of 1-{limit} characters",
            field=f"record.{name}",
            code="bad_type",
        )


def check_enroll_key(record: Mapping[str, Any]) -> None:
    _check_key(record, "pubkey")
    roles = record.get("roles")
    if (
        not isinstance(roles, list)
        or not roles
        or len(roles) > len(ROLES)
        or any(role not in ROLES for role in roles)
        or len(set(roles)) != len(roles)
    ):
        raise RecordInvalid(
            f"record.roles must be a non-empty list of distinct roles from {list(ROLES)}",
            field="record.roles",
            code="bad_roles",
        )
    _check_text(record, "agency", 200)
    if record.get("not_after") is not None:
        parse_time(record["not_after"], "record.not_after")


def check_revoke_key(record: Mapping[str, Any]) -> None:
    _check_key(record, "pubkey")
    _check_text(record, "reason", 500, optional=True)


def check_member_proposal(record: Mapping[str, Any]) -> None:
    action = record.get("action")
    if action not in ACTIONS:
        raise RecordInvalid(
            f"record.action must be one of {list(ACTIONS)}",
            field="record.action",
            code="bad_action",
        )
    if action != "set_param":  # a parameter is the consortium's, not one state's
        check_state_code(record.get("state"), "record.state")
    _FIELDS_CHECK[action](record)
    _check_text(record, "reason", 500, optional=True)


def _check_add(record: Mapping[str, Any]) -> None:
    _check_text(record, "name", 200)
    _check_key(record, "node_pubkey")
    _check_key(record, "enc_pubkey", "an X25519")
    _check_text(record, "p2p_url", URL_CHARS_MAX)
    if not str(record["p2p_url"]).startswith(("http://", "https://")):
        raise RecordInvalid(
            "record.p2p_url must be an http(s) URL", field="record.p2p_url", code="bad_type"
        )
    admins = record.get("admin_pubkeys")
    if (
        not isinstance(admins, list)
        or not 1 <= len(admins) <= ADMIN_KEYS_MAX
        or any(not is_hex(a, 32) for a in admins)
    ):
        raise RecordInvalid(
            f"record.admin_pubkeys must be a list of 1-{ADMIN_KEYS_MAX} keys (64 lowercase hex)",
            field="record.admin_pubkeys",
            code="bad_hex",
        )
    keys = [record["node_pubkey"], *admins]
    if len(set(keys)) != len(keys):
        raise RecordInvalid(
            "node_pubkey and admin_pubkeys must all differ",
            field="record.admin_pubkeys",
            code="duplicate_key",
        )


def _check_rotate(record: Mapping[str, Any]) -> None:
    _check_key(record, "node_pubkey")


def _check_rotate_enc(record: Mapping[str, Any]) -> None:
    _check_key(record, "enc_pubkey", "an X25519")


def _check_set_param(record: Mapping[str, Any]) -> None:
    if "state" in record:
        raise RecordInvalid(
            "record.state is not a field of set_param: a parameter is the consortium's",
            field="record.state",
            code="unexpected_field",
        )
    if record.get("name") not in PARAMS:
        raise RecordInvalid(
            f"record.name must be one of {list(PARAMS)}", field="record.name", code="bad_param"
        )
    value = record.get("value")
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SAFE_INT:
        raise RecordInvalid(
            "record.value must be a height (an integer from 1)",
            field="record.value",
            code="bad_type",
        )


def _check_observer(record: Mapping[str, Any]) -> None:
    _check_key(record, "node_pubkey")
    if record["action"] == "add_observer":
        _check_text(record, "label", 200)


_FIELDS_CHECK = {
    "add": _check_add,
    "remove": lambda record: None,
    "rotate_key": _check_rotate,
    "rotate_enc_key": _check_rotate_enc,
    "set_param": _check_set_param,
    "add_observer": _check_observer,
    "remove_observer": _check_observer,
}


def check_member_vote(record: Mapping[str, Any]) -> None:
    if not is_hex(record.get("proposal"), 32):
        raise RecordInvalid(
            "record.proposal must be a record id (64 lowercase hex)",
            field="record.proposal",
            code="bad_hex",
        )
    if record.get("vote") not in VOTES:
        raise RecordInvalid(
            'record.vote must be "yes" or "no"', field="record.vote", code="bad_vote"
        )


def check_misbehaviour(record: Mapping[str, Any]) -> None:
    check_state_code(record.get("offender_state"), "record.offender_state")
    _check_key(record, "offender_pubkey")
    parse_evidence(record)


def check_directory_entry(record: Mapping[str, Any]) -> None:
    """The whole entry against its strict model (``ledger/directory.py``)."""
    parse_entry(record)
