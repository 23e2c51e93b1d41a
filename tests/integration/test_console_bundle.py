"""The browser's verifier on bundles the ``comity`` CLI exported from the in-process cluster.

``comity bundle export`` (one record, with the latest checkpoint) and ``comity case
export`` (a whole case) write real files from a running 4-node cluster; the JS bundle
check (api/console/static/js/verify.js, run by Node through tests/js/verify-bundle.mjs)
must pass each under the pinned genesis hash, as ``comity bundle verify`` does, and
fail with the Python verifier's reason once one byte of the file is changed. A
party's case bundle with a private act's body passes too, with the case's claims
(caseclaims.js) giving every record the reasons ``comity case verify`` gives it, with the
body and without it (a header only); a changed body is ``body_mismatch`` in both.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from api.cli import audit as cli_audit
from api.cli import case as case_cli
from ledger.audit.bundle import verify_bundle
from ledger.audit.case import verify_case_bundle
from ledger.audit.chain import AuditFailure, genesis_hash
from tests.cluster import Cluster
from tests.integration.test_evidence_flow import CASE, _build_case
from tests.integration.test_need_to_know import _act, _file, _token

ROOT = Path(__file__).resolve().parents[2]
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node (20+) is not installed")


class _OnLoop(httpx.AsyncBaseTransport):
    """The cluster's API, called from the CLI's own event loop (it runs in a thread)."""

    def __init__(self, target: httpx.AsyncClient, loop: asyncio.AbstractEventLoop) -> None:
        self.target, self.loop = target, loop

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        call = self.target.get(request.url.path, params=request.url.params)
        reply = asyncio.run_coroutine_threadsafe(call, self.loop).result(timeout=60)
        return httpx.Response(reply.status_code, content=reply.content, headers=reply.headers)


async def _cli(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, group: Any, args: list[str]
) -> Any:
    transport = _OnLoop(cluster.api["FR"], asyncio.get_running_loop())

    def client(url: str, token: str | None) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=transport, base_url=url)

    monkeypatch.setattr(cli_audit, "_client", client)
    monkeypatch.setattr(case_cli, "_client", client)
    return await asyncio.to_thread(CliRunner().invoke, group, args)


def _js_verify(path: Path, pinned: str) -> dict[str, Any]:
    assert NODE is not None
    run = subprocess.run(
        [NODE, "tests/js/verify-bundle.mjs", str(path), pinned],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode in (0, 1), run.stderr
    out: dict[str, Any] = json.loads(run.stdout)
    assert out["ok"] is (run.returncode == 0)
    return out


def _python_code(path: Path, pinned: str) -> str:
    try:
        verify_bundle(json.loads(path.read_text()), pinned_genesis_hash=pinned)
    except AuditFailure as failure:
        return failure.code
    return "ok"


def _flip_after(text: str, needle: str) -> str:
    at = text.index(needle) + len(needle)
    return text[:at] + ("1" if text[at] == "0" else "0") + text[at + 1 :]


async def _exported(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> dict[str, Path]:
    ids = await cluster.commit_rounds(2, case_ref="CASE-JS-{round}")
    one, case = tmp_path / "one.bundle.json", tmp_path / "case.bundle.json"
    args = ["export", "--node", "http://fr.api", "--record", ids[1], "--checkpoint-latest"]
    result = await _cli(cluster, monkeypatch, cli_audit.bundle, [*args, "--out", str(one)])
    assert result.exit_code == 0, result.output
    args = ["export", "CASE-JS-0", "--node", "http://fr.api", "--out", str(case)]
    result = await _cli(cluster, monkeypatch, case_cli.case, args)
    assert result.exit_code == 0, result.output
    return {"comity-bundle/1": one, "comity-case/1": case}


async def test_exported_bundles_verify_in_js_and_one_flipped_byte_is_named(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    files = await _exported(cluster, monkeypatch, tmp_path)
    pinned = genesis_hash(cluster.genesis.model_dump(mode="json"))
    flips: dict[str, Callable[[str], str]] = {
        "bad_record_signature": lambda t: _flip_after(t, '"nonce":"test'),
        "bad_certificate": lambda t: _flip_after(t, '"signatures":[{"signature":"'),
    }
    for fmt, path in files.items():
        doc = json.loads(path.read_text())
        assert doc["format"] == fmt
        verdict = _js_verify(path, pinned)
        assert verdict["ok"] and verdict["pinned"], verdict
        assert [r["id"] for r in verdict["records"]] == doc["records"]
        assert {"genesis_pinned", "certificate", "record", "consistency"} <= set(verdict["checks"])
        assert _js_verify(path, "00" * 32)["code"] == "genesis_mismatch"
        text = json.dumps(doc, separators=(",", ":"), sort_keys=True)
        for code, flip in flips.items():
            tampered = tmp_path / f"tampered-{code}.json"
            tampered.write_text(flip(text))
            assert _python_code(tampered, pinned) == code, fmt
            got = _js_verify(tampered, pinned)
            assert got["code"] == code, (fmt, got)


@pytest.mark.cluster(on_disk=True)
async def test_a_case_bundle_with_a_private_body_verifies_in_js_and_a_changed_body_is_named(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A party's case bundle carries a private act's body: the JS checks it against the
    signed commitment, as ledger/audit/bundle.py does (docs/PRIVACY.md)."""
    ids = await _build_case(cluster)
    record = _act(cluster, "CN", "preservation_request", case_ref=CASE)
    ids["private"] = await _file(
        cluster, "CN", cluster.member("CN").investigator, record, retain_s=3600
    )
    reply = await cluster.api["CN"].get(f"/v1/cases/{CASE}/bundle", headers=_token(cluster, "CN"))
    assert reply.status_code == 200, reply.text
    doc = reply.json()
    assert ids["private"] in doc["private"]
    pinned = genesis_hash(cluster.genesis.model_dump(mode="json"))
    path = tmp_path / "case.bundle.json"
    path.write_text(json.dumps(doc))
    verdict = _js_verify(path, pinned)
    assert verdict["ok"], verdict
    assert set(ids.values()) <= {r["id"] for r in verdict["records"]}
    # The case's claims too, as comity case verify checks them (caseclaims.js): the same
    # reasons, record by record; and with the body left out, the private act is a header only
    # (its content unseen, so its case_record reason is not checked; Python skips it too).
    python = verify_case_bundle(doc, pinned_genesis_hash=pinned).reasons
    assert verdict["reasons"] == {rid: list(rs) for rid, rs in python.items()}
    assert {"case_section", "case_order", "case_refs", "case_reasons"} <= set(verdict["checks"])
    header_only = {k: v for k, v in doc.items() if k != "private"}
    assert {"reason": "case_record"} in python[ids["private"]]
    path.write_text(json.dumps(header_only))
    verdict = _js_verify(path, pinned)
    assert verdict["ok"], verdict
    python = verify_case_bundle(header_only, pinned_genesis_hash=pinned).reasons
    assert verdict["reasons"] == {rid: list(rs) for rid, rs in python.items()}
    path.write_text(json.dumps(doc))
    doc["private"][ids["private"]]["salt"] = _flip_after(doc["private"][ids["private"]]["salt"], "")
    path.write_text(json.dumps(doc))
    assert _python_code(path, pinned) == "body_mismatch"
    assert _js_verify(path, pinned)["code"] == "body_mismatch"
