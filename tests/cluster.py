"""An in-process consortium: N ``Node`` objects wired by ``httpx.ASGITransport``.

No sockets: each node's P2P app is reached through an ASGI transport, and each
node's HTTP API through another, so a 4-node cluster runs inside one event
loop in a test. Stores are in memory unless a ``data_root`` is given.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from api.app import create_app
from api.cli.bootstrap import DEMO_STATES, MemberKeys, build_genesis
from api.p2p import create_p2p_app
from ledger.acts import ACT_TYPES
from ledger.acts_templates import template
from ledger.canonical import canonical_bytes
from ledger.keys import SigningKey
from ledger.records import SCHEMA, format_time
from ledger.store import Store
from node.clock import utcnow
from node.config import Listen, NodeConfig, Peer, Timing
from node.genesis import Genesis
from node.peers import PeerSet
from node.runtime import Node

FAST_CONSENSUS = {
    "propose_timeout_ms": 400,
    "propose_timeout_delta_ms": 200,
    "prevote_timeout_ms": 200,
    "prevote_timeout_delta_ms": 100,
    "precommit_timeout_ms": 200,
    "precommit_timeout_delta_ms": 100,
    "heartbeat_interval_ms": 3_600_000,
}


class Switch(httpx.AsyncBaseTransport):
    """A stable transport for one state whose target node can be restarted or replaced.

    Peers keep their ``httpx.AsyncClient`` (and so this transport) across a
    restart of the node behind it; ``target`` None is a node that is down.
    """

    def __init__(self) -> None:
        self.target: httpx.AsyncBaseTransport | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.target is None:
            raise httpx.ConnectError("node is down", request=request)
        return await self.target.handle_async_request(request)


def gossip_off(monkeypatch: Any) -> None:
    """No record gossip between the nodes (consensus messages still flow): each node
    holds only its own clients' records, so proposals must carry or fetch them."""
    original = PeerSet.broadcast

    def no_gossip(
        self: PeerSet,
        item: dict[str, Any],
        size: int,
        *,
        gossip: bool = False,
        key: str | None = None,
    ) -> None:
        if not gossip:
            original(self, item, size)

    monkeypatch.setattr(PeerSet, "broadcast", no_gossip)


_COMMON = frozenset(
    {
        "schema",
        "type",
        "chain_id",
        "actor",
        "nonce",
        "occurred_at",
        "case_ref",
        "territorial_states",
        "evidence",
    }
)


@dataclass
class Cluster:
    size: int = 4
    chain_id: str = "comity-test"
    consensus: dict[str, Any] = field(default_factory=lambda: dict(FAST_CONSENSUS))
    data_root: Path | None = None
    members: list[MemberKeys] = field(default_factory=list)
    nodes: dict[str, Node] = field(default_factory=dict)
    api: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    transports: dict[str, httpx.AsyncBaseTransport] = field(default_factory=dict)
    nonce: int = 0
    #: Node keys to use instead of fresh in-memory ones, by state (a token's signer, say).
    node_keys: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.members = [
            replace(MemberKeys.generate(s, n), node=self.node_keys[s])
            if s in self.node_keys
            else MemberKeys.generate(s, n)
            for s, n in DEMO_STATES[: self.size]
        ]
        urls = {m.state: f"http://{m.state.lower()}.p2p" for m in self.members}
        self.genesis = Genesis.model_validate(
            build_genesis(self.chain_id, self.members, urls, self.consensus)
        )
        for member in self.members:
            self.nodes[member.state] = self._make_node(member)

    @property
    def states(self) -> list[str]:
        return [m.state for m in self.members]

    def member(self, state: str) -> MemberKeys:
        return next(m for m in self.members if m.state == state)

    def _make_node(self, member: MemberKeys) -> Node:
        data_dir = (self.data_root or Path("/nonexistent")) / member.state
        config = NodeConfig(
            state=member.state,
            genesis_path=Path("genesis.json"),
            node_key_path=Path("node.key"),
            data_dir=data_dir,
            api=Listen(port=1),
            p2p=Listen(port=2),
            open_read=True,
            peers=tuple(
                Peer(state=m.state, p2p_url=f"http://{m.state.lower()}.p2p")
                for m in self.members
                if m.state != member.state
            ),
            timing=Timing(rebroadcast_interval_ms=300, peer_status_interval_ms=200),
        )
        store = Store.open_leveldb(data_dir / "ledger") if self.data_root else Store.open_memory()
        return Node(
            config,
            genesis=self.genesis,
            key=member.node,
            store=store,
            transports=self.transports,
            enc_key=member.enc,
        )

    def join(self, member: MemberKeys) -> Node:
        """A node (fresh store) for a state admitted on the chain, or restarted with new keys."""
        self.members = [m for m in self.members if m.state != member.state] + [member]
        self.nodes[member.state] = self._make_node(member)
        return self.nodes[member.state]

    async def start(self, states: Sequence[str] | None = None) -> None:
        for state in states or self.states:
            node = self.nodes[state]
            switch = self.transports.setdefault(state, Switch())
            assert isinstance(switch, Switch)
            switch.target = httpx.ASGITransport(app=create_p2p_app(node.inbound))
            self.api[state] = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_app(node)),
                base_url=f"http://{state.lower()}.api",
            )
        for state in states or self.states:
            await self.nodes[state].start()

    async def stop(self, states: Sequence[str] | None = None) -> None:
        for state in states or list(self.nodes):
            if state in self.api:
                await self.api.pop(state).aclose()
            switch = self.transports.get(state)
            if isinstance(switch, Switch):
                switch.target = None
            await self.nodes[state].stop()

    def envelope(
        self,
        state: str,
        /,
        *,
        type_: str = "preservation_request",
        signer: SigningKey | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """A signed envelope by ``state``'s demo investigator (or ``signer``)."""
        self.nonce += 1
        member = self.member(state)
        now = utcnow()
        act_fields: dict[str, Any] = {}
        if type_ in ACT_TYPES:  # the catalogue's required fields for this act type
            act_fields = {
                k: v
                for k, v in template(
                    type_,
                    state=state,
                    territorial_states=("TH" if state != "TH" else "VN",),
                    now=now,
                ).items()
                if k not in _COMMON
            }
        record: dict[str, Any] = {
            "schema": SCHEMA,
            "type": type_,
            "chain_id": self.chain_id,
            "actor": {"state": state, "agency": f"{member.name} cybercrime unit"},
            "nonce": f"test{self.nonce:012d}",
            "occurred_at": format_time(now),
            "case_ref": "CASE-2026-0001",
            "territorial_states": ["TH"],
            "evidence": [{"sha256": f"{self.nonce:064x}"}],
            **act_fields,
            **({"visibility": "consortium"} if type_ in ACT_TYPES else {}),
            **fields,
        }
        custodian = record.get("custodian")
        if isinstance(custodian, dict) and custodian.get("state") not in record.get(
            "territorial_states", []
        ):  # the custodian's state is territorial (it gets the notice)
            record["custodian"] = {**custodian, "state": record["territorial_states"][0]}
        key = signer or member.investigator
        return {
            "record": record,
            "signer": key.public_hex,
            "signature": key.sign(canonical_bytes(record)).hex(),
        }

    async def commit_rounds(self, rounds: int, case_ref: str | None = None) -> list[str]:
        """Each state submits one record per round, and each round commits before the
        next, so the records span several blocks; then every node reaches that height.
        ``case_ref`` is formatted with ``round`` (``"CASE-{round}"``). Returns the record
        ids in submission order."""
        first = self.nodes[self.states[0]]
        ids: list[str] = []
        for round_ in range(rounds):
            fields: dict[str, Any] = (
                {} if case_ref is None else {"case_ref": case_ref.format(round=round_)}
            )
            batch = []
            for state in self.states:
                reply = await self.api[state].post(
                    "/v1/records", json=self.envelope(state, **fields)
                )
                assert reply.status_code == 202, reply.text
                batch.append(reply.json()["id"])
            for record_id in batch:
                assert await first.wait_committed(record_id, 15), f"{record_id} not committed"
            ids += batch
        await self.wait_height(first.app.height)
        return ids

    async def wait_height(
        self, height: int, states: Sequence[str] | None = None, timeout_s: float = 20.0
    ) -> None:
        async def reached() -> None:
            while any(self.nodes[s].app.height < height for s in states or self.states):
                await asyncio.sleep(0.02)

        await asyncio.wait_for(reached(), timeout_s)

    def block_hashes(self, state: str) -> list[str]:
        store = self.nodes[state].store
        headers = [store.get_header(h) for h in range(1, store.height + 1)]
        assert None not in headers, f"{state} lacks a header below its height"
        return [h.hash() for h in headers if h is not None]
