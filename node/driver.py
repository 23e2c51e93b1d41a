"""The consensus driver: runs the pure engine against the real world.

Theory of operation
-------------------
One asyncio task owns the ``Replica`` and the ``Application``. Everything
that can change consensus state arrives as an event on one bounded inbox:
a peer's message (a proposal with its block), a timeout that fired, "records
are pending", blocks fetched by block sync, and a periodic tick. The task
drains the inbox in groups; each engine call returns a ``Ready`` and the
driver acts on it in the order the engine requires:

1. **persist, then send.** The newest ``Ready.persist`` of the group is
   written to the store with ``sync=True`` before any message of the group
   leaves this node, so a node that crashes after sending can never, after a
   restart, sign a different vote for the same height, round and type.
2. **commit.** A decided block is written in one atomic, fsynced batch
   (``Application.commit``), its records leave the mempool and waiters are
   told.
3. **schedule** timeouts, answer ``validate`` (``Application.validate_block``),
   build a block for ``need_proposal``, keep ``evidence``, start block sync
   on ``behind``.

Blocks are proposed only when there is something to order: after a commit the
driver enters the next height only once records can be proposed (node/mempool.py: a
client's record first spreads to every peer), a peer speaks at
that height, or the heartbeat interval has passed since the last block (an
empty heartbeat block lets auditors see the chain is alive).

Nothing a peer says unverified decides anything here. The block cache holds
only blocks a proposal signed by its round's proposer vouches for (next two
heights, a few rounds ahead, a quota per proposer), our own, and blocks
fetched because a verified proposal, a pending validation or a decision
named their hash. A body that is not its header's (``BodyMismatch``) is
dropped and fetched again, never reported to the engine as invalid. Peer
events count against their sender's share of the inbox; timeouts and
wake-ups bypass it, so none is ever lost. Only peer and client errors are
caught in the loop: a store error or a violated invariant stops the driver.

Signing. Every engine call may sign a vote or a proposal, so it goes through
``_engine``: with a node key in a token (node/hsm.py) the call runs on the
token's signing thread and the driver task awaits it, so a slow C_Sign never
stalls the event loop (the API, P2P and block sync go on); the replica is pure and
this task is its only user, so nothing else touches it meanwhile. With a key in
memory the call runs inline and never suspends, so a group is handled in one
step of the loop, as the whole-node simulator assumes.

The engine is created lazily with the persisted state when the node resumes
the height it crashed in; if that height is beyond the store (a torn disk),
the node block-syncs up to it before it takes part again.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from consensus.engine import Replica
from consensus.messages import Equivocation, Proposal, Vote
from consensus.signing import Ed25519Signer, Ed25519Verifier
from consensus.state import PersistedState, Ready, Timeout, TimeoutParams
from ledger.block import CommitCertificate, sorted_validators, verify_certificate
from ledger.canonical import canonical_bytes, parse_json
from ledger.errors import (
    BodyMismatch,
    ComityError,
    InvariantViolation,
    PeerFault,
    StoreError,
    from_peer,
)
from ledger.keys import KeySigner
from ledger.records import parse_time
from node import clock
from node.application import Application, Block
from node.blockcache import CACHE_ROUNDS_AHEAD, BlockCache, Meta
from node.hsm import off_loop
from node.mempool import Mempool
from node.signing_hold import may_sign
from node.wire import proposal_item

log = logging.getLogger("comity.driver")

WAL_NAME = "consensus"
GROUP_EVENTS_MAX = 256
EVIDENCE_MAX = 1000


@dataclass(frozen=True, slots=True)
class PeerMessage:
    msg: Proposal | Vote
    block: Block | None
    sender: str = ""  # the authenticated node key that sent it (inbox quotas)


@dataclass(frozen=True, slots=True)
class BlockArrived:
    """A full block fetched from a peer after a compact proposal we could not rebuild."""

    block: Block


@dataclass(frozen=True, slots=True)
class Synced:
    blocks: tuple[tuple[Block, CommitCertificate], ...]
    source: str


@dataclass
class DriverStats:
    commits: int = 0
    rounds: int = 0
    synced_blocks: int = 0
    invalid_blocks: int = 0
    last_commit_ms: float = 0.0
    entered_height_s: float = 0.0  # loop time we entered the current height (metrics)
    # Loop times within the current height, to say where a height's time goes:
    # the block in hand (built here, or arrived from the proposer), our
    # validation of it done, and the decision.
    block_at_s: float = 0.0
    validated_at_s: float = 0.0
    validate_ms: float = 0.0
    fetched_blocks: int = 0
    body_mismatches: int = 0
    refused_blocks: int = 0  # blocks not cached: unverified or over a proposer's quota
    inbox_refused: int = 0  # peer events refused: the sender's share of the inbox is used
    rejected_sync: dict[str, int] = field(default_factory=dict)


def _source(event: PeerMessage | BlockArrived | Synced) -> str:
    """Who sent what an event carries, to name in a ``PeerFault``."""
    if isinstance(event, PeerMessage):
        return f"peer {event.sender[:16] or '?'}"
    if isinstance(event, Synced):
        return event.source
    return "a fetched block's peer"


class Driver:
    def __init__(
        self,
        app: Application,
        mempool: Mempool,
        key: KeySigner,
        broadcast: Callable[[dict[str, Any], int], None],
        *,
        inbox_max: int,
        heartbeat_ms: int,
        rebroadcast_ms: int,
        on_commit: Callable[[Block, CommitCertificate], None],
        on_behind: Callable[[int], None],
        decided_elsewhere: Callable[[int], bool] = lambda height: False,
        on_evidence: Callable[[Equivocation], None] = lambda ev: None,
        fetch_block: Callable[[str, int, str | None], None] = lambda h, n, s: None,
        observer: bool = False,
    ) -> None:
        #: An observer node (docs/OPERATIONS.md, "Observer nodes") applies synced
        #: blocks only: it never builds a replica, so it never signs a vote or a proposal.
        self.observer = observer
        self.app = app
        self.mempool = mempool
        self.key = key
        self.broadcast = broadcast
        self.inbox: asyncio.Queue[object] = asyncio.Queue(inbox_max)
        self.inbox_max = inbox_max
        #: Peer events queued per sender: no validator may take more than its share.
        self._queued: Counter[str] = Counter()
        #: Timeouts and wake-ups bypass the bounded inbox (finding B1): a flood of
        #: peer input must never make a replica lose a timeout. At most three
        #: timeouts are scheduled per round, so this stays small.
        self._urgent: deque[object] = deque()
        self._coalesced: set[str] = set()
        self.heartbeat = timedelta(milliseconds=heartbeat_ms)
        self.rebroadcast_s = rebroadcast_ms / 1000
        self.on_commit = on_commit
        self.on_behind = on_behind
        self.decided_elsewhere = decided_elsewhere
        self.on_evidence = on_evidence
        self.fetch_block = fetch_block
        params = app.genesis.consensus
        self.timeouts = TimeoutParams(
            params.propose_timeout_ms,
            params.propose_timeout_delta_ms,
            params.prevote_timeout_ms,
            params.prevote_timeout_delta_ms,
            params.precommit_timeout_ms,
            params.precommit_timeout_delta_ms,
        )
        self.replica: Replica | None = None
        self.restored = self._load_wal()
        self.blocks = BlockCache(key.public_hex)
        self._awaiting: set[str] = set()
        #: A decision whose block we lack: (height, hash, certificate), applied when
        #: the block arrives (fetched by hash, or by block sync).
        self._decided: tuple[int, str, CommitCertificate] | None = None
        self._next_height_seen = False
        self._last_progress = 0.0
        self.evidence: list[Equivocation] = []
        self.stats = DriverStats()
        self._group: list[Ready] = []
        self._verifier = Ed25519Verifier()

    # --- the WAL ------------------------------------------------------------------------

    def _load_wal(self) -> PersistedState | None:
        raw = self.app.store.get_state(WAL_NAME)
        if raw is None:
            return None
        try:
            state = PersistedState.from_json(parse_json(raw))
        except ComityError as exc:  # say which file is bad and how to repair it, not "bad JSON"
            raise StoreError(
                f"the consensus WAL (state key {WAL_NAME!r}) in the store is "
                f"corrupt: {exc}; restore the data directory from a backup "
                "(never delete the WAL alone: this node could then sign "
                "conflicting votes)"
            ) from exc
        signers = {v.validator for v in state.votes} | {p.proposer for p in state.proposals}
        if signers - {self.key.public_hex}:
            # Signed with a node key since rotated away: the new key is another validator
            # identity and has signed nothing yet, so there is nothing to resume.
            return None
        return state if state.height > self.app.height else None

    def _persist(self, state: PersistedState) -> None:
        self.app.store.put_state(WAL_NAME, canonical_bytes(state.to_json()), sync=True)

    # --- inputs (called from other tasks; never block) -------------------------------

    def post(self, event: object) -> bool:
        """Queue an event (a peer's, block sync's, a fetched block); False if full.

        A peer's message counts against its sender's share of the inbox, so one
        flooding validator cannot crowd out the others (finding B1)."""
        sender = event.sender if isinstance(event, PeerMessage) else ""
        if sender and self._queued[sender] >= self._share():
            self.stats.inbox_refused += 1
            return False
        try:
            self.inbox.put_nowait(event)
        except asyncio.QueueFull:
            return False
        if sender:
            self._queued[sender] += 1
        return True

    def _share(self) -> int:
        validators = len(self.app.state.validators(self.app.height + 1))
        return max(1, self.inbox_max // max(1, validators))

    def post_urgent(self, event: object) -> None:
        """Queue a timeout or wake-up outside the bounded inbox; it is never lost.

        Wake-ups and ticks are coalesced (one of each waits at most: a record
        admitted under load wakes the driver thousands of times a second), and
        the engine schedules at most three timeouts a round, so this stays small."""
        if isinstance(event, str):
            if event in self._coalesced:
                return
            self._coalesced.add(event)
        self._urgent.append(event)
        if self.inbox.empty():  # the loop may be waiting on the inbox: wake it
            self.inbox.put_nowait("wake")

    def wake(self) -> None:
        self.post_urgent("wake")

    # --- the loop ---------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._last_progress = loop.time()
        ticker = asyncio.create_task(self._ticker(), name="driver-tick")
        try:
            await self._handle_group(["wake"])
            while True:
                if not self._urgent:
                    first = await self.inbox.get()
                    events = [first]
                else:
                    events = []
                while self._urgent:
                    events.append(self._urgent.popleft())
                self._coalesced.clear()
                while len(events) < GROUP_EVENTS_MAX and not self.inbox.empty():
                    events.append(self.inbox.get_nowait())
                await self._handle_group(events)
        finally:
            ticker.cancel()

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            self.post_urgent("tick")

    async def _handle_group(self, events: Sequence[object]) -> None:
        self._group = []
        for event in events:
            if isinstance(event, PeerMessage) and event.sender:
                self._queued[event.sender] -= 1
                if self._queued[event.sender] <= 0:
                    del self._queued[event.sender]
            try:
                if isinstance(event, PeerMessage | BlockArrived | Synced):
                    with from_peer(_source(event), type(event).__name__):
                        await self._dispatch(event)
                else:
                    await self._dispatch(event)
            except PeerFault as exc:
                # A peer's bad input: log it, never stop the loop. Anything else
                # (InvariantViolation, StoreError: a bug or a broken disk; a check
                # failing on a local event) stops the driver loudly; the node
                # then fails /readyz (finding B3).
                log.warning("dropped event %s: %s", type(event).__name__, exc)
        self._flush()

    async def _dispatch(self, event: object) -> None:
        """Act on one event; a check failing on what a peer sent is raised as its
        ``PeerFault`` (``_handle_group``), any other error stops the driver."""
        if isinstance(event, PeerMessage):
            await self._on_peer_message(event)
        elif isinstance(event, Timeout):
            await self._step(lambda r: r.on_timeout(event))
        elif isinstance(event, Synced):
            self._on_synced(event)
        elif isinstance(event, BlockArrived):
            await self._on_block_arrived(event.block)
        elif event == "tick":
            await self._on_tick()
        await self._maybe_enter()

    async def _step(self, call: Callable[[Replica], Ready]) -> None:
        if self.replica is not None and self.replica.height == self.app.height + 1:
            await self._absorb(await self._engine(call))

    async def _engine(self, call: Callable[[Replica], Ready]) -> Ready:
        """One call into the replica. It may sign, so with a key in a token it runs on
        the token's signing thread while the event loop serves everyone else; the
        driver task, the replica's only user, waits for it. A key in memory signs
        inline (``node.hsm.off_loop``): the call never suspends."""
        replica = self.replica
        if replica is None:
            raise InvariantViolation("an engine call with no replica")
        return await off_loop(self.key, call, replica)

    # --- acting on Ready ------------------------------------------------------------

    async def _absorb(self, ready: Ready) -> None:
        """Apply what must happen now (commits, answers); defer persist+send to _flush."""
        self._group.append(ready)
        for commit in ready.commits:
            self._commit(commit.height, commit.block_hash, commit.certificate)
        loop = asyncio.get_running_loop()
        for timeout in ready.timeouts:
            loop.call_later(timeout.delay_ms / 1000, self.post_urgent, timeout)
        for block_hash in ready.validate:
            await self._validate(block_hash)
        if ready.need_proposal is not None:
            await self._propose(*ready.need_proposal)
        for evidence in ready.evidence:
            self._keep_evidence(evidence)
        if ready.behind is not None:
            self.on_behind(ready.behind)

    def _flush(self) -> None:
        """Persist the newest engine state of the group, then send the group's messages."""
        persist = next((r.persist for r in reversed(self._group) if r.persist), None)
        if persist is not None:
            self._persist(persist)
        for ready in self._group:
            for msg in ready.send:
                self._send(msg)
        self._group = []

    def _send(self, msg: Proposal | Vote) -> None:
        if self.observer:
            raise InvariantViolation(f"an observer node was about to send a {type(msg).__name__}")
        block = self.blocks.get(msg.block_hash) if isinstance(msg, Proposal) else None
        self.broadcast(*proposal_item(msg, block, self.mempool.is_spreading))

    def _keep_evidence(self, evidence: Equivocation) -> None:
        log.warning(
            "equivocation by %s at height %d round %d",
            evidence.first.signer[:16],
            evidence.first.height,
            evidence.first.round,
        )
        if len(self.evidence) < EVIDENCE_MAX:
            self.evidence.append(evidence)
        self.on_evidence(evidence)

    # --- heights -------------------------------------------------------------------

    async def _maybe_enter(self) -> None:
        if self.observer:
            if self.replica is not None:
                raise InvariantViolation("an observer node holds a consensus replica")
            return  # it follows by block sync only
        next_height = self.app.height + 1
        if self.replica is not None and self.replica.height >= next_height:
            return
        if self.restored is not None and self.restored.height > next_height:
            return  # a torn store: catch up by block sync before voting again
        if not self._want_height(next_height):
            return
        if self.decided_elsewhere(next_height):
            return  # a verified certificate for this height exists: block sync, don't vote
        if not may_sign(self.app.store, next_height):
            return  # restored from a backup: this key may have signed here (node/signing_hold.py)
        validators = self.app.state.validators(next_height)
        if all(v.pubkey != self.key.public_hex for v in validators):
            return  # not a validator here (not yet admitted, removed, re-keyed): block sync
        if self.replica is None or self.restored is not None:
            restored = (
                self.restored if self.restored and self.restored.height == next_height else None
            )
            self.replica = Replica(
                self.app.chain_id,
                Ed25519Signer(self.key),
                Ed25519Verifier(),
                self.timeouts,
                restored=restored,
            )
            self.restored = None
        self._next_height_seen = False
        self.stats.entered_height_s = asyncio.get_running_loop().time()
        self.stats.block_at_s = self.stats.validated_at_s = self.stats.validate_ms = 0.0
        await self._absorb(await self._engine(lambda r: r.enter_height(next_height, validators)))

    def _want_height(self, height: int) -> bool:
        if self.restored is not None and self.restored.height == height:
            return True
        if self.mempool.proposable() or self._next_height_seen:
            return True
        previous = self.app.store.get_header(height - 1)
        if previous is None:
            return self._heartbeat_due(None)
        return self._heartbeat_due(parse_time(previous.time, "time"))

    def _heartbeat_due(self, last_block_time: datetime | None) -> bool:
        if last_block_time is None:
            genesis_time = parse_time(self.app.genesis.genesis_time, "genesis_time")
            return clock.utcnow() - genesis_time >= self.heartbeat
        return clock.utcnow() - last_block_time >= self.heartbeat

    async def _on_tick(self) -> None:
        loop = asyncio.get_running_loop()
        if self.replica is None or self.replica.height != self.app.height + 1:
            return
        if loop.time() - self._last_progress >= self.rebroadcast_s:
            self._last_progress = loop.time()
            await self._absorb(await self._engine(lambda r: r.rebroadcast()))
            self._fetch_missing()

    def _fetch_missing(self) -> None:
        """Ask peers again for every block we wait for (its proposer first)."""
        height = self.app.height + 1
        if self._decided is not None:
            self.fetch_block(self._decided[1], self._decided[0], None)
        for block_hash in sorted(self._awaiting):
            meta = self.blocks.origin(block_hash)
            self.fetch_block(block_hash, meta[0] if meta else height, meta[2] if meta else None)

    # --- peer messages and the block cache -------------------------------------------

    async def _on_peer_message(self, event: PeerMessage) -> None:
        msg, block = event.msg, event.block
        entered = self.replica.height if self.replica is not None else 0
        if msg.height == self.app.height + 1 and entered < msg.height:
            self._next_height_seen = True  # a peer started the next height: follow it
        if (
            isinstance(msg, Proposal)
            and self.app.height < msg.height <= self.app.height + 2
            and msg.block_hash not in self.blocks
            and (block is not None or msg.block_hash not in self.blocks.wanted)
            and self._genuine(msg)
        ):
            # Only a block that a proposal by its round's proposer vouches for is
            # cached (finding C3): anything else attached to a message is ignored.
            meta = (msg.height, msg.round, msg.proposer)
            if block is not None and block.hash == msg.block_hash and block.height == msg.height:
                self._cache_block(block, meta)
            elif msg.block_hash not in self.blocks:
                self._want(msg.block_hash, meta)
        await self._maybe_enter()
        await self._step(lambda r: r.on_message(msg))
        if block is not None and block.hash in self._awaiting and block.hash in self.blocks:
            await self._validate(block.hash)

    def _genuine(self, msg: Proposal) -> bool:
        """``msg`` is signed by the proposer of its height and round (the engine checks
        it again; this guards the block cache, which sits before the engine)."""
        ahead = msg.round - (
            self.replica.round
            if self.replica is not None and self.replica.height == msg.height
            else 0
        )
        if ahead > CACHE_ROUNDS_AHEAD:
            return False
        validators = sorted_validators(self.app.state.validators(msg.height))
        if not validators:
            return False
        proposer = validators[(msg.height + msg.round) % len(validators)].pubkey
        return msg.proposer == proposer and self._verifier.verify(
            msg.proposer, msg.sign_bytes(self.app.chain_id), msg.signature
        )

    def _want(self, block_hash: str, meta: Meta) -> None:
        """A verified proposal names a block we lack (it came without one, e.g. relayed
        or re-proposed after a restart): remember it, and fetch it (finding B2)."""
        if self.blocks.want(block_hash, meta, len(self.app.state.validators(meta[0]))):
            self.fetch_block(block_hash, meta[0], meta[2])

    async def _on_block_arrived(self, block: Block) -> None:
        """A block fetched by hash: cached only if something here asked for it."""
        self.stats.fetched_blocks += 1
        if not self.app.height < block.height <= self.app.height + 2:
            return
        decided = self._decided
        if decided is not None and decided[1] == block.hash:
            self._decided = None
            self._on_synced(Synced(((block, decided[2]),), "fetch"))
            return
        meta = self.blocks.wanted.get(block.hash)
        if meta is None and block.hash not in self._awaiting:
            self.stats.refused_blocks += 1
            return
        self._cache_block(block, meta or (block.height, -1, ""))
        if block.hash in self._awaiting:
            await self._validate(block.hash)

    def _cache_block(self, block: Block, meta: Meta) -> None:
        if block.hash in self.blocks:
            return
        if block.height == self.app.height + 1 and not self.stats.block_at_s:
            self.stats.block_at_s = asyncio.get_running_loop().time()
        self.blocks.forget_through(self.app.height)
        keep = set(self._awaiting)  # what the engine still needs is never evicted
        if self.replica is not None:
            keep.update(h for h in (self.replica.locked_value, self.replica.valid_value) if h)
        if not self.blocks.put(
            block, meta, protected=keep, validators=len(self.app.state.validators(block.height))
        ):
            self.stats.refused_blocks += 1
            log.warning(
                "block cache full of blocks the engine needs: block %s refused", block.hash[:16]
            )

    async def _validate(self, block_hash: str) -> None:
        block = self.blocks.get(block_hash)
        if block is None:
            if block_hash not in self._awaiting:
                self._awaiting.add(block_hash)
                meta = self.blocks.origin(block_hash)
                self.fetch_block(
                    block_hash, meta[0] if meta else self.app.height + 1, meta[2] if meta else None
                )
            return
        loop = asyncio.get_running_loop()
        started = loop.time()
        origin = self.blocks.origin(block_hash)
        proposer = origin[2][:16] if origin is not None and origin[2] else "?"
        try:
            with from_peer(f"proposer {proposer}", f"block {block_hash[:16]}"):
                self.app.validate_block(block, now=clock.utcnow())
            valid = True
        except BodyMismatch as exc:
            # Not this block's body (finding C1): drop it, fetch the real one, and
            # tell the engine nothing; it waits, or times out to nil.
            log.warning("block %s: %s; fetching it", block_hash[:16], exc)
            self.stats.body_mismatches += 1
            meta = self.blocks.origin(block_hash) or (block.height, -1, "")
            self.blocks.drop(block_hash)
            self.blocks.wanted[block_hash] = meta
            self._awaiting.add(block_hash)
            self.fetch_block(block_hash, block.height, meta[2] or None)
            return
        except PeerFault as exc:  # the block breaks a rule (from_peer): vote against it
            log.warning("invalid block %s at height %d: %s", block_hash[:16], block.height, exc)
            self.stats.invalid_blocks += 1
            valid = False
        self._awaiting.discard(block_hash)
        if not self.stats.validated_at_s:
            self.stats.validated_at_s = loop.time()
            self.stats.validate_ms = (self.stats.validated_at_s - started) * 1000
        await self._step(lambda r: r.on_validated(block_hash, valid))

    async def _propose(self, height: int, round_: int) -> None:
        if self.observer:
            raise InvariantViolation("an observer node was asked to propose")
        if height != self.app.height + 1:
            return
        params = self.app.params
        candidates = self.mempool.reap(params.max_block_records * 2, params.max_block_bytes * 2)
        me = self.app.state.validators(height)
        proposer = next(v.state for v in me if v.pubkey == self.key.public_hex)
        block, rejected = self.app.build_block(proposer, candidates, clock.utcnow())
        self.mempool.remove(rejected)
        self._cache_block(block, (height, round_, self.key.public_hex))
        await self._step(lambda r: r.propose(height, round_, block.hash))

    # --- commits and sync -------------------------------------------------------------

    def _commit(self, height: int, block_hash: str, certificate: CommitCertificate) -> None:
        if height != self.app.height + 1:
            return  # already applied through block sync
        block = self.blocks.get(block_hash)
        if block is None:
            # Decided without the block here (its proposal came bare, or the body we
            # held was not the block's): fetch it, then apply it as a synced block
            # with this certificate (finding B2).
            log.info(
                "decided block %s at height %d is not here; fetching it", block_hash[:16], height
            )
            self._decided = (height, block_hash, certificate)
            self.fetch_block(block_hash, height, None)
            return
        self._apply(block, certificate)

    def _apply(self, block: Block, certificate: CommitCertificate) -> None:
        loop = asyncio.get_running_loop()
        decided = loop.time()
        self.app.commit(block, certificate)
        stored = loop.time()
        self.mempool.remove(e.id for e in block.envelopes)
        self.blocks.forget_through(block.height)
        self._awaiting.clear()
        if self._decided is not None and self._decided[0] <= block.height:
            self._decided = None
        self._next_height_seen = False
        self.stats.commits += 1
        self._log_commit(block, certificate, decided, stored)
        self._last_progress = loop.time()
        self.on_commit(block, certificate)

    def _log_commit(
        self, block: Block, certificate: CommitCertificate, decided: float, stored: float
    ) -> None:
        """One line per height saying where its time went (all in ms from entering it)."""
        stats = self.stats

        def since_enter(at: float) -> int | None:
            return (
                round((at - stats.entered_height_s) * 1000)
                if at and stats.entered_height_s
                else None
            )

        phases = {
            "block_ms": since_enter(stats.block_at_s),
            "validated_ms": since_enter(stats.validated_at_s),
            "decided_ms": since_enter(decided),
            "validate_ms": round(stats.validate_ms),
            "store_ms": round((stored - decided) * 1000),
        }
        log.info(
            "committed height %d round %d: %d records (block %s, validated %s, "
            "decided %s ms after entering the height; validation %d ms, store %d ms)",
            block.height,
            certificate.round,
            len(block.envelopes),
            phases["block_ms"],
            phases["validated_ms"],
            phases["decided_ms"],
            phases["validate_ms"],
            phases["store_ms"],
            extra={
                "height": block.height,
                "round": certificate.round,
                "records": len(block.envelopes),
                **phases,
            },
        )

    def _on_synced(self, event: Synced) -> None:
        for block, certificate in event.blocks:
            if block.height <= self.app.height:
                continue
            if block.height != self.app.height + 1:
                break
            try:
                with from_peer(event.source, f"synced block {block.height}"):
                    self.check_synced(block, certificate)
            except PeerFault as exc:
                log.warning("peer %s served a bad block %d: %s", event.source, block.height, exc)
                self.stats.rejected_sync[event.source] = (
                    self.stats.rejected_sync.get(event.source, 0) + 1
                )
                return
            self._apply(block, certificate)
            self.stats.synced_blocks += 1

    def check_synced(self, block: Block, certificate: CommitCertificate) -> None:
        """A fetched block must carry a valid certificate by the validators of its height."""
        height = block.height
        validators = self.app.state.validators(height)
        verify_certificate(certificate, self.app.chain_id, validators, block.hash, height)
        self.app.validate_block(block, now=None)
