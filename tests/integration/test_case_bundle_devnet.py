"""Issue 20's done-when for the case bundle, on a devnet of real processes.

The Budapest chain of the lifecycle work (tests/integration/test_lifecycle_devnet.py:
Japan preserves at a provider in Brazil, Brazil answers, Japan asks for MLA, Brazil
executes in part and transfers the evidence, all private acts of JP and BR), then
Brazil's custody event for one transferred hash. ``comity case export`` against JP's
node with a body reader's token writes a bundle that ``comity case verify`` accepts
offline under the devnet's genesis file, and every tampering class fails with its
named reason (docs/AUDIT.md "Whole-case bundles"). FR, not a party, gets no bundle:
the case's records are private, so FR cannot find them by case_ref. The same case
exported as CASE/UCO (``--format case-uco``) names every record as an investigative
action and conforms to the ontology for ``case_validate`` with zero violations. The
judge's certificate made from the bundle alone (``comity case certificate --bundle
--genesis``, no node) is verified, and its first page, rendered and read back by OCR,
shows the case and both parties; a forged bundle gets no certificate.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from api.cli import devnet
from api.cli.main import main
from tests.integration.test_case_bundle import TAMPERING
from tests.integration.test_case_uco import _case_validate
from tests.integration.test_certificate_devnet import _ocr_first_page, _pages_text
from tests.integration.test_lifecycle_devnet import STATES, Desk, _act, _budapest, _digest
from tests.procnet import ProcNet

pytestmark = pytest.mark.slow

CASE = "JP-CYBER-2026-0117"  # _budapest's case


def _ids_by_role(desk: Desk) -> dict[str, str]:
    """The Budapest chain's record ids on JP's node, named as the tampering functions need."""
    entries = desk.get("JP", f"/v1/cases/{CASE}")["entries"]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        by_type.setdefault(entry["type"], []).append(entry)
    answers = by_type["mla_response"]
    return {
        "preservation": by_type["preservation_request"][0]["id"],
        "mla": by_type["mla_request"][0]["id"],
        "answer": answers[-1]["id"],
        "examined": by_type["custody_event"][0]["id"],
    }


def _custody(desk: Desk) -> str:
    entries = desk.get("BR", f"/v1/cases/{CASE}")["entries"]
    transfer = [e for e in entries if e.get("status") == "evidence_transferred"][-1]
    event = _act(
        "custody_event",
        "BR",
        CASE,
        action="collected",
        territorial_states=["BR"],
        refs=[transfer["id"]],
        evidence=[{"sha256": _digest(10)}],
    )
    return desk.file("BR", "investigator", event)


def _verify(path: Path, genesis: Path) -> Any:
    return CliRunner().invoke(main, ["case", "verify", str(path), "--genesis", str(genesis)])


def test_a_budapest_case_exports_verifies_and_every_tampering_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(devnet, "DEMO_STATES", STATES)
    net = ProcNet(tmp_path / "net")
    net.start()
    desk = Desk(net)
    try:
        _budapest(desk)
        custody_id = _custody(desk)
        ids = _ids_by_role(desk)
        out, genesis = tmp_path / "case.bundle", net.root / "genesis.json"
        token = desk.reader("JP")["authorization"].removeprefix("Bearer ")
        result = CliRunner().invoke(
            main,
            ["case", "export", CASE, "--node", net.urls["JP"], "--token", token, "--out", str(out)],
        )
        assert result.exit_code == 0, result.output
        timeline = {e["id"] for e in desk.get("JP", f"/v1/cases/{CASE}")["entries"]}
        doc = json.loads(out.read_text())
        assert timeline <= set(doc["records"]) and timeline <= set(doc["private"])
        assert custody_id == ids["examined"]
        reply = httpx.get(
            f"{net.urls['FR']}/v1/cases/{CASE}/bundle", headers=desk.reader("FR"), timeout=30
        )
        assert (reply.status_code, reply.json()["error"]["code"]) == (404, "case_not_found")
        # The same case as CASE/UCO JSON-LD for forensic tools (docs/CASE_UCO.md).
        jsonld = tmp_path / "case.jsonld"
        result = CliRunner().invoke(
            main,
            [
                "case",
                "export",
                CASE,
                "--format",
                "case-uco",
                "--node",
                net.urls["JP"],
                "--token",
                token,
                "--out",
                str(jsonld),
            ],
        )
        assert result.exit_code == 0, result.output
    finally:
        net.stop_all()
    graph = json.loads(jsonld.read_text())["@graph"]
    actions = {n["@id"] for n in graph if n["@type"] == "case-investigation:InvestigativeAction"}
    assert all(any(i in a for a in actions) for i in timeline), (sorted(actions), timeline)
    checked = _case_validate(jsonld)  # offline: the ontology ships with case-utils
    assert checked.returncode == 0 and "Conforms: True" in checked.stdout, checked.stdout[-3000:]
    result = _verify(out, genesis)  # offline: every node is stopped
    assert result.exit_code == 0, result.output
    assert "OK: every signature, proof and certificate holds" in result.output
    # The judge's certificate, from the bundle alone, proven against the genesis file.
    pdf = tmp_path / "certificate.pdf"
    made = CliRunner().invoke(
        main,
        [
            "case",
            "certificate",
            "--bundle",
            str(out),
            "--genesis",
            str(genesis),
            "--lang",
            "en",
            "--out",
            str(pdf),
        ],
    )
    assert made.exit_code == 0 and "verified" in made.output, made.output
    page = _ocr_first_page(pdf)
    assert all(word in page for word in (CASE, "Japan", "Brazil")), page
    text = "\n".join(_pages_text(pdf))
    assert "NOT VERIFIED" not in text and "not run" not in text.lower()
    for name, tamper, code in TAMPERING:
        forged = copy.deepcopy(doc)
        tamper(forged, ids)
        path = tmp_path / "forged.bundle"
        path.write_text(json.dumps(forged))
        result = _verify(path, genesis)
        assert result.exit_code == 1 and f"{code}:" in result.output, (name, result.output)
    refused = CliRunner().invoke(
        main,
        [
            "case",
            "certificate",
            "--bundle",
            str(path),
            "--genesis",
            str(genesis),
            "--out",
            str(pdf),
        ],
    )
    assert refused.exit_code != 0 and "does not verify" in refused.output, refused.output
