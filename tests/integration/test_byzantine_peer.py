"""A Byzantine peer on the real P2P endpoint of real node processes (127.0.0.1).

VN's node process is never started: the test holds VN's validator key and
speaks for it, so CN, FR and TH (a quorum of 4) are the honest nodes. Every
hostile input must be refused (403 for anything unauthenticated), nothing it
proposes may be committed, memory stays bounded, and the honest three keep
committing throughout.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.cli import devnet
from ledger.block import BlockHeader, proposal_sign_bytes, vote_sign_bytes
from ledger.canonical import canonical_bytes
from ledger.hashing import sha256_hex
from ledger.keys import SigningKey, load_signing_key
from node.clock import now_ms, utcnow
from node.wire import (
    MAX_TS_SKEW_MS,
    SIGNATURE_HEADER,
    request_sign_bytes,
    sign_reply,
    sign_request,
)
from tests.fault.harness import EnvelopeMaker
from tests.procnet import FAST, ProcNet

pytestmark = pytest.mark.slow

HONEST = ("CN", "FR", "TH")
BLOCK_BYTES_MAX = 64 * 1024
P2P_BATCH_BYTES_MAX = 2 * (BLOCK_BYTES_MAX + 64 * 1024)  # the least a node accepts
RSS_GROWTH_MAX_KB = 64 * 1024


class Byzantine:
    def __init__(self, net: ProcNet) -> None:
        self.net = net
        self.key = load_signing_key(net.root / "VN" / "node.key")
        self.p2p = {r["state"]: r["p2p_url"] for r in net.rows}
        self.maker = EnvelopeMaker(net.root, net.states, seed=99)

    def post(
        self, state: str, body: bytes, headers: dict[str, str], path: str = "/p2p/v1/batch"
    ) -> httpx.Response:
        return httpx.post(f"{self.p2p[state]}{path}", content=body, headers=headers, timeout=30)

    def node_key(self, state: str) -> str:
        return load_signing_key(self.net.root / state / "node.key").public_hex

    def signed(
        self,
        payload: dict[str, Any],
        key: SigningKey | None = None,
        ts_ms: int | None = None,
        chain_id: str = devnet.CHAIN_ID,
        state: str = "CN",
        path: str = "/p2p/v1/batch",
    ) -> tuple[bytes, dict[str, str]]:
        body, signed = sign_request(
            key or self.key,
            chain_id,
            path,
            self.node_key(state),
            payload,
            now_ms() if ts_ms is None else ts_ms,
        )
        return body, signed.headers()

    def batch_to_all(self, items: list[dict[str, Any]]) -> None:
        for state in HONEST:
            reply = self.post(state, *self.signed({"items": items}, state=state))
            assert reply.status_code == 200, reply.text

    def proposal(self, header: BlockHeader, envelopes: list[dict[str, Any]]) -> dict[str, Any]:
        block_hash = header.hash()
        signature = self.key.sign(
            proposal_sign_bytes(devnet.CHAIN_ID, header.height, 0, block_hash, -1)
        ).hex()
        msg = {
            "kind": "proposal",
            "height": header.height,
            "round": 0,
            "block_hash": block_hash,
            "valid_round": -1,
            "proposer": self.key.public_hex,
            "signature": signature,
        }
        return {"msg": msg, "block": {"header": header.to_json(), "envelopes": envelopes}}

    def vote(self, height: int, round_: int, block_hash: str | None) -> dict[str, Any]:
        signature = self.key.sign(
            vote_sign_bytes("prevote", devnet.CHAIN_ID, height, round_, block_hash)
        ).hex()
        return {
            "msg": {
                "kind": "vote",
                "type": "prevote",
                "height": height,
                "round": round_,
                "block_hash": block_hash,
                "validator": self.key.public_hex,
                "signature": signature,
            }
        }


@pytest.fixture(scope="module")
def byz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Byzantine]:
    net = ProcNet(
        tmp_path_factory.mktemp("byz") / "net",
        consensus={**FAST, "max_block_bytes": BLOCK_BYTES_MAX},
    )
    for state in net.states:
        with (net.root / state / "node.toml").open("a") as config:
            config.write(
                f"\n[limits]\nmax_p2p_batch_bytes = {P2P_BATCH_BYTES_MAX}\n"
                "max_pending_records = 500\n"
            )
    net.start(*HONEST)
    try:
        yield Byzantine(net)
    finally:
        net.stop_all()


def _commits_still(byz: Byzantine) -> None:
    """The honest nodes still commit a fresh record, and agree on the chain."""
    record_id = byz.net.submit("FR")
    heights = [byz.net.wait_committed(state, record_id, timeout_s=30) for state in HONEST]
    assert len(set(heights)) == 1
    hashes = {httpx.get(f"{byz.net.urls[s]}/v1/blocks/{heights[0]}").json()["hash"] for s in HONEST}
    assert len(hashes) == 1


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_batch_limit_too_small_for_blocks_refuses_to_start(byz: Byzantine) -> None:
    """Peers would refuse every proposal (the chain would stall): refuse up front."""
    config = (byz.net.root / "VN" / "node.toml").read_text()
    small = byz.net.root / "VN" / "small.toml"
    small.write_text(
        config.replace(
            f"max_p2p_batch_bytes = {P2P_BATCH_BYTES_MAX}",
            f"max_p2p_batch_bytes = {P2P_BATCH_BYTES_MAX - 1}",
        )
    )
    run = subprocess.run(
        [sys.executable, "-m", "api.cli", "run", "--config", str(small)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0
    assert "cannot start" in run.stderr and "max_p2p_batch_bytes" in run.stderr
    assert "Traceback" not in run.stderr


def test_unauthenticated_bodies_are_refused(byz: Byzantine) -> None:
    stranger = SigningKey.generate()
    good_body, good_headers = byz.signed({"items": []})
    cases: dict[str, tuple[bytes, dict[str, str]]] = {
        "for another node": byz.signed({"items": []}, state="FR"),
        "for another path": byz.signed({"items": []}, path="/p2p/v1/block"),
        "garbage bytes": (os.urandom(2048), {SIGNATURE_HEADER: "00" * 64}),
        "JSON array": (b"[1,2,3]", {SIGNATURE_HEADER: "00" * 64}),
        "no signature": (good_body, {"content-type": "application/json"}),
        "bad signature": (good_body, {SIGNATURE_HEADER: "ab" * 64}),
        "tampered body": (good_body.replace(b'"items":[]', b'"items":[1]'), good_headers),
        "non-validator key": byz.signed({"items": []}, key=stranger),
        "other chain": byz.signed({"items": []}, chain_id="another-chain"),
        "replayed old message": byz.signed({"items": []}, ts_ms=now_ms() - MAX_TS_SKEW_MS - 60_000),
        "future timestamp": byz.signed({"items": []}, ts_ms=now_ms() + MAX_TS_SKEW_MS + 60_000),
    }
    for what, (body, headers) in cases.items():
        for path in ("/p2p/v1/batch", "/p2p/v1/blocks", "/p2p/v1/status"):
            reply = byz.post("CN", body, headers, path)
            assert reply.status_code == 403, (what, path, reply.text)
            assert reply.json()["error"]["code"] == "peer_fault", (what, path)
    assert byz.post("CN", good_body, good_headers).status_code == 200
    replayed = byz.post("CN", good_body, good_headers)
    assert replayed.status_code == 403
    assert replayed.json()["error"]["reason"] == "wire_replay"
    _commits_still(byz)


def test_replies_are_signed_by_the_nodes_key(byz: Byzantine) -> None:
    """A reply, refusals included, carries the node's signature over the request it
    answers: the exact headers node.wire.sign_reply makes with CN's key."""
    cn = load_signing_key(byz.net.root / "CN" / "node.key")
    body, signed = sign_request(
        byz.key, devnet.CHAIN_ID, "/p2p/v1/status", cn.public_hex, {}, now_ms()
    )
    for status in (200, 403):  # the second time, the same request is a replay
        reply = byz.post("CN", body, signed.headers(), "/p2p/v1/status")
        assert reply.status_code == status
        expected = sign_reply(cn, devnet.CHAIN_ID, "/p2p/v1/status", signed, status, reply.content)
        assert {k: reply.headers[k] for k in expected} == expected


def test_oversized_batches_are_refused_without_reading_them(byz: Byzantine) -> None:
    filler = "x" * (P2P_BATCH_BYTES_MAX + 1)
    body, headers = byz.signed({"items": [], "pad": filler})
    reply = byz.post("CN", body, headers)
    assert reply.status_code == 403 and "limit" in reply.json()["error"]["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the node counts as it reads
        for _ in range(64):
            yield b" " * 65536

    unsigned = httpx.post(
        f"{byz.p2p['CN']}/p2p/v1/batch",
        content=chunks(),
        headers={SIGNATURE_HEADER: "00" * 64},
        timeout=30,
    )
    assert unsigned.status_code == 403
    assert unsigned.json()["error"]["reason"] == "wire_bad_headers"
    big = b" " * (64 * 65536)
    _, signed = sign_request(
        byz.key, devnet.CHAIN_ID, "/p2p/v1/batch", byz.node_key("CN"), {}, now_ms()
    )
    headers = signed.headers()
    headers["x-comity-body-sha256"] = sha256_hex(big)  # re-signed below for this body
    headers[SIGNATURE_HEADER] = byz.key.sign(
        request_sign_bytes(
            devnet.CHAIN_ID,
            "/p2p/v1/batch",
            byz.key.public_hex,
            byz.node_key("CN"),
            signed.ts_ms,
            signed.nonce,
            sha256_hex(big),
        )
    ).hex()
    streamed = httpx.post(
        f"{byz.p2p['CN']}/p2p/v1/batch", content=chunks(), headers=headers, timeout=30
    )
    assert streamed.status_code == 403 and "limit" in streamed.json()["error"]["message"]
    _commits_still(byz)


def test_replayed_batch_is_idempotent(byz: Byzantine) -> None:
    envelope = byz.maker.envelope("VN")
    body, headers = byz.signed({"items": [{"record": envelope}]})
    assert byz.post("CN", body, headers).status_code == 200
    for _ in range(2):  # the same request again is refused; a fresh signature is not
        assert byz.post("CN", body, headers).json()["error"]["reason"] == "wire_replay"
        assert byz.post("CN", *byz.signed({"items": [{"record": envelope}]})).status_code == 200
    record_id = _record_id(envelope)
    byz.net.wait_committed("TH", record_id, timeout_s=30)
    ids = [
        rid
        for h in range(1, byz.net.height("TH") + 1)
        for rid in httpx.get(f"{byz.net.urls['TH']}/v1/blocks/{h}").json()["record_ids"]
    ]
    assert ids.count(record_id) == 1


def _record_id(envelope: dict[str, Any]) -> str:
    from ledger.hashing import sha256_hex

    return sha256_hex(canonical_bytes(envelope["record"]))


def _await_vn_turn(byz: Byzantine) -> dict[str, Any]:
    """Commit records until VN (index 3 of CN, FR, TH, VN) proposes the next height's
    round 0; return the latest block view."""
    for _ in range(12):
        latest: dict[str, Any] = httpx.get(f"{byz.net.urls['CN']}/v1/blocks/latest").json()
        if (latest["header"]["height"] + 1) % 4 == 3:
            return latest
        _commits_still(byz)
    raise AssertionError("VN's turn never came")


def _bad_blocks(
    byz: Byzantine, latest: dict[str, Any]
) -> dict[str, tuple[BlockHeader, list[dict[str, Any]]]]:
    head = latest["header"]
    time_ms = utcnow().isoformat(timespec="milliseconds").replace("+00:00", "Z")
    base = dict(
        head,
        height=head["height"] + 1,
        prev_hash=latest["hash"],
        proposer="VN",
        time=time_ms,
        record_count=0,
    )
    forged = byz.maker.envelope("VN")
    forged["signature"] = secrets.token_hex(64)
    return {
        "wrong ledger root": (BlockHeader(**dict(base, ledger_root=secrets.token_hex(32))), []),
        "wrong prev hash": (BlockHeader(**dict(base, prev_hash=secrets.token_hex(32))), []),
        "forged record": (
            BlockHeader(**dict(base, record_count=1, ledger_size=head["ledger_size"] + 1)),
            [forged],
        ),
        "wrong validator set": (
            BlockHeader(**dict(base, validators_hash=secrets.token_hex(32))),
            [],
        ),
    }


def test_invalid_blocks_from_the_proposer_are_never_committed(byz: Byzantine) -> None:
    for what in ("wrong ledger root", "wrong prev hash", "forged record", "wrong validator set"):
        latest = _await_vn_turn(byz)
        header, envelopes = _bad_blocks(byz, latest)[what]
        byz.batch_to_all([byz.proposal(header, envelopes)])
        byz.net.wait_height(list(HONEST), header.height, timeout_s=30)
        for state in HONEST:
            committed = httpx.get(f"{byz.net.urls[state]}/v1/blocks/{header.height}").json()
            assert committed["hash"] != header.hash(), (what, state)
            assert committed["header"]["proposer"] != "VN", (what, state)
        logs = "".join(byz.net.log(s) for s in HONEST)
        if what in ("wrong ledger root", "forged record"):
            # A root its envelopes do not give (the forged record's header keeps the
            # old root): that body is not the block's body (PROTOCOL.md §7), so
            # nodes drop it and fetch again; never committed. A forged signature
            # under a matching root is refused as invalid in test_compact_blocks.
            assert f"block {header.hash()[:16]}: the " in logs and "are not its body" in logs
        else:
            assert f"invalid block {header.hash()[:16]}" in logs, what


def test_flood_of_valid_looking_messages_is_bounded(byz: Byzantine) -> None:
    pid = byz.net.procs["CN"].pid
    before_kb = _rss_kb(pid)
    height = byz.net.height("CN")
    started = time.monotonic()
    for batch in range(30):  # 30 x 500 signed votes for every near and far height/round
        items = [
            byz.vote(
                height + 1 + (i % 3) + (batch % 2) * 10_000,
                (i * 7919) % 100_000,
                secrets.token_hex(32),
            )
            for i in range(500)
        ]
        byz.batch_to_all(items)
        assert time.monotonic() - started < 240, "the flood took too long"
    for _ in range(5):  # records the pool may refuse once full (500), never grow past
        byz.batch_to_all([{"record": byz.maker.envelope("VN")} for _ in range(150)])
    assert byz.net.status("CN")["mempool"]["records"] <= 500
    refused = httpx.post(f"{byz.net.urls['CN']}/v1/records", json=byz.net.envelope("CN"))
    if refused.status_code == 503:  # full: a clear refusal with a retry hint
        assert refused.json()["error"]["code"] == "mempool_full"
        assert int(refused.headers["retry-after"]) >= 1
    deadline = time.monotonic() + 90  # the flood's records are valid: they drain by commits
    while byz.net.status("CN")["mempool"]["records"] > 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    _commits_still(byz)
    growth_kb = _rss_kb(pid) - before_kb
    assert growth_kb < RSS_GROWTH_MAX_KB, f"CN grew by {growth_kb} kB under the flood"
