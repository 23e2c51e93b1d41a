"""Block transfer between nodes: fetching proposed blocks, and block sync.

Theory of operation
-------------------
*Proposed blocks.* A proposal normally travels compact (its record ids); a
node that cannot rebuild it from its mempool fetches the whole block from
the proposer (``fetch_block``), checks that it hashes to what was proposed,
verifies its signatures off the loop and hands it to the driver.

*Proposed blocks by hash.* The driver asks for a block it lacks (a verified
proposal came without one, a body did not match its header, a block was
decided here without being held): ``fetch_block`` tries the proposer first,
then every other peer, until one serves a block with that hash.

*Block sync.* Every ``peer_status_interval_ms`` the sync task asks each peer
for its height, saying its own. A peer that is ahead proves it: its reply
carries the header and commit certificate of our next height, which we
verify against the validators we know for that height. A claimed height is
never believed alone (finding C4: a liar, or whoever answers at a peer's URL,
could otherwise stop voting and starve sync). When a peer has proved it is
ahead and claims two or more heights more, or has proved it for two polls
in a row, or the engine reported that f+1 validators are above us
(``behind``), the task fetches blocks with their certificates and posts
them to the driver, which verifies each (certificate by the validators of
its height, then every record and the header's roots) before it applies it.
A peer that serves a bad block, or nothing although it proved it was ahead,
is penalised (skipped for a growing number of polls), and the next peer that
proved it is ahead is tried in the same poll.

Sync is a pipeline: while the driver applies the blocks of one reply, the
signature workers check the next one and the fetcher reads the one after.
The fetcher asks for the next reply as soon as the previous one is parsed,
and the driver pauses between two blocks while a reply is being read: an
HTTP read gets one chunk per turn of the event loop, so a reply read while
the driver holds the loop for a block at each turn would take seconds
instead of a fraction of one. At most ``SYNC_AHEAD`` checked replies wait,
so memory stays bounded.

The serving side and the encoding of both replies are in node/wire.py
(``sync_blocks``, ``status_reply``). ``BlockSync`` gets only what it uses: the
chain (``Application``), the ``PeerSet``, the driver's ``post`` and the count of
synced blocks it refused, the signature checker and the peer-fault counter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from ledger.block import BlockHeader, CommitCertificate, verify_certificate
from ledger.errors import InvariantViolation, PeerFault, PeerUnavailable, from_peer
from ledger.records import Envelope
from node.application import Application, Block
from node.driver import BlockArrived, Synced
from node.inbound import STATUS_WAIT_MS_MAX
from node.peers import Peer, PeerSet
from node.wire import decode_block, decode_sync_reply

log = logging.getLogger("comity.sync")

SYNC_AHEAD = 2  # block-sync replies parsed and verified ahead of the driver
SYNC_ATTEMPTS = 3  # tries of one block-sync request after transport errors
FETCHING_MAX = 64  # blocks fetched by hash at once
SYNC_STALL_S = 5.0  # block sync gives up when the driver applies nothing for this long
#: A peer that could not deliver what it proved is skipped for this many polls,
#: doubled at each repeat up to ``PENALTY_POLLS_MAX``.
PENALTY_POLLS = 2
PENALTY_POLLS_MAX = 64
#: How long an observer waits for its home validator to prove a height another
#: validator has proved, before it syncs that height from the other (``_follow``).
HOME_GRACE_MS = 500
HOME_RETRY = 4  # an observer asks its home validator, while it is down, every 4th turn

Pairs = tuple[tuple[Block, CommitCertificate], ...]


class BlockSync:
    """The node's block fetching and block sync (one per ``Node``)."""

    def __init__(
        self,
        app: Application,
        peers: PeerSet,
        *,
        post: Callable[[object], bool],
        rejected: Callable[[str], int],
        verify: Callable[[Sequence[Envelope]], Awaitable[None]],
        fault: Callable[[str], None],
        task_ended: Callable[[asyncio.Task[None]], None],
        interval_ms: int,
        batch_blocks: int,
        eager: bool = False,
        home: str | None = None,
    ) -> None:
        self.app, self.peers = app, peers
        self.task_ended = task_ended  # the node's supervisor: a local fault fails it
        self.post = post  # the driver's inbox
        self.rejected = rejected  # synced blocks of a source the driver refused
        self.verify, self.fault = verify, fault
        self.interval_s = interval_ms / 1000
        self.batch_blocks = batch_blocks
        #: An observer node syncs from a peer as soon as it proves a newer height: it
        #: takes no part in the height, so there is no vote to wait for.
        self.eager = eager
        #: The state whose validator an observer follows first (its own state's): see
        #: ``_follow``. None: every validator in turn.
        self.home = home
        self.behind_hint = 0
        #: The height each peer has proved it holds (see ``_proves_next``).
        self.proven: dict[str, int] = {}
        self._penalty: dict[str, int] = {}  # polls a penalised peer is still skipped
        self._strikes: dict[str, int] = {}
        self._fetching: set[str] = set()
        self._background: set[asyncio.Task[None]] = set()

    def behind(self, height: int) -> None:
        """The engine saw f+1 validators at ``height``: sync even from a peer one ahead."""
        self.behind_hint = max(self.behind_hint, height)

    # --- proposed blocks ----------------------------------------------------------------

    def fetch_block(self, block_hash: str, height: int, prefer: str | None) -> None:
        """Fetch a block by hash (background): from the validator whose node key is
        ``prefer`` (its proposer) first, then from every other peer in turn."""
        if block_hash in self._fetching or len(self._fetching) >= FETCHING_MAX:
            return
        first = next(
            (v.state for v in self.app.state.validators(height) if v.pubkey == prefer), None
        )
        peers = sorted(self.peers.peers.values(), key=lambda p: (p.state != first, p.state))
        if not peers:
            return
        self._fetching.add(block_hash)
        task = asyncio.get_running_loop().create_task(self._fetch_block(peers, block_hash))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(lambda _: self._fetching.discard(block_hash))
        task.add_done_callback(self._fetch_ended)

    def _fetch_ended(self, task: asyncio.Task[None]) -> None:
        """A fetch catches ``PeerFault`` only: one that raised anything else (a local
        fault) fails the node like any supervised task, instead of dying unseen."""
        if not task.cancelled() and task.exception() is not None:
            self.task_ended(task)

    async def _fetch_block(self, peers: list[Peer], block_hash: str) -> None:
        params = self.app.params
        for peer in peers:
            try:
                reply = await self.peers.request(peer, "/p2p/v1/block", {"hash": block_hash})
                with from_peer(peer.state, "block", parsing=True):
                    block = decode_block(
                        reply["block"],
                        max_record_bytes=params.max_record_bytes,
                        max_records=params.max_block_records,
                    )
            except PeerFault as exc:
                log.info("fetching block %s from %s failed: %s", block_hash[:16], peer.state, exc)
                continue
            if block.hash != block_hash:
                self.fault("fetched block does not match its hash")
                continue
            await self.verify(block.envelopes)
            self.post(BlockArrived(block))
            return

    # --- block sync -----------------------------------------------------------------------

    async def run(self) -> None:
        if self.eager:
            await self._follow()
            return
        ahead_polls: Counter[str] = Counter()
        while True:
            for peer in list(self.peers.peers.values()):
                await self._poll(peer)
            height = self.app.height
            for peer in sorted(self.peers.peers.values(), key=lambda p: -p.stats.height):
                proven = self.proven.get(peer.state, 0) > height
                ahead_polls[peer.state] = ahead_polls[peer.state] + 1 if proven else 0
                if self._penalty.get(peer.state, 0) > 0:
                    self._penalty[peer.state] -= 1
                    continue
                if proven and (
                    peer.stats.height >= height + 2
                    or ahead_polls[peer.state] >= 2
                    or self.behind_hint > height
                ):
                    if await self._sync_from(peer):
                        self._strikes.pop(peer.state, None)
                        break
                    self._penalise(peer)  # proved it was ahead, then did not deliver
            await asyncio.sleep(self.interval_s)  # after, not before: a restarted node asks at once

    async def _follow(self) -> None:
        """An observer's block sync: long-poll a validator for its next commit
        (``wait_ms``, node/inbound.py), and fetch from it as soon as it proves a newer
        height.

        Each node keeps the commit certificate it decided with (any ⌊2n/3⌋+1
        precommits), so two validators may serve different, equally valid
        certificates for one block. An observer of a member state (``home``) follows
        that state's validator, so that it serves the blocks and certificates its own
        state's validator serves. Each turn it long-polls the home validator, then
        asks one other validator, in rotation and without waiting, whether it proves
        a newer height. If it does, the home validator gets ``HOME_GRACE_MS`` more
        to prove it too (validators commit within milliseconds of each other) and
        the blocks come from the other only if it does not. From then on the home
        validator is *lagging*: it is asked without waiting and the others are
        long-polled, until it claims our height again. A home validator that is
        behind, down or penalised thus never holds the observer back by more than
        one wait. Without a home validator, the validators are long-polled in turn;
        a validator that has nothing new, or is penalised or unreachable, hands
        over to the next. Whatever the source, every block is verified as any
        synced block is."""
        wait_ms = max(1, min(STATUS_WAIT_MS_MAX, round(self.interval_s * 1000)))
        turn = rounds = 0
        lagging = False
        while True:
            rounds += 1
            peers = sorted(self.peers.peers.values(), key=lambda p: (p.state != self.home, p.state))
            if not peers:
                await asyncio.sleep(self.interval_s)
                continue
            home = peers[0] if peers[0].state == self.home else None
            others = peers[1:] if home is not None else peers
            # A home validator that is down is tried every HOME_RETRY turns only: one that
            # drops packets would cost a request timeout every turn.
            asked = home is not None and (home.stats.up or rounds % HOME_RETRY == 1)
            if home is not None and asked and not self._skip(home):
                quick = lagging and bool(others)
                await self._poll(home, wait_ms=0 if quick else wait_ms)
                if self._ahead(home):
                    lagging = False
                    if await self._sync_from(home):
                        self._strikes.pop(home.state, None)
                        continue
                    self._penalise(home)
                elif lagging and home.stats.height >= self.app.height:
                    lagging = False  # caught up: long-polled again next turn
            home_first = home is not None and home.stats.up and not self._penalty.get(home.state)
            if not others:
                if not home_first:
                    await asyncio.sleep(self.interval_s)  # down or penalised: no busy loop
                continue
            peer = others[turn % len(others)]
            if self._skip(peer):
                turn += 1
                continue
            look = home_first and not lagging  # a quick look past the home validator
            await self._poll(peer, wait_ms=0 if look else wait_ms)
            if self._ahead(peer):
                source = peer
                if look and home is not None:
                    await self._poll(home, wait_ms=min(wait_ms, HOME_GRACE_MS))
                    if self._ahead(home):
                        source = home
                    else:
                        lagging = True
                if await self._sync_from(source):
                    self._strikes.pop(source.state, None)
                    continue  # the same validator again: it is the one committing
                self._penalise(source)
            turn += 1
            if not peer.stats.up and not home_first:
                await asyncio.sleep(self.interval_s / len(peers))  # down: no busy loop

    def _ahead(self, peer: Peer) -> bool:
        return self.proven.get(peer.state, 0) > self.app.height

    def _skip(self, peer: Peer) -> bool:
        """True (and one poll less to wait) while ``peer`` is penalised."""
        if self._penalty.get(peer.state, 0) > 0:
            self._penalty[peer.state] -= 1
            return True
        return False

    def _penalise(self, peer: Peer) -> None:
        strikes = self._strikes[peer.state] = self._strikes.get(peer.state, 0) + 1
        self._penalty[peer.state] = min(PENALTY_POLLS_MAX, PENALTY_POLLS << (strikes - 1))
        log.warning(
            "block sync: %s proved height %d but did not deliver it; skipping it for %d polls",
            peer.state,
            self.proven.get(peer.state, 0),
            self._penalty[peer.state],
        )

    def decided_elsewhere(self, height: int) -> bool:
        """A peer proved (with a verified certificate) that ``height`` is committed."""
        return any(proven >= height for proven in self.proven.values())

    def syncing(self) -> bool:
        """Behind by two or more heights, by a peer's proof and its claim."""
        height = self.app.height
        return any(
            self.proven.get(p.state, 0) > height and p.stats.height >= height + 2
            for p in self.peers.peers.values()
        )

    async def _poll(self, peer: Peer, *, wait_ms: int = 0) -> None:
        height = self.app.height
        payload = {"height": height, **({"wait_ms": wait_ms} if wait_ms else {})}
        try:
            reply = await self.peers.request(peer, "/p2p/v1/status", payload)
        except PeerFault as exc:
            peer.stats.up, peer.stats.last_error = False, str(exc)[:300]
            return
        if type(reply.get("height")) is int:
            peer.stats.height = reply["height"]
        if self._proves_next(peer, reply.get("next"), height):
            self.proven[peer.state] = height + 1

    def _proves_next(self, peer: Peer, proof: object, height: int) -> bool:
        """True if ``proof`` is the header and a valid certificate of ``height + 1``."""
        if proof is None:
            return False
        app = self.app
        try:
            with from_peer(peer.state, "status proof", parsing=True):
                if not isinstance(proof, dict):
                    raise PeerFault("status proof must be an object")
                header = BlockHeader.from_json(proof.get("header"))
                certificate = CommitCertificate.from_json(proof.get("commit"))
                if header.height != height + 1 or header.chain_id != app.chain_id:
                    raise PeerFault(f"status proof is for height {header.height}")
                verify_certificate(
                    certificate,
                    app.chain_id,
                    app.state.validators(header.height),
                    header.hash(),
                    header.height,
                )
        except PeerFault as exc:
            self.fault("status proof does not verify")
            log.warning("status reply of %s proves nothing: %s", peer.state, exc)
            return False
        return True

    async def _sync_from(self, peer: Peer) -> bool:
        """Fetch blocks from ``peer`` until we reach its height or it misbehaves;
        True if at least one of its blocks was applied."""
        before = self.app.height
        await self._sync_blocks(peer)
        return self.app.height > before

    async def _sync_blocks(self, peer: Peer) -> None:
        ahead: asyncio.Queue[Pairs | None] = asyncio.Queue(SYNC_AHEAD)
        reading = asyncio.Event()
        reading.set()  # set: no reply is being read
        fetcher = asyncio.get_running_loop().create_task(self._fetch_ahead(peer, ahead, reading))
        try:
            while True:
                pairs = await ahead.get()
                if pairs is None:
                    return
                # One block an event: the driver never holds the loop for a reply.
                for pair in pairs:
                    await reading.wait()
                    while not self.post(Synced((pair,), peer.state)):
                        await asyncio.sleep(0.05)
                    if not await self._applied(pair[0].height, peer.state):
                        return
        finally:
            fetcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await fetcher

    async def _applied(self, target: int, source: str) -> bool:
        """Wait until the driver has applied synced blocks up to ``target``: False
        if it refused one of ``source``'s, or stopped making progress."""
        app = self.app
        loop = asyncio.get_running_loop()
        seen, progressed_at = app.height, loop.time()
        while app.height < target:
            if self.rejected(source):
                return False
            if app.height != seen:
                seen, progressed_at = app.height, loop.time()
            elif loop.time() - progressed_at > SYNC_STALL_S:
                return False
            await asyncio.sleep(0.002)
        return True

    async def _request_retrying(
        self, peer: Peer, path: str, payload: dict[str, Any], reading: asyncio.Event
    ) -> dict[str, Any]:
        """``peers.request``, tried again (twice at most) after a transport error:
        a pooled connection the peer has just closed fails once, then works."""
        for attempt in range(SYNC_ATTEMPTS):
            try:
                return await self.peers.request(peer, path, payload, reading=reading)
            except PeerUnavailable:
                if attempt == SYNC_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.1 * (attempt + 1))
        raise InvariantViolation(
            f"{path} to {peer.state}: {SYNC_ATTEMPTS} attempts neither returned nor raised"
        )

    async def _fetch_ahead(
        self, peer: Peer, ahead: asyncio.Queue[Pairs | None], reading: asyncio.Event
    ) -> None:
        """Put parsed, verified replies on ``ahead``, then None when done or failed.

        The None is awaited, not dropped when the queue is full: the consumer
        would otherwise wait for it forever after taking the last reply."""
        try:
            await self._fetch_replies(peer, ahead, reading)
        finally:
            reading.set()
        await ahead.put(None)

    async def _fetch_replies(
        self, peer: Peer, ahead: asyncio.Queue[Pairs | None], reading: asyncio.Event
    ) -> None:
        """Read replies one after another; each reply's signatures are checked by
        the workers while the next reply is read, and replies reach ``ahead`` in
        order, each once its signatures are checked."""
        checking: tuple[Pairs, asyncio.Task[None]] | None = None
        try:
            async for pairs in self._replies(peer, reading):
                envelopes = [e for block, _ in pairs for e in block.envelopes]
                task = asyncio.get_running_loop().create_task(
                    self._check_signatures(peer, pairs, envelopes)
                )
                if checking is not None:
                    await checking[1]
                    await ahead.put(checking[0])
                checking = (pairs, task)
            if checking is not None:
                await checking[1]
                await ahead.put(checking[0])
                checking = None
        finally:
            if checking is not None:
                checking[1].cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await checking[1]

    async def _check_signatures(self, peer: Peer, pairs: Pairs, envelopes: list[Envelope]) -> None:
        # Signatures in the verifier's workers: the driver then finds them
        # cached and spends its loop time on the other checks.
        loop = asyncio.get_running_loop()
        started = loop.time()
        await self.verify(envelopes)
        log.info(
            "block sync from %s: heights %d-%d (%d records), signatures checked in %.2f s",
            peer.state,
            pairs[0][0].height,
            pairs[-1][0].height,
            len(envelopes),
            loop.time() - started,
        )

    async def _replies(self, peer: Peer, reading: asyncio.Event) -> AsyncIterator[Pairs]:
        """Parsed block-sync replies from ``peer``, from our next height to its top;
        ends at the first failed, empty or out-of-order reply."""
        params = self.app.params
        loop = asyncio.get_running_loop()
        start = self.app.height + 1
        while start <= peer.stats.height:
            started = loop.time()
            try:
                reply = await self._request_retrying(
                    peer,
                    "/p2p/v1/blocks",
                    {"from_height": start, "limit": self.batch_blocks},
                    reading,
                )
                with from_peer(peer.state, "block-sync reply", parsing=True):
                    pairs = decode_sync_reply(
                        reply,
                        max_record_bytes=params.max_record_bytes,
                        max_records=params.max_block_records,
                    )
            except PeerFault as exc:
                log.warning("block sync from %s failed: %r", peer.state, exc)
                return
            finally:
                reading.set()
            if not pairs or pairs[0][0].height != start:
                return
            log.info(
                "block sync from %s: heights %d-%d read in %.2f s",
                peer.state,
                start,
                pairs[-1][0].height,
                loop.time() - started,
            )
            yield pairs
            start = pairs[-1][0].height + 1
