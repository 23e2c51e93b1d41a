"""One vocabulary of refusal and instruction grounds, each with its legal source.

Theory of operation
-------------------
A refusal that names no ground cannot be checked or counted (issue 18: "the
territorial state needs its refusal to have a named ground"). Every answer
type of the catalogue (``mla_response``, ``sovereignty_response``,
``preservation_response``, ``traffic_path_disclosure``, the territorial
answer to a ``direct_provider_request``, ``epoc_enforcing_decision``,
``eio_response``) draws its ``ground`` from ``GROUNDS`` below, and
``ALLOWED_GROUNDS`` narrows it to what the instrument behind that answer
permits: an Art 29 preservation may be refused only on the Art 29(4)-(5)
grounds, an EPOC only on the Art 12 grounds, and so on. ``check_ground``
raises the catalogue's 422 naming ``record.ground`` for a ground the answer
type does not allow.

``GROUND_SOURCES`` is data, so docs/ACTS.md §15 can list it and a test can
check the two agree. A source marked "unverified" could not be read in a
stored text (docs/ACTS.md "Sources read" lists the texts that were).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal, get_args

from ledger.acts_fields import fail

Ground = Literal[
    "political_offence",
    "sovereignty_security_ordre_public",
    "dual_criminality",
    "insufficient_information",
    "treaty_ground",
    "ne_bis_in_idem",
    "fundamental_rights",
    "immunities_privileges",
    "press_freedom",
    "death_penalty",
    "data_protection",
    "prejudice_domestic_proceedings",
    "national_security",
    "territoriality",
    "other",
]
GROUNDS: Final = frozenset(get_args(Ground))

#: Each ground's legal source, as docs/ACTS.md §15 prints it.
GROUND_SOURCES: Final[Mapping[str, str]] = {
    "political_offence": "Budapest Arts 27(4)(a), 29(5)(a), 30(2)(a)",
    "sovereignty_security_ordre_public": "Budapest Arts 27(4)(b), 29(5)(b), 30(2)(b)",
    "dual_criminality": "Budapest Arts 25(4), 29(4); Reg. 2023/1543 Art 12(1)(d); "
    "Directive 2014/41/EU Art 11(1)(g)",
    "insufficient_information": "seed 004 §40 (incomplete requests); Directive 2014/41/EU "
    "Art 16(2)(a) (EIO form incomplete or manifestly incorrect)",
    "treaty_ground": "Budapest Art 25(4) (grounds of the requested state's law or treaties)",
    "ne_bis_in_idem": "Reg. 2023/1543 Art 12(1)(c); Directive 2014/41/EU Art 11(1)(d)",
    "fundamental_rights": "Reg. 2023/1543 Art 12(1)(b); Directive 2014/41/EU Art 11(1)(f)",
    "immunities_privileges": "Reg. 2023/1543 Art 12(1)(a); Directive 2014/41/EU Art 11(1)(a)",
    "press_freedom": "Reg. 2023/1543 Art 12(1)(a); Directive 2014/41/EU Art 11(1)(a) "
    "(freedom of the press or of expression)",
    "death_penalty": "bilateral MLA treaties (unverified)",
    "data_protection": "SAP Art 14 (unverified)",
    "prejudice_domestic_proceedings": "Budapest Art 27(5) (postponement); SAP Art 7(5) "
    "(unverified)",
    "national_security": "Directive 2014/41/EU Art 11(1)(b)",
    "territoriality": "Directive 2014/41/EU Art 11(1)(e)",
    "other": "any ground not listed; the reason says which",
}

_BUDAPEST_PRESERVATION: Final = frozenset(
    {"political_offence", "sovereignty_security_ordre_public", "dual_criminality"}
)
_EPOC: Final = frozenset(
    {
        "immunities_privileges",
        "press_freedom",
        "fundamental_rights",
        "ne_bis_in_idem",
        "dual_criminality",
    }
)
_EIO: Final = frozenset(
    {
        "immunities_privileges",
        "press_freedom",
        "national_security",
        "ne_bis_in_idem",
        "territoriality",
        "fundamental_rights",
        "dual_criminality",
        "insufficient_information",
        "other",
    }
)

#: The grounds each answer type may give. An MLA answer and a sovereignty answer may
#: give any ground: the treaty between the two states decides, not the catalogue.
ALLOWED_GROUNDS: Final[Mapping[str, frozenset[str]]] = {
    "mla_response": GROUNDS,
    "sovereignty_response": GROUNDS,
    # Art 29(4)-(5): dual criminality (if reserved), political offence, sovereignty.
    "preservation_response": _BUDAPEST_PRESERVATION,
    # Art 30(2): political offence or sovereignty, security, ordre public only.
    "traffic_path_disclosure": frozenset(
        {"political_offence", "sovereignty_security_ordre_public"}
    ),
    # The grounds of Budapest Arts 25(4) and 27(4)-(5), which SAP Art 7(5) is understood to
    # refer to (the Protocol's text was not read: unverified).
    "provider_request_answer": frozenset(
        {
            "political_offence",
            "sovereignty_security_ordre_public",
            "prejudice_domestic_proceedings",
            "fundamental_rights",
            "data_protection",
            "other",
        }
    ),
    # Regulation (EU) 2023/1543 Art 12(1)(a)-(d).
    "epoc_enforcing_decision": _EPOC,
    # Directive 2014/41/EU Art 11(1)(a)-(h): (c) (the measure would not be authorised in a
    # similar domestic case) and (h) (the measure is restricted under the executing state's
    # law) are "other"; insufficient information is Art 16(2)(a), not an Art 11 ground.
    "eio_response": _EIO,
}

if set(GROUND_SOURCES) != GROUNDS or not all(v <= GROUNDS for v in ALLOWED_GROUNDS.values()):
    raise AssertionError("acts_grounds: every ground needs a source, and only known grounds")


def check_ground(answer_type: str, ground: str | None, field: str = "ground") -> None:
    """Refuse a ground that ``answer_type``'s instrument does not allow."""
    if ground is None:
        return
    allowed = ALLOWED_GROUNDS[answer_type]
    if ground not in allowed:
        fail(field, f"{ground!r} is not a ground for a {answer_type}: one of {sorted(allowed)}")
