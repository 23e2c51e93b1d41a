"""The simulated consortium: real ``Node`` objects over the simulated network and disks.

``World`` owns the member keys (derived from the seed, so a replay signs the
same bytes), the genesis, one ``SimDisk`` per node and the ``Net``. Each
node is the production ``node.runtime.Node`` (driver, application, mempool,
block cache, block sync, P2P handlers) with three stand-ins only: its peer
links are ``tests.wholesim.net.Link`` transports, its store runs over a
``SimDisk``, and its clocks are the virtual clock. Signature checks that the
node would hand to worker threads run inline instead (threads would make the
order of events depend on the OS scheduler).

Two hooks serve the invariants only: each node's P2P replay cache is
passed to its P2P app (``create_p2p_app(..., replay=)``) and kept where the
memory invariant can read it (``SimNode.replay``), and every
peer event the driver refuses is reported (``World.on_refused``), so the
checker can tell an honest validator's message turned away from a flood's.

CPU is free in virtual time: a driver drains its whole inbox the instant an
event arrives, so an inbox never holds anything when the next message comes.
``event_cost_ms`` gives the driver a service time instead: after each group
of k events it is busy for k times that many virtual ms before it reads its
inbox again. Only then can a flood fill an inbox and show whether its
per-sender share protects the other validators (tests/wholesim/controls.py).

A crash is abrupt: the node's P2P app stops answering, its tasks are
cancelled, the disk loses what its mode says, and a restart builds a new
``Node`` over the same disk, as a restarted process reopens its data directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from api.cli.bootstrap import DEMO_STATES, MemberKeys, build_genesis
from api.p2p import create_p2p_app
from ledger.acts import ACT_TYPES
from ledger.acts_templates import template
from ledger.canonical import canonical_bytes
from ledger.errors import ComityError
from ledger.keys import SigningKey
from ledger.private import split
from ledger.records import SCHEMA, Envelope, format_time, parse_envelope
from ledger.store import Store
from node.admission import parse_submission
from node.authoring import sign_envelope
from node.config import Limits, Listen, NodeConfig, Peer, Timing
from node.driver import PeerMessage
from node.genesis import Genesis
from node.runtime import Node, _verify_all
from node.wire import ReplayCache
from tests.wholesim.disk import SimDisk
from tests.wholesim.net import Host, Net
from tests.wholesim.vloop import EPOCH, VirtualClock

#: Short consensus timeouts (virtual ms); no heartbeat blocks: heights follow records.
SIM_CONSENSUS = {
    "propose_timeout_ms": 400,
    "propose_timeout_delta_ms": 200,
    "prevote_timeout_ms": 200,
    "prevote_timeout_delta_ms": 100,
    "precommit_timeout_ms": 200,
    "precommit_timeout_delta_ms": 100,
    "heartbeat_interval_ms": 3_600_000,
}
#: The nodes' limits: the production defaults (a negative control may shrink them).
SIM_LIMITS = Limits()
SIM_TIMING = Timing(
    rebroadcast_interval_ms=300,
    peer_status_interval_ms=250,
    peer_request_timeout_ms=2000,
    peer_backoff_max_ms=1000,
)


def member_keys(seed: int, state: str, name: str) -> MemberKeys:
    """A member's keys derived from the run's seed: a replay signs the same bytes."""

    def derive(role: str) -> bytes:
        return hashlib.sha256(f"wholesim:{seed}:{state}:{role}".encode()).digest()

    return MemberKeys(
        state,
        name,
        SigningKey(derive("node")),
        SigningKey(derive("admin")),
        SigningKey(derive("investigator")),
        SigningKey(derive("authority")),
        X25519PrivateKey.from_private_bytes(derive("enc")),
    )


def url(state: str) -> str:
    return f"http://{state.lower()}.p2p"


@dataclass
class SimNode:
    """One running node (or a node that is down) and the disk it keeps across restarts."""

    member: MemberKeys
    host: Host
    disk: SimDisk
    node: Node | None = None
    restarts: int = 0
    ever_started: bool = False
    replay: ReplayCache | None = None  # the running node's P2P replay cache

    def node_store(self) -> Store:
        """The store over this node's disk as a restarted process would open it."""
        return Store(self.disk)

    @property
    def state(self) -> str:
        return self.member.state


@dataclass
class World:
    seed: int
    n: int
    net: Net
    clock: VirtualClock
    spare: int = 1  # members that governance may admit later
    disk_mode: str = "durable"
    limits: Limits = SIM_LIMITS
    event_cost_ms: float = 0.0
    #: Told of every peer event a driver refuses: (receiver state, sender key).
    on_refused: Callable[[str, str], None] = lambda state, sender: None
    members: list[MemberKeys] = field(default_factory=list)
    nodes: dict[str, SimNode] = field(default_factory=dict)
    twins: dict[str, SimNode] = field(default_factory=dict)
    nonce: int = 0
    private_nonce: int = 0  # private acts count apart: clear records keep their nonces

    def __post_init__(self) -> None:
        names = DEMO_STATES[: self.n + self.spare]
        self.universe = [member_keys(self.seed, s, name) for s, name in names]
        self.members = self.universe[: self.n]
        raw = build_genesis(
            f"wholesim-{self.seed}",
            self.members,
            {m.state: url(m.state) for m in self.members},
            SIM_CONSENSUS,
        )
        raw["genesis_time"] = format_time(EPOCH - timedelta(seconds=1))
        self.genesis = Genesis.model_validate(raw)
        self.genesis_json: dict[str, Any] = self.genesis.to_json()
        self.rng = random.Random(f"world:{self.seed}")
        self.salts = random.Random(f"salt:{self.seed}")  # private bodies' salts
        for member in self.universe:
            host = self.net.hosts.setdefault(member.state, Host(member.state))
            self.nodes[member.state] = SimNode(member, host, SimDisk(self.disk_mode))

    def member(self, state: str) -> MemberKeys:
        return next(m for m in self.universe if m.state == state)

    # --- lifecycle --------------------------------------------------------------------------

    def _build(self, sim: SimNode) -> Node:
        config = NodeConfig(
            state=sim.state,
            genesis_path=Path("genesis.json"),
            node_key_path=Path("node.key"),
            data_dir=Path("/nonexistent"),
            api=Listen(port=1),
            p2p=Listen(port=2),
            peers=tuple(
                Peer(state=m.state, p2p_url=url(m.state))
                for m in self.members
                if m.state != sim.state
            ),
            timing=SIM_TIMING,
            limits=self.limits,
        )
        transports: dict[str, httpx.AsyncBaseTransport] = {
            m.state: self.net.link(sim.host, m.state) for m in self.universe if m.state != sim.state
        }
        node = Node(
            config,
            genesis=self.genesis,
            key=sim.member.node,
            store=Store(sim.disk),
            transports=transports,
            enc_key=sim.member.enc,
        )
        node.mempool._clock = self.clock.monotonic  # its default is the process clock

        async def inline(chunks: list[list[Envelope]]) -> list[list[bool]]:
            return [_verify_all(chunk) for chunk in chunks]

        node._verify_in_threads = inline  # type: ignore[method-assign]  # no threads
        return node

    async def start(self, sim: SimNode) -> None:
        node = self._build(sim)
        sim.node, sim.ever_started = node, True
        sim.host.incarnation += 1  # a new process: a new replay cache
        sim.replay = ReplayCache()
        sim.host.app = httpx.ASGITransport(
            app=create_p2p_app(node.inbound, replay=sim.replay), raise_app_exceptions=False
        )
        await node.start()
        self._watch_driver(sim.state, node)

    def _watch_driver(self, state: str, node: Node) -> None:
        """Report refused peer events, and give the driver its service time if any."""
        driver = node.driver
        post = driver.post

        def watched_post(event: object) -> bool:
            taken = post(event)
            if not taken and isinstance(event, PeerMessage) and event.sender:
                self.on_refused(state, event.sender)
            return taken

        driver.post = watched_post  # type: ignore[method-assign]
        node.inbound.post = watched_post  # the P2P paths hold the driver's post itself
        if self.event_cost_ms <= 0:
            return
        cost_s, handle, get = self.event_cost_ms / 1000, driver._handle_group, driver.inbox.get
        busy = [0]

        async def handle_group(events: Sequence[object]) -> None:
            busy[0] += len(events)
            await handle(events)

        async def costly_get() -> object:
            events, busy[0] = busy[0], 0
            if events:
                await asyncio.sleep(events * cost_s)
            return await get()

        driver._handle_group = handle_group  # type: ignore[method-assign]
        driver.inbox.get = costly_get  # type: ignore[method-assign]

    async def crash(self, sim: SimNode) -> None:
        """Kill the node: no goodbye to peers, and the disk loses what its mode loses."""
        node, sim.node = sim.node, None
        sim.host.app = None
        if node is None:
            return
        tasks = [*node._tasks, *node._background, *node.sync._background]
        tasks += [t for p in node.peers.peers.values() for t in p.tasks()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for peer in node.peers.peers.values():
            await peer.client.aclose()
        node._verify_pool.shutdown(wait=False)
        sim.disk.crash()

    async def restart(self, sim: SimNode) -> None:
        await self.crash(sim)
        sim.restarts += 1
        await self.start(sim)

    async def stop_all(self) -> None:
        for sim in [*self.nodes.values(), *self.twins.values()]:
            await self.crash(sim)

    # --- clients ----------------------------------------------------------------------------

    def envelope(
        self,
        state: str,
        /,
        *,
        type_: str = "preservation_request",
        signer: SigningKey | None = None,
        **fields: Any,
    ) -> Envelope:
        """A signed record by ``state``'s investigator (or ``signer``), fresh nonce."""
        self.nonce += 1
        member = self.member(state)
        now = self.clock.utcnow()
        extra: dict[str, Any] = {}
        if type_ in ACT_TYPES:
            extra = {
                k: v
                for k, v in template(
                    type_,
                    state=state,
                    territorial_states=("TH" if state != "TH" else "VN",),
                    now=now,
                ).items()
                if k
                not in (
                    "schema",
                    "type",
                    "chain_id",
                    "actor",
                    "nonce",
                    "occurred_at",
                    "case_ref",
                    "territorial_states",
                    "evidence",
                )
            }
        record: dict[str, Any] = {
            "schema": SCHEMA,
            "type": type_,
            "chain_id": self.genesis.chain_id,
            "actor": {"state": state, "agency": f"{member.name} cybercrime unit"},
            "nonce": f"sim{self.seed}x{self.nonce:09d}",
            "occurred_at": format_time(now),
            "case_ref": "CASE-2026-0001",
            "territorial_states": ["TH"],
            "evidence": [{"sha256": f"{self.seed:032x}{self.nonce:032x}"}],
            **extra,
            **({"visibility": "consortium"} if type_ in ACT_TYPES else {}),
            **fields,
        }
        custodian = record.get("custodian")
        if isinstance(custodian, dict) and custodian.get("state") not in record.get(
            "territorial_states", []
        ):  # the custodian's state is territorial (it gets the notice)
            record["custodian"] = {**custodian, "state": record["territorial_states"][0]}
        key = signer or member.investigator
        return parse_envelope(
            {
                "record": record,
                "signer": key.public_hex,
                "signature": key.sign(canonical_bytes(record)).hex(),
            }
        )

    def private_envelope(self, state: str, others: Sequence[str], /) -> Envelope:
        """A private act by ``state``'s investigator (a preservation request about
        providers in ``others``, so its parties are ``state`` and ``others``), as the
        party's node receives it from a client: the header with its body attached."""
        self.private_nonce += 1
        member = self.member(state)
        now = self.clock.utcnow()
        record = template(
            "preservation_request", state=state, territorial_states=tuple(others), now=now
        )
        record.update(
            chain_id=self.genesis.chain_id,
            actor={"state": state, "agency": f"{member.name} cybercrime unit"},
            nonce=f"sim{self.seed}p{self.private_nonce:09d}",
            case_ref=f"CASE-{state}-P{self.private_nonce:04d}",
            custodian={
                "name": "Example Hosting Ltd",
                "kind": "service_provider",
                "state": others[0],
            },
        )
        # ``node.authoring.private_submission`` is split + sign_envelope with a salt
        # from ``secrets``; the seed's own salt keeps a replay byte for byte.
        header, body = split(
            record,
            retain_until=format_time(now + timedelta(days=30)),
            ref_parties=lambda record_id: (),
            salt=self.salts.randbytes(16).hex(),
        )
        submission = {**sign_envelope(member.investigator, header), "private": body}
        return parse_submission(submission, self.genesis.consensus.max_record_bytes)

    async def submit(self, state: str, envelope: Envelope) -> bool:
        """POST /v1/records at ``state``'s node: True if it accepted the record."""
        node = self.nodes[state].node
        if node is None:
            return False
        try:
            await node.verify_signatures([envelope])
            node.admission.admit(envelope)
        except ComityError:
            return False
        return True

    def up(self) -> list[SimNode]:
        return [sim for sim in self.nodes.values() if sim.node is not None]
