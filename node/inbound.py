"""What peers send this node, handled without HTTP: the four P2P paths' work.

The HTTP side (api/p2p.py) authenticates a request, reads and parses its body
and signs the reply; it then calls ``Inbound.handle`` with the authenticated
sender and the payload. Here each path's payload is decoded (node/wire.py) and
handed on: consensus messages to the driver's inbox, gossiped envelopes
through the same admission checks as the API, block requests answered from the
block cache and the store. A peer's fault is counted under a fixed reason code
and answered with a 4xx; it never reaches the consensus engine.

``Inbound`` takes only what it uses, each as a narrow collaborator: the chain
(``Application``), the store, the mempool, the driver's ``post`` and block
cache lookup, block sync's ``fetch_block``, the signature checker, gossip
admission and the peer-fault counter.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from consensus.messages import Proposal, message_from_json
from ledger.errors import ClientError, PeerFault, VerificationError
from ledger.keys import KeySigner
from ledger.records import Envelope, parse_envelope
from ledger.store import Store
from node.application import Application, Block
from node.driver import PeerMessage
from node.mempool import Mempool
from node.privacy import BODIES, BodyExchange
from node.wire import (
    block_wire,
    carried_records,
    compact_proposal,
    decode_block,
    status_reply,
    sync_blocks,
)

log = logging.getLogger("comity.p2p")

BATCH, BLOCKS, BLOCK, STATUS = "/p2p/v1/batch", "/p2p/v1/blocks", "/p2p/v1/block", "/p2p/v1/status"
PATHS = (BATCH, BLOCKS, BLOCK, STATUS, BODIES)
#: The paths an admitted observer node may call (it reads; ``BATCH``, which carries
#: consensus messages and gossip, is refused to it as to any non-validator).
OBSERVER_PATHS = (BLOCKS, BLOCK, STATUS, BODIES)

#: A reply object and its HTTP status.
Reply = tuple[Any, int]

#: The longest a status request may wait for the next commit (``wait_ms``): an
#: observer's long poll, so commits reach it as they happen (docs/PROTOCOL.md §16).
STATUS_WAIT_MS_MAX = 2000


@dataclass
class Inbound:
    """The node's side of the P2P paths (one per ``Node``)."""

    app: Application
    store: Store
    mempool: Mempool
    key: KeySigner  # signs the replies
    state: str
    body_max_bytes: int
    allowed: Callable[[], set[str]]  # validator node keys that may send to us now
    observers: Callable[[], set[str]]  # admitted observer node keys (``OBSERVER_PATHS``)
    fault: Callable[[str], None]
    post: Callable[[object], bool]  # the driver's inbox
    held_block: Callable[[str], Block | None]  # the driver's block cache
    find_block: Callable[[str], Block | None]  # a held or committed block by hash
    fetch_block: Callable[[str, int, str | None], None]
    verify: Callable[..., Awaitable[None]]
    accept_gossip: Callable[[Envelope], None]
    bodies: BodyExchange
    #: Returns once this node's height is above the given one, or after the timeout (s).
    wait_above: Callable[[int, float], Awaitable[None]]
    #: Each admitted observer's token bucket (api/p2p.py): requests per second, burst.
    observer_requests_per_s: int = 50
    observer_burst_requests: int = 200

    async def handle(self, path: str, sender: str, payload: dict[str, Any]) -> Reply:
        """Answer one authenticated request on ``path`` (one of ``PATHS``)."""
        if path == BATCH:
            return await self.batch(sender, payload)
        if path == BLOCKS:
            return self.blocks(payload)
        if path == BLOCK:
            return self.block(payload)
        if path == BODIES:
            return self.bodies.serve(sender, payload)
        return await self.status(payload)

    async def batch(self, sender: str, payload: dict[str, Any]) -> Reply:
        items = payload.get("items")
        if not isinstance(items, list):
            return {"error": {"code": "peer_fault", "message": "items missing"}}, 400
        records = [item["record"] for item in items if _is_record(item)]
        bodies = [item["body"] for item in items if _is_body(item)]
        for item in items:  # consensus first: it must never wait behind gossip
            if not _is_record(item) and not _is_body(item):
                self._take_item(sender, item)
        if records:
            await self.take_records(sender, records)
        for body in bodies:  # after the records: a body follows its header
            self.bodies.receive(sender, body, self.mempool.get)
        return {"height": self.app.height}, 200

    def blocks(self, payload: dict[str, Any]) -> Reply:
        start, limit = payload.get("from_height"), payload.get("limit")
        if type(start) is not int or type(limit) is not int or start < 1 or limit < 1:
            return {
                "error": {
                    "code": "bad_request",
                    "message": "from_height and limit must be positive",
                }
            }, 400
        blocks = sync_blocks(self.store, self.app.height, start, limit)
        return {"height": self.app.height, "blocks": blocks}, 200

    def block(self, payload: dict[str, Any]) -> Reply:
        block = self.find_block(str(payload.get("hash", "")))
        if block is None:
            return {"error": {"code": "not_found", "message": "no such block"}}, 404
        return {"block": block_wire(block)}, 200

    async def status(self, payload: dict[str, Any]) -> Reply:
        """Our height, with the proof of the asker's next one when we hold it. With
        ``wait_ms`` (1..``STATUS_WAIT_MS_MAX``) and an asker at our height, the reply
        waits until the next commit or that long: a long poll, never an error."""
        asked, wait_ms = payload.get("height"), payload.get("wait_ms")
        if (
            type(asked) is int
            and type(wait_ms) is int
            and 1 <= wait_ms <= STATUS_WAIT_MS_MAX
            and asked >= self.app.height
        ):
            await self.wait_above(asked, wait_ms / 1000)
        return status_reply(self.store, self.app.height, self.state, asked), 200

    def _take_item(self, sender: str, item: Any) -> None:
        """One batch item: a consensus message (maybe with its block)."""
        if not isinstance(item, dict):
            self.fault("batch item is not an object")
            return
        try:
            if "msg" in item:
                msg = message_from_json(item["msg"])
                block = None
                if "block" in item:
                    params = self.app.params
                    block = decode_block(
                        item["block"],
                        max_record_bytes=params.max_record_bytes,
                        max_records=params.max_block_records,
                    )
                elif "header" in item and isinstance(msg, Proposal):
                    block = self._rebuild(sender, msg, item)
                if not self.post(PeerMessage(msg, block, sender)):
                    self.fault("inbox full")
            else:
                self.fault("batch item is neither a message nor a record")
        except ClientError as exc:
            log.debug("peer item from %s refused: %s", sender[:16], exc)
        except (PeerFault, VerificationError) as exc:  # never StoreError/InvariantViolation
            self.fault(f"peer item refused: {type(exc).__name__}")

    def _rebuild(self, sender: str, msg: Proposal, item: dict[str, Any]) -> Block | None:
        """A compact proposal's block from our mempool, or None (then fetch it in full).

        Records are named by id and leaf hash: a pending copy is used only if it is
        the very envelope the proposer put in the block (finding C1: one record may
        travel in two envelopes, and a body rebuilt from the other one is not the
        block's)."""
        if self.held_block(msg.block_hash) is not None:
            return None  # we already hold it
        if msg.height <= self.app.height:
            return None  # a late or re-sent proposal of a height already committed here
        compact = compact_proposal(item, max_records=self.app.params.max_block_records)
        named = compact.named
        carried = self._carried(item.get("records"), named)
        envelopes = [
            self._pending(rid, named.get(rid)) or carried.get(rid) if isinstance(rid, str) else None
            for rid in compact.ids
        ]
        missing = sum(e is None for e in envelopes)
        if missing:
            log.info(
                "compact proposal for height %d round %d: %d of %d records not here yet; "
                "fetching the block",
                msg.height,
                msg.round,
                missing,
                len(compact.ids),
            )
            self.fetch_block(msg.block_hash, compact.header.height, sender)
            return None
        return Block(compact.header, tuple(e for e in envelopes if e is not None))

    def _pending(self, record_id: str, leaf_hash: str | None) -> Envelope | None:
        """Our pending copy of ``record_id`` if it is the envelope with ``leaf_hash``."""
        return None if leaf_hash is None else self.mempool.get_leaf(record_id, leaf_hash)

    def _carried(self, raw: Any, named: dict[str, str]) -> dict[str, Envelope]:
        """The records a compact proposal carries in full that we lack, parsed."""
        return carried_records(
            raw,
            named,
            lambda rid, leaf: self._pending(rid, leaf) is not None,
            self.app.params.max_record_bytes,
        )

    async def take_records(self, sender: str, raw: Sequence[Any]) -> None:
        """Gossiped envelopes: parse, verify signatures off the loop, then admit.

        What does not fit the mempool is dropped unread (the oldest fit first), and
        what is over a state's or signer's share is dropped before its signature is
        checked (counted in ``mempool.gossip_dropped``): the origin node still holds
        those records and will propose them itself (then this node fetches that
        block whole).
        """
        room = self.mempool.room()
        if len(raw) > room:
            self.fault("gossip dropped: mempool full")
            log.info(
                "mempool full: %d of %d gossiped records from %s dropped",
                len(raw) - max(room, 0),
                len(raw),
                sender[:16],
            )
            raw = raw[: max(room, 0)]
        max_bytes = self.app.params.max_record_bytes
        envelopes = []
        for obj in raw:
            try:
                envelopes.append(parse_envelope(obj, max_record_bytes=max_bytes))
            except ClientError as exc:
                self.fault(f"gossiped envelope refused: {exc.code}")
        envelopes = self.mempool.fitting(envelopes)
        await self.verify(envelopes, admission=True)
        for envelope in envelopes:
            try:
                self.accept_gossip(envelope)
            except ClientError as exc:
                log.debug("gossiped record from %s refused: %s", sender[:16], exc)
            except (PeerFault, VerificationError) as exc:  # never a local fault (ours)
                self.fault(f"peer item refused: {type(exc).__name__}")


def _is_body(item: Any) -> bool:
    return isinstance(item, dict) and set(item) == {"body"}


def _is_record(item: Any) -> bool:
    return isinstance(item, dict) and "record" in item and "msg" not in item
