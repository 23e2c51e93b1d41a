"""Who must have authorised an act: the catalogue's authorisation level per type.

Theory of operation
-------------------
An act's ``authorisation`` (``ledger/acts_fields.Authorisation``) names who
approved it and at what ``level``. Seed 000 criticises intrusive measures a
police body approves for itself; Regulation (EU) 2023/1543 Art 4 and
Directive 2014/41/EU Art 2(c) name the issuing authorities of EU orders. So the
catalogue policy, ``AUTHORISATION_POLICY``, says per type whether an
authorisation is required and which levels it may have; ``check_level`` applies
it to one record (422 ``invalid_act`` on ``record.authorisation`` or
``record.authorisation.level``). EPOC and EPOC-PR levels depend on the data
category and are checked by their models (``ledger/acts.py`` ``_issuing_level``).

The levels group as the brief of issue 18 names them: *judicial* (``judicial``,
``independent``: a court or an independent body), *prosecutorial*, *senior
police* and *administrative* (``ministerial``, ``central_authority``).

Against the signer (``ledger/acts_context.py``): a type in ``VALIDATED_TYPES``
signed by a key without the ``authority`` role was issued by an investigator and
validated by the named level; the validation must then be dated
(``authorisation.approved_at``) no later than the act.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ledger.acts_fields import fail

JUDICIAL: Final = frozenset({"judicial", "independent"})
PROSECUTORIAL: Final = frozenset({"prosecutorial"})
SENIOR_POLICE: Final = frozenset({"senior_police"})
ADMINISTRATIVE: Final = frozenset({"ministerial", "central_authority"})


@dataclass(frozen=True, slots=True)
class LevelRule:
    """Whether a type needs an authorisation, the levels it may have, and why."""

    required: bool
    levels: frozenset[str]
    source: str


AUTHORISATION_POLICY: Final[Mapping[str, LevelRule]] = {
    "technical_measure": LevelRule(True, JUDICIAL, "seed 000 (no self-review); SAP Art 13"),
    "realtime_collection": LevelRule(
        True, JUDICIAL | PROSECUTORIAL, "Budapest Arts 15, 20, 21 (national law decides)"
    ),
    "remote_inspection": LevelRule(False, JUDICIAL | PROSECUTORIAL, "Budapest Arts 15, 19"),
    "search_seizure": LevelRule(False, JUDICIAL | PROSECUTORIAL, "Budapest Arts 15, 19"),
    "eio": LevelRule(True, JUDICIAL | PROSECUTORIAL, "Directive 2014/41/EU Art 2(c)"),
    "direct_provider_request": LevelRule(
        False, JUDICIAL | PROSECUTORIAL, "SAP Art 7(2)(b) (unverified)"
    ),
    "production_order": LevelRule(
        False, JUDICIAL | PROSECUTORIAL | SENIOR_POLICE, "Budapest Arts 15, 18"
    ),
    "preservation_request": LevelRule(
        False,
        JUDICIAL | PROSECUTORIAL | SENIOR_POLICE | ADMINISTRATIVE,
        "Budapest Arts 16, 29, 35",
    ),
    "mla_request": LevelRule(
        False, JUDICIAL | PROSECUTORIAL | ADMINISTRATIVE, "Budapest Art 27(2) central authority"
    ),
    "jit_agreement": LevelRule(
        False, JUDICIAL | PROSECUTORIAL | ADMINISTRATIVE, "SAP Art 12 (competent authorities)"
    ),
}

#: Types an investigator may sign only on a dated validation by the named level.
VALIDATED_TYPES: Final = frozenset(
    {"epoc", "epoc_pr", "eio", "technical_measure", "realtime_collection"}
)


def check_level(record: Mapping[str, Any]) -> None:
    """Refuse a record whose authorisation is missing or below its type's level."""
    rule = AUTHORISATION_POLICY.get(str(record.get("type")))
    if rule is None:
        return
    authorisation = record.get("authorisation")
    if not isinstance(authorisation, Mapping):
        if rule.required:
            fail("authorisation", f"is required for {record.get('type')} ({rule.source})")
        return
    level = authorisation.get("level")
    if level not in rule.levels:
        fail(
            "authorisation.level",
            f"{level!r} may not authorise a {record.get('type')}: one of "
            f"{sorted(rule.levels)} ({rule.source})",
        )
