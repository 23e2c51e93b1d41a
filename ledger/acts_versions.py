"""Catalogue versions: what each version of the act catalogue adds, and from when it applies.

Theory of operation
-------------------
A chain's acts are checked under the catalogue version in force at their
height, so an act keeps validating under the rules it was written under
(issue 18: "old acts keep validating under the version they were written
in"): a node replaying, syncing or restoring a chain written before a version
reaches the same verdicts its writers reached.

- **Version 1** is the catalogue before issue 18: nineteen types plus
  ``conditions_acknowledgement`` (issue 17), with the rules they had then.
- **Version 2** is issue 18's catalogue: nine request and answer types, new
  fields and values (grounds, conditions, channels, languages, attachment
  roles, EPOC notification, EPOC-PR expiry), and stricter rules on acts that
  existed (a custodian's state is territorial, EU orders and EIOs carry their
  authorisation at the required level, an ``evidence_transferred`` answer
  names the hashes, ...). ``ledger/acts.py`` and ``ledger/acts_context.py``
  apply each of those rules only where ``version >= 2``.
- **Version 3** is issue 20's custody (docs/ACTS.md §5): the ISO/IEC 27037
  action names (``identified``, ``acquired``, ``preserved``) and ``received``;
  every custody event's ``location`` and ``purpose``; a transfer that takes
  effect only when the named receiver records ``received`` with the hash it
  recomputed; custody events that derive new hashes from the one they hold.
  A version-2 ``transferred`` keeps its meaning (the receiver holds at once):
  ``ledger/acts_custody.py`` tells the two apart by ``location``, which every
  version-3 event carries and no earlier one may.

A version ``v > 1`` applies from the height named by the consortium parameter
``catalogue_v<v>_from_height``: written in a new genesis (new chains start
under the latest version from block 1) or set by a passed ``set_param``
proposal, more than ``CHANGE_DELAY_BLOCKS`` ahead, like
``need_to_know_from_height`` (docs/GOVERNANCE.md, "Consortium parameters").
Before it, an act that uses anything the version adds is refused with 422
``not_in_catalogue_version`` naming the field, so nothing of version 2 enters
a chain before its members voted for it.

``refuse_newer`` applies that refusal; ``schema_for`` derives each version's
JSON Schemas (``GET /v1/schemas?version=``) from the models, which describe
the latest version.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from ledger.acts_fields import CATALOGUE_LATEST, fail
from ledger.acts_grounds import GROUNDS

LATEST: Final = CATALOGUE_LATEST
VERSIONS: Final = tuple(range(1, LATEST + 1))

#: version -> the consortium parameter naming the first height it applies at.
ACTIVATION_PARAMS: Final[Mapping[int, str]] = {
    2: "catalogue_v2_from_height",
    3: "catalogue_v3_from_height",
}

#: Act types each version adds.
TYPES_ADDED: Final[Mapping[int, frozenset[str]]] = {
    2: frozenset(
        {
            "preservation_response",
            "traffic_path_disclosure",
            "direct_provider_request",
            "provider_request_answer",
            "epoc_enforcing_decision",
            "addressee_report",
            "eio_response",
            "jit_agreement",
            "jit_accession",
            "exchange_receipt",  # issue 19: channel anchoring (docs/CHANNELS.md)
        }
    )
}

#: Version 1's request types (the ones that may carry use conditions, issue 17).
_V1_REQUESTS: Final = frozenset(
    {
        "mla_request",
        "mla_response",
        "preservation_request",
        "production_order",
        "emergency_disclosure",
        "eio",
        "epoc",
        "epoc_pr",
        "spontaneous_information",
        "video_conference",
    }
)

#: Fields each version adds, per act type ("*": every type); "a[]" is each item of list a.
FIELDS_ADDED: Final[Mapping[int, Mapping[str, tuple[str, ...]]]] = {
    2: {
        "*": ("evidence[].role", "evidence[].language", "evidence[].derived_from"),
        **{
            name: ("languages",) if name == "preservation_request" else ("channel", "languages")
            for name in _V1_REQUESTS
        },
        "mla_request": ("channel", "languages", "measure_codes", "urgency"),
        "mla_response": ("channel", "languages", "conditions"),
        "preservation_request": ("languages", "basis"),
        "epoc": ("channel", "languages", "notification_required", "emergency"),
        "epoc_pr": ("channel", "languages", "expires_at", "phase"),
        "sovereignty_response": ("ground", "conditions"),
    },
    3: {"custody_event": ("location", "purpose", "hash_check", "recomputed_sha256")},
}

#: Values of version-1 fields each version adds (field path -> values).
_V1_GROUNDS: Final = frozenset(
    {
        "political_offence",
        "sovereignty_security_ordre_public",
        "dual_criminality",
        "insufficient_information",
        "treaty_ground",
        "other",
    }
)
VALUES_ADDED: Final[Mapping[int, Mapping[str, frozenset[str]]]] = {
    2: {
        "data_category[]": frozenset({"identification"}),
        "custodian.kind": frozenset({"registrar"}),
        "channel": frozenset({"email_24_7", "interpol", "e_codex", "diplomatic"}),
        "ground": frozenset(GROUNDS) - _V1_GROUNDS,
    }
}

#: Values of one type's field each version adds (type -> field path -> values):
#: for values that other types' enums also hold (``received`` is an MLA answer's
#: status too), so neither the refusal nor the schemas touch those types.
TYPE_VALUES_ADDED: Final[Mapping[int, Mapping[str, Mapping[str, frozenset[str]]]]] = {
    3: {"custody_event": {"action": frozenset({"identified", "acquired", "preserved", "received"})}}
}

#: Fields a version makes required on types that existed before it. The models
#: leave them optional (version 1 accepts acts without them); the rules of
#: ``ledger/acts.py`` require them from this version, and ``schema_for`` lists them.
REQUIRED_FROM: Final[Mapping[int, Mapping[str, tuple[str, ...]]]] = {
    2: {"eio": ("authorisation",), "epoc": ("authorisation",), "epoc_pr": ("authorisation",)},
    3: {"custody_event": ("location", "purpose")},
}


def activation_param(version: int) -> str | None:
    """The parameter whose height starts ``version``; None for version 1 (genesis)."""
    return ACTIVATION_PARAMS.get(version)


def types_in(version: int) -> frozenset[str]:
    """The types added after ``version``: refused under it."""
    return frozenset().union(*(TYPES_ADDED.get(v, frozenset()) for v in VERSIONS if v > version))


def _values_at(record: Any, path: str) -> Iterator[tuple[str, Any]]:
    """``(field path, value)`` for each value at ``path`` ("a.b", "a[].b", "a[]")."""
    head, _, rest = path.partition(".")
    is_list = head.endswith("[]")
    name = head.removesuffix("[]")
    if not isinstance(record, Mapping) or name not in record:
        return
    value = record[name]
    items = list(enumerate(value)) if is_list and isinstance(value, list) else [(None, value)]
    for index, item in items:
        where = name if index is None else f"{name}[{index}]"
        if not rest:
            yield where, item
        else:
            for sub, found in _values_at(item, rest):
                yield f"{where}.{sub}", found


def refuse_newer(record: Mapping[str, Any], version: int) -> None:
    """Refuse (422 ``not_in_catalogue_version``) whatever a later version adds."""
    type_name = str(record.get("type"))
    for later in (v for v in VERSIONS if v > version):
        since = f"is in catalogue version {later}, not in force at this height (version {version})"
        if type_name in TYPES_ADDED.get(later, frozenset()):
            fail("type", f"{type_name} {since}", code="not_in_catalogue_version")
        added = FIELDS_ADDED.get(later, {})
        for path in (*added.get("*", ()), *added.get(type_name, ())):
            head, _, rest = path.rpartition(".")
            parents = _values_at(record, head) if head else iter([("", record)])
            for where, parent in parents:
                if isinstance(parent, Mapping) and rest in parent:
                    field = f"{where}.{rest}" if where else rest
                    fail(field, since, code="not_in_catalogue_version")
        typed = TYPE_VALUES_ADDED.get(later, {}).get(type_name, {})
        for path, values in (*VALUES_ADDED.get(later, {}).items(), *typed.items()):
            for where, value in _values_at(record, path):
                if isinstance(value, str) and value in values:
                    fail(where, f"value {value!r} {since}", code="not_in_catalogue_version")


def schema_for(version: int, latest: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each type's JSON Schema under ``version``, from the latest models' ``latest``."""
    types = {
        name: _copy(schema) for name, schema in latest.items() if name not in types_in(version)
    }
    for name, schema in types.items():
        for v in VERSIONS:
            if v <= version:
                required = schema.setdefault("required", [])
                required.extend(
                    f for f in REQUIRED_FROM.get(v, {}).get(name, ()) if f not in required
                )
                continue
            added = FIELDS_ADDED.get(v, {})
            for path in (*added.get("*", ()), *added.get(name, ())):
                _drop_property(schema, path)
            removed = frozenset().union(*VALUES_ADDED.get(v, {}).values())
            _drop_enum_values(schema, removed)
            for path, values in TYPE_VALUES_ADDED.get(v, {}).get(name, {}).items():
                _drop_enum_values(schema.get("properties", {}).get(path), values)
    return types


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow ``$ref`` / ``anyOf`` / ``items`` to the object schema that has properties."""
    if "$ref" in node:
        return _resolve(schema, schema["$defs"][node["$ref"].rsplit("/", 1)[1]])
    for option in node.get("anyOf", ()):
        if option.get("type") != "null":
            return _resolve(schema, option)
    if "items" in node:
        return _resolve(schema, node["items"])
    return node


def _drop_property(schema: dict[str, Any], path: str) -> None:
    node = schema
    *parents, leaf = path.replace("[]", "").split(".")
    for part in parents:
        child = node.get("properties", {}).get(part)
        if child is None:
            return
        node = _resolve(schema, child)
    node.get("properties", {}).pop(leaf, None)
    if leaf in node.get("required", []):
        node["required"].remove(leaf)


def _drop_enum_values(node: Any, removed: frozenset[str]) -> None:
    if isinstance(node, dict):
        if isinstance(node.get("enum"), list):
            node["enum"] = [value for value in node["enum"] if value not in removed]
        for child in node.values():
            _drop_enum_values(child, removed)
    elif isinstance(node, list):
        for child in node:
            _drop_enum_values(child, removed)
