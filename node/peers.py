"""Outbound links to the other member nodes.

Each peer has one long-lived ``httpx.AsyncClient`` and one sender task. Items
queued for a peer (consensus messages, gossiped envelopes, evidence) are sent
in signed batches (node/wire.py): the task waits for the first item, gathers more (gossip:
for up to ``gossip_flush_ms``; consensus: what is queued already) until the
batch byte limit, and POSTs them together.
A failed POST marks the peer down and backs off exponentially (capped), so a
slow or dead peer delays nobody else: every peer has its own bounded queue,
and when that queue is full new items for that peer are dropped and counted.
Dropping is safe: consensus messages are re-broadcast while a height is
stuck, and a record that reaches no peer still reaches the chain in a block
this node proposes.

Each peer is known by the node key its node signs with (from chain state),
and every reply must carry that key's signature over the reply and the
request it answers: a reply that is unsigned, signed by another key or for
another request is a peer fault (``ReplyNotAuthentic``), so whoever
answers at a peer's URL cannot put words, such as a height, in its mouth.

This module is the boundary between httpx/orjson and Comity's error tree
(ledger/errors.py): ``PeerSet.request`` raises only ``PeerUnavailable`` (the
peer could not be reached, timed out, broke the link) or another
``PeerFault`` (its reply is unsigned, too large, a refusal, not a JSON
object), each ``from`` the library error. ``ledger.errors.from_peer`` does
the same for the checks a caller runs on what a peer sent: a malformed or invalid block
is that peer's fault, never a local ``ClientError``. Callers catch
``PeerFault`` alone; a ``StoreError`` or ``InvariantViolation`` (a local
fault) passes through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from ledger.errors import PeerFault, PeerUnavailable
from ledger.keys import KeySigner
from node import clock
from node.hsm import off_loop
from node.wire import reply_is_authentic, sign_request

log = logging.getLogger("comity.peers")


class ReplyNotAuthentic(PeerFault):
    """A peer's reply lacks a valid signature by the node key expected there."""


class PeerRemoved(PeerUnavailable):
    """The peer left the validator set while a task still held it (its link is closed)."""


class ReplyTooLarge(PeerFault):
    """A peer's reply is over the size any honest reply can have."""


@contextlib.contextmanager
def _library_errors(state: str, path: str) -> Iterator[None]:
    """Translate httpx and orjson errors of one request to ``state`` into the tree:
    transport failures (connect, timeout, a broken or closed link, an OS error)
    become ``PeerUnavailable``, anything else wrong with the reply ``PeerFault``."""
    try:
        yield
    except PeerFault:
        raise
    except (httpx.TransportError, OSError) as exc:
        raise PeerUnavailable(f"{state} {path}: {type(exc).__name__}: {exc}") from exc
    except httpx.HTTPError as exc:  # a reply httpx cannot decode, a redirect loop
        raise PeerFault(f"{state} {path}: {type(exc).__name__}: {exc}") from exc
    except orjson.JSONDecodeError as exc:
        raise PeerFault(f"{state} {path} reply is not JSON: {exc}") from exc


#: Default bound on a reply's body (the node passes its own, from its block limits).
REPLY_BYTES_MAX = 16 * 1024 * 1024


@dataclass
class PeerStats:
    up: bool = False
    height: int = 0
    last_error: str | None = None
    sent_batches: int = 0
    sent_bytes: int = 0
    dropped_items: int = 0
    failures: int = 0
    last_seen_s: float = 0.0


#: What is sent, its size in bytes, and for a gossiped record its id (so the
#: sender can be told which records a peer has taken: ``on_delivered``).
Item = tuple[dict[str, Any], int, str | None]

#: A gossip batch stays small so the receiver, which verifies its records,
#: never holds its event loop for long on one request.
GOSSIP_BATCH_BYTES_MAX = 1024 * 1024

#: Idle peer connections are closed after this long (the P2P listener keeps them
#: longer, see api.serve.P2P_KEEPALIVE_S).
PEER_KEEPALIVE_S = 30


@dataclass
class Peer:
    """One peer and its two lanes: consensus messages, and record gossip.

    Each lane has its own bounded queue and sender task, so votes and
    proposals never wait behind thousands of gossiped records.
    """

    state: str
    url: str
    #: The node key the peer's node signs with; requests are addressed to it and
    #: replies must be signed by it. Updated when the chain rotates the key.
    node_key: str
    client: httpx.AsyncClient
    queue: asyncio.Queue[Item]  # consensus lane
    gossip: asyncio.Queue[Item]  # record gossip lane
    stats: PeerStats = field(default_factory=PeerStats)
    task: asyncio.Task[None] | None = None
    gossip_task: asyncio.Task[None] | None = None

    def tasks(self) -> list[asyncio.Task[None]]:
        return [t for t in (self.task, self.gossip_task) if t is not None]


class PeerSet:
    """All outbound peer links of one node."""

    def __init__(
        self,
        key: KeySigner,
        chain_id: str,
        *,
        flush_ms: int,
        backoff_max_ms: int,
        queue_max: int,
        batch_bytes_max: int,
        request_timeout_ms: int,
        on_height: Callable[[str, int], None],
        on_delivered: Callable[[str, list[str]], None] | None = None,
        reply_bytes_max: int = REPLY_BYTES_MAX,
        on_task_ended: Callable[[asyncio.Task[None]], None] | None = None,
    ) -> None:
        self.key = key
        #: Told when a sender task ends other than by ``remove``/``stop`` (a bug or a
        #: local fault: a sender catches only ``PeerFault``), so the node fails loudly.
        self.on_task_ended = on_task_ended
        self.reply_bytes_max = reply_bytes_max
        self.on_delivered = on_delivered
        self.chain_id = chain_id
        self.flush_s = flush_ms / 1000
        self.backoff_max_s = backoff_max_ms / 1000
        self.queue_max = queue_max
        self.batch_bytes_max = batch_bytes_max
        self.timeout_s = request_timeout_ms / 1000
        self.on_height = on_height
        self.peers: dict[str, Peer] = {}

    def add(
        self,
        state: str,
        url: str,
        node_key: str,
        transport: httpx.AsyncBaseTransport | None = None,
        verify: Any = True,
        cert: Any = None,
    ) -> None:
        client = httpx.AsyncClient(
            base_url=url,
            transport=transport,
            timeout=self.timeout_s,
            verify=verify,
            cert=cert,
            limits=httpx.Limits(max_connections=4, keepalive_expiry=PEER_KEEPALIVE_S),
        )
        self.peers[state] = Peer(
            state,
            url,
            node_key,
            client,
            asyncio.Queue(self.queue_max),
            asyncio.Queue(self.queue_max),
        )

    async def remove(self, state: str) -> None:
        """Stop sending to ``state`` (it left the validator set): drop its queue and link."""
        peer = self.peers.pop(state, None)
        if peer is None:
            return
        for task in peer.tasks():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await peer.client.aclose()

    def start(self) -> None:
        for peer in self.peers.values():
            if peer.task is None:
                peer.task = self._supervised(
                    # Consensus messages leave at once (no flush wait): each height
                    # is several message delays long, and whatever queues while
                    # a POST is in flight goes in the next one anyway.
                    self._sender(peer, peer.queue, self.batch_bytes_max, 0.0),
                    f"peer-{peer.state}",
                )
            if peer.gossip_task is None:
                peer.gossip_task = self._supervised(
                    self._sender(
                        peer,
                        peer.gossip,
                        min(self.batch_bytes_max, GOSSIP_BATCH_BYTES_MAX),
                        self.flush_s,
                    ),
                    f"gossip-{peer.state}",
                )

    def _supervised(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(work, name=name)
        if self.on_task_ended is not None:
            task.add_done_callback(self.on_task_ended)
        return task

    async def stop(self) -> None:
        for peer in self.peers.values():
            for task in peer.tasks():
                task.cancel()
        for peer in self.peers.values():
            for task in peer.tasks():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await peer.client.aclose()

    def broadcast(
        self, item: dict[str, Any], size: int, *, gossip: bool = False, key: str | None = None
    ) -> None:
        """Queue ``item`` for every peer: on the gossip lane, or the consensus lane.

        ``key`` (a record id) comes back through ``on_delivered`` once a peer
        has answered the batch that carried the item."""
        for peer in self.peers.values():
            self.send_to(peer, item, size, gossip=gossip, key=key)

    def send_to(
        self,
        peer: Peer,
        item: dict[str, Any],
        size: int,
        *,
        gossip: bool = False,
        key: str | None = None,
    ) -> None:
        try:
            (peer.gossip if gossip else peer.queue).put_nowait((item, size, key))
        except asyncio.QueueFull:
            peer.stats.dropped_items += 1

    async def _sender(
        self, peer: Peer, queue: asyncio.Queue[Item], bytes_max: int, flush_s: float
    ) -> None:
        backoff_s = 0.05
        while True:
            items, keys = await self._gather(queue, bytes_max, flush_s)
            try:
                await self._post_batch(peer, items)
                backoff_s = 0.05
                if keys and self.on_delivered is not None:
                    self.on_delivered(peer.state, keys)
            except PeerFault as exc:
                self._mark_down(peer, exc)
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, self.backoff_max_s)

    async def _gather(
        self, queue: asyncio.Queue[Item], bytes_max: int, flush_s: float
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """The next batch: the first item, then whatever else is queued by
        ``flush_s`` after it (at most about ``bytes_max``; the rest waits).

        One sleep a batch, not a timed ``queue.get`` an item: under load a
        gossip lane carries hundreds of items a second, and each timed get
        costs a task and a timer."""
        item, size, key = await queue.get()
        items, total = [item], size
        keys = [key] if key is not None else []
        if flush_s > 0 and total < bytes_max:
            await asyncio.sleep(flush_s)
        while total < bytes_max and not queue.empty():
            item, size, key = queue.get_nowait()
            items.append(item)
            total += size
            if key is not None:
                keys.append(key)
        return items, keys

    async def _post_batch(self, peer: Peer, items: list[dict[str, Any]]) -> None:
        reply = await self.request(peer, "/p2p/v1/batch", {"items": items})
        peer.stats.sent_batches += 1
        if isinstance(reply.get("height"), int):
            self.on_height(peer.state, reply["height"])

    async def request(
        self,
        peer: Peer,
        path: str,
        payload: dict[str, Any],
        *,
        reading: asyncio.Event | None = None,
    ) -> dict[str, Any]:
        """Signed POST to ``peer``; returns the JSON object it answered.

        Raises ``PeerUnavailable`` if the peer cannot be reached or the link
        breaks, else ``PeerFault``: a reply not signed by ``peer.node_key``
        (``ReplyNotAuthentic``), over the size limit (``ReplyTooLarge``), with a
        status other than 200, or not a JSON object. Nothing from httpx or
        orjson leaves this method.

        ``reading``, if given, is cleared from the reply's first byte to its
        last (and set again after): block sync pauses the driver only while a
        reply's body arrives, not while the peer prepares it.
        """
        with _library_errors(peer.state, path):
            return await self._request(peer, path, payload, reading)

    async def _request(
        self,
        peer: Peer,
        path: str,
        payload: dict[str, Any],
        reading: asyncio.Event | None,
    ) -> dict[str, Any]:
        if peer.client.is_closed:
            # Removed by a membership change while a caller (block sync, a block fetch)
            # still held it: a transport error like any other, never a crash.
            raise PeerRemoved(f"{peer.state} is no longer a peer")
        body, signed = await off_loop(
            self.key,
            sign_request,
            self.key,
            self.chain_id,
            path,
            peer.node_key,
            payload,
            clock.now_ms(),
        )
        async with peer.client.stream(
            "POST", path, content=body, headers=signed.headers()
        ) as response:
            if reading is not None:
                reading.clear()
            try:
                content = await self._read_reply(response, path)
            finally:
                if reading is not None:
                    reading.set()
        peer.stats.sent_bytes += len(body)
        if not reply_is_authentic(
            peer.node_key,
            self.chain_id,
            path,
            signed,
            response.status_code,
            content,
            response.headers,
        ):
            raise ReplyNotAuthentic(
                f"{path} reply ({response.status_code}) is not signed by {peer.state}'s node key"
            )
        if response.status_code != 200:
            raise PeerFault(
                f"{path} answered {response.status_code}: {content[:200].decode(errors='replace')}"
            )
        peer.stats.up, peer.stats.last_error = True, None
        peer.stats.last_seen_s = time.monotonic()
        reply = orjson.loads(content)
        if not isinstance(reply, dict):
            raise PeerFault(f"{path} reply is not an object")
        return reply

    async def _read_reply(self, response: httpx.Response, path: str) -> bytes:
        """The reply body, refused (``ReplyTooLarge``) past ``reply_bytes_max``: a peer,
        or whoever answers at its URL, cannot make this node buffer without bound."""
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.reply_bytes_max:
            raise ReplyTooLarge(
                f"{path} reply of {declared} bytes is over the {self.reply_bytes_max}-byte limit"
            )
        try:
            buffered = response.content  # a transport that read the reply already
        except httpx.ResponseNotRead:
            pass
        else:
            if len(buffered) > self.reply_bytes_max:
                raise ReplyTooLarge(f"{path} reply is over the {self.reply_bytes_max}-byte limit")
            return buffered
        chunks, total = [], 0
        async for chunk in response.aiter_bytes():
            total += len(chunk)
            if total > self.reply_bytes_max:
                raise ReplyTooLarge(f"{path} reply is over the {self.reply_bytes_max}-byte limit")
            chunks.append(chunk)
        return b"".join(chunks)

    def _mark_down(self, peer: Peer, exc: Exception) -> None:
        if peer.stats.up or peer.stats.last_error is None:
            log.warning("peer %s unreachable: %s", peer.state, exc)
        peer.stats.up = False
        peer.stats.failures += 1
        peer.stats.last_error = str(exc)[:300]
