"""The ground vocabulary (ledger/acts_grounds.py) and conditions on answers (Art 27(6)).

Each answer type accepts only the grounds of its instrument; every ground has a
source, and docs/ACTS.md §15 prints the same table.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.acts import validate_act
from ledger.acts_grounds import ALLOWED_GROUNDS, GROUND_SOURCES, GROUNDS, check_ground
from ledger.acts_lifecycle import ANSWER_STATUS_FIELD, FINAL_STATUSES, GRANTING_STATUSES, is_final
from ledger.errors import RecordInvalid
from tests.unit.test_acts import make

DOC = Path(__file__).resolve().parents[2] / "docs" / "ACTS.md"


def _invalid(record: dict[str, object], field: str) -> None:
    with pytest.raises(RecordInvalid) as caught:
        validate_act(record)
    assert (caught.value.field, caught.value.code, caught.value.status) == (
        field,
        "invalid_act",
        422,
    ), caught.value.message


@pytest.mark.parametrize(
    "ground",
    [
        "ne_bis_in_idem",
        "fundamental_rights",
        "immunities_privileges",
        "death_penalty",
        "data_protection",
        "prejudice_domestic_proceedings",
    ],
)
def test_mla_refusal_takes_the_new_grounds(ground: str) -> None:
    assert validate_act(make("mla_response", ground=ground)).type == "mla_response"


def test_unknown_ground_is_refused() -> None:
    _invalid(make("mla_response", ground="we_do_not_like_it"), "record.ground")


def test_sovereignty_response_has_a_structured_ground() -> None:
    act = validate_act(make("sovereignty_response", ground="sovereignty_security_ordre_public"))
    assert act.type == "sovereignty_response"
    _invalid(make("sovereignty_response", ground="vague"), "record.ground")
    _invalid(
        make("sovereignty_response", response="acknowledged", ground="political_offence"),
        "record.ground",
    )


def test_answer_types_narrow_the_vocabulary() -> None:
    check_ground("epoc_enforcing_decision", "ne_bis_in_idem")
    with pytest.raises(RecordInvalid) as caught:
        check_ground("epoc_enforcing_decision", "political_offence")  # not an Art 12 ground
    assert caught.value.field == "record.ground"
    with pytest.raises(RecordInvalid):
        check_ground("traffic_path_disclosure", "dual_criminality")  # Art 30(2): two grounds
    check_ground("preservation_response", None)


def test_every_ground_has_a_source_and_the_doc_lists_it() -> None:
    assert set(GROUND_SOURCES) == GROUNDS
    text = DOC.read_text(encoding="utf-8")
    for ground, source in GROUND_SOURCES.items():
        assert f"| `{ground}` | {source} |" in text
    for answer_type in ALLOWED_GROUNDS:
        assert f"| `{answer_type}` |" in text


@pytest.mark.parametrize("status", ["executed", "partially_executed", "evidence_transferred"])
def test_a_granting_answer_carries_conditions(status: str) -> None:
    record = make("mla_response", status=status, conditions=["use only in case CN-2026-0042"])
    record.pop("ground")
    record.pop("reason")
    assert validate_act(record).type == "mla_response"


def test_conditions_only_on_a_grant_and_never_repeated() -> None:
    _invalid(make("mla_response", conditions=["x"]), "record.conditions")  # refused
    record = make("mla_response", status="executed", conditions=["x", "x"])
    record.pop("ground")
    _invalid(record, "record.conditions")
    _invalid(make("mla_response", conditions=[]), "record.conditions")
    _invalid(make("sovereignty_response", conditions=["x"]), "record.conditions")  # objected
    consent = make("sovereignty_response", response="consented", conditions=["no onward use"])
    consent.pop("reason")
    assert validate_act(consent).type == "sovereignty_response"


def test_received_is_not_final() -> None:
    assert not is_final("mla_response", "received")
    assert not is_final("mla_response", "postponed")
    assert is_final("mla_response", "refused")
    assert not is_final("sovereignty_response", "acknowledged")
    # an EIO is recognised (and may carry conditions) before it is executed: not final
    assert GRANTING_STATUSES["eio_response"] - FINAL_STATUSES["eio_response"] == {"recognised"}
    assert not is_final("eio_response", "acknowledged")
    others = set(GRANTING_STATUSES) - {"eio_response"}
    assert all(GRANTING_STATUSES[t] <= FINAL_STATUSES[t] for t in others)
    assert set(FINAL_STATUSES) == set(GRANTING_STATUSES) == set(ANSWER_STATUS_FIELD)
