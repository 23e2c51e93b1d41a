"""Observer nodes on the in-process consortium (issue 23; docs/OPERATIONS.md, "Observer nodes").

Three observer keys are admitted by ``add_observer`` votes: CN's own observer
(a party node for CN, holding CN's encryption key), a foreign observer (CH:
headers only), both run as ``Node`` objects with ``role = "observer"``, and a
third foreign key (CA) that the tests use to speak raw P2P. The observers
catch up by block sync and follow; what they serve equals the validators'
answers byte for byte, and ``verify_chain`` (what ``comity verify`` runs)
passes against them. An observer's consensus message is refused as a
non-validator's, an unadmitted key's sync request is refused, and requests
past an observer's bucket are answered 429 ``rate_limited``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from api.app import create_app
from api.cli.audit_client import verify_chain
from consensus.messages import Vote
from ledger.audit.chain import ChainVerifier
from ledger.block import vote_sign_bytes
from ledger.keys import SigningKey
from ledger.records import parse_envelope
from ledger.store import Store
from node.clock import now_ms
from node.config import ConfigError, Listen, NodeConfig, Peer, Timing
from node.inbound import BATCH, BLOCKS, STATUS
from node.privacy import BODIES
from node.runtime import Node
from node.tokens import create_token
from node.wire import sign_request
from tests.cluster import Cluster
from tests.integration.test_need_to_know import _act, _file

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.cluster(on_disk=True)]

VOTERS = ("CN", "FR", "TH")  # 3 of 4: more than 2/3


@dataclass
class Net:
    cluster: Cluster
    keys: dict[str, SigningKey]  # observer state -> its node key
    nodes: dict[str, Node] = field(default_factory=dict)
    api: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    records: list[str] = field(default_factory=list)
    private_id: str = ""


def observer_node(
    cluster: Cluster,
    state: str,
    key: SigningKey,
    data_dir: Path,
    enc_key: X25519PrivateKey | None = None,
    *,
    store: Store | None = None,
) -> Node:
    """An observer ``Node`` for ``state``, linked to every validator of the cluster."""
    config = NodeConfig(
        state=state,
        role="observer",
        genesis_path=Path("genesis.json"),
        node_key_path=Path("node.key"),
        data_dir=data_dir,
        api=Listen(port=1),
        p2p=Listen(port=2),
        open_read=True,
        peers=tuple(
            Peer(state=m.state, p2p_url=f"http://{m.state.lower()}.p2p") for m in cluster.members
        ),
        timing=Timing(rebroadcast_interval_ms=300, peer_status_interval_ms=200),
    )
    return Node(
        config,
        genesis=cluster.genesis,
        key=key,
        store=store if store is not None else Store.open_leveldb(data_dir / "ledger"),
        transports=cluster.transports,
        enc_key=enc_key,
    )


async def _committed(cluster: Cluster, via: str, envelope: dict[str, Any]) -> int:
    reply = await cluster.api[via].post("/v1/records", json=envelope)
    assert reply.status_code == 202, reply.text
    view = await cluster.api[via].get(f"/v1/records/{reply.json()['id']}", params={"wait": 15})
    assert view.json()["status"] == "committed", view.text
    return int(view.json()["height"])


async def admit(cluster: Cluster, proposer: str, state: str, key: SigningKey) -> None:
    """An ``add_observer`` proposal by ``proposer``'s admin, and three yes votes."""
    admin = cluster.member(proposer).admin
    proposal = cluster.envelope(
        proposer,
        type_="member_proposal",
        signer=admin,
        action="add_observer",
        state=state,
        node_pubkey=key.public_hex,
        label=f"{state} court reader",
    )
    await _committed(cluster, proposer, proposal)
    proposal_id = proposal_id_of(proposal)
    for voter in VOTERS:
        vote = cluster.envelope(
            voter,
            type_="member_vote",
            signer=cluster.member(voter).admin,
            proposal=proposal_id,
            vote="yes",
        )
        await _committed(cluster, voter, vote)


def proposal_id_of(envelope: dict[str, Any]) -> str:
    return parse_envelope(envelope).id


async def _follow(net: Net, state: str, height: int) -> None:
    async def reached() -> None:
        while net.nodes[state].app.height < height:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(reached(), 15)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def net(
    module_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Net]:
    cluster = module_cluster
    keys = {s: SigningKey.generate() for s in ("CN", "CH", "CA")}
    # Blocks before the observers exist: they must catch up by block sync.
    net = Net(cluster, keys, records=await cluster.commit_rounds(2))
    record = _act(cluster, "CN", "preservation_request")
    net.private_id = await _file(cluster, "CN", cluster.member("CN").investigator, record, 3600)
    await asyncio.gather(
        admit(cluster, "CN", "CN", keys["CN"]),
        admit(cluster, "FR", "CH", keys["CH"]),
        admit(cluster, "FR", "CA", keys["CA"]),
    )
    root = tmp_path_factory.mktemp("observers")
    for state, enc in (("CN", cluster.member("CN").enc), ("CH", None)):
        node = observer_node(cluster, state, keys[state], root / state, enc)
        net.nodes[state] = node
        net.api[state] = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(node)),
            base_url=f"http://observer-{state.lower()}.api",
        )
        await node.start()
    try:
        yield net
    finally:
        for state, node in net.nodes.items():
            await net.api[state].aclose()
            await node.stop()


async def test_observers_catch_up_follow_and_never_vote(net: Net) -> None:
    cluster = net.cluster
    await asyncio.gather(*(_follow(net, s, cluster.nodes["CN"].app.height) for s in net.nodes))
    more = await cluster.commit_rounds(1)
    await asyncio.gather(*(_follow(net, s, cluster.nodes["CN"].app.height) for s in net.nodes))
    for state, node in net.nodes.items():
        headers = [node.store.get_header(h) for h in range(1, node.app.height + 1)]
        hashes = [h.hash() for h in headers if h is not None]
        assert hashes == cluster.block_hashes("CN")[: len(headers)], state
        assert node.driver.replica is None and node.store.get_state("consensus") is None
        assert node.driver.stats.synced_blocks == node.app.height, state
        assert all(node.store.has_record(r) for r in net.records + more), state
    status = (await net.api["CN"].get("/v1/status")).json()
    assert (status["role"], status["state"]) == ("observer", "CN")
    for path in ("/", "/docs"):  # the console and the API docs, as a validator serves them
        want, got = await cluster.api["CN"].get(path), await net.api["CN"].get(path)
        assert (got.status_code, got.content) == (200, want.content), path


async def test_reads_through_an_observer_equal_the_validators_byte_for_byte(net: Net) -> None:
    """Each answer is byte for byte a validator's. Headers, records and proofs are the
    same on every validator; a block's certificate is the quorum of precommits the
    node gathered, so validators may hold different valid ones, and an observer
    serves the one of the validator it synced that block from: CN's own observer
    follows CN's validator (``BlockSync._follow``), so it answers every read as CN's
    validator does."""
    cluster = net.cluster
    height = cluster.nodes["CN"].app.height
    await asyncio.gather(*(_follow(net, s, height) for s in net.nodes))
    record_id = net.records[0]
    same_everywhere = [
        f"/v1/records/{record_id}",
        f"/v1/records/{record_id}/proof",
        f"/v1/records/{net.private_id}",
        f"/v1/proofs/consistency?first=1&second={height}",
        "/v1/validators",
        "/v1/members",
        f"/v1/search?case_ref={cluster.envelope('CN')['record']['case_ref']}",
    ]
    blocks = [f"/v1/blocks/{h}?envelopes=true" for h in range(1, height + 1)]
    for path in same_everywhere + blocks:
        answers = set()
        for state in cluster.states:
            want = await cluster.api[state].get(path)
            assert want.status_code == 200, (path, want.text)
            answers.add(want.content)
        if path in same_everywhere:
            assert len(answers) == 1, path
        for state in net.nodes:
            got = await net.api[state].get(path)
            assert got.status_code == 200 and got.content in answers, (state, path)
            if state in cluster.states:  # an own observer serves its own validator's
                want = await cluster.api[state].get(path)
                assert got.content == want.content, (state, path)
            if path in blocks:  # the block itself, without the certificate: everywhere
                block = {k: v for k, v in got.json().items() if k != "commit"}
                for answer in answers:
                    assert block == {k: v for k, v in orjson.loads(answer).items() if k != "commit"}


async def test_comity_verify_passes_against_an_observer(net: Net) -> None:
    cluster = net.cluster
    height = cluster.nodes["CN"].app.height
    await asyncio.gather(*(_follow(net, s, height) for s in net.nodes))
    genesis = cluster.genesis.to_json()
    for state in net.nodes:
        point = await verify_chain(net.api[state], ChainVerifier(genesis))
        assert point.height >= height, state


async def test_an_own_observer_holds_its_states_bodies_and_a_foreign_one_headers(
    net: Net,
) -> None:
    async def fetched() -> None:
        while net.nodes["CN"].store.get_body(net.private_id) is None:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(fetched(), 15)
    for state, expected in (("CN", 200), ("CH", 403)):
        _, secret = create_token(net.nodes[state].config.data_dir, "investigator", "auditor")
        reply = await net.api[state].get(
            f"/v1/records/{net.private_id}/private", headers={"authorization": f"Bearer {secret}"}
        )
        assert reply.status_code == expected, (state, reply.text)
    assert net.nodes["CH"].store.get_body(net.private_id) is None
    # The foreign observer asks a party's node for the body: refused, not a party.
    reply = await _p2p(net, "CH", "CN", BODIES, {"ids": [net.private_id]})
    assert (reply.status_code, reply.json()["error"]["code"]) == (403, "not_a_party")


async def _p2p(
    net: Net, sender: str | SigningKey, to: str, path: str, payload: dict[str, Any]
) -> httpx.Response:
    """A signed P2P request by an observer's key (or ``sender`` itself) to ``to``'s node."""
    key = net.keys[sender] if isinstance(sender, str) else sender
    cluster = net.cluster
    body, signed = sign_request(
        key, cluster.chain_id, path, cluster.nodes[to].key.public_hex, payload, now_ms()
    )
    request = httpx.Request(
        "POST", f"http://{to.lower()}.p2p{path}", content=body, headers=signed.headers()
    )
    reply = await cluster.transports[to].handle_async_request(request)
    await reply.aread()
    return reply


async def test_an_observers_vote_is_refused_as_a_non_validators(net: Net) -> None:
    cluster = net.cluster
    key = net.keys["CA"]
    height = cluster.nodes["FR"].app.height + 1
    value = "aa" * 32
    vote = Vote(
        "prevote",
        height,
        0,
        value,
        key.public_hex,
        key.sign(vote_sign_bytes("prevote", cluster.chain_id, height, 0, value)).hex(),
    )
    stranger = SigningKey.generate()
    replies = [
        await _p2p(net, sender, "FR", BATCH, {"items": [{"msg": vote.to_json()}]})
        for sender in ("CA", stranger)
    ]
    for reply in replies:
        error = reply.json()["error"]
        assert (reply.status_code, error["code"], error["reason"]) == (
            403,
            "peer_fault",
            "wire_unknown_sender",
        )
    # The same key may read: a status request is answered.
    status = await _p2p(net, "CA", "FR", STATUS, {"height": 0})
    assert status.status_code == 200 and status.json()["height"] >= height - 1


async def test_an_unadmitted_observers_sync_requests_are_refused(net: Net) -> None:
    stranger = SigningKey.generate()
    for path, payload in ((STATUS, {"height": 0}), (BLOCKS, {"from_height": 1, "limit": 5})):
        reply = await _p2p(net, stranger, "TH", path, payload)
        error = reply.json()["error"]
        assert (reply.status_code, error["reason"]) == (403, "wire_unknown_sender"), path


async def test_observer_requests_over_the_rate_limit_are_refused_429(net: Net) -> None:
    limits = net.cluster.nodes["VN"].config.limits
    statuses = []
    for _ in range(limits.observer_burst_requests + 5):
        reply = await _p2p(net, "CA", "VN", STATUS, {"height": 0})
        statuses.append(reply.status_code)
        if reply.status_code == 429:
            error = reply.json()["error"]
            assert (error["code"], error["reason"]) == ("rate_limited", "observer_rate_limited")
            assert error["retry_after_s"] >= 1
            break
    assert statuses[-1] == 429, statuses
    assert set(statuses[:-1]) == {200} and len(statuses) > limits.observer_burst_requests // 2
    # A validator is never limited here.
    assert net.cluster.nodes["VN"].peer_faults["observer_rate_limited"] >= 1


async def test_an_observer_takes_no_records(net: Net) -> None:
    cluster = net.cluster
    for path, body in (
        ("/v1/records", cluster.envelope("CN")),
        ("/v1/records/batch", {"envelopes": [cluster.envelope("CN")]}),
    ):
        reply = await net.api["CN"].post(path, json=body)
        error = reply.json()["error"]
        assert (reply.status_code, error["code"], error["field"]) == (
            403,
            "observer_read_only",
            "record",
        ), path


async def test_an_observer_config_with_a_validator_key_is_refused(net: Net) -> None:
    cluster = net.cluster
    store = Store.open_memory()
    with pytest.raises(ConfigError, match="validator's node key"):
        observer_node(cluster, "CN", cluster.member("CN").node, Path("/nonexistent"), store=store)
    store.close()


async def test_a_long_polled_status_answers_at_the_next_commit(net: Net) -> None:
    """Commits reach an observer as they happen: its status request waits (``wait_ms``,
    at most 2 s) until the validator commits, and then carries the new height's proof."""
    cluster = net.cluster
    await cluster.wait_height(cluster.nodes["CN"].app.height)
    height = cluster.nodes["TH"].app.height
    loop = asyncio.get_running_loop()
    started = loop.time()
    idle = await _p2p(net, "CA", "TH", STATUS, {"height": height, "wait_ms": 300})
    assert loop.time() - started >= 0.3 and "next" not in idle.json()
    too_long = await _p2p(net, "CA", "TH", STATUS, {"height": height, "wait_ms": 60_000})
    assert too_long.status_code == 200  # out of range: answered at once, as without it
    started = loop.time()
    poll = asyncio.create_task(_p2p(net, "CA", "TH", STATUS, {"height": height, "wait_ms": 2000}))
    await asyncio.sleep(0.05)
    assert not poll.done()
    await cluster.commit_rounds(1)
    reply = await poll
    assert loop.time() - started < 2.0
    body = reply.json()
    assert body["height"] > height and body["next"]["header"]["height"] == height + 1


async def test_the_observer_set_is_served_as_the_chain_admitted_it(net: Net) -> None:
    """``GET /v1/observers``: the three admitted keys, CN's own observer a party node,
    the same answer on every validator and observer."""
    cluster = net.cluster
    height = cluster.nodes["CN"].app.height
    await asyncio.gather(*(_follow(net, s, height) for s in net.nodes))
    reply = await cluster.api["TH"].get("/v1/observers")
    assert reply.status_code == 200, reply.text
    rows = {row["node_pubkey"]: row for row in reply.json()["observers"]}
    assert set(rows) == {key.public_hex for key in net.keys.values()}
    for state, key in net.keys.items():
        row = rows[key.public_hex]
        assert (row["state"], row["label"], row["admitted"], row["until_height"]) == (
            state,
            f"{state} court reader",
            True,
            None,
        )
        assert row["party"] is (state == "CN")
        assert 1 < row["since_height"] <= height
        assert len(row["record_id"]) == 64
    for api in [*cluster.api.values(), *net.api.values()]:
        assert (await api.get("/v1/observers")).content == reply.content
