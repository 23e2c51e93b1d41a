"""The directory recipe of docs/DIRECTORY.md on a 4-node devnet of real processes.

Each member's admin imports its own entry of ``docs/examples/directory.json`` with
``comity directory import`` (issue 19's done-when): every node then serves the four
entries, an act with no instrument in force between its states is refused with
``no_legal_basis``, an SAP Art 7 request to Thailand (which declared Art 7(5)(a)
notification) must say so and, once filed, gives Thailand its notice (routed to the
authority its entry names) and the notification clock, and importing again changes
nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from api.cli.main import main
from ledger.records import format_time
from node.clock import utcnow
from tests.integration.test_lifecycle_devnet import Desk, _act
from tests.procnet import ProcNet

pytestmark = pytest.mark.slow
EXAMPLE = Path(__file__).parents[2] / "docs/examples/directory.json"


def _comity(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def _import(net: ProcNet, state: str) -> str:
    return _comity(
        "directory",
        "import",
        str(EXAMPLE),
        "--node",
        net.urls[state],
        "--state",
        state,
        "--admin-key",
        str(net.root / state / "admin.key"),
        "--wait",
        "20",
    )


MESSAGE_ID = "6f1c2a9e-1b7d-4c55-9e0a-2f9d1b3c4d5e@domibus.cn.example"


def _webhook(net: ProcNet, state: str, record_id: str) -> httpx.Response:
    body = json.dumps(
        {
            "record_id": record_id,
            "channel": "e_codex",
            "external_id": MESSAGE_ID,
            "document_sha256": "ab" * 32,
            "delivery_evidence": [
                {"kind": "submission", "sha256": "cd" * 32, "at": format_time(utcnow())}
            ],
            "sender_endpoint": "urn:oasis:names:tc:ebcore:partyid-type:unregistered:CN-MPS",
            "recipient_endpoint": "urn:oasis:names:tc:ebcore:partyid-type:unregistered:VN-MPS",
            "sent_at": format_time(utcnow()),
        }
    ).encode()
    secret = (net.root / state / "webhook.secret").read_bytes().strip()
    stamp = str(int(time.time()))
    mac = hmac.new(secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return httpx.post(
        f"{net.urls[state]}/v1/receipts/webhook",
        content=body,
        headers={"content-type": "application/json", "X-Comity-Signature": f"t={stamp},v1={mac}"},
        timeout=10,
    )


def _sap7(notified: bool) -> dict[str, Any]:
    record = _act(
        "direct_provider_request",
        "FR",
        "FR-OFAC-2026-0007",
        territorial_states=["TH"],
        custodian={"name": "Example Hosting Co", "kind": "service_provider", "state": "TH"},
        provider_state="TH",
        legal_basis={"instrument": "Second Additional Protocol", "article": "Art 7"},
        notification_required=notified,
        languages=["en"],
    )
    record.pop("respond_by", None)
    return record


def test_the_directory_recipe_on_a_devnet(tmp_path: Path) -> None:
    net = ProcNet(tmp_path / "net")
    assert net.states == ["CN", "FR", "TH", "VN"]
    net.start()
    desk = Desk(net)
    try:
        for state in net.states:
            assert "committed at height" in _import(net, state)
        for state in net.states:
            listed = httpx.get(f"{net.urls[state]}/v1/directory", timeout=10).json()
            assert sorted(e["entry"]["state"] for e in listed["entries"]) == net.states, listed

        # CN and VN share UNTOC and the 2024 UN Convention, not the Budapest Convention.
        example = json.loads((net.root / "example-act.json").read_text())
        assert example["legal_basis"]["instrument"] == "Budapest Convention"
        example.pop("nonce", None)
        assert desk.refused("CN", "investigator", example) == (
            422,
            "no_legal_basis",
            "record.legal_basis.instrument",
        )
        untoc = {**example, "legal_basis": {"instrument": "UNTOC", "article": "Art 18"}}
        territorial = untoc["territorial_states"]
        first = desk.file("CN", "investigator", untoc)
        notices = desk.get(territorial[0], "/v1/sovereignty/notices")["notices"]
        assert [n["id"] for n in notices] == [first]
        # a preservation request goes to the 24/7 contact VN's entry names
        assert territorial == ["VN"] and notices[0]["route_to"]["authority"] == "vn-247"

        # SAP Art 7 to Thailand, which declared Art 7(5)(a) notification.
        assert desk.refused("FR", "authority", _sap7(False)) == (
            422,
            "notification_declared",
            "record.notification_required",
        )
        request = desk.file("FR", "authority", _sap7(True))
        notice = next(
            n for n in desk.get("TH", "/v1/sovereignty/notices")["notices"] if n["id"] == request
        )
        # routed to the authority Thailand's entry names for the Protocol
        assert (notice["route_to"]["authority"], notice["notification_required"]) == (
            "th-ca",
            True,
        ), notice
        clocks = {
            item["clock"]: item
            for item in desk.get("TH", "/v1/deadlines", within_days=365)["items"]
            if item["id"] == request
        }
        assert "sap7_notification" in clocks, sorted(clocks)
        assert clocks["sap7_notification"]["status"] in ("running", "warning")
        assert utcnow().isoformat() < clocks["sap7_notification"]["due_at"].replace("Z", "")

        # The devnet's receipt webhook (docs/CHANNELS.md): CN's connector reports the
        # e-CODEX message that carried the request; the same call twice anchors it once.
        receipt = _webhook(net, "CN", first)
        assert receipt.status_code == 202 and receipt.json()["duplicate"] is False, receipt.text
        again = _webhook(net, "CN", first)
        assert again.status_code == 200 and again.json() == {
            **again.json(),
            "id": receipt.json()["id"],
            "duplicate": True,
        }
        for state in ("CN", "VN"):
            net.wait_committed(state, receipt.json()["id"])
            trail = desk.get(state, f"/v1/records/{first}")["channel_trail"]
            assert [(r["channel"], r["external_id"]) for r in trail["receipts"]] == [
                ("e_codex", MESSAGE_ID)
            ], trail

        assert _import(net, "TH").startswith("unchanged: TH")
    finally:
        net.stop_all()
