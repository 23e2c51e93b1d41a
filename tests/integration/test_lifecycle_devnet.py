"""Two legal lifecycles end to end on a 4-node devnet of real processes (issue 18).

The consortium is France, Germany, Japan and Brazil (``comity devnet`` layout and
keys, LevelDB, private acts by default), so each chain has two parties and two
members that are not:

* **A Budapest chain**, Japan to Brazil (both parties to the Convention): a 24/7
  preservation request (Art 29), Brazil's preservation response (at least 60 days,
  Art 29(7)), Japan's MLA request naming it within the window (the preservation is
  then pending the MLA decision), Brazil's partial execution with conditions
  (Art 27(6)), then its evidence transfer carrying the hashes.
* **An EU chain**, France to a provider established in Germany (Regulation (EU)
  2023/1543): an EPOC for traffic data with notification (Art 8), Germany's refusal
  on a listed ground within the 10 days (Art 12(1)), then France's record of the
  addressee's report.

Every party node serves the same timeline, lifecycle and deadlines (clock, source,
due time, status) to a body reader; the members that are not parties serve headers
only. A few acts the law forbids are refused with the code naming the rule, and
``comity verify`` passes against every node at the end.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from api.cli import devnet
from api.cli.main import main
from ledger.acts_templates import template
from ledger.keys import load_signing_key
from ledger.records import format_time, parse_time
from ledger.retention import default_retain_until
from node.authoring import complete_record, private_submission
from node.clock import utcnow
from node.tokens import create_token
from tests.procnet import ProcNet

pytestmark = pytest.mark.slow

STATES = (("FR", "France"), ("DE", "Germany"), ("JP", "Japan"), ("BR", "Brazil"))
BUDAPEST = ("JP", "BR")
EU = ("FR", "DE")
DAY = timedelta(days=1)


class Desk:
    """The devnet as its desk officers use it: signed private acts over HTTP."""

    def __init__(self, net: ProcNet) -> None:
        self.net = net
        self.tokens: dict[str, dict[str, str]] = {}

    def reader(self, state: str) -> dict[str, str]:
        """A body reader's token (the state's authority) for ``state``'s node."""
        if state not in self.tokens:
            _, secret = create_token(
                self.net.root / state / "data", "authority", f"{state} desk", state=state
            )
            self.tokens[state] = {"authorization": f"Bearer {secret}"}
        return self.tokens[state]

    def get(self, state: str, path: str, **params: Any) -> Any:
        reply = httpx.get(
            f"{self.net.urls[state]}{path}", params=params, headers=self.reader(state), timeout=10
        )
        assert reply.status_code == 200, (state, path, reply.text)
        return reply.json()

    def post(self, state: str, role: str, record: dict[str, Any]) -> httpx.Response:
        """Sign ``record`` with ``state``'s ``role`` key as a private act and POST it."""
        url = self.net.urls[state]
        record = complete_record(record, chain_id=devnet.CHAIN_ID)
        key = load_signing_key(self.net.root / state / f"{role}.key")

        def ref_parties(ref: str) -> list[str]:
            view = httpx.get(f"{url}/v1/records/{ref}", timeout=10).json()
            return list(view["envelope"]["record"].get("parties", []))

        submission = private_submission(
            key, record, retain_until=default_retain_until(record), ref_parties=ref_parties
        )
        return httpx.post(f"{url}/v1/records", json=submission, timeout=10)

    def file(self, state: str, role: str, record: dict[str, Any]) -> str:
        """Submit and wait until every node has committed it; its id."""
        reply = self.post(state, role, record)
        assert reply.status_code == 202, reply.text
        record_id: str = reply.json()["id"]
        for other in self.net.states:
            self.net.wait_committed(other, record_id)
        return record_id

    def refused(self, state: str, role: str, record: dict[str, Any]) -> tuple[int, str, str]:
        reply = self.post(state, role, record)
        error = reply.json()["error"]
        return reply.status_code, error["code"], error.get("field")


def _act(type_name: str, actor: str, case_ref: str, **fields: Any) -> dict[str, Any]:
    record = template(type_name, state=actor, case_ref=case_ref, now=utcnow())
    record["actor"]["agency"] = f"{actor} central authority"
    record.update(fields)
    return record


def _digest(n: int) -> str:
    return f"{n:064x}"


def _clocks(desk: Desk, state: str, case_ref: str) -> dict[str, dict[str, Any]]:
    """The case's deadline items on ``state``'s node, by clock id (every status)."""
    items = desk.get(
        state,
        "/v1/deadlines",
        within_days=365,
        status="running,warning,overdue,stopped",
    )["items"]
    return {item["clock"]: item for item in items if item["case_ref"] == case_ref}


def _due(item: dict[str, Any]) -> timedelta:
    due: datetime = parse_time(item["due_at"], "due_at")
    return due - parse_time(item["start"], "start")


def _only_headers(desk: Desk, state: str, ids: list[str], case_ref: str) -> None:
    """A member that is not a party: the headers, no content, no clocks, no lifecycle."""
    for record_id in ids:
        view = desk.get(state, f"/v1/acts/{record_id}")
        assert view["envelope"]["record"]["type"] == "private_act", (state, view)
        assert view["lifecycle"] is None and view["case_ref"] is None, (state, view)
        body = httpx.get(
            f"{desk.net.urls[state]}/v1/records/{record_id}/private",
            headers=desk.reader(state),
            timeout=10,
        )
        assert body.status_code == 403 and body.json()["error"]["code"] == "not_a_party"
    assert _clocks(desk, state, case_ref) == {}


def _budapest(desk: Desk) -> None:
    requester, requested = BUDAPEST
    case = "JP-CYBER-2026-0117"
    now = utcnow()
    preservation = _act(
        "preservation_request",
        requester,
        case,
        territorial_states=[requested],
        custodian={"name": "Provedor Exemplo Ltda", "kind": "service_provider", "state": "BR"},
        data_category=["subscriber", "traffic"],
        expires_at=format_time(now + 90 * DAY),
        basis="budapest_29",
        channel="24_7_network",
        languages=["en"],
        legal_basis={"instrument": "Budapest Convention", "article": "Art 29"},
        evidence=[{"sha256": _digest(1), "role": "request_document", "language": "en"}],
    )
    # The 24/7 point of contact files the request (an investigator's key).
    preservation_id = desk.file(requester, "investigator", preservation)

    # Refusals the law forbids: Japan answering its own request, Brazil preserving
    # for less than the 60 days of Art 29(7).
    answer = _act(
        "preservation_response",
        requested,
        case,
        territorial_states=[requested],
        refs=[preservation_id],
        status="preserved",
        preserved_until=format_time(now + 60 * DAY + DAY),
        evidence=[],
    )
    own = {
        **answer,
        "actor": {"state": requester, "agency": "JP central authority"},
        "territorial_states": [requester],
    }
    assert desk.refused(requester, "authority", own) == (403, "own_act", "record.actor.state")
    short = {**answer, "preserved_until": format_time(now + 30 * DAY)}
    assert desk.refused(requested, "authority", short) == (
        422,
        "preservation_too_short",
        "record.preserved_until",
    )
    response_id = desk.file(requested, "authority", answer)

    mla = _act(
        "mla_request",
        requester,
        case,
        territorial_states=[requested],
        refs=[preservation_id],
        requesting_authority="Ministry of Justice of Japan",
        requested_state=requested,
        requested_authority="Ministry of Justice of Brazil (DRCI)",
        measures=["produce the subscriber and traffic data preserved"],
        measure_codes=["production"],
        urgency="expedited",
        channel="central_authority",
        languages=["en", "pt"],
        legal_basis={"instrument": "Budapest Convention", "article": "Art 31"},
        evidence=[
            {"sha256": _digest(2), "role": "request_document", "language": "en"},
            {
                "sha256": _digest(3),
                "role": "translation",
                "language": "pt",
                "derived_from": _digest(2),
            },
        ],
    )
    mla_id = desk.file(requester, "authority", mla)

    partial = _act(
        "mla_response",
        requested,
        case,
        territorial_states=[requested],
        refs=[mla_id],
        status="partially_executed",
        reason="traffic data older than the provider's retention were no longer held",
        conditions=["use only in case JP-CYBER-2026-0117", "no onward transfer without consent"],
        evidence=[],
    )
    partial_id = desk.file(requested, "authority", partial)
    transfer = {k: v for k, v in partial.items() if k not in ("reason", "conditions")}
    transfer["status"] = "evidence_transferred"
    # Evidence transferred must carry the hashes of what was handed over.
    assert desk.refused(requested, "authority", transfer) == (
        422,
        "invalid_act",
        "record.evidence",
    )
    delivered = [{"sha256": _digest(10 + i), "role": "evidence"} for i in range(2)]
    transfer_id = desk.file(requested, "authority", {**transfer, "evidence": delivered})
    ids = [preservation_id, response_id, mla_id, partial_id, transfer_id]

    for state in BUDAPEST:
        timeline = desk.get(state, f"/v1/cases/{case}")
        assert [r["id"] for r in timeline["entries"]] == ids, state
        assert [r["type"] for r in timeline["entries"]] == [
            "preservation_request",
            "preservation_response",
            "mla_request",
            "mla_response",
            "mla_response",
        ]
        kept = desk.get(state, f"/v1/acts/{preservation_id}")["lifecycle"]
        assert kept["phase"] == "pending_mla_decision", (state, kept)
        assert kept["status"]["preservation_response"]["BR"] == {
            "status": "preserved",
            "final": True,
            "id": response_id,
        }
        request = desk.get(state, f"/v1/acts/{mla_id}")
        assert request["lifecycle"]["phase"] == "answered"
        assert request["lifecycle"]["status"]["mla_response"]["BR"]["status"] == (
            "evidence_transferred"
        )
        assert [(a["answer"], a["final"], a["conditions"]) for a in request["answers"]] == [
            ("partially_executed", True, partial["conditions"]),
            ("evidence_transferred", True, []),
        ]
        clocks = _clocks(desk, state, case)
        assert set(clocks) >= {
            "preservation_expiry",
            "mla_before_preservation_expiry",
            "art29_minimum_preservation",
            "preserved_until",
            "mla_answer",
        }, (state, sorted(clocks))
        assert clocks["art29_minimum_preservation"]["source"] == "Budapest Convention Art 29(7)"
        assert _due(clocks["art29_minimum_preservation"]) == 60 * DAY
        assert clocks["preserved_until"]["due_at"] == answer["preserved_until"]
        assert clocks["mla_before_preservation_expiry"]["status"] == "stopped"
        assert clocks["mla_before_preservation_expiry"]["stopped_by"]["id"] == mla_id
        assert clocks["mla_answer"]["status"] == "stopped"
        assert clocks["mla_answer"]["stopped_by"]["id"] == partial_id
        assert clocks["mla_answer"]["source"].startswith("consortium policy")
        assert clocks["preservation_expiry"]["due_at"] == preservation["expires_at"]
    for state in EU:
        _only_headers(desk, state, ids, case)


def _eu(desk: Desk) -> None:
    issuer, enforcing = EU
    case = "FR-PNC-2026-0042"
    epoc = _act(
        "epoc",
        issuer,
        case,
        territorial_states=[enforcing],
        custodian={"name": "Beispiel Hosting GmbH", "kind": "service_provider", "state": "DE"},
        establishment_state=enforcing,
        substantial_connection="the provider offers its service to users in France",
        data_category=["traffic"],
        notification_required=True,
        channel="e_codex",
        languages=["fr", "de"],
        legal_basis={"instrument": "Regulation (EU) 2023/1543", "article": "Art 5"},
        evidence=[{"sha256": _digest(20), "role": "request_document", "language": "fr"}],
    )
    # Traffic data need a judge (Art 4(2)): a prosecutor's order is refused.
    prosecutor = {**epoc, "authorisation": {**epoc["authorisation"], "level": "prosecutorial"}}
    assert desk.refused(issuer, "authority", prosecutor) == (
        422,
        "invalid_act",
        "record.authorisation.level",
    )
    epoc_id = desk.file(issuer, "authority", epoc)

    decision = _act(
        "epoc_enforcing_decision",
        enforcing,
        case,
        territorial_states=[enforcing],
        refs=[epoc_id],
        decision="ground_raised",
        ground="fundamental_rights",
        reason="a manifest breach of a relevant fundamental right (Art 12(1)(b))",
        evidence=[],
    )
    # Only the enforcing state decides. Japan, a member but not a party, cannot even
    # answer: its node holds the EPOC's header only, not an epoc.
    bystander = {
        **decision,
        "actor": {"state": "JP", "agency": "JP central authority"},
        "territorial_states": ["JP"],
    }
    assert desk.refused("JP", "authority", bystander) == (422, "ref_wrong_type", "record.refs[0]")
    # A ground outside Art 12(1) is refused, naming the field.
    off_list = {**decision, "ground": "political_offence"}
    assert desk.refused(enforcing, "authority", off_list) == (
        422,
        "invalid_act",
        "record.ground",
    )
    decision_id = desk.file(enforcing, "authority", decision)

    report = _act(
        "addressee_report",
        issuer,
        case,
        territorial_states=[enforcing],
        refs=[epoc_id],
        outcome="impossible",
        impossibility="other",
        reason="the enforcing authority raised a ground for refusal; the addressee stopped",
        evidence=[],
    )
    report_id = desk.file(issuer, "authority", report)
    ids = [epoc_id, decision_id, report_id]

    for state in EU:
        timeline = desk.get(state, f"/v1/cases/{case}")
        assert [r["id"] for r in timeline["entries"]] == ids, state
        order = desk.get(state, f"/v1/acts/{epoc_id}")
        life = order["lifecycle"]
        assert life["phase"] == "reported", (state, life)
        assert life["status"]["epoc_enforcing_decision"]["DE"]["status"] == "ground_raised"
        assert life["status"]["addressee_report"]["FR"]["status"] == "impossible"
        clocks = _clocks(desk, state, case)
        enforcing_clock = clocks["epoc_enforcing_decision"]
        assert _due(enforcing_clock) == 10 * DAY
        assert enforcing_clock["source"] == "Regulation (EU) 2023/1543 Arts 10(2), 12(1)"
        assert enforcing_clock["status"] == "stopped"
        assert enforcing_clock["stopped_by"]["id"] == decision_id
        stopped_at = parse_time(enforcing_clock["stopped_by"]["occurred_at"], "at")
        assert stopped_at - parse_time(enforcing_clock["start"], "start") < 10 * DAY
        transmission = clocks["epoc_transmission"]
        assert _due(transmission) == 10 * DAY and "Art 10(2)" in transmission["source"]
        assert transmission["status"] == "stopped"
        assert transmission["stopped_by"]["id"] == report_id
        assert "epoc_transmission_emergency" not in clocks  # not an emergency order
    for state in BUDAPEST:
        _only_headers(desk, state, ids, case)


def test_budapest_and_eu_lifecycles_on_a_devnet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(devnet, "DEMO_STATES", STATES)
    net = ProcNet(tmp_path / "net")
    assert net.states == [s for s, _ in STATES]
    net.start()
    desk = Desk(net)
    try:
        _budapest(desk)
        _eu(desk)
        for state in net.states:
            result = CliRunner().invoke(
                main,
                ["verify", "--node", net.urls[state], "--genesis", str(net.root / "genesis.json")],
            )
            assert result.exit_code == 0, result.output
    finally:
        net.stop_all()
