"""The auditor over a node's real HTTP API (ASGITransport, no sockets): verify, bundles, watch.

The router ``api/routers/bundle.py`` is mounted on the app under test here
(the lead wires it into api/app.py), so these tests do not depend on that line.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from api.cli import audit as cli_audit
from api.cli import audit_client
from api.cli.audit_client import HttpSource, Watcher, verify_chain
from api.routers import bundle as bundle_router
from ledger.audit.bundle import verify_bundle
from ledger.audit.chain import ChainVerifier, genesis_hash
from ledger.audit_source import StoreSource, build_bundle
from tests.audit_chain import AuditChain


def _api(chain: AuditChain) -> httpx.AsyncClient:
    from api.app import create_app

    app = create_app(chain.node)
    if not any(getattr(r, "path", "") == "/v1/genesis" for r in app.routes):
        app.include_router(bundle_router.router)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://node.api")


class Switch(httpx.AsyncBaseTransport):
    """One URL whose node can be swapped (honest -> forged), or edited on the way."""

    def __init__(self, target: httpx.AsyncClient, edit: Any = None) -> None:
        self.target, self.edit = target, edit

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        reply = await self.target.get(request.url.path, params=request.url.params)
        body = reply.content
        if self.edit is not None and reply.status_code == 200:
            body = json.dumps(self.edit(request.url.path, json.loads(body))).encode()
        return httpx.Response(
            reply.status_code, content=body, headers={"content-type": "application/json"}
        )


@pytest.fixture
def chain() -> AuditChain:
    made = AuditChain()
    made.grow(2)
    made.add_member("BR", "Brazil")
    made.grow(3)
    return made


async def test_verify_over_http_pages_through_the_whole_chain(chain: AuditChain) -> None:
    async with _api(chain) as client:
        verifier = ChainVerifier(chain.genesis_json)
        point = await verify_chain(client, verifier)
    assert point.height == chain.app.height and point.ledger_size == chain.app.store.ledger_size


def _run_cli(
    monkeypatch: pytest.MonkeyPatch, chain: AuditChain, args: list[str], edit: Any = None
) -> Any:
    def client(url: str, token: str | None) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=Switch(_api(chain), edit), base_url=url)

    monkeypatch.setattr(cli_audit, "_client", client)
    return CliRunner().invoke(
        cli_audit.verify if args[0] == "verify" else cli_audit.bundle, args[1:]
    )


def test_comity_verify_completes_a_devnet_genesis_and_passes(
    chain: AuditChain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    genesis = tmp_path / "genesis.json"
    genesis.write_text(json.dumps(chain.genesis_file))  # defaults left out, as devnet writes
    result = _run_cli(
        monkeypatch, chain, ["verify", "--genesis", str(genesis), "--node", "http://n"]
    )
    assert result.exit_code == 0, result.output
    assert f"OK: blocks 1..{chain.app.height}" in result.output
    assert "validator set change: add BR from height 7" in result.output


def test_comity_verify_names_the_first_failing_height(
    chain: AuditChain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    genesis = tmp_path / "genesis.json"
    genesis.write_text(json.dumps(chain.genesis_json))

    def forge(path: str, body: Any) -> Any:
        for block in body.get("blocks", []):
            if block["header"]["height"] == 4:
                block["envelopes"][0]["record"]["vote"] = "no"
        return body

    result = _run_cli(
        monkeypatch, chain, ["verify", "--genesis", str(genesis), "--node", "http://n"], edit=forge
    )
    assert result.exit_code == 1
    assert "FAIL at height 4: bad_record_signature" in result.output


async def test_exported_bundle_equals_the_node_route_and_verifies(chain: AuditChain) -> None:
    record = chain.envelope("CN")
    chain.commit([record])
    rid = chain.record_id(record)
    async with _api(chain) as client:
        exported = await build_bundle(HttpSource(client), [rid], latest=True)
        served = (await client.get(f"/v1/records/{rid}/bundle", params={"latest": "true"})).json()
    assert exported == served
    report = verify_bundle(served)
    assert [r.id for r in report.records] == [rid] and len(report.changes) == 1


def test_bundle_export_and_verify_commands(
    chain: AuditChain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid = chain.record_id(chain.blocks()[0]["envelopes"][0])
    out = tmp_path / "b.json"
    result = _run_cli(
        monkeypatch,
        chain,
        [
            "bundle",
            "export",
            "--node",
            "http://n",
            "--record",
            rid,
            "--checkpoint-latest",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    pin = ["--genesis-hash", genesis_hash(chain.genesis_json)]
    result = CliRunner().invoke(cli_audit.bundle, ["verify", str(out), *pin])
    assert result.exit_code == 0 and f"record {rid}" in result.output
    assert "OK: every signature, proof and certificate holds" in result.output
    doc = json.loads(out.read_text())
    doc["blocks"][0]["commit"]["signatures"][0]["signature"] = "00" * 64
    out.write_text(json.dumps(doc))
    result = CliRunner().invoke(cli_audit.bundle, ["verify", str(out), *pin])
    assert result.exit_code == 1 and "bad precommit signature" in result.output


async def test_bundle_verify_without_a_pinned_genesis_proves_nothing(
    chain: AuditChain, tmp_path: Path
) -> None:
    """FINDINGS M1: a bundle forged top to bottom under the forger's own genesis and keys."""
    forger = AuditChain()
    record = forger.envelope("CN")
    forger.commit([record])
    out = tmp_path / "forged.json"
    source = StoreSource(forger.app.store, forger.genesis_json)
    out.write_text(json.dumps(await build_bundle(source, [forger.record_id(record)])))
    result = CliRunner().invoke(cli_audit.bundle, ["verify", str(out)])
    assert result.exit_code == 2, result.output
    assert "genesis NOT pinned; this proves nothing" in result.output
    assert "OK:" not in result.output
    genesis = tmp_path / "genesis.json"
    genesis.write_text(json.dumps(chain.genesis_json))
    for pin in (["--genesis", str(genesis)], ["--genesis-hash", genesis_hash(chain.genesis_json)]):
        result = CliRunner().invoke(cli_audit.bundle, ["verify", str(out), *pin])
        assert result.exit_code == 1 and "genesis_mismatch" in result.output, result.output
    result = CliRunner().invoke(cli_audit.bundle, ["verify", str(out), "--genesis-hash", "XY"])
    assert result.exit_code == 2 and "64 lowercase hex" in result.output


# --- L6: comity verify against a node that hides its head or sends junk -------------------


def _hide_after(height: int) -> Any:
    """A consistent liar: blocks and the latest header stop at ``height``."""

    def edit(path: str, body: Any) -> Any:
        if path == "/v1/blocks":
            body["blocks"] = [b for b in body["blocks"] if b["header"]["height"] <= height]
            body["next_from"] = None
        if path == "/v1/blocks/latest":
            body["header"]["height"] = height
        return body

    return edit


def test_verify_min_height_catches_a_hidden_head(
    chain: AuditChain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    genesis = tmp_path / "genesis.json"
    genesis.write_text(json.dumps(chain.genesis_json))
    args = ["verify", "--genesis", str(genesis), "--node", "http://n"]
    hidden = _hide_after(3)
    result = _run_cli(monkeypatch, chain, args, edit=hidden)
    assert result.exit_code == 0 and "OK: blocks 1..3" in result.output  # a prefix holds
    result = _run_cli(
        monkeypatch, chain, [*args, "--min-height", str(chain.app.height)], edit=hidden
    )
    assert result.exit_code == 1, result.output
    assert (
        f"FAIL at height 4: head_too_low: the node served blocks up to 3, below "
        f"--min-height {chain.app.height}" in result.output
    )
    result = _run_cli(monkeypatch, chain, [*args, "--min-height", str(chain.app.height)])
    assert result.exit_code == 0, result.output


def test_verify_fails_when_the_node_claims_a_head_it_does_not_serve(
    chain: AuditChain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    genesis = tmp_path / "genesis.json"
    genesis.write_text(json.dumps(chain.genesis_json))

    def short(path: str, body: Any) -> Any:
        return _hide_after(3)(path, body) if path == "/v1/blocks" else body

    result = _run_cli(
        monkeypatch, chain, ["verify", "--genesis", str(genesis), "--node", "http://n"], edit=short
    )
    assert result.exit_code == 1, result.output
    assert (
        f"head_too_low: the node served blocks up to 3, below its own latest "
        f"height {chain.app.height}" in result.output
    )


class Junk(httpx.AsyncBaseTransport):
    """Serves ``body`` for one path, the honest node for the rest."""

    def __init__(self, target: httpx.AsyncClient, path: str, body: bytes) -> None:
        self.target, self.path, self.body = target, path, body

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == self.path:
            return httpx.Response(200, content=self.body)
        reply = await self.target.get(request.url.path, params=request.url.params)
        return httpx.Response(reply.status_code, content=reply.content)


@pytest.mark.parametrize("body", [b"<html>not json", b"[1, 2]", b'{"header": {"height": "9"}}'])
def test_verify_reports_a_junk_latest_block_as_a_node_error(
    chain: AuditChain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: bytes
) -> None:
    genesis = tmp_path / "genesis.json"
    genesis.write_text(json.dumps(chain.genesis_json))
    monkeypatch.setattr(
        cli_audit,
        "_client",
        lambda url, token: httpx.AsyncClient(
            transport=Junk(_api(chain), "/v1/blocks/latest", body), base_url=url
        ),
    )
    result = CliRunner().invoke(cli_audit.verify, ["--genesis", str(genesis), "--node", "http://n"])
    assert result.exit_code == 2, (result.output, result.exception)
    assert "/v1/blocks/latest" in result.output


def test_verify_caps_each_reply_and_shrinks_the_blocks_page(
    chain: AuditChain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    genesis = tmp_path / "genesis.json"
    genesis.write_text(json.dumps(chain.genesis_json))
    args = ["verify", "--genesis", str(genesis), "--node", "http://n"]
    biggest = max(len(json.dumps(b)) for b in chain.blocks())
    monkeypatch.setattr(audit_client, "RESPONSE_BYTES_MAX", 2 * biggest)
    result = _run_cli(monkeypatch, chain, args)  # pages shrink until they fit
    assert result.exit_code == 0 and f"OK: blocks 1..{chain.app.height}" in result.output
    monkeypatch.setattr(audit_client, "RESPONSE_BYTES_MAX", 200)
    result = _run_cli(monkeypatch, chain, args)
    assert result.exit_code == 2 and "reply over 200 bytes" in result.output, result.output


# --- fork watch -----------------------------------------------------------------------------


async def test_watch_alarms_when_a_node_switches_to_a_forged_history(chain: AuditChain) -> None:
    forged = AuditChain(like=chain)  # same genesis and validator keys: a colluding quorum
    for height in range(1, chain.app.height):  # the same history but the last block
        stored = chain.app.stored_block(height)
        assert stored is not None
        forged.app.commit(*stored)
    forged.clock, forged.nonce = chain.clock, chain.nonce + 1000
    forged.grow(3, per_block=1)  # ... then its own blocks: two past the honest tip
    honest_api, forged_api = _api(chain), _api(forged)
    liar = Switch(honest_api)
    clients = {
        "http://a": honest_api,
        "http://b": httpx.AsyncClient(transport=liar, base_url="http://b"),
    }
    watcher = Watcher(chain.genesis_json, clients, log=lambda _: None)
    assert await watcher.poll() == []
    assert watcher.trusted["http://b"].height == chain.app.height
    liar.target = forged_api  # B now serves another certified history
    alarms = await watcher.poll()
    assert [(a.node, a.code) for a in alarms] == [("http://b", "not_an_extension")]
    assert "does not extend the verified chain" in alarms[0].detail
    chain.grow(3)  # the honest chain overtakes: B's tip is now a fork
    alarms = await watcher.poll()
    assert [(a.node, a.code) for a in alarms] == [("http://b", "fork")]


async def test_watch_flags_a_node_serving_an_altered_store(chain: AuditChain) -> None:
    def alter(path: str, body: Any) -> Any:
        for block in body.get("blocks", []):
            if block["header"]["height"] == 2:
                block["envelopes"][0]["record"]["case_ref"] = "ALTERED"
        return body

    clients = {
        "http://bad": httpx.AsyncClient(
            transport=Switch(_api(chain), alter), base_url="http://bad"
        ),
        "http://good": _api(chain),
    }
    watcher = Watcher(chain.genesis_json, clients, log=lambda _: None)
    alarms = await watcher.poll()
    assert [(a.node, a.code, a.height) for a in alarms] == [("http://bad", "invalid_chain", 2)]
    assert watcher.verifier.height == chain.app.height  # fed from the honest node instead


async def test_watch_once_exit_status_webhook_and_state_file(
    chain: AuditChain, tmp_path: Path
) -> None:
    genesis = tmp_path / "genesis.json"
    genesis.write_text(json.dumps(chain.genesis_json))
    state = tmp_path / "watch.json"
    posted: list[dict[str, Any]] = []

    async def post(url: str, payload: dict[str, Any]) -> None:
        posted.append(payload)

    async def once(client: httpx.AsyncClient) -> int:
        return await cli_audit.run_watch(
            genesis,
            {"http://n": client},
            interval_s=1,
            once=True,
            webhook="http://hook",
            state_file=state,
            post=post,
        )

    assert await once(_api(chain)) == 0 and posted == []
    saved = json.loads(state.read_text())
    assert saved["nodes"]["http://n"]["height"] == chain.app.height
    rolled = copy.deepcopy(saved)  # a restart remembers a higher checkpoint than the node has
    rolled["nodes"]["http://n"]["height"] = chain.app.height + 5
    rolled["nodes"]["http://n"]["ledger_size"] = chain.app.store.ledger_size + 5
    state.write_text(json.dumps(rolled))
    assert await once(_api(chain)) == 1
    assert posted[0]["alarms"][0]["code"] == "rollback"
