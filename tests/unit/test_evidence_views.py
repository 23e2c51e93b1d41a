"""Read-side views (node/evidence*.py) and act rules judged over a real ``Application``.

Each test reproduces one finding of the security review (FINDINGS.md, against
b40cc0b) on the single-application ``Chain`` of test_governance: the
hostile record is refused, or the view is not fooled by it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ledger.records import Envelope, format_time
from node.driver import utcnow
from node.evidence import ChainView
from node.evidence_deadlines import deadlines
from tests.unit.test_governance import Chain


def _view(chain: Chain) -> ChainView:
    return ChainView(chain.store, chain.app.load_envelope)


def _emergency(chain: Chain) -> Envelope:
    respond_by = format_time(utcnow() + timedelta(hours=1))
    return chain.env("CN", chain.keys("CN").investigator, "emergency_disclosure",
                     territorial_states=["CN", "TH"], respond_by=respond_by,
                     case_ref="CN-2026-1")


def _mla_response(chain: Chain, state: str, request: Envelope, status: str,
                  **fields: Any) -> Envelope:
    return chain.env(state, chain.keys(state).authority, "mla_response", refs=[request.id],
                     territorial_states=[state], status=status, case_ref="CN-2026-1",
                     **fields)


def _unanswered(chain: Chain) -> list[str]:
    later = utcnow() + timedelta(days=2)
    return [item["id"] for item in deadlines(_view(chain), later)["items"]
            if item["kind"] == "request_unanswered"]


# --- L1: an emergency request is answered by another state, with a final status ------------

def test_requester_cannot_answer_its_own_emergency_request() -> None:
    chain = Chain()
    request = _emergency(chain)
    chain.commit(request)
    assert _unanswered(chain) == [request.id]
    chain.refused(_mla_response(chain, "CN", request, "evidence_transferred"), "own_act")
    assert _unanswered(chain) == [request.id]


def test_only_a_final_status_clears_an_unanswered_request() -> None:
    chain = Chain()
    request = _emergency(chain)
    chain.commit(request)
    chain.commit(_mla_response(chain, "TH", request, "received"))
    assert _unanswered(chain) == [request.id]
    chain.commit(_mla_response(chain, "TH", request, "executed"))
    assert _unanswered(chain) == []
