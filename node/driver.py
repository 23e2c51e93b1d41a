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

The engine is created lazily with the persisted state when the node resumes
the height it crashed in; if that height is beyond the store (a torn disk),
the node block-syncs up to it before it takes part again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from consensus.engine import Replica
from consensus.messages import Equivocation, Proposal, Vote
from consensus.signing import Ed25519Signer, Ed25519Verifier
from consensus.state import PersistedState, Ready, Timeout, TimeoutParams
from ledger.block import CommitCertificate, verify_certificate
from ledger.canonical import canonical_bytes, parse_json
from ledger.errors import (
    ChainError,
    ClientError,
    ComityError,
    StoreError,
    VerificationError,
)
from ledger.keys import SigningKey
from ledger.records import parse_time
from node.application import Application, Block
from node.mempool import Mempool

log = logging.getLogger("comity.driver")

WAL_NAME = "consensus"
GROUP_EVENTS_MAX = 256
BLOCK_CACHE_MAX = 64
#: A proposed block up to this size travels with all its records (a peer parses
#: only those it lacks); a larger one with just the records that may be missing.
CARRY_ALL_BYTES_MAX = 256 * 1024
EVIDENCE_MAX = 1000


@dataclass(frozen=True, slots=True)
class PeerMessage:
    msg: Proposal | Vote
    block: Block | None


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
    entered_height_s: float = 0.0     # loop time we entered the current height (metrics)
    # Loop times within the current height, to say where a height's time goes:
    # the block in hand (built here, or arrived from the proposer), our
    # validation of it done, and the decision.
    block_at_s: float = 0.0
    validated_at_s: float = 0.0
    validate_ms: float = 0.0
    fetched_blocks: int = 0
    rejected_sync: dict[str, int] = field(default_factory=dict)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Driver:
    def __init__(self, app: Application, mempool: Mempool, key: SigningKey,
                 broadcast: Callable[[dict[str, Any], int], None], *, inbox_max: int,
                 heartbeat_ms: int, rebroadcast_ms: int,
                 on_commit: Callable[[Block, CommitCertificate], None],
                 on_behind: Callable[[int], None],
                 peers_top: Callable[[], int] = lambda: 0,
                 on_evidence: Callable[[Equivocation], None] = lambda ev: None) -> None:
        self.app = app
        self.mempool = mempool
        self.key = key
        self.broadcast = broadcast
        self.inbox: asyncio.Queue[object] = asyncio.Queue(inbox_max)
        self.heartbeat = timedelta(milliseconds=heartbeat_ms)
        self.rebroadcast_s = rebroadcast_ms / 1000
        self.on_commit = on_commit
        self.on_behind = on_behind
        self.peers_top = peers_top
        self.on_evidence = on_evidence
        params = app.genesis.consensus
        self.timeouts = TimeoutParams(
            params.propose_timeout_ms, params.propose_timeout_delta_ms,
            params.prevote_timeout_ms, params.prevote_timeout_delta_ms,
            params.precommit_timeout_ms, params.precommit_timeout_delta_ms)
        self.replica: Replica | None = None
        self.restored = self._load_wal()
        self.blocks: dict[str, Block] = {}
        self._awaiting: set[str] = set()
        self._next_height_seen = False
        self._last_progress = 0.0
        self.evidence: list[Equivocation] = []
        self.stats = DriverStats()
        self._group: list[Ready] = []

    # --- the WAL ------------------------------------------------------------------------

    def _load_wal(self) -> PersistedState | None:
        raw = self.app.store.get_state(WAL_NAME)
        if raw is None:
            return None
        try:
            state = PersistedState.from_json(parse_json(raw))
        except ComityError as exc:  # say which file is bad and how to repair it, not "bad JSON"
            raise StoreError(f"the consensus WAL (state key {WAL_NAME!r}) in the store is "
                             f"corrupt: {exc}; restore the data directory from a backup "
                             "(never delete the WAL alone: this node could then sign "
                             "conflicting votes)") from exc
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
        try:
            self.inbox.put_nowait(event)
        except asyncio.QueueFull:
            return False
        return True

    def wake(self) -> None:
        self.post("wake")

    # --- the loop ---------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._last_progress = loop.time()
        ticker = asyncio.create_task(self._ticker(), name="driver-tick")
        try:
            self._handle_group(["wake"])
            while True:
                events = [await self.inbox.get()]
                while len(events) < GROUP_EVENTS_MAX and not self.inbox.empty():
                    events.append(self.inbox.get_nowait())
                self._handle_group(events)
        finally:
            ticker.cancel()

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            self.post("tick")

    def _handle_group(self, events: Sequence[object]) -> None:
        self._group = []
        for event in events:
            try:
                self._dispatch(event)
            except ComityError as exc:  # a peer's bad input: log it, never crash the loop
                log.warning("dropped event %s: %s", type(event).__name__, exc)
        self._flush()

    def _dispatch(self, event: object) -> None:
        if isinstance(event, PeerMessage):
            self._on_peer_message(event)
        elif isinstance(event, Timeout):
            self._step(lambda r: r.on_timeout(event))
        elif isinstance(event, Synced):
            self._on_synced(event)
        elif isinstance(event, BlockArrived):
            self._on_block_arrived(event.block)
        elif event == "tick":
            self._on_tick()
        self._maybe_enter()

    def _step(self, call: Callable[[Replica], Ready]) -> None:
        if self.replica is not None and self.replica.height == self.app.height + 1:
            self._absorb(call(self.replica))

    # --- acting on Ready ------------------------------------------------------------

    def _absorb(self, ready: Ready) -> None:
        """Apply what must happen now (commits, answers); defer persist+send to _flush."""
        self._group.append(ready)
        for commit in ready.commits:
            self._commit(commit.height, commit.block_hash, commit.certificate)
        loop = asyncio.get_running_loop()
        for timeout in ready.timeouts:
            loop.call_later(timeout.delay_ms / 1000, self.post, timeout)
        for block_hash in ready.validate:
            self._validate(block_hash)
        if ready.need_proposal is not None:
            self._propose(*ready.need_proposal)
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
        item: dict[str, Any] = {"msg": msg.to_json()}
        size = 400
        if isinstance(msg, Proposal):
            block = self.blocks.get(msg.block_hash)
            if block is not None:
                # A compact block: the header and the record ids. Peers hold most
                # records already (gossip) and rebuild the block from their
                # mempool. Records that may not have reached them go along in
                # full: all of a small block's (a gossip batch from a third node
                # may still be on its way), and of a large one our clients'
                # records that some peer has not acknowledged. A peer that still
                # misses some fetches the whole block from us.
                item["header"] = block.header.to_json()
                item["ids"] = [e.id for e in block.envelopes]
                size += 70 * len(block.envelopes)
                every = sum(len(e.leaf) for e in block.envelopes) <= CARRY_ALL_BYTES_MAX
                carried = {e.id: e.leaf for e in block.envelopes
                           if every or self.mempool.is_spreading(e.id)}
                if carried:
                    item["records"] = {rid: orjson.Fragment(leaf)
                                       for rid, leaf in carried.items()}
                    size += sum(len(leaf) + 70 for leaf in carried.values())
        self.broadcast(item, size)

    def _keep_evidence(self, evidence: Equivocation) -> None:
        log.warning("equivocation by %s at height %d round %d", evidence.first.signer[:16],
                    evidence.first.height, evidence.first.round)
        if len(self.evidence) < EVIDENCE_MAX:
            self.evidence.append(evidence)
        self.on_evidence(evidence)

    # --- heights -------------------------------------------------------------------

    def _maybe_enter(self) -> None:
        next_height = self.app.height + 1
        if self.replica is not None and self.replica.height >= next_height:
            return
        if self.restored is not None and self.restored.height > next_height:
            return  # a torn store: catch up by block sync before voting again
        if not self._want_height(next_height):
            return
        if self.peers_top() > next_height:
            return  # peers finished this height long ago: block sync, don't vote on it
        validators = self.app.state.validators(next_height)
        if all(v.pubkey != self.key.public_hex for v in validators):
            return  # not a validator here (not yet admitted, removed, re-keyed): block sync
        if self.replica is None or self.restored is not None:
            restored = self.restored if self.restored and \
                self.restored.height == next_height else None
            self.replica = Replica(self.app.chain_id, Ed25519Signer(self.key), Ed25519Verifier(),
                                   self.timeouts, restored=restored)
            self.restored = None
        self._next_height_seen = False
        self.stats.entered_height_s = asyncio.get_running_loop().time()
        self.stats.block_at_s = self.stats.validated_at_s = self.stats.validate_ms = 0.0
        self._absorb(self.replica.enter_height(next_height, validators))

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
            return utcnow() - genesis_time >= self.heartbeat
        return utcnow() - last_block_time >= self.heartbeat

    def _on_tick(self) -> None:
        loop = asyncio.get_running_loop()
        if self.replica is None or self.replica.height != self.app.height + 1:
            return
        if loop.time() - self._last_progress >= self.rebroadcast_s:
            self._last_progress = loop.time()
            self._absorb(self.replica.rebroadcast())

    # --- peer messages and blocks ------------------------------------------------------

    def _on_peer_message(self, event: PeerMessage) -> None:
        msg, block = event.msg, event.block
        entered = self.replica.height if self.replica is not None else 0
        if msg.height == self.app.height + 1 and entered < msg.height:
            self._next_height_seen = True  # a peer started the next height: follow it
        if block is not None and block.height == msg.height and block.hash == msg.block_hash \
                and self.app.height < block.height <= self.app.height + 2:
            self._cache_block(block)
        self._maybe_enter()
        self._step(lambda r: r.on_message(msg))
        if block is not None and block.hash in self._awaiting:
            self._validate(block.hash)

    def _on_block_arrived(self, block: Block) -> None:
        self.stats.fetched_blocks += 1
        if self.app.height < block.height <= self.app.height + 2:
            self._cache_block(block)
            if block.hash in self._awaiting:
                self._validate(block.hash)

    def _cache_block(self, block: Block) -> None:
        if block.hash in self.blocks:
            return
        if block.height == self.app.height + 1 and not self.stats.block_at_s:
            self.stats.block_at_s = asyncio.get_running_loop().time()
        if len(self.blocks) >= BLOCK_CACHE_MAX:
            for stale in [h for h, b in self.blocks.items() if b.height <= self.app.height]:
                self._drop_block(stale)
            if len(self.blocks) >= BLOCK_CACHE_MAX:
                return
        self.blocks[block.hash] = block

    def _drop_block(self, block_hash: str) -> None:
        self.blocks.pop(block_hash, None)

    def _validate(self, block_hash: str) -> None:
        block = self.blocks.get(block_hash)
        if block is None:
            self._awaiting.add(block_hash)
            return
        self._awaiting.discard(block_hash)
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            self.app.validate_block(block, now=utcnow())
            valid = True
        except (ClientError, VerificationError) as exc:
            log.warning("invalid block %s at height %d: %s", block_hash[:16], block.height, exc)
            self.stats.invalid_blocks += 1
            valid = False
        if not self.stats.validated_at_s:
            self.stats.validated_at_s = loop.time()
            self.stats.validate_ms = (self.stats.validated_at_s - started) * 1000
        self._step(lambda r: r.on_validated(block_hash, valid))

    def _propose(self, height: int, round_: int) -> None:
        if height != self.app.height + 1:
            return
        params = self.app.params
        candidates = self.mempool.reap(params.max_block_records * 2, params.max_block_bytes * 2)
        me = self.app.state.validators(height)
        proposer = next(v.state for v in me if v.pubkey == self.key.public_hex)
        block, rejected = self.app.build_block(proposer, candidates, utcnow())
        self.mempool.remove(rejected)
        self._cache_block(block)
        self._step(lambda r: r.propose(height, round_, block.hash))

    # --- commits and sync -------------------------------------------------------------

    def _commit(self, height: int, block_hash: str, certificate: CommitCertificate) -> None:
        if height != self.app.height + 1:
            return  # already applied through block sync
        block = self.blocks.get(block_hash)
        if block is None:
            raise ChainError(f"decided block {block_hash} at height {height} is not cached")
        self._apply(block, certificate)

    def _apply(self, block: Block, certificate: CommitCertificate) -> None:
        loop = asyncio.get_running_loop()
        decided = loop.time()
        self.app.commit(block, certificate)
        stored = loop.time()
        self.mempool.remove(e.id for e in block.envelopes)
        for stale in [h for h, b in self.blocks.items() if b.height <= block.height]:
            self._drop_block(stale)
        self._awaiting.clear()
        self._next_height_seen = False
        self.stats.commits += 1
        self._log_commit(block, certificate, decided, stored)
        self._last_progress = loop.time()
        self.on_commit(block, certificate)

    def _log_commit(self, block: Block, certificate: CommitCertificate, decided: float,
                    stored: float) -> None:
        """One line per height saying where its time went (all in ms from entering it)."""
        stats = self.stats

        def since_enter(at: float) -> int | None:
            return round((at - stats.entered_height_s) * 1000) if at and \
                stats.entered_height_s else None

        phases = {"block_ms": since_enter(stats.block_at_s),
                  "validated_ms": since_enter(stats.validated_at_s),
                  "decided_ms": since_enter(decided),
                  "validate_ms": round(stats.validate_ms),
                  "store_ms": round((stored - decided) * 1000)}
        log.info("committed height %d round %d: %d records (block %s, validated %s, "
                 "decided %s ms after entering the height; validation %d ms, store %d ms)",
                 block.height, certificate.round, len(block.envelopes), phases["block_ms"],
                 phases["validated_ms"], phases["decided_ms"], phases["validate_ms"],
                 phases["store_ms"],
                 extra={"height": block.height, "round": certificate.round,
                        "records": len(block.envelopes), **phases})

    def _on_synced(self, event: Synced) -> None:
        for block, certificate in event.blocks:
            if block.height <= self.app.height:
                continue
            if block.height != self.app.height + 1:
                break
            try:
                self.check_synced(block, certificate)
            except (ClientError, VerificationError) as exc:
                log.warning("peer %s served a bad block %d: %s", event.source, block.height, exc)
                self.stats.rejected_sync[event.source] = \
                    self.stats.rejected_sync.get(event.source, 0) + 1
                return
            self._apply(block, certificate)
            self.stats.synced_blocks += 1

    def check_synced(self, block: Block, certificate: CommitCertificate) -> None:
        """A fetched block must carry a valid certificate by the validators of its height."""
        height = block.height
        validators = self.app.state.validators(height)
        verify_certificate(certificate, self.app.chain_id, validators, block.hash, height)
        self.app.validate_block(block, now=None)
