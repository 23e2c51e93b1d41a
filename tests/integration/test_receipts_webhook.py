"""The receipt webhook on the 4-node in-process consortium (docs/CHANNELS.md, issue 19).

CN's node holds an integration key (enrolled at genesis with role
``integration``) and a webhook secret. CN's authority sends an MLA request to
TH; CN's e-CODEX connector back end reports the message. Issue 19 "done
when": a webhook call carrying an e-CODEX message id and an evidence hash
anchors a receipt, and the same call twice anchors it once. Every node then
shows the receipt in the request's channel trail.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from api.cli.bootstrap import build_genesis
from ledger.keys import SigningKey, save_signing_key
from ledger.keyspace import receipt_key
from ledger.records import format_time
from ledger.store import Store
from node.clock import utcnow
from node.config import Receipts
from node.genesis import Genesis
from node.receipts import SIGNATURE_HEADER, signature_header
from node.runtime import Node
from node.tokens import create_token
from tests.cluster import FAST_CONSENSUS, Cluster

SECRET = b"4c1f0e5a9b7d3c2e8f6a1b0c9d8e7f6a5b4c3d2e1f0a9b8c"
MESSAGE_ID = "6f1c2a9e-1b7d-4c55-9e0a-2f9d1b3c4d5e@domibus.cn"
SUBMISSION = "5e" * 32


@pytest_asyncio.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with _running(tmp_path) as running:
        yield running


@asynccontextmanager
async def _running(tmp_path: Path, **consensus: Any) -> AsyncIterator[Cluster]:
    """The 4-node cluster, CN's node with the webhook and an enrolled integration key."""
    cluster = Cluster(4, consensus={**FAST_CONSENSUS, **consensus})
    integration = SigningKey.generate()
    urls = {m.state: f"http://{m.state.lower()}.p2p" for m in cluster.members}
    raw = build_genesis(cluster.chain_id, cluster.members, urls, cluster.consensus)
    raw["enrollments"].append(
        {
            "state": "CN",
            "pubkey": integration.public_hex,
            "roles": ["integration"],
            "agency": "China e-CODEX connector",
        }
    )
    cluster.genesis = Genesis.model_validate(raw)
    secret_path, key_path = tmp_path / "webhook.secret", tmp_path / "integration.key"
    secret_path.write_bytes(SECRET)
    secret_path.chmod(0o600)
    save_signing_key(key_path, integration)
    receipts = Receipts(webhook_secret_path=secret_path, integration_key_path=key_path)
    for member in cluster.members:  # memory stores; a data dir each for the token files
        config = cluster._make_node(member).config.model_copy(
            update={
                "data_dir": tmp_path / member.state,
                "receipts": receipts if member.state == "CN" else None,
            }
        )
        config.data_dir.mkdir()
        cluster.nodes[member.state] = Node(
            config,
            genesis=cluster.genesis,
            key=member.node,
            store=Store.open_memory(),
            transports=cluster.transports,
            enc_key=member.enc,
        )
    await cluster.start()
    try:
        yield cluster
    finally:
        await cluster.stop()


async def _request(cluster: Cluster) -> str:
    envelope = cluster.envelope(
        "CN", type_="mla_request", signer=cluster.member("CN").authority, evidence=[]
    )
    reply = await cluster.api["CN"].post("/v1/records", json=envelope)
    assert reply.status_code == 202, reply.text
    record_id: str = reply.json()["id"]
    assert await cluster.nodes["CN"].wait_committed(record_id, 15)
    return record_id


def _body(anchored: str, **changes: Any) -> bytes:
    now = format_time(utcnow())
    body = {
        "record_id": anchored,
        "channel": "e_codex",
        "external_id": MESSAGE_ID,
        "document_sha256": "d0" * 32,
        "delivery_evidence": [{"kind": "submission", "sha256": SUBMISSION, "at": now}],
        "sender_endpoint": "urn:oasis:names:tc:ebcore:partyid-type:unregistered:CN-MPS",
        "recipient_endpoint": "urn:oasis:names:tc:ebcore:partyid-type:unregistered:TH-OAG",
        "sent_at": now,
        **changes,
    }
    return json.dumps(body).encode()


def _token(cluster: Cluster, state: str) -> dict[str, str]:
    _, secret = create_token(
        cluster.nodes[state].config.data_dir, "authority", f"{state} authority", state=state
    )
    return {"authorization": f"Bearer {secret}"}


async def _call(
    cluster: Cluster, body: bytes, *, header: str | None = None, at: float | None = None
) -> httpx.Response:
    signed = signature_header(SECRET, int(at if at is not None else time.time()), body)
    headers = {"content-type": "application/json", SIGNATURE_HEADER: header or signed}
    return await cluster.api["CN"].post("/v1/receipts/webhook", content=body, headers=headers)


async def test_a_webhook_call_anchors_a_receipt_once_and_every_node_shows_the_trail(
    cluster: Cluster,
) -> None:
    request_id = await _request(cluster)
    body = _body(request_id)
    first = await _call(cluster, body)
    assert first.status_code == 202, first.text
    assert first.json()["duplicate"] is False
    receipt_id = first.json()["id"]
    again = await _call(cluster, body)  # a connector's retry, the first still pending
    assert again.status_code == 200, again.text
    assert again.json() == {"id": receipt_id, "status": again.json()["status"], "duplicate": True}
    assert await cluster.nodes["CN"].wait_committed(receipt_id, 15)
    await cluster.wait_height(cluster.nodes["CN"].app.height)
    later = await _call(cluster, _body(request_id, sent_at=format_time(utcnow())))
    assert (later.status_code, later.json()) == (
        200,
        {"id": receipt_id, "status": "committed", "duplicate": True},
    )
    key = receipt_key("CN", "e_codex", MESSAGE_ID)
    for state, node in cluster.nodes.items():  # once on every node, held by the parties
        party = state in ("CN", "TH")
        found = [rid for _, rid in node.store.search("receipt", key)]
        assert found == ([receipt_id] if party else []), state
        header = (await cluster.api[state].get(f"/v1/records/{receipt_id}")).json()
        record = header["envelope"]["record"]
        assert (record["type"], record["class"], record["refs"]) == (
            "private_act",
            "receipt",
            [request_id],
        )
        assert record["parties"] == ["CN", "TH"]
        # Without a token only the header is served: no trail of the private receipt.
        plain = (await cluster.api[state].get(f"/v1/records/{request_id}")).json()
        assert plain["channel_trail"] == {"receipts": [], "truncated": False}
        trail = (
            await cluster.api[state].get(
                f"/v1/records/{request_id}", headers=_token(cluster, state)
            )
        ).json()["channel_trail"]
        assert [r["id"] for r in trail["receipts"]] == ([receipt_id] if party else []), state
        if party:
            item = trail["receipts"][0]
            assert (item["channel"], item["external_id"], item["actor_state"]) == (
                "e_codex",
                MESSAGE_ID,
                "CN",
            )
            assert [e["kind"] for e in item["evidence"]] == ["submission"]
    desk = cluster.nodes["CN"].receipts
    assert desk is not None and header["envelope"]["signer"] == desk.key.public_hex


async def test_a_second_receipt_of_the_message_by_another_key_is_409(cluster: Cluster) -> None:
    """At admission the node refuses a receipt of a message its state anchored already,
    whatever key signed it, even when the first is private and the second in clear."""
    request_id = await _request(cluster)
    bare_id = MESSAGE_ID.split("@")[0]  # an "@" in clear is refused as an e-mail address
    first = await _call(cluster, _body(request_id, external_id=bare_id))
    assert first.status_code == 202, first.text
    assert await cluster.nodes["CN"].wait_committed(first.json()["id"], 15)
    manual = cluster.envelope(
        "CN",
        type_="exchange_receipt",
        signer=cluster.member("CN").investigator,
        refs=[request_id],
        territorial_states=["CN"],
        evidence=[],
        channel="e_codex",
        external_id=bare_id,
        counterpart_state="TH",
        document_sha256="d1" * 32,
        sender_endpoint="CN-MPS",
        recipient_endpoint="TH-OAG",
        sent_at=format_time(utcnow()),
    )
    reply = await cluster.api["CN"].post("/v1/records", json=manual)
    assert reply.status_code == 409, reply.text
    error = reply.json()["error"]
    assert (error["code"], error["field"]) == ("duplicate_receipt", "record.external_id")


@pytest.mark.parametrize(
    ("header", "at", "code"),
    [
        ("", None, "signature_required"),
        ("t=abc,v1=00", None, "bad_signature_header"),
        ("v1=" + "0" * 64, None, "bad_signature_header"),
        (None, -360, "stale_signature"),
        (None, +360, "stale_signature"),
        ("t={now},v1=" + "0" * 64, None, "bad_signature"),
    ],
)
async def test_an_unsigned_stale_or_forged_call_is_401_and_anchors_nothing(
    cluster: Cluster, header: str | None, at: float | None, code: str
) -> None:
    """``at``: the signature's time, in seconds from now."""
    body = _body("ab" * 32)
    if header is not None:
        header = header.replace("{now}", str(int(time.time())))
        headers = {SIGNATURE_HEADER: header} if header else {}
        reply = await cluster.api["CN"].post("/v1/receipts/webhook", content=body, headers=headers)
    else:
        reply = await _call(cluster, body, at=time.time() + (at or 0))
    assert reply.status_code == 401, reply.text
    error = reply.json()["error"]
    assert (error["code"], error["field"]) == (code, f"header.{SIGNATURE_HEADER}")
    assert len(cluster.nodes["CN"].mempool) == 0


async def test_a_body_changed_after_signing_is_401(cluster: Cluster) -> None:
    body = _body("ab" * 32)
    header = signature_header(SECRET, int(time.time()), body)
    tampered = body.replace(b"d0d0", b"d1d0", 1)
    reply = await cluster.api["CN"].post(
        "/v1/receipts/webhook", content=tampered, headers={SIGNATURE_HEADER: header}
    )
    assert (reply.status_code, reply.json()["error"]["code"]) == (401, "bad_signature")


@pytest.mark.parametrize(
    ("changes", "status", "code", "field"),
    [
        ({"channel": "fax"}, 422, "invalid_receipt", "body.channel"),
        ({"external_id": "two words"}, 422, "invalid_receipt", "body.external_id"),
        ({"extra": 1}, 422, "invalid_receipt", "body.extra"),
        ({"record_id": "cd" * 32}, 422, "ref_not_found", "body.record_id"),
    ],
)
async def test_a_bad_body_names_the_field(
    cluster: Cluster, changes: dict[str, Any], status: int, code: str, field: str
) -> None:
    request_id = await _request(cluster)
    reply = await _call(cluster, _body(request_id, **changes))
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert (error["code"], error["field"]) == (code, field)


async def test_a_node_without_the_webhook_says_so_and_a_big_body_is_413(cluster: Cluster) -> None:
    reply = await cluster.api["TH"].post("/v1/receipts/webhook", content=b"{}")
    assert (reply.status_code, reply.json()["error"]["code"]) == (401, "signature_required")
    signed = {SIGNATURE_HEADER: signature_header(SECRET, int(time.time()), b"{}")}
    reply = await cluster.api["TH"].post("/v1/receipts/webhook", content=b"{}", headers=signed)
    assert (reply.status_code, reply.json()["error"]["code"]) == (404, "webhook_not_configured")
    big = b" " * (64 * 1024 + 1)
    reply = await _call(cluster, big)
    assert (reply.status_code, reply.json()["error"]["code"]) == (413, "body_too_large")


async def test_before_need_to_know_the_receipt_is_filed_in_clear(tmp_path: Path) -> None:
    """A chain before its need-to-know height has no private acts (docs/PRIVACY.md)."""
    async with _running(tmp_path, need_to_know_from_height=None) as cluster:
        request_id = await _request(cluster)
        bare_id = MESSAGE_ID.split("@")[0]
        first = await _call(cluster, _body(request_id, external_id=bare_id))
        assert first.status_code == 202, first.text
        receipt_id = first.json()["id"]
        assert await cluster.nodes["CN"].wait_committed(receipt_id, 15)
        await cluster.wait_height(cluster.nodes["CN"].app.height)
        for state in cluster.states:  # in clear: every node shows it in the trail
            view = (await cluster.api[state].get(f"/v1/records/{request_id}")).json()
            assert [r["id"] for r in view["channel_trail"]["receipts"]] == [receipt_id]
            record = (await cluster.api[state].get(f"/v1/records/{receipt_id}")).json()
            assert record["envelope"]["record"]["type"] == "exchange_receipt"
        again = await _call(cluster, _body(request_id, external_id=bare_id))
        assert (again.status_code, again.json()["id"]) == (200, receipt_id)
