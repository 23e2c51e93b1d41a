"""The legal numbers agree wherever they are written, and "unverified" means the same.

A number lives in three places: the deadline engine (``node/deadlines.py``
``CLOCKS``: durations and ``verified``), the catalogue's table of numbers
(``ledger/acts_lifecycle.py`` ``CLOCKS``) with the constants ``ledger/acts.py``
checks, and docs/ACTS.md §6, whose rows carry a † where no stored text was read
(docs/ACTS.md "Sources read"). These tests fail when one of them moves alone.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from ledger import acts, acts_lifecycle
from node.deadlines import CLOCKS, Clock

DOC = Path(__file__).resolve().parents[2] / "docs" / "ACTS.md"

#: acts_lifecycle.CLOCKS key -> the deadline clock that runs that number.
RUN_BY = {
    "preservation_art29_min_days": "art29_minimum_preservation",
    "epoc_pr_days": "epoc_pr_expiry",
    "epoc_addressee_days": "epoc_transmission",
    "epoc_emergency_addressee_hours": "epoc_transmission_emergency",
    "epoc_enforcing_days": "epoc_enforcing_decision",
    "epoc_enforcing_emergency_hours": "epoc_enforcing_decision_emergency",
    "eio_recognition_days": "eio_recognition",
    "eio_execution_days": "eio_execution",
    "sap7_disclosure_days": "sap7_disclosure",
}


def _clock(clock_id: str) -> Clock:
    return next(c for c in CLOCKS if c.id == clock_id)


def _section(number: int) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"\n## {number}. ")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_a_clock_is_unverified_exactly_when_its_source_says_so() -> None:
    for clock in CLOCKS:
        assert clock.verified == ("unverified" not in clock.source), clock.id


def test_the_catalogue_numbers_are_the_durations_the_clocks_run() -> None:
    for key, clock_id in RUN_BY.items():
        number, source = acts_lifecycle.CLOCKS[key]
        unit = timedelta(hours=1) if key.endswith("_hours") else timedelta(days=1)
        clock = _clock(clock_id)
        assert clock.duration == number * unit, key
        assert ("unverified" in source) == (not clock.verified), key
    assert acts.EPOC_PR_DAYS == acts_lifecycle.CLOCKS["epoc_pr_days"][0] == 60
    assert acts_lifecycle.CLOCKS["epoc_pr_extension_days"][0] == acts.EPOC_PR_EXTENSION_DAYS
    assert acts.PRESERVATION_ART29_MIN_DAYS == 60  # Budapest Art 29(7): "not less than sixty"


def test_the_numbers_read_in_the_texts() -> None:
    """The values confirmed against the stored texts (docs/ACTS.md "Sources read")."""
    got = {key: number for key, (number, _) in acts_lifecycle.CLOCKS.items()}
    assert got == {
        "preservation_art16_max_days": 90,
        "preservation_art29_min_days": 60,
        "epoc_pr_days": 60,
        "epoc_pr_extension_days": 30,
        "epoc_addressee_days": 10,
        "epoc_emergency_addressee_hours": 8,
        "epoc_enforcing_days": 10,
        "epoc_enforcing_emergency_hours": 96,
        "eio_recognition_days": 30,
        "eio_recognition_extension_days": 30,
        "eio_execution_days": 90,
        "eio_acknowledgement_days": 7,
        "sap7_disclosure_days": 30,
    }
    unverified = {k for k, (_, source) in acts_lifecycle.CLOCKS.items() if "unverified" in source}
    assert unverified == {"sap7_disclosure_days"}


def test_the_dagger_rows_of_the_clock_table_are_the_unverified_clocks() -> None:
    rows = re.findall(r"^\| `([a-z0-9_]+)` \|(.*)$", _section(6), re.M)
    ids = {clock_id for clock_id, _ in rows}
    assert ids == {c.id for c in CLOCKS}
    daggered = {clock_id for clock_id, rest in rows if "†" in rest}
    # The directory's clocks (issue 19) rest on SAP Arts 4 and 7(5), not read either.
    unverified = {"sap7_disclosure", "sap7_notification", "translation_missing"}
    assert daggered == {c.id for c in CLOCKS if not c.verified} == unverified


def test_the_sources_read_section_names_the_texts_still_unread() -> None:
    section = _section(19)
    assert section.startswith("\n## 19. Sources read")
    for unread in ("Second Additional Protocol (CETS 224)", "Art 4(3)", "Annex III"):
        assert unread in section
