"""A local fault stops the node loudly; a peer's fault is dropped (ledger/errors.py).

The driver loop catches only ``PeerFault``: a check failing on what a peer
sent is wrapped as one (``from_peer``) and the loop goes on, while an
``InvariantViolation`` or a ``StoreError``, even raised while handling a
peer's event, ends the driver task. Its supervisor (node/runtime.py) then
sets ``node.failed``, logs it at CRITICAL with the state that broke, and
/readyz answers 503 naming it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, cast

import httpx
import pytest

from consensus.messages import Vote
from ledger.errors import InvariantViolation, PeerUnavailable, RecordInvalid, StoreError
from node.clock import now_ms
from node.driver import PeerMessage
from node.peers import Peer
from node.runtime import Node
from node.wire import sign_request
from tests.cluster import Cluster


async def _ready(cluster: Cluster, state: str) -> None:
    for _ in range(200):
        if (await cluster.api[state].get("/readyz")).status_code == 200:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{state} never became ready")


async def _failed(node: Node) -> str:
    for _ in range(200):
        if node.failed is not None:
            return node.failed
        await asyncio.sleep(0.02)
    raise AssertionError("the node never reported the failure")


def _peer_event() -> PeerMessage:
    # Its handler is replaced in each test, so the message itself is never read.
    return PeerMessage(cast(Vote, object()), None, "ab" * 32)


async def _assert_stopped_loudly(
    cluster: Cluster, node: Node, caplog: pytest.LogCaptureFixture, named: str
) -> None:
    failed = await _failed(node)
    assert named in failed
    ready = await cluster.api["CN"].get("/readyz")
    assert ready.status_code == 503
    assert named in ready.json()["failed"]
    critical = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert any(named in r.getMessage() for r in critical), caplog.text
    assert not any("dropped event" in r.getMessage() for r in caplog.records)


@pytest.fixture
async def lone() -> AsyncIterator[Cluster]:
    cluster = Cluster(size=1)
    await cluster.start()
    await _ready(cluster, "CN")
    yield cluster
    await cluster.stop()


async def test_an_invariant_violation_in_a_peer_event_stops_the_node(
    lone: Cluster, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    node = lone.nodes["CN"]

    async def torn(event: PeerMessage) -> None:
        raise InvariantViolation("replica at height 9 while the store is at height 3")

    monkeypatch.setattr(node.driver, "_on_peer_message", torn)
    caplog.set_level(logging.WARNING)
    assert node.driver.post(_peer_event())
    await _assert_stopped_loudly(lone, node, caplog, "replica at height 9")


async def test_a_store_error_on_the_persist_path_stops_the_node(
    lone: Cluster, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    node = lone.nodes["CN"]

    def disk_full(name: str, value: bytes, *, sync: bool = True) -> None:
        raise StoreError("store at /data/ledger failed: IO error: No space left on device")

    monkeypatch.setattr(node.store, "put_state", disk_full)
    caplog.set_level(logging.WARNING)
    reply = await lone.api["CN"].post("/v1/records", json=lone.envelope("CN"))
    assert reply.status_code in (200, 202), reply.text  # admitted: the next height persists
    await _assert_stopped_loudly(lone, node, caplog, "No space left on device")


async def test_a_check_failing_on_a_peer_event_is_dropped_as_the_peers_fault(
    lone: Cluster, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    node = lone.nodes["CN"]

    async def invalid(event: PeerMessage) -> None:
        raise RecordInvalid("record.type is unknown", field="record.type")

    monkeypatch.setattr(node.driver, "_on_peer_message", invalid)
    caplog.set_level(logging.WARNING)
    assert node.driver.post(_peer_event())
    for _ in range(100):
        if any("dropped event" in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(0.02)
    dropped = [r.getMessage() for r in caplog.records if "dropped event" in r.getMessage()]
    assert dropped == [
        f"dropped event PeerMessage: PeerMessage from peer {'ab' * 8}: record.type is unknown"
    ]
    assert node.failed is None
    assert (await lone.api["CN"].get("/readyz")).status_code == 200


async def test_a_block_fetch_that_dies_of_a_local_fault_fails_the_node(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Block fetches run as background tasks: one that raised anything but a
    PeerFault used to die unseen ("Task exception was never retrieved")."""
    cluster = Cluster(size=2)
    await cluster.start()
    try:
        await _ready(cluster, "CN")
        node = cluster.nodes["CN"]
        assert node.peers is not None

        real = node.peers.request
        failure: list[Exception] = []

        async def request(peer: Peer, path: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
            if path == "/p2p/v1/block" and failure:  # only the fetch: sync polls go on
                raise failure[0]
            return await real(peer, path, *args, **kwargs)

        caplog.set_level(logging.WARNING)
        monkeypatch.setattr(node.peers, "request", request)
        failure.append(PeerUnavailable("VN /p2p/v1/block: ConnectError: refused"))
        node.sync.fetch_block("ab" * 32, node.app.height + 1, None)
        await asyncio.sleep(0.2)
        assert node.failed is None  # a peer's fault: the next peer is tried, nothing dies

        failure[0] = InvariantViolation("peer table lists a state twice")
        node.sync.fetch_block("cd" * 32, node.app.height + 1, None)
        await _assert_stopped_loudly(cluster, node, caplog, "peer table lists a state twice")
    finally:
        await cluster.stop()


@pytest.mark.parametrize(
    "error", [StoreError("store at /data/ledger failed: IO error"), InvariantViolation("torn")]
)
async def test_a_p2p_handler_never_counts_a_local_fault_as_the_peers(
    error: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The P2P handlers used to catch every ComityError as "peer item refused"."""
    cluster = Cluster(size=2)
    await cluster.start()
    try:
        node = cluster.nodes["CN"]

        def broken(envelope: object) -> None:
            raise error

        monkeypatch.setattr(node.inbound, "accept_gossip", broken)
        path, sender = "/p2p/v1/batch", cluster.member("FR").node
        payload = {"items": [{"record": cluster.envelope("FR")}]}
        body, signed = sign_request(
            sender, cluster.chain_id, path, node.key.public_hex, payload, now_ms()
        )
        transport = cluster.transports["CN"]
        async with httpx.AsyncClient(transport=transport, base_url="http://p2p") as client:
            with pytest.raises(type(error)):  # the app raised it: a 500, never a 200
                await client.post(path, content=body, headers=signed.headers())
        assert not any("refused" in reason for reason in node.peer_faults)
    finally:
        await cluster.stop()
