"""Who may sign what: the role/record-type table and the known record types.

One table, mirrored in docs/GOVERNANCE.md. A signer acts only for its own
state (``record.actor.state`` must equal the state its key is enrolled for),
and only for the record types its roles allow.
"""

from __future__ import annotations

from typing import Final

#: Acts an investigator records directly (DOMAIN.md, "Act types").
INVESTIGATOR_ACTS: Final = frozenset({
    "preservation_request", "production_order", "online_extraction", "remote_inspection",
    "technical_measure", "search_seizure", "realtime_collection", "art32_access",
    "video_conference", "custody_event", "spontaneous_information", "joint_investigation",
    "eio", "epoc", "epoc_pr", "emergency_disclosure",
})

#: Formal requests, answers and approvals, signed by a competent authority.
AUTHORITY_ACTS: Final = frozenset({
    "mla_request", "mla_response", "sovereignty_response", "preservation_request",
    "production_order", "eio", "epoc", "epoc_pr", "emergency_disclosure",
    "spontaneous_information", "joint_investigation", "technical_measure", "custody_event",
})

#: Governance of the consortium, signed by a state's admin keys.
GOVERNANCE_TYPES: Final = frozenset({
    "enroll_key", "revoke_key", "member_proposal", "member_vote", "misbehaviour",
})

ROLE_TYPES: Final[dict[str, frozenset[str]]] = {
    "investigator": INVESTIGATOR_ACTS,
    "authority": AUTHORITY_ACTS,
    "auditor": frozenset(),
    "admin": GOVERNANCE_TYPES,
}

ROLES: Final = tuple(ROLE_TYPES)

ALL_TYPES: Final = INVESTIGATOR_ACTS | AUTHORITY_ACTS | GOVERNANCE_TYPES


def allowed_types(roles: frozenset[str] | tuple[str, ...]) -> frozenset[str]:
    out: frozenset[str] = frozenset()
    for role in roles:
        out |= ROLE_TYPES.get(role, frozenset())
    return out
