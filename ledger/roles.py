"""Who may sign what: the role/record-type table and the known record types.

One table, ``ROLE_TYPES``, mirrored in docs/GOVERNANCE.md (a unit test checks
the doc against it). A signer acts only for its own state
(``record.actor.state`` must equal the state its key is enrolled for), and only
for the record types its roles allow. ``node`` is not an enrollable role: it
is what a validator's node key may sign (misbehaviour reports), so the one
table answers "who may sign this type" for every kind of key.
"""

from __future__ import annotations

from typing import Final

#: Acts an investigator records directly (docs/DOMAIN.md, "Act types named in the sources").
INVESTIGATOR_ACTS: Final = frozenset(
    {
        "preservation_request",
        "production_order",
        "online_extraction",
        "remote_inspection",
        "technical_measure",
        "search_seizure",
        "realtime_collection",
        "art32_access",
        "video_conference",
        "custody_event",
        "spontaneous_information",
        "joint_investigation",
        "eio",
        "epoc",
        "epoc_pr",
        "emergency_disclosure",
        "direct_provider_request",
        "exchange_receipt",
    }
)

#: What a node's integration key may sign for its state: receipts of what a channel
#: carried, written by an adapter (docs/CHANNELS.md) without a person at the keyboard.
INTEGRATION_ACTS: Final = frozenset({"exchange_receipt"})

#: Formal requests, answers and approvals, signed by a competent authority.
AUTHORITY_ACTS: Final = frozenset(
    {
        "mla_request",
        "mla_response",
        "sovereignty_response",
        "conditions_acknowledgement",
        "preservation_request",
        "production_order",
        "eio",
        "epoc",
        "epoc_pr",
        "emergency_disclosure",
        "spontaneous_information",
        "joint_investigation",
        "technical_measure",
        "custody_event",
        "preservation_response",
        "traffic_path_disclosure",
        "direct_provider_request",
        "provider_request_answer",
        "epoc_enforcing_decision",
        "addressee_report",
        "eio_response",
        "jit_agreement",
        "jit_accession",
        "exchange_receipt",
    }
)

#: Governance of the consortium, signed by a state's admin keys.
GOVERNANCE_TYPES: Final = frozenset(
    {
        "enroll_key",
        "revoke_key",
        "member_proposal",
        "member_vote",
        "misbehaviour",
        "directory_entry",
    }
)

#: What a validator node key may sign as a record: evidence it observed itself, and
#: what it did to its own copies of private bodies (docs/PRIVACY.md).
NODE_KEY_TYPES: Final = frozenset({"misbehaviour", "body_violation", "body_purge"})

ROLE_TYPES: Final[dict[str, frozenset[str]]] = {
    "investigator": INVESTIGATOR_ACTS,
    "authority": AUTHORITY_ACTS,
    "integration": INTEGRATION_ACTS,
    "auditor": frozenset(),
    "admin": GOVERNANCE_TYPES,
    "node": NODE_KEY_TYPES,
}

#: Roles an admin may grant with ``enroll_key`` (``node`` comes only with membership).
ROLES: Final = ("investigator", "authority", "integration", "auditor", "admin")

ALL_TYPES: Final = INVESTIGATOR_ACTS | AUTHORITY_ACTS | INTEGRATION_ACTS | GOVERNANCE_TYPES


def allowed_types(roles: frozenset[str] | tuple[str, ...]) -> frozenset[str]:
    out: frozenset[str] = frozenset()
    for role in roles:
        out |= ROLE_TYPES.get(role, frozenset())
    return out


def role_table_markdown() -> str:
    """The table of docs/GOVERNANCE.md, generated from ``ROLE_TYPES``."""
    lines = ["| role | may sign record types |", "|---|---|"]
    for role, types in ROLE_TYPES.items():
        cell = ", ".join(f"`{t}`" for t in sorted(types)) or "(none: read-only)"
        lines.append(f"| {role} | {cell} |")
    return "\n".join(lines)
