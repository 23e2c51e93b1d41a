"""Whole-case bundles on the 4-node in-process consortium: export, verify offline, tamper.

The case is test_evidence_flow's (CN preserves at a provider in TH, TH acknowledges,
CN asks for MLA, TH answers with the evidence, custody TH -> CN) plus one private act
of CN and TH in the same case. CN exports with a body reader's token; the bundle
verifies under the pinned genesis, and each class of tampering fails with its own
reason (docs/AUDIT.md "Whole-case bundles"). FR, not a party, gets no body.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from click.testing import CliRunner

from api.certificate.loopback import CERTIFICATES_AT_ONCE_MAX
from api.cli import case as case_cli
from ledger.audit.bundle import UNPINNED
from ledger.audit.case import load_case_bundle, pin_of, verify_case_bundle
from ledger.audit.chain import genesis_hash
from ledger.audit.gov import AuditFailure
from node import case_bundle
from tests.cluster import Cluster
from tests.integration.test_evidence_flow import CASE, H1, _build_case
from tests.integration.test_need_to_know import _act, _file, _token

pytestmark = [pytest.mark.cluster(on_disk=True), pytest.mark.asyncio(loop_scope="module")]

MARKER = "PRIVATE-MARKER-5e1f"


class Case:
    def __init__(self, cluster: Cluster, ids: dict[str, str], bundle: dict[str, Any]) -> None:
        self.cluster, self.ids, self.bundle = cluster, ids, bundle
        self.genesis = cluster.nodes["CN"].app.genesis.to_json()

    def verify(self, doc: Any) -> Any:
        return verify_case_bundle(doc, pinned_genesis_hash=pin_of(self.genesis, doc))


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def case(module_cluster: Cluster) -> Case:
    cluster = module_cluster
    ids = await _build_case(cluster)
    record = _act(
        cluster,
        "CN",
        "preservation_request",
        case_ref=CASE,
        custodian={"name": f"Provider {MARKER}", "kind": "service_provider", "state": "TH"},
    )
    ids["private"] = await _file(
        cluster, "CN", cluster.member("CN").investigator, record, retain_s=3600
    )
    reply = await cluster.api["CN"].get(f"/v1/cases/{CASE}/bundle", headers=_token(cluster, "CN"))
    assert reply.status_code == 200, reply.text
    return Case(cluster, ids, reply.json())


async def test_the_case_bundle_holds_the_whole_case_and_verifies(case: Case) -> None:
    report = case.verify(case.bundle)
    assert report.bundle.pinned and report.case_ref == CASE
    reasons = {rid: {r["reason"] for r in rs} for rid, rs in report.reasons.items()}
    assert set(case.ids.values()) <= set(reasons)
    assert {"case_record", "answer"} <= reasons[case.ids["ack"]]
    assert {"case_record", "answer"} <= reasons[case.ids["answer"]]
    for step in ("collected", "transferred", "received", "examined"):
        assert {"reason": "custody_event", "sha256": H1} in report.reasons[case.ids[step]]
    leaves = [r.leaf_index for r in report.bundle.records]
    assert leaves == sorted(leaves) and len(set(leaves)) == len(leaves)
    assert case.ids["private"] in case.bundle["private"]
    assert MARKER in json.dumps(case.bundle)


async def test_load_case_bundle_returns_the_verified_content(case: Case, tmp_path: Path) -> None:
    path = tmp_path / "case.bundle"
    path.write_text(json.dumps(case.bundle))
    loaded = load_case_bundle(path, case.genesis)
    assert loaded["case_ref"] == CASE and loaded["verification"]["ok"] is True
    assert loaded["genesis_hash"] == genesis_hash(case.genesis)
    by_id = {r["id"]: r for r in loaded["records"]}
    private = by_id[case.ids["private"]]
    assert private["header_only"] is False
    assert private["content"]["custodian"]["name"] == f"Provider {MARKER}"
    assert loaded["answers"][case.ids["mla"]] == [case.ids["answer"]]
    steps = ("collected", "transferred", "received", "examined")
    assert loaded["custody"][H1] == [case.ids[s] for s in steps]
    junk = tmp_path / "junk.bundle"
    for text in (b"{not json", b'{"format": "comity-bundle/1"}', b"[]"):
        junk.write_bytes(text)
        with pytest.raises(AuditFailure) as refused:
            load_case_bundle(junk, case.genesis)
        assert refused.value.code == "bad_bundle", text
    forged = copy.deepcopy(case.genesis)
    forged["chain_id"] += "x"
    with pytest.raises(AuditFailure) as caught:
        load_case_bundle(path, forged)
    assert caught.value.code == "genesis_mismatch"


def _flip(text: str) -> str:
    """The string with its last character changed (one byte of the file flipped)."""
    last = text[-1]
    return text[:-1] + ("0" if last != "0" else "1")


def _entry(doc: dict[str, Any], record_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    for block in doc["blocks"]:
        for entry in block["entries"]:
            if _id_of(entry) == record_id:
                return block, entry
    raise AssertionError(f"{record_id} not in the bundle")


def _id_of(entry: dict[str, Any]) -> str:
    from ledger.audit.chain import jcs
    from ledger.hashing import sha256_hex

    return sha256_hex(jcs(entry["envelope"]["record"]))


def _record(doc: dict[str, Any], ids: dict[str, str]) -> None:
    _, entry = _entry(doc, ids["mla"])
    record = entry["envelope"]["record"]
    record["nonce"] = _flip(record["nonce"])  # a header field: clear and private acts alike


def _proof(doc: dict[str, Any], ids: dict[str, str]) -> None:
    entry = next(e for b in doc["blocks"] for e in b["entries"] if e["audit_path"])
    entry["audit_path"][0] = _flip(entry["audit_path"][0])


def _certificate(doc: dict[str, Any], ids: dict[str, str]) -> None:
    block, _ = _entry(doc, ids["answer"])
    signature = block["commit"]["signatures"][0]
    signature["signature"] = _flip(signature["signature"])


def _genesis(doc: dict[str, Any], ids: dict[str, str]) -> None:
    doc["genesis"]["members"][0]["name"] = _flip(doc["genesis"]["members"][0]["name"])


def _drop_entry(doc: dict[str, Any], ids: dict[str, str]) -> None:
    block, entry = _entry(doc, ids["examined"])
    block["entries"].remove(entry)


def _drop_everywhere(doc: dict[str, Any], ids: dict[str, str]) -> None:
    """An act dropped from the whole bundle: the answer naming it gives it away."""
    rid = ids["mla"]
    block, entry = _entry(doc, rid)
    block["entries"].remove(entry)
    doc["records"].remove(rid)
    doc["case"]["records"] = [r for r in doc["case"]["records"] if r["id"] != rid]
    doc.get("private", {}).pop(rid, None)


def _reorder(doc: dict[str, Any], ids: dict[str, str]) -> None:
    rows = doc["case"]["records"]
    rows[0], rows[1] = rows[1], rows[0]
    doc["records"] = [r["id"] for r in rows]


def _reorder_blocks(doc: dict[str, Any], ids: dict[str, str]) -> None:
    blocks = doc["blocks"]
    blocks[-1], blocks[-2] = blocks[-2], blocks[-1]


def _false_reason(doc: dict[str, Any], ids: dict[str, str]) -> None:
    row = next(r for r in doc["case"]["records"] if r["id"] == ids["preservation"])
    row["reasons"].append({"reason": "custody_event", "sha256": "00" * 32})


TAMPERING: list[tuple[str, Callable[[dict[str, Any], dict[str, str]], None], str]] = [
    ("a flipped byte in a record", _record, "bad_record_signature"),
    ("a flipped byte in a proof", _proof, "bad_inclusion_proof"),
    ("a flipped byte in a certificate", _certificate, "bad_certificate"),
    ("a flipped byte in the genesis", _genesis, "genesis_mismatch"),
    ("a listed record dropped", _drop_entry, "record_missing"),
    ("a referenced act dropped from everything", _drop_everywhere, "ref_missing"),
    ("records listed out of commit order", _reorder, "records_out_of_order"),
    ("blocks out of height order", _reorder_blocks, "blocks_out_of_order"),
    ("a reason the record does not bear out", _false_reason, "bad_case_reason"),
]


@pytest.mark.parametrize(
    ("tamper", "code"), [(t[1], t[2]) for t in TAMPERING], ids=[t[0] for t in TAMPERING]
)
async def test_each_tampering_class_fails_with_its_reason(
    case: Case, tamper: Callable[[dict[str, Any], dict[str, str]], None], code: str
) -> None:
    doc = copy.deepcopy(case.bundle)
    tamper(doc, case.ids)
    with pytest.raises(AuditFailure) as caught:
        case.verify(doc)
    assert caught.value.code == code, str(caught.value)


async def test_a_non_party_gets_no_private_body(case: Case) -> None:
    cluster = case.cluster
    for state, headers in (("FR", _token(cluster, "FR")), ("CN", {})):
        reply = await cluster.api[state].get(f"/v1/cases/{CASE}/bundle", headers=headers)
        assert reply.status_code == 200, reply.text
        doc = reply.json()
        assert "private" not in doc and MARKER not in reply.text
        assert case.ids["private"] not in doc["records"]
        assert case.ids["mla"] in doc["records"]
        assert case.verify(doc).case_ref == CASE


async def test_the_route_refuses_what_it_cannot_bound(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = case.cluster.api["VN"]
    monkeypatch.setattr(case_bundle, "CASE_BUNDLE_RECORDS_MAX", 3)
    reply = await api.get(f"/v1/cases/{CASE}/bundle")
    error = reply.json()["error"]
    assert (reply.status_code, error["code"], error["field"]) == (413, "case_too_large", "case_ref")
    assert "more than 3 records" in error["message"]
    monkeypatch.undo()
    reply = await api.get("/v1/cases/NO-SUCH-CASE/bundle")
    assert (reply.status_code, reply.json()["error"]["code"]) == (404, "case_not_found")
    reply = await api.get(f"/v1/cases/{'x' * 129}/bundle")
    assert (reply.status_code, reply.json()["error"]["field"]) == (400, "case_ref")


class _OnLoop(httpx.AsyncBaseTransport):
    """Requests from the CLI's own event loop (a thread) served by the CN node's app on
    the test's loop: the command runs ``asyncio.run`` as it does for a user."""

    def __init__(self, target: httpx.AsyncClient, loop: asyncio.AbstractEventLoop) -> None:
        self.target, self.loop = target, loop

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        call = self.target.get(request.url.path, headers=dict(request.headers))
        reply = asyncio.run_coroutine_threadsafe(call, self.loop).result(timeout=60)
        return httpx.Response(reply.status_code, content=reply.content, headers=reply.headers)


async def _cli(cluster: Cluster, monkeypatch: pytest.MonkeyPatch, args: list[str]) -> Any:
    transport = _OnLoop(cluster.api["CN"], asyncio.get_running_loop())

    def client(url: str, token: str | None) -> httpx.AsyncClient:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(transport=transport, base_url=url, headers=headers)

    monkeypatch.setattr(case_cli, "_client", client)
    return await asyncio.to_thread(CliRunner().invoke, case_cli.case, args)


async def test_case_export_and_verify_commands(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, genesis = tmp_path / "case.bundle", tmp_path / "genesis.json"
    genesis.write_text(json.dumps(case.genesis))
    token = _token(case.cluster, "CN")["authorization"].removeprefix("Bearer ")
    args = ["export", CASE, "--node", "http://cn.api", "--token", token, "--out", str(out)]
    result = await _cli(case.cluster, monkeypatch, args)
    assert result.exit_code == 0, result.output
    assert case.ids["private"] in json.loads(out.read_text())["private"]
    assert out.stat().st_mode & 0o777 == 0o600  # it holds private bodies
    result = CliRunner().invoke(case_cli.case, ["verify", str(out), "--genesis", str(genesis)])
    assert result.exit_code == 0, result.output
    assert f"case {CASE}:" in result.output and "OK: every signature" in result.output
    for pin in ([], ["--genesis-hash", genesis_hash(case.genesis)]):
        result = CliRunner().invoke(case_cli.case, ["verify", str(out), *pin])
        assert result.exit_code == 2 and UNPINNED in result.output, result.output
        assert "OK" not in result.output
    doc = json.loads(out.read_text())
    _certificate(doc, case.ids)
    out.write_text(json.dumps(doc))
    result = CliRunner().invoke(case_cli.case, ["verify", str(out), "--genesis", str(genesis)])
    assert result.exit_code == 1 and "bad_certificate" in result.output, result.output


async def test_the_certificate_route_serves_the_judges_pdf_as_the_cli_builds_it(
    case: Case,
) -> None:
    """GET /v1/cases/{ref}/certificate: a PDF of the case as CN's token sees it, in each of
    the certificate's languages; a bad lang, an over-long case_ref or a case with nothing
    visible is refused with its code and field, never a partial PDF."""
    api, token = case.cluster.api["CN"], _token(case.cluster, "CN")
    for lang in ("en", "fr", "zh"):
        reply = await api.get(f"/v1/cases/{CASE}/certificate", params={"lang": lang}, headers=token)
        assert reply.status_code == 200, reply.text
        assert reply.headers["content-type"] == "application/pdf"
        assert reply.content.startswith(b"%PDF-") and len(reply.content) > 5000
        assert f"certificate-{CASE}-{lang}.pdf" in reply.headers["content-disposition"]
    refused = {
        "bad lang": (f"/v1/cases/{CASE}/certificate", {"lang": "de"}, 400, "bad_lang", "lang"),
        "long lang": (
            f"/v1/cases/{CASE}/certificate",
            {"lang": "x" * 9},
            400,
            "invalid_request",
            None,
        ),
        "long case": (f"/v1/cases/{'X' * 129}/certificate", {}, 400, "bad_query", "case_ref"),
        "no such case": ("/v1/cases/NOBODY-1/certificate", {}, 404, "case_not_found", "case_ref"),
    }
    for name, (path, params, status, code, field) in refused.items():
        reply = await api.get(path, params=params, headers=token)
        assert reply.status_code == status, (name, reply.text)
        error = reply.json()["error"]
        assert error["code"] == code, name
        if field:
            assert error["field"] == field, name
    busy = await asyncio.gather(
        *(
            api.get(f"/v1/cases/{CASE}/certificate", headers=token)
            for _ in range(CERTIFICATES_AT_ONCE_MAX + 1)
        )
    )
    statuses = sorted(r.status_code for r in busy)
    assert statuses == [200] * CERTIFICATES_AT_ONCE_MAX + [503], statuses
    refused_busy = next(r for r in busy if r.status_code == 503)
    assert refused_busy.json()["error"]["code"] == "too_many_certificates"
    assert refused_busy.headers["retry-after"] == "2"
    spec = (await api.get("/openapi.json")).json()["paths"]["/v1/cases/{case_ref}/certificate"]
    assert {"200", "400", "404", "503"} <= set(spec["get"]["responses"])
    assert "application/pdf" in spec["get"]["responses"]["200"]["content"]
