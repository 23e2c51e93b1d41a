"""Retention defaults (ledger/retention.py): one per act type, counted from occurred_at.

docs/ACTS.md "Retention defaults": SAP Art 14(5) and seed 004 §61 ask for no
longer than necessary; the table gives Comity's default per type.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ledger.acts import ACT_TYPES
from ledger.errors import RecordInvalid
from ledger.records import parse_time
from ledger.retention import CASE, EVIDENCE, RETENTION_DAYS, SHORT, default_retain_until

DOC = Path(__file__).resolve().parents[2] / "docs" / "ACTS.md"


def test_every_act_type_has_a_default_and_nothing_else_does() -> None:
    assert set(RETENTION_DAYS) == ACT_TYPES
    assert set(RETENTION_DAYS.values()) == {SHORT, CASE, EVIDENCE}


def test_the_table_cannot_be_changed_at_run_time() -> None:
    with pytest.raises(TypeError):
        RETENTION_DAYS["mla_request"] = 1  # type: ignore[index]


@pytest.mark.parametrize(
    ("type_", "occurred_at", "expected"),
    [
        ("preservation_request", "2026-03-01T00:00:00Z", "2027-03-01T00:00:00.000Z"),
        ("mla_request", "2026-03-01T12:34:56Z", "2031-03-01T12:34:56.000Z"),  # 1826 days
        ("custody_event", "2026-03-01T00:00:00.250Z", "2036-03-01T00:00:00.250Z"),  # 3653 days
        ("emergency_disclosure", "2028-02-29T23:59:59Z", "2029-02-28T23:59:59.000Z"),  # leap day
    ],
)
def test_retain_until_is_occurred_at_plus_the_types_days(
    type_: str, occurred_at: str, expected: str
) -> None:
    record = {"type": type_, "occurred_at": occurred_at}
    assert default_retain_until(record) == expected
    delta = parse_time(expected, "t") - parse_time(occurred_at, "t")
    assert delta.days == RETENTION_DAYS[type_]


def test_an_answer_is_never_purged_before_what_it_answers() -> None:
    longest = max(RETENTION_DAYS.values())
    assert RETENTION_DAYS["sovereignty_response"] == longest
    assert RETENTION_DAYS["conditions_acknowledgement"] == longest


def test_a_consortium_may_pass_its_own_table() -> None:
    record = {"type": "mla_request", "occurred_at": "2026-03-01T00:00:00Z"}
    assert default_retain_until(record, {"mla_request": 30}) == "2026-03-31T00:00:00.000Z"


@pytest.mark.parametrize(
    ("record", "field", "code"),
    [
        (
            {"type": "enroll_key", "occurred_at": "2026-03-01T00:00:00Z"},
            "record.type",
            "unknown_type",
        ),
        ({"occurred_at": "2026-03-01T00:00:00Z"}, "record.type", "unknown_type"),
        ({"type": "mla_request"}, "record.occurred_at", "bad_time"),
        ({"type": "mla_request", "occurred_at": "2026-03-01"}, "record.occurred_at", "bad_time"),
    ],
)
def test_bad_input_names_the_field(record: dict[str, str], field: str, code: str) -> None:
    with pytest.raises(RecordInvalid) as caught:
        default_retain_until(record)
    assert (caught.value.field, caught.value.code) == (field, code)


def test_docs_table_matches_the_code() -> None:
    """docs/ACTS.md lists every type once, in the row of its number of days."""
    section = DOC.read_text(encoding="utf-8").split("## 13. Retention defaults", 1)[1]
    section = section.split("\n## ", 1)[0]  # up to the next section
    documented: dict[str, int] = {}
    for row in re.findall(r"^\| (\d+)[^|]*\| ([^|]+) \|", section, re.M):
        for name in re.findall(r"`([a-z0-9_]+)`", row[1]):
            documented[name] = int(row[0])
    assert documented == dict(RETENTION_DAYS)
