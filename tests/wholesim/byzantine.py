"""Byzantine behaviours at the wire level, for real nodes that hold a validator's key.

A Byzantine node is a production ``Node``; its ``Behaviour`` sits on its side
of every link (``tests.wholesim.net``) and rewrites what it sends
(``outgoing``) and what it answers (``reply``), and may act on its own
(``act``: floods, junk, conflicting records). What it signs, it signs with
its own keys (node key for P2P bodies and consensus messages, its state's
investigator and authority keys for records): never with an honest key.

``finding`` names the review finding a behaviour reproduces (docs/RELIABILITY.md);
with that finding's bug put back the campaign must catch it.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any, ClassVar

import httpx
import nacl.bindings as sodium
import orjson

from consensus.messages import Proposal, Vote
from ledger import merkle
from ledger.block import BlockHeader, proposal_sign_bytes, vote_sign_bytes
from ledger.canonical import canonical_bytes
from ledger.keys import SigningKey
from ledger.private import is_private
from ledger.records import Envelope, format_time, parse_envelope, parse_time
from node.application import Block
from node.wire import block_wire, parse_request_headers, sign_reply, sign_request
from tests.wholesim.world import SimNode, World

LIE_HEIGHT = 10**9


def sign_with_nonce(key: SigningKey, message: bytes, nonce_seed: bytes) -> bytes:
    """An Ed25519 signature of ``message`` by ``key`` with the nonce r of our choosing
    (RFC 8032 5.1.6 with r = H(nonce_seed) instead of H(prefix || M)): valid, and
    different from ``key.sign(message)``."""
    digest = bytearray(hashlib.sha512(key.seed()).digest()[:32])
    digest[0] &= 248
    digest[31] &= 127
    digest[31] |= 64
    a = sodium.crypto_core_ed25519_scalar_reduce(bytes(digest) + bytes(32))
    r = sodium.crypto_core_ed25519_scalar_reduce(hashlib.sha512(nonce_seed).digest())
    big_r = sodium.crypto_scalarmult_ed25519_base_noclamp(r)
    k = sodium.crypto_core_ed25519_scalar_reduce(
        hashlib.sha512(big_r + key.public_key + message).digest()
    )
    s = sodium.crypto_core_ed25519_scalar_add(r, sodium.crypto_core_ed25519_scalar_mul(k, a))
    return big_r + s


class Behaviour:
    """Honest by default: subclasses override what they corrupt."""

    finding: ClassVar[str | None] = None
    #: How many times its usual rate a flood sends (``Plan.intensity``).
    intensity: int = 1
    #: Set by the scenario: told of each private act it files (the checker learns
    #: its header), and of a violation only it can see (a body it was given).
    on_filed: Callable[[Envelope], None] = staticmethod(lambda envelope: None)
    witness: Callable[[str, str], None] = staticmethod(lambda kind, detail: None)

    def __init__(self, world: World, sim: SimNode, rng: random.Random) -> None:
        self.world, self.sim, self.rng = world, sim, rng
        self.key = sim.member.node
        self.chain_id = world.genesis.chain_id
        peers = sorted(s for s in world.nodes if s != sim.state)
        rng.shuffle(peers)
        #: The half of the peers that see this node's second story.
        self.other_half = frozenset(peers[: len(peers) // 2])

    async def setup(self) -> None:
        """Called once all nodes run."""

    async def act(self) -> None:
        """Acts on its own during the run (cancelled at the end)."""

    def outgoing(self, dst: str, request: httpx.Request) -> list[httpx.Request]:
        return [request]

    async def reply(
        self, src: str, request: httpx.Request, response: httpx.Response
    ) -> httpx.Response:
        return response

    # --- helpers ----------------------------------------------------------------------------

    def request(self, dst: str, url: httpx.URL | str, payload: dict[str, Any]) -> httpx.Request:
        """A request to ``dst`` signed by this node's key (node/wire.py)."""
        target = httpx.URL(url)
        receiver = self.world.nodes[dst].member.node.public_hex
        body, signed = sign_request(
            self.key, self.chain_id, target.path, receiver, payload, self.world.clock.now_ms()
        )
        return httpx.Request("POST", target, content=body, headers=signed.headers())

    def send(self, dst: str, path: str, payload: dict[str, Any]) -> None:
        """A request of its own making, through the network (fate and delay apply)."""
        net = self.world.net
        request = self.request(dst, f"http://{dst.lower()}.p2p{path}", payload)
        for delay in net.fate(self.sim.state, dst, request.content):
            net.background(net.deliver(self.sim.state, dst, request, delay))

    def honest_peers(self) -> list[str]:
        return sorted(
            s
            for s, h in self.world.net.hosts.items()
            if h.honest and s != self.sim.state and self.world.nodes[s].ever_started
        )

    def proposal(self, height: int, round_: int, block_hash: str, valid_round: int) -> Proposal:
        sig = self.key.sign(
            proposal_sign_bytes(self.chain_id, height, round_, block_hash, valid_round)
        ).hex()
        return Proposal(height, round_, block_hash, valid_round, self.key.public_hex, sig)

    def vote(self, type_: str, height: int, round_: int, block_hash: str | None) -> Vote:
        sig = self.key.sign(vote_sign_bytes(type_, self.chain_id, height, round_, block_hash)).hex()
        return Vote(type_, height, round_, block_hash, self.key.public_hex, sig)

    def header_for(self, height: int, time: str, envelopes: tuple[Envelope, ...]) -> BlockHeader:
        node = self.sim.node
        assert node is not None
        return node.app._header(height, self.sim.state, time, envelopes)[0]

    def rewrite_items(self, dst: str, request: httpx.Request) -> list[httpx.Request]:
        if request.url.path != "/p2p/v1/batch" or b'"msg"' not in request.content:
            return [request]
        payload = orjson.loads(request.content)
        items = [self.item(dst, item) for item in payload["items"]]
        return [self.request(dst, request.url, {"items": [i for i in items if i is not None]})]

    def item(self, dst: str, item: dict[str, Any]) -> dict[str, Any] | None:
        return item

    def own_proposal(self, item: dict[str, Any]) -> dict[str, Any] | None:
        msg = item.get("msg")
        if (
            isinstance(msg, dict)
            and msg.get("kind") == "proposal"
            and msg.get("proposer") == self.key.public_hex
        ):
            return msg
        return None


class Equivocate(Behaviour):
    """Two proposals per round (the second block differs in its time), and votes for
    nil instead of the block, each to its own half of the peers."""

    compact = False

    def __init__(self, world: World, sim: SimNode, rng: random.Random) -> None:
        super().__init__(world, sim, rng)
        self.alt: dict[tuple[int, int], tuple[Proposal, Block]] = {}

    def outgoing(self, dst: str, request: httpx.Request) -> list[httpx.Request]:
        if dst not in self.other_half:
            return [request]
        return self.rewrite_items(dst, request)

    def item(self, dst: str, item: dict[str, Any]) -> dict[str, Any] | None:
        msg = self.own_proposal(item)
        if msg is not None:
            return self.second_proposal(msg) or item
        vote = item.get("msg")
        if (
            isinstance(vote, dict)
            and vote.get("validator") == self.key.public_hex
            and vote.get("block_hash") is not None
        ):
            return {"msg": self.vote(vote["type"], vote["height"], vote["round"], None).to_json()}
        return item

    def second_proposal(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        slot = (msg["height"], msg["round"])
        node = self.sim.node
        if slot not in self.alt:
            block = node.driver.blocks.get(msg["block_hash"]) if node is not None else None
            if block is None or block.height != node.app.height + 1:  # type: ignore[union-attr]
                return None
            time = format_time(parse_time(block.header.time, "time") + timedelta(milliseconds=1))
            alt = Block(self.header_for(block.height, time, block.envelopes), block.envelopes)
            self.alt[slot] = (self.proposal(slot[0], slot[1], alt.hash, msg["valid_round"]), alt)
        proposal, alt = self.alt[slot]
        self.world.net.count("byz_second_proposals")
        if not self.compact:
            return {"msg": proposal.to_json(), "block": orjson.loads(orjson.dumps(block_wire(alt)))}
        # As an honest compact proposal: ids, and each record's leaf hash (without
        # the leaves every peer refused it as malformed, and it equivocated nothing).
        return {
            "msg": proposal.to_json(),
            "header": alt.header.to_json(),
            "ids": [e.id for e in alt.envelopes],
            "leaves": [merkle.leaf_hash(e.leaf).hex() for e in alt.envelopes],
            "records": {e.id: orjson.loads(e.leaf) for e in alt.envelopes},
        }


class EquivocateCompact(Equivocate):
    compact = True


class ConflictingEnvelopes(Behaviour):
    """C1: one record, two envelopes (two signatures with different nonces r by one
    key, or by two of its state's keys), one to each half of the honest nodes, as
    gossip and as client submissions."""

    finding = "C1"

    async def act(self) -> None:
        world, state = self.world, self.sim.state
        member = world.member(state)
        while True:
            await asyncio.sleep(self.rng.uniform(0.3, 1.0))
            first = world.envelope(state)
            record = first.record
            if self.rng.random() < 0.5:
                signer = member.investigator
                signature = sign_with_nonce(signer, canonical_bytes(record), self.rng.randbytes(32))
            else:
                signer = member.authority
                signature = signer.sign(canonical_bytes(record))
            second = parse_envelope(
                {"record": record, "signer": signer.public_hex, "signature": signature.hex()}
            )
            peers = self.honest_peers()
            for dst in peers:
                envelope = second if dst in self.other_half else first
                if self.rng.random() < 0.5:
                    await world.submit(dst, envelope)
                else:
                    self.send(
                        dst, "/p2p/v1/batch", {"items": [{"record": orjson.loads(envelope.leaf)}]}
                    )
            self.world.net.count("byz_conflicting_envelopes")


class DuplicateRecord(Behaviour):
    """C2: its proposals carry a full block holding one record twice (signed by two
    of its state's keys), to every peer."""

    finding = "C2"

    def __init__(self, world: World, sim: SimNode, rng: random.Random) -> None:
        super().__init__(world, sim, rng)
        self.made: dict[tuple[int, int], dict[str, Any]] = {}
        self.instead: dict[str, str] = {}  # its engine's block hash -> the bad block's

    def outgoing(self, dst: str, request: httpx.Request) -> list[httpx.Request]:
        return self.rewrite_items(dst, request)

    def item(self, dst: str, item: dict[str, Any]) -> dict[str, Any] | None:
        msg = self.own_proposal(item)
        node = self.sim.node
        vote = item.get("msg")
        if (
            msg is None
            and isinstance(vote, dict)
            and vote.get("kind") == "vote"  # a relayed proposal names the hash too
            and vote.get("block_hash") in self.instead
        ):
            # It votes for its own bad block too, so three honest votes of four suffice.
            return {
                "msg": self.vote(
                    vote["type"], vote["height"], vote["round"], self.instead[vote["block_hash"]]
                ).to_json()
            }
        if msg is None or node is None or msg["height"] != node.app.height + 1:
            return item
        slot = (msg["height"], msg["round"])
        if slot not in self.made:
            member = self.world.member(self.sim.state)
            first = self.world.envelope(self.sim.state)
            sig = member.authority.sign(canonical_bytes(first.record)).hex()
            second = parse_envelope(
                {"record": first.record, "signer": member.authority.public_hex, "signature": sig}
            )
            header = self.header_for(
                msg["height"], format_time(self.world.clock.utcnow()), (first, second)
            )
            block = Block(header, (first, second))
            proposal = self.proposal(slot[0], slot[1], block.hash, -1)
            self.instead[msg["block_hash"]] = block.hash
            self.made[slot] = {
                "msg": proposal.to_json(),
                "block": orjson.loads(orjson.dumps(block_wire(block))),
            }
            self.world.net.count("byz_duplicate_record_blocks")
        return self.made[slot]


class JunkBlocks(Behaviour):
    """C3: batches of junk blocks for the next two heights, attached to unsigned
    votes and to badly signed proposals of its own key."""

    finding = "C3"

    async def act(self) -> None:
        while True:
            await asyncio.sleep(self.rng.uniform(0.2, 1.0))
            node = self.sim.node
            if node is None:
                continue
            items = [self.junk(node.app.height + 1 + i % 2, i) for i in range(64)]
            for dst in self.honest_peers():
                self.send(dst, "/p2p/v1/batch", {"items": items})
            self.world.net.count("byz_junk_batches")

    def junk(self, height: int, i: int) -> dict[str, Any]:
        header = {
            "chain_id": self.chain_id,
            "height": height,
            "time": f"junk-{i}",
            "prev_hash": "00" * 32,
            "proposer": self.sim.state,
            "record_count": 0,
            "ledger_size": 0,
            "ledger_root": "00" * 32,
            "validators_hash": "00" * 32,
        }
        block_hash = BlockHeader.from_json(header).hash()
        if i % 4 < 2:
            msg: dict[str, Any] = Vote(
                "prevote", height, i, block_hash, "11" * 32, "22" * 64
            ).to_json()
        else:
            msg = Proposal(height, i, block_hash, -1, self.key.public_hex, "00" * 64).to_json()
        return {"msg": msg, "block": {"header": header, "envelopes": []}}


class LyingHeights(Behaviour):
    """C4: claims a huge height in every status and batch reply, and serves no blocks."""

    finding = "C4"

    async def reply(
        self, src: str, request: httpx.Request, response: httpx.Response
    ) -> httpx.Response:
        path = request.url.path
        if response.status_code != 200:
            return response
        await response.aread()
        body = orjson.loads(response.content)
        body["height"] = LIE_HEIGHT
        if path == "/p2p/v1/blocks":
            body["blocks"] = []
        self.world.net.count("byz_lies")
        content = orjson.dumps(body)  # its own reply: it signs the lie (node/wire.py)
        headers = sign_reply(
            self.key, self.chain_id, path, parse_request_headers(request.headers), 200, content
        )
        return httpx.Response(
            200, content=content, headers={**headers, "content-type": "application/json"}
        )


class Withhold(Behaviour):
    """Proposes compact blocks without their records, then never answers a block
    fetch or a block-sync request (the asker times out)."""

    def outgoing(self, dst: str, request: httpx.Request) -> list[httpx.Request]:
        return self.rewrite_items(dst, request)

    def item(self, dst: str, item: dict[str, Any]) -> dict[str, Any] | None:
        if self.own_proposal(item) is not None:
            return {k: v for k, v in item.items() if k not in ("records", "block")}
        return item

    async def reply(
        self, src: str, request: httpx.Request, response: httpx.Response
    ) -> httpx.Response:
        if request.url.path in ("/p2p/v1/block", "/p2p/v1/blocks"):
            self.world.net.count("byz_withheld_replies")
            await asyncio.sleep(3600)
        return response


class Replay(Behaviour):
    """Sends old requests of its own again, byte for byte (their signatures and
    timestamps are still valid), next to the new ones."""

    def __init__(self, world: World, sim: SimNode, rng: random.Random) -> None:
        super().__init__(world, sim, rng)
        self.sent: dict[str, list[httpx.Request]] = {}

    def outgoing(self, dst: str, request: httpx.Request) -> list[httpx.Request]:
        old = self.sent.setdefault(dst, [])
        out = [request]
        if old and self.rng.random() < 0.5:
            out += [self.rng.choice(old) for _ in range(self.rng.randint(1, 3))]
            self.world.net.count("byz_replays", len(out) - 1)
        old.append(request)
        del old[:-50]
        return out


class InboxFlood(Behaviour):
    """Floods the peers' inboxes with validly signed votes of its own key for the
    next height, at rounds far ahead and at random block hashes (``intensity``
    times as often)."""

    async def act(self) -> None:
        while True:
            await asyncio.sleep(self.rng.uniform(0.5, 1.0) / self.intensity)
            node = self.sim.node
            if node is None:
                continue
            height = node.app.height + 1
            votes = [
                self.vote(
                    self.rng.choice(("prevote", "precommit")),
                    height,
                    self.rng.randrange(0, 10**6),
                    self.rng.randbytes(32).hex(),
                )
                for _ in range(20)
            ]
            items = [{"msg": v.to_json()} for v in votes for _ in range(5)]
            for dst in self.honest_peers():
                self.send(dst, "/p2p/v1/batch", {"items": items})
            self.world.net.count("byz_flood_items", len(items))


class GossipFlood(Behaviour):
    """Floods the peers with valid records of its own state (fresh nonces) by gossip
    (``intensity`` times as many a batch)."""

    async def act(self) -> None:
        while True:
            await asyncio.sleep(self.rng.uniform(0.5, 1.0))
            records = [
                orjson.loads(self.world.envelope(self.sim.state).leaf)
                for _ in range(15 * self.intensity)
            ]
            for dst in self.honest_peers():
                self.send(dst, "/p2p/v1/batch", {"items": [{"record": r} for r in records]})
            self.world.net.count("byz_gossip_records", len(records))


class Twins(Behaviour):
    """Two nodes with one identity (same keys, separate disks), each reached by
    its own half of the peers: every message the pair signs twice is an
    equivocation by one validator."""

    async def setup(self) -> None:
        from tests.wholesim.disk import SimDisk
        from tests.wholesim.net import Host

        world, sim = self.world, self.sim
        twin = SimNode(sim.member, Host(sim.state, honest=False), SimDisk())
        sim.host.twin, sim.host.twin_for = twin.host, self.other_half
        world.twins[sim.state] = twin
        await world.start(twin)


class BadBody(Behaviour):
    """A party's node that lies about bodies: its state files private acts at its own
    (real) node, which pushes each body to the other parties; on the way out the
    body is rewritten so it no longer matches the header's commitment (half the
    time), and the true body is added to the batches that carry the header to
    non-parties. Later it sends both again, once the header has committed. Each
    must be refused and counted (``body does not match its commitment``,
    ``body sent to a non-party``)."""

    ACTS_MAX = 12

    def __init__(self, world: World, sim: SimNode, rng: random.Random) -> None:
        super().__init__(world, sim, rng)
        self.filed: dict[str, tuple[list[str], dict[str, Any]]] = {}  # id: parties, body
        self.by_nonce: dict[str, str] = {}

    async def act(self) -> None:
        while True:
            await asyncio.sleep(self.rng.uniform(0.3, 1.0))
            node = self.sim.node
            peers = self.honest_peers()
            if node is None or not peers:
                continue
            if len(self.filed) < self.ACTS_MAX:
                await self.file(peers)
            if self.rng.random() < 0.5:
                self.resend(node.store.has_record)

    async def file(self, peers: list[str]) -> None:
        others = sorted(self.rng.sample(peers, min(len(peers), self.rng.randint(1, 2))))
        envelope = self.world.private_envelope(self.sim.state, others)
        assert envelope.body is not None
        self.filed[envelope.id] = (list(envelope.record["parties"]), envelope.body)
        self.by_nonce[envelope.record["nonce"]] = envelope.id
        self.on_filed(envelope)
        if await self.world.submit(self.sim.state, envelope):
            self.world.net.count("byz_private_acts")

    def corrupt(self, body: dict[str, Any]) -> dict[str, Any]:
        """The body with another salt: well formed, and not the one committed."""
        self.world.net.count("byz_bad_bodies")
        return {"act": body["act"], "salt": self.rng.randbytes(16).hex()}

    def resend(self, committed: Any) -> None:
        """A committed act's body again: a bad copy to a party, the true one to a
        non-party."""
        ids = [i for i in self.filed if committed(i)]
        if not ids:
            return
        record_id = self.rng.choice(ids)
        parties, body = self.filed[record_id]
        for dst in self.honest_peers():
            if dst in parties:
                item = {"body": {"id": record_id, "private": self.corrupt(body)}}
            else:
                self.world.net.count("byz_bodies_to_non_parties")
                item = {"body": {"id": record_id, "private": body}}
            self.send(dst, "/p2p/v1/batch", {"items": [item]})

    def outgoing(self, dst: str, request: httpx.Request) -> list[httpx.Request]:
        if request.url.path != "/p2p/v1/batch" or not self.filed:
            return [request]
        if b'"body"' not in request.content and b'"record"' not in request.content:
            return [request]
        payload = orjson.loads(request.content)
        items, changed = [], False
        for item in payload["items"]:
            items.append(item)
            body = item.get("body") if isinstance(item, dict) else None
            if isinstance(body, dict) and body.get("id") in self.filed:
                if self.rng.random() < 0.5:
                    item["body"] = {"id": body["id"], "private": self.corrupt(body["private"])}
                    changed = True
                continue
            record_id = self.by_nonce.get(_nonce_of(item) or "")
            if record_id is not None and dst not in self.filed[record_id][0]:
                self.world.net.count("byz_bodies_to_non_parties")
                items.append({"body": {"id": record_id, "private": self.filed[record_id][1]}})
                changed = True
        if not changed:
            return [request]
        return [self.request(dst, request.url, {"items": items})]


def _nonce_of(item: Any) -> str | None:
    """The nonce of a gossiped record item's record, if it is one."""
    if not isinstance(item, dict) or not isinstance(item.get("record"), dict):
        return None
    record = item["record"].get("record")
    return record.get("nonce") if isinstance(record, dict) else None


class BodySnoop(Behaviour):
    """A non-party's node that wants bodies: for the private acts it sees committed
    that do not name its state, it asks honest nodes for their bodies on
    ``/p2p/v1/bodies`` (each must refuse with 403 and count ``non-party asked for
    a body``), and pushes made-up bodies for them to their parties (refused:
    ``body sent by a non-party``). A body it is given is a leak: it tells
    ``witness`` (the checker's ``privacy`` invariant)."""

    async def act(self) -> None:
        while True:
            await asyncio.sleep(self.rng.uniform(0.3, 1.0))
            node = self.sim.node
            if node is None:
                continue
            headers = self.others_acts(node)
            if not headers:
                continue
            for dst in self.honest_peers():
                ids = [h.id for h in self.rng.sample(headers, min(len(headers), 3))]
                self.world.net.count("byz_body_requests")
                self.world.net.background(self.ask(dst, ids))
                target = self.rng.choice(headers)
                if dst in target.record["parties"]:
                    fake = {"act": {"type": "preservation_request"}, "salt": "00" * 16}
                    self.world.net.count("byz_fake_bodies")
                    self.send(
                        dst,
                        "/p2p/v1/batch",
                        {"items": [{"body": {"id": target.id, "private": fake}}]},
                    )

    def others_acts(self, node: Any) -> list[Envelope]:
        """The newest committed private acts whose parties leave this state out."""
        found = node.store.search("type", "private_act", limit=1000)
        headers = [node.app.load_envelope(record_id) for _, record_id in found[-20:]]
        return [
            h for h in headers if is_private(h.record) and self.sim.state not in h.record["parties"]
        ]

    async def ask(self, dst: str, ids: list[str]) -> None:
        net = self.world.net
        request = self.request(dst, f"http://{dst.lower()}.p2p/p2p/v1/bodies", {"ids": ids})
        delays = net.fate(self.sim.state, dst, request.content)
        if not delays:
            return
        response = await net.deliver(self.sim.state, dst, request, delays[0])
        await response.aread()
        if response.status_code != 200:
            return
        bodies = orjson.loads(response.content).get("bodies") or {}
        if bodies:
            net.count("byz_snooped_bodies", len(bodies))
            self.witness(
                "privacy",
                f"{dst} gave {len(bodies)} bodies to non-party {self.sim.state} on /p2p/v1/bodies",
            )


BEHAVIOURS: dict[str, type[Behaviour]] = {
    "equivocate": Equivocate,
    "equivocate_compact": EquivocateCompact,
    "conflicting_envelopes": ConflictingEnvelopes,
    "duplicate_record": DuplicateRecord,
    "junk_blocks": JunkBlocks,
    "lying_heights": LyingHeights,
    "withhold": Withhold,
    "replay": Replay,
    "inbox_flood": InboxFlood,
    "gossip_flood": GossipFlood,
    "twins": Twins,
    "bad_body": BadBody,
    "body_snoop": BodySnoop,
}
#: The kinds that attack need to know (docs/PRIVACY.md): ``plan.make_plan`` draws
#: them apart from the others, so the seeds from before them keep their plans.
PRIVACY_KINDS = frozenset({"bad_body", "body_snoop"})
#: Behaviours that reproduce a finding of the review of b40cc0b (fixed since; the
#: negative controls put each bug back: tests/wholesim/regressions.py).
FINDINGS = {name: cls.finding for name, cls in BEHAVIOURS.items() if cls.finding}
