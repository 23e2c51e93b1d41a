"""Read-side views (node/evidence*.py) and act rules judged over a real ``Application``.

Each test reproduces one finding of the security review (FINDINGS.md, against
b40cc0b) on the single-application ``Chain`` of test_governance: the
hostile record is refused, or the view is not fooled by it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from ledger import acts_context
from ledger.block import genesis_hash
from ledger.errors import ClientError
from ledger.records import Envelope, format_time
from node import evidence
from node.clock import utcnow
from node.deadlines import deadlines
from node.evidence import ChainView, evidence_view
from node.genesis import Genesis
from tests.unit.test_governance import Chain

# Seizures name the medium (medium_identity), which no act may show in clear where
# need to know applies: the custody tests below run on a chain written before it
# (the same rules run on a private act's content at its parties' nodes).


def _view(chain: Chain) -> ChainView:
    return ChainView(chain.store, chain.app.load_envelope)


def _emergency(chain: Chain) -> Envelope:
    respond_by = format_time(utcnow() + timedelta(hours=1))
    return chain.env(
        "CN",
        chain.keys("CN").investigator,
        "emergency_disclosure",
        territorial_states=["CN", "TH"],
        respond_by=respond_by,
        case_ref="CN-2026-1",
    )


def _mla_response(
    chain: Chain, state: str, request: Envelope, status: str, **fields: Any
) -> Envelope:
    return chain.env(
        state,
        chain.keys(state).authority,
        "mla_response",
        refs=[request.id],
        territorial_states=[state],
        status=status,
        case_ref="CN-2026-1",
        **fields,
    )


def _unanswered(chain: Chain) -> list[str]:
    later = utcnow() + timedelta(days=2)
    return [
        item["id"]
        for item in deadlines(_view(chain), later)["items"]
        if item["clock"] == "emergency_answer"
    ]


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


# --- H2: a custody chain belongs to the act that introduced the hash -----------------------

X = "5a" * 32


def _seizure(chain: Chain, state: str) -> Envelope:
    return chain.env(
        state,
        chain.keys(state).investigator,
        "search_seizure",
        evidence=[{"sha256": X}],
        territorial_states=[state],
        case_ref=f"{state}-2026-7",
    )


def _custody(chain: Chain, state: str, act: Envelope, action: str, **fields: Any) -> Envelope:
    record: dict[str, Any] = {
        "action": action,
        "refs": [act.id],
        "evidence": [{"sha256": X}],
        "territorial_states": [state],
        "case_ref": act.record["case_ref"],
        **fields,
    }
    return chain.env(state, chain.keys(state).investigator, "custody_event", **record)


def _received(chain: Chain, act: Envelope, transfer: Envelope) -> Envelope:
    """TH acknowledges FR's transfer (catalogue version 3, docs/ACTS.md §5)."""
    return _custody(
        chain,
        "TH",
        act,
        "received",
        refs=[act.id, transfer.id],
        hash_check="verified",
        recomputed_sha256=X,
    )


def test_another_state_cannot_collect_or_destroy_evidence_it_did_not_introduce() -> None:
    chain = Chain(need_to_know_from_height=None)
    fr_act = _seizure(chain, "FR")
    chain.commit(fr_act)
    chain.refused(_custody(chain, "CN", fr_act, "collected"), "not_custody_holder")
    chain.commit(_custody(chain, "FR", fr_act, "collected"))
    chain.refused(_custody(chain, "CN", fr_act, "destroyed"), "not_custody_holder")
    # CN may keep a chain of its own for the same hash, under its own act; FR's is untouched.
    cn_act = _seizure(chain, "CN")
    chain.commit(cn_act)
    chain.commit(_custody(chain, "CN", cn_act, "collected"))
    chain.commit(_custody(chain, "CN", cn_act, "destroyed"))
    transfer = _custody(chain, "FR", fr_act, "transferred", to={"state": "TH", "agency": "lab"})
    chain.commit(transfer)
    chain.commit(_received(chain, fr_act, transfer))
    chain.commit(_custody(chain, "TH", fr_act, "examined"))
    view = evidence_view(_view(chain), X)
    chains = {c["ref"]: c for c in view["custody_chains"]}
    assert (
        chains[fr_act.id]["introduced_by"],
        chains[fr_act.id]["status"],
        chains[fr_act.id]["holder"],
    ) == ("FR", "examined", "TH")
    assert [e["action"] for e in chains[fr_act.id]["events"]] == [
        "collected",
        "transferred",
        "received",
        "examined",
    ]
    assert (chains[cn_act.id]["status"], chains[cn_act.id]["holder"]) == ("destroyed", "CN")


def test_a_flood_of_records_listing_a_hash_does_not_hide_a_custody_chain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """FR's chain is read by walking its holders' events, not every record of the hash.

    The read bound is scaled down to 40 so the flood fits in a unit test; the
    code before the fix failed the same way once its bound was scaled alike.
    """
    monkeypatch.setattr(acts_context, "HISTORY_SEEKS_MAX", 40)
    chain = Chain(need_to_know_from_height=None)
    fr_act = _seizure(chain, "FR")
    chain.commit(fr_act)
    for _ in range(3):  # 3 blocks of 20 CN acts listing X: more than the read budget
        chain.commit(*(_seizure(chain, "CN") for _ in range(20)))
    chain.commit(_custody(chain, "FR", fr_act, "collected"))
    transfer = _custody(chain, "FR", fr_act, "transferred", to={"state": "TH", "agency": "lab"})
    chain.commit(transfer)
    chain.commit(_received(chain, fr_act, transfer))
    chain.commit(_custody(chain, "TH", fr_act, "examined"))
    chain.refused(_custody(chain, "FR", fr_act, "destroyed"), "not_custody_holder")


# --- L4: answers are found by index, not by a bounded scan of the case ---------------------


def test_a_flood_of_the_case_does_not_hide_a_sovereignty_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CN floods its own case after its act; TH's answer must still count.

    The bound is scaled down to 40 so the flood fits in a unit test; the code
    before the fix (a case scan bounded at 40) showed the act as pending.
    """
    monkeypatch.setattr(evidence, "ANSWER_SEEKS_MAX", 40)
    chain = Chain()
    act = chain.env(
        "CN", chain.keys("CN").investigator, territorial_states=["TH"], case_ref="CN-2026-9"
    )
    chain.commit(act)
    for _ in range(3):
        chain.commit(
            *(
                chain.env(
                    "CN",
                    chain.keys("CN").investigator,
                    territorial_states=["VN"],
                    custodian={"name": "Host", "state": "VN"},
                    case_ref="CN-2026-9",
                )
                for _ in range(20)
            )
        )
    answer = chain.env(
        "TH",
        chain.keys("TH").authority,
        "sovereignty_response",
        refs=[act.id],
        territorial_states=["TH"],
        response="consented",
        case_ref="CN-2026-9",
    )
    chain.commit(answer)
    view = _view(chain)
    shown = evidence.act_view(view, act.id)
    assert shown["sovereignty"] == {"TH": "consented"}
    assert [a["id"] for a in shown["answers"]] == [answer.id]
    [notice] = evidence.notices(_view(chain), "TH")["notices"]
    assert (notice["id"], notice["status"]) == (act.id, "answered")
    report = evidence.sovereignty_report(_view(chain), "TH")
    assert report["rows"] == [
        {"actor_state": "CN", "type": "preservation_request", "response": "consented", "count": 1}
    ]
    assert not report["truncated"]


# --- L3: occurred_at has a lower bound, and reports can window by commit time --------------


def test_backdated_record_is_refused_with_occurred_too_early() -> None:
    chain = Chain(need_to_know_from_height=None)
    investigator = chain.keys("CN").investigator
    too_old = chain.env(
        "CN", investigator, "search_seizure", occurred_at=format_time(utcnow() - timedelta(days=31))
    )
    chain.refused(too_old, "occurred_too_early")
    with pytest.raises(ClientError) as info:
        chain.app.check_record(too_old, utcnow())
    assert info.value.field == "record.occurred_at"
    chain.commit(
        chain.env(
            "CN",
            investigator,
            "search_seizure",
            occurred_at=format_time(utcnow() - timedelta(days=29)),
        )
    )
    strict = Chain(max_backdate_ms=3_600_000)
    strict.refused(
        strict.env(
            "CN",
            strict.keys("CN").investigator,
            "search_seizure",
            occurred_at=format_time(utcnow() - timedelta(hours=2)),
        ),
        "occurred_too_early",
    )


def test_genesis_without_the_backdate_parameter_keeps_its_hash_and_default() -> None:
    chain = Chain()
    document = chain.genesis.to_json()
    assert document["consensus"]["max_backdate_ms"] == 30 * 24 * 3600 * 1000
    del document["consensus"]["max_backdate_ms"]
    older = Genesis.model_validate(document)
    assert older.hash() == genesis_hash(document)
    assert older.consensus.backdate_bound_ms == 30 * 24 * 3600 * 1000
    with pytest.raises(ValueError, match="max_backdate_ms"):
        Genesis.model_validate(
            {**document, "consensus": {**document["consensus"], "max_backdate_ms": None}}
        )


def test_sovereignty_report_windows_by_commit_time() -> None:
    chain = Chain(need_to_know_from_height=None)
    backdated = chain.env(
        "CN",
        chain.keys("CN").investigator,
        "search_seizure",
        territorial_states=["TH"],
        occurred_at=format_time(utcnow() - timedelta(days=20)),
    )
    chain.commit(backdated)
    since = format_time(utcnow() - timedelta(days=1))
    by_occurrence = evidence.sovereignty_report(_view(chain), "TH", from_time=since)
    by_commit = evidence.sovereignty_report(
        _view(chain), "TH", from_time=since, time_field="committed"
    )
    assert (by_occurrence["total"], by_commit["total"]) == (0, 1)
    assert by_commit["time_field"] == "committed"
    with pytest.raises(ClientError) as info:
        evidence.sovereignty_report(_view(chain), "TH", time_field="signed")
    assert (info.value.code, info.value.field) == ("bad_query", "time")
