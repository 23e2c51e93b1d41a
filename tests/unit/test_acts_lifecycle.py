"""The read side's lifecycle of a request (``ledger/acts_lifecycle.lifecycle``)."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.acts_lifecycle import ANSWERS, LIFECYCLE_PHASES, answer_types_of, lifecycle


def _answer(type_: str, state: str, answer: str, n: int) -> dict[str, Any]:
    return {"type": type_, "state": state, "answer": answer, "id": f"{n:064x}"}


def test_a_type_nothing_answers_has_no_lifecycle() -> None:
    assert lifecycle("custody_event", []) is None
    assert lifecycle("private_act", []) is None  # a non-party's header


def test_answer_types_are_those_of_the_table() -> None:
    assert answer_types_of("epoc") == ("addressee_report", "epoc_enforcing_decision")
    for request in {r for requests in ANSWERS.values() for r in requests}:
        assert all(request in ANSWERS[a] for a in answer_types_of(request))


def test_requested_then_acknowledged_then_answered() -> None:
    assert lifecycle("mla_request", []) == {
        "phase": "requested",
        "answer_types": ["mla_response"],
        "status": {},
    }
    received = [_answer("mla_response", "TH", "received", 1)]
    assert lifecycle("mla_request", received)["phase"] == "acknowledged"  # type: ignore[index]
    done = [*received, _answer("mla_response", "TH", "partially_executed", 2)]
    life = lifecycle("mla_request", done)
    assert life is not None and life["phase"] == "answered"
    assert life["status"] == {
        "mla_response": {"TH": {"status": "partially_executed", "final": True, "id": f"{2:064x}"}}
    }


def test_the_latest_answer_of_a_state_is_its_status() -> None:
    answers = [
        _answer("eio_response", "TH", "recognised", 1),
        _answer("eio_response", "TH", "executed", 2),
    ]
    life = lifecycle("eio", answers)
    assert life is not None
    assert life["status"]["eio_response"]["TH"]["status"] == "executed"  # type: ignore[index]
    # recognised alone is not final (Directive Art 12: execution follows)
    assert lifecycle("eio", answers[:1])["phase"] == "acknowledged"  # type: ignore[index]


def test_sovereignty_answers_are_not_the_requests_lifecycle() -> None:
    life = lifecycle("mla_request", [_answer("sovereignty_response", "TH", "objected", 1)])
    assert life is not None and life["phase"] == "requested" and life["status"] == {}


@pytest.mark.parametrize(
    ("answers", "referenced", "phase"),
    [
        ([], False, "requested"),
        ([], True, "pending_mla_decision"),  # Art 29(7): preserved pending the decision
        ([("preservation_response", "TH", "preserved")], False, "answered"),
        ([("preservation_response", "TH", "preserved")], True, "pending_mla_decision"),
        ([("traffic_path_disclosure", "TH", "disclosed")], False, "answered"),
    ],
)
def test_preservation_phases(
    answers: list[tuple[str, str, str]], referenced: bool, phase: str
) -> None:
    items = [_answer(*a, n) for n, a in enumerate(answers)]
    life = lifecycle("preservation_request", items, mla_referenced=referenced)
    assert life is not None and life["phase"] == phase


def test_an_epoc_is_reported_once_the_addressee_report_is_final() -> None:
    decided = [_answer("epoc_enforcing_decision", "DE", "no_ground_raised", 1)]
    assert lifecycle("epoc", decided)["phase"] == "answered"  # type: ignore[index]
    reported = [*decided, _answer("addressee_report", "FR", "delivered", 2)]
    assert lifecycle("epoc", reported)["phase"] == "reported"  # type: ignore[index]
    assert set(LIFECYCLE_PHASES) == {
        "requested",
        "acknowledged",
        "answered",
        "pending_mla_decision",
        "reported",
    }
