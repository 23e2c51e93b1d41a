"""Byzantine behaviours for a real node process, for fault campaigns only.

``comity run --byzantine dup-records,lying-heights,...`` makes a real node
binary misbehave at the wire level, so that the chaos campaign and the
devnet checks can put a Byzantine member among honest ones. The behaviours
wrap the node's own parts after it is built (its driver's proposing and
sending, its P2P answers, its peer links); nothing here runs in a node
started without the flag, and the flag is refused unless the environment
says ``COMITY_BYZANTINE_TESTING=1`` as well, so a production node cannot be
turned into an attacker by a stray option.

Behaviours (each alone or together):

``dup-records``     at its turn, propose a block holding one record in two
                    envelopes (needs ``--byzantine-signer``)
``conflicting-envelopes``  sign one record twice (two Ed25519 nonces) and
                    gossip one envelope to half the peers, the other to the rest
``equivocate``      sign a second proposal (another block) for each round it
                    leads, and send the two to different halves of the peers
``junk-blocks``     attach junk blocks to unsigned votes and badly signed
                    proposals, 64 a second
``withhold-blocks`` send its proposals without their blocks and serve none
``lying-heights``   claim a height of 10^9 in status replies and serve no
                    blocks to block sync
``flood-inbox``     500 badly signed prevotes a second to every peer
``flood-gossip``    100 valid records a second by gossip (needs the signer)
``replay``          re-send captured batches of its own, raw, every 2 s
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
from collections import deque
from collections.abc import Callable
from typing import Any

import httpx
from nacl import bindings

from consensus.messages import Proposal
from ledger.acts_templates import template
from ledger.block import proposal_sign_bytes
from ledger.canonical import canonical_bytes
from ledger.keys import SigningKey
from ledger.records import Envelope, format_time, parse_envelope
from node import clock
from node.application import Block
from node.authoring import complete_record
from node.config import ConfigError
from node.driver import Driver
from node.runtime import Node
from node.wire import block_wire

log = logging.getLogger("comity.byzantine")

ENV_FLAG = "COMITY_BYZANTINE_TESTING"
BEHAVIOURS = (
    "dup-records",
    "conflicting-envelopes",
    "equivocate",
    "junk-blocks",
    "withhold-blocks",
    "lying-heights",
    "flood-inbox",
    "flood-gossip",
    "replay",
)
NEEDS_SIGNER = frozenset({"dup-records", "conflicting-envelopes", "flood-gossip"})
LIE_HEIGHT = 10**9


class ByzantineRefused(ConfigError):
    """The flag was given where it must not work."""


def parse_behaviours(text: str, signer: SigningKey | None) -> frozenset[str]:
    """The behaviours named in ``text`` (comma-separated); refuse unknown ones, a
    missing signer, and any use without ``COMITY_BYZANTINE_TESTING=1``."""
    if os.environ.get(ENV_FLAG) != "1":
        raise ByzantineRefused(
            f"--byzantine is for fault campaigns only: set {ENV_FLAG}=1 in the environment as well"
        )
    names = frozenset(n.strip() for n in text.split(",") if n.strip())
    unknown = sorted(names - set(BEHAVIOURS))
    if unknown or not names:
        raise ByzantineRefused(
            f"unknown Byzantine behaviour {unknown[:1] or text!r}; known: {', '.join(BEHAVIOURS)}"
        )
    if names & NEEDS_SIGNER and signer is None:
        raise ByzantineRefused(
            f"{', '.join(sorted(names & NEEDS_SIGNER))} need "
            "--byzantine-signer (an enrolled key of this state)"
        )
    return names


def sign_with_nonce(key: SigningKey, message: bytes) -> bytes:
    """An Ed25519 signature with a random nonce: valid, and different from
    ``key.sign(message)``.

    RFC 8032 §5.1.6 derives the nonce ``r`` from the key and the message, so an
    honest signer makes one signature per message, but verification (§5.1.7)
    never checks how ``r`` was chosen. A key holder can therefore sign one record
    many times (finding C1). This computes the §5.1.6 equations with a random
    ``r``: R = rB, k = SHA-512(R || A || M), S = r + k·s mod L.
    """
    digest = hashlib.sha512(key.seed()).digest()
    a = bytearray(digest[:32])
    a[0] &= 248
    a[31] &= 127
    a[31] |= 64
    reduce = bindings.crypto_core_ed25519_scalar_reduce
    secret = reduce(bytes(a) + bytes(32))
    r = reduce(secrets.token_bytes(64))
    big_r = bindings.crypto_scalarmult_ed25519_base_noclamp(r)
    k = reduce(hashlib.sha512(big_r + key.public_key + message).digest())
    s = bindings.crypto_core_ed25519_scalar_add(
        r, bindings.crypto_core_ed25519_scalar_mul(k, secret)
    )
    return bytes(big_r + s)


class Byzantine:
    """The behaviours installed on one node."""

    def __init__(self, node: Node, behaviours: frozenset[str], signer: SigningKey | None) -> None:
        self.node = node
        self.behaviours = behaviours
        self.signer = signer
        self.tasks: list[asyncio.Task[None]] = []
        self._captured: deque[tuple[str, str, bytes, dict[str, str]]] = deque(maxlen=10)

    # --- records --------------------------------------------------------------------

    def twin_envelopes(self) -> tuple[Envelope, Envelope]:
        """One fresh record of this state, in two envelopes by the signer."""
        assert self.signer is not None
        node = self.node
        state = node.config.state
        other = next((s for s in sorted(node.app.state.members) if s != state), state)
        record = complete_record(
            template(
                "preservation_request", state=state, territorial_states=(other,), now=clock.utcnow()
            ),
            chain_id=node.app.chain_id,
        )
        if node.app.state.need_to_know_active(node.app.height + 1):
            record["visibility"] = "consortium"  # the record is in clear, to be seen twice
        data = canonical_bytes(record)
        max_bytes = node.app.params.max_record_bytes
        first = parse_envelope(
            {
                "record": record,
                "signer": self.signer.public_hex,
                "signature": self.signer.sign(data).hex(),
            },
            max_record_bytes=max_bytes,
        )
        second = parse_envelope(
            {
                "record": record,
                "signer": self.signer.public_hex,
                "signature": sign_with_nonce(self.signer, data).hex(),
            },
            max_record_bytes=max_bytes,
        )
        return first, second

    # --- installing -----------------------------------------------------------------

    def install(self) -> None:
        node, driver = self.node, self.node.driver
        names = self.behaviours
        if "dup-records" in names:
            self._wrap_propose(driver)
        if names & {"equivocate", "withhold-blocks"}:
            self._wrap_send(driver)
        if "withhold-blocks" in names:
            node.inbound.find_block = lambda block_hash: None
        if "lying-heights" in names:
            self._lie_about_heights()
        if "replay" in names:
            for state, peer in node.peers.peers.items():
                peer.client.event_hooks["request"].append(self._capturer(state))
        loops: dict[str, tuple[float, Callable[[], None]]] = {
            "conflicting-envelopes": (1.0, self._split_envelopes),
            "junk-blocks": (1.0, self._junk_blocks),
            "flood-inbox": (1.0, self._flood_inbox),
            "flood-gossip": (1.0, self._flood_gossip),
        }
        for name, (every_s, action) in loops.items():
            if name in names:
                self.tasks.append(
                    asyncio.create_task(self._every(every_s, action), name=f"byzantine-{name}")
                )
        if "replay" in names:
            self.tasks.append(asyncio.create_task(self._replay(), name="byzantine-replay"))
        log.warning("BYZANTINE node %s: %s", node.config.state, ", ".join(sorted(names)))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _every(self, every_s: float, action: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                action()
            except Exception:  # a behaviour's failure must not stop the others
                log.exception("Byzantine behaviour failed")

    # --- proposals ------------------------------------------------------------------

    def _wrap_propose(self, driver: Driver) -> None:
        app = self.node.app

        async def propose(height: int, round_: int) -> None:
            if height != app.height + 1:
                return
            candidates = driver.mempool.reap(
                app.params.max_block_records // 2, app.params.max_block_bytes // 2
            )
            me = next(
                v.state for v in app.state.validators(height) if v.pubkey == driver.key.public_hex
            )
            honest, _ = app.build_block(me, candidates, clock.utcnow())
            envelopes = (*honest.envelopes, *self.twin_envelopes())
            header, _ = app._header(height, me, honest.header.time, envelopes)
            block = Block(header, envelopes)
            driver._cache_block(block, (height, round_, driver.key.public_hex))
            log.warning(
                "BYZANTINE: proposing block %s with one record twice at height %d",
                block.hash[:16],
                height,
            )
            await driver._step(lambda r: r.propose(height, round_, block.hash))

        driver._propose = propose  # type: ignore[method-assign]

    def _wrap_send(self, driver: Driver) -> None:
        original = driver._send
        peers = self.node.peers

        def send(msg: Any) -> None:
            if not isinstance(msg, Proposal) or msg.proposer != driver.key.public_hex:
                original(msg)
                return
            if "withhold-blocks" in self.behaviours:
                peers.broadcast({"msg": msg.to_json()}, 400)
                return
            other = self._other_proposal(driver, msg)
            links = sorted(peers.peers.values(), key=lambda p: p.state)
            half = len(links) // 2
            block = driver.blocks.get(msg.block_hash)
            for i, peer in enumerate(links):
                chosen, body = (msg, block) if i < half else other
                item: dict[str, Any] = {"msg": chosen.to_json()}
                if body is not None:
                    item["block"] = block_wire(body)
                peers.send_to(
                    peer, item, 400 + sum(len(e.leaf) for e in (body.envelopes if body else ()))
                )

        driver._send = send  # type: ignore[method-assign]

    def _other_proposal(self, driver: Driver, msg: Proposal) -> tuple[Proposal, Block]:
        """A second block for the same height and round, and our signed proposal of it."""
        app = self.node.app
        me = next(
            v.state for v in app.state.validators(msg.height) if v.pubkey == driver.key.public_hex
        )
        block, _ = app.build_block(me, [], clock.utcnow())
        # Served on /p2p/v1/block like any proposal of ours.
        driver.blocks.put(
            block,
            (msg.height, msg.round, driver.key.public_hex),
            protected=set(),
            validators=len(app.state.validators(msg.height)),
        )
        signature = driver.key.sign(
            proposal_sign_bytes(app.chain_id, msg.height, msg.round, block.hash, -1)
        ).hex()
        return Proposal(
            msg.height, msg.round, block.hash, -1, driver.key.public_hex, signature
        ), block

    # --- replies --------------------------------------------------------------------

    def _lie_about_heights(self) -> None:
        inbound = self.node.inbound

        async def status(payload: dict[str, Any]) -> tuple[Any, int]:
            return {"height": LIE_HEIGHT, "state": inbound.state}, 200

        def blocks(payload: dict[str, Any]) -> tuple[Any, int]:
            return {"height": inbound.app.height, "blocks": []}, 200

        # The P2P paths look these up at each request: this node now lies.
        inbound.status = status  # type: ignore[method-assign]
        inbound.blocks = blocks  # type: ignore[method-assign]

    # --- floods and junk ------------------------------------------------------------

    def _split_envelopes(self) -> None:
        peers = self.node.peers
        first, second = self.twin_envelopes()
        links = sorted(peers.peers.values(), key=lambda p: p.state)
        for i, peer in enumerate(links):
            envelope = first if i < len(links) // 2 else second
            peers.send_to(peer, {"record": envelope.to_json()}, len(envelope.leaf), gossip=True)

    def _junk_blocks(self) -> None:
        peers, app = self.node.peers, self.node.app
        items = []
        for i in range(64):
            height = app.height + 1 + i % 2
            header = {
                "chain_id": app.chain_id,
                "height": height,
                "time": format_time(clock.utcnow()),
                "prev_hash": secrets.token_hex(32),
                "proposer": self.node.config.state,
                "record_count": 0,
                "ledger_size": 0,
                "ledger_root": "00" * 32,
                "validators_hash": "00" * 32,
            }
            block_hash = hashlib.sha256(canonical_bytes(header)).hexdigest()
            if i % 2:
                msg = {
                    "kind": "vote",
                    "type": "prevote",
                    "height": height,
                    "round": 0,
                    "block_hash": block_hash,
                    "validator": "11" * 32,
                    "signature": "22" * 64,
                }
            else:
                msg = {
                    "kind": "proposal",
                    "height": height,
                    "round": i,
                    "block_hash": block_hash,
                    "valid_round": -1,
                    "proposer": self.node.key.public_hex,
                    "signature": "00" * 64,
                }
            items.append({"msg": msg, "block": {"header": header, "envelopes": []}})
        for item in items:
            peers.broadcast(item, 600)

    def _flood_inbox(self) -> None:
        peers, app = self.node.peers, self.node.app
        for i in range(500):
            msg = {
                "kind": "vote",
                "type": "prevote",
                "height": app.height + 1,
                "round": i,
                "block_hash": secrets.token_hex(32),
                "validator": self.node.key.public_hex,
                "signature": secrets.token_hex(64),
            }
            peers.broadcast({"msg": msg}, 400)

    def _flood_gossip(self) -> None:
        peers = self.node.peers
        for _ in range(100):
            for envelope in self.twin_envelopes()[:1]:
                peers.broadcast({"record": envelope.to_json()}, len(envelope.leaf), gossip=True)

    def _capturer(self, state: str) -> Callable[[httpx.Request], Any]:
        async def capture(request: httpx.Request) -> None:
            if request.url.path == "/p2p/v1/batch":
                self._captured.append(
                    (state, request.url.path, request.content, dict(request.headers))
                )

        return capture

    async def _replay(self) -> None:
        peers = self.node.peers
        while True:
            await asyncio.sleep(2)
            for state, path, body, headers in list(self._captured):
                peer = peers.peers.get(state)
                if peer is None:
                    continue
                with contextlib.suppress(httpx.HTTPError):
                    await peer.client.post(path, content=body, headers=headers)
