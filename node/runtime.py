"""A Comity node: one process holding the store, the engine driver, peers and APIs.

``Node`` wires the parts together and offers the small facade the HTTP API
uses (submit, read, prove, wait). ``Node.start``/``stop`` run the background
tasks (driver, peer senders, block sync); ``node.serve.serve`` puts the API
and P2P apps behind uvicorn. Tests build several ``Node`` objects in one
process and connect them with ``httpx.ASGITransport`` (no sockets).

Block transfer (fetching proposed blocks, block sync) is ``node.sync.BlockSync``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import orjson
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from consensus.messages import Equivocation
from ledger.block import CommitCertificate
from ledger.errors import ClientError, ComityError, Conflict, NotFound, Overloaded
from ledger.keys import SigningKey, load_signing_key, verify
from ledger.records import Envelope, parse_envelope
from ledger.store import Store
from node import clock
from node.application import Application, Block
from node.authoring import complete_record, sign_envelope
from node.config import ConfigError, NodeConfig
from node.driver import Driver
from node.genesis import Genesis, load_genesis
from node.governance import misbehaviour_record
from node.mempool import Mempool, SignatureCache
from node.peers import PeerSet
from node.rules import build_registry
from node.sealed_access import load_enc_key
from node.sync import SYNC_REPLY_BYTES_MAX, BlockSync
from node.tls import client_context
from node.verifier import ProcessVerifier, VerifierUnavailable

log = logging.getLogger("comity.node")


VERIFY_CHUNK = 64
VERIFY_CHUNK_MAX = 2048  # envelopes in one request to a verifier process
VERIFY_INLINE_MAX = 4  # this few signatures are checked on the event loop itself
SIGNATURE_CACHE_MIN = 65_536  # entries; at least twice the mempool (node/mempool.py)
P2P_ITEM_SLACK_BYTES = 64 * 1024  # JSON framing of a proposal around its block
#: Distinct reasons ``peer_faults`` counts; past that, new ones count as "other".
PEER_FAULT_REASONS_MAX = 64


def _verify_all(envelopes: Sequence[Envelope]) -> list[bool]:
    """Ed25519-verify each envelope (runs in a worker thread; pure)."""
    return [
        verify(bytes.fromhex(e.signer), e.record_bytes, bytes.fromhex(e.signature))
        for e in envelopes
    ]


@dataclass(frozen=True, slots=True)
class Submission:
    id: str
    status: str  # "pending" | "committed"


class Node:
    def __init__(
        self,
        config: NodeConfig,
        *,
        genesis: Genesis | None = None,
        key: SigningKey | None = None,
        store: Store | None = None,
        transports: dict[str, httpx.AsyncBaseTransport] | None = None,
        enc_key: X25519PrivateKey | None = None,
        verifier: ProcessVerifier | None = None,
    ) -> None:
        self.config = config
        self.genesis = genesis or load_genesis(config.genesis_path)
        self.key = key or load_signing_key(config.node_key_path)
        self.enc_key = enc_key or (
            load_enc_key(config.enc_key_path) if config.enc_key_path is not None else None
        )
        if store is None:
            config.data_dir.mkdir(parents=True, exist_ok=True)
            store = Store.open_leveldb(config.data_dir / "ledger")
        self.store = store
        self.app = Application(
            self.genesis,
            store,
            build_registry(),
            signatures=SignatureCache(
                max(SIGNATURE_CACHE_MIN, 2 * config.limits.max_pending_records)
            ),
        )
        limits = config.limits
        block_bytes_max = self.genesis.consensus.max_block_bytes
        if limits.max_p2p_batch_bytes < 2 * (block_bytes_max + P2P_ITEM_SLACK_BYTES):
            # A proposal carries its block and a batch may overshoot its half-limit target
            # by one item: below this, peers refuse our proposals and the chain stalls.
            raise ConfigError(
                f"limits.max_p2p_batch_bytes = {limits.max_p2p_batch_bytes} is "
                f"too small for blocks of up to {block_bytes_max} bytes (genesis "
                f"max_block_bytes); it must be at least "
                f"{2 * (block_bytes_max + P2P_ITEM_SLACK_BYTES)}"
            )
        self.mempool = Mempool(
            limits.max_pending_records,
            limits.max_pending_bytes,
            spread_backlog=self.genesis.consensus.max_block_records,
            governance_reserve_percent=limits.mempool_governance_reserve_percent,
            signer_share_percent=limits.mempool_signer_share_percent,
        )
        self.peer_faults: Counter[str] = Counter()
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._commit_listeners: list[Callable[[Block, CommitCertificate], None]] = []
        self._tasks: list[asyncio.Task[None]] = []
        #: Why the node stopped working (a background task died), or None.
        self.failed: str | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._transports = transports if transports is not None else {}
        tls = config.tls  # peer links trust only the consortium CA and present our cert
        self._peer_verify: ssl.SSLContext | bool = (
            True if tls is None else client_context(tls.ca_path, tls.cert_path, tls.key_path)
        )
        self.peers: PeerSet | None = None
        self._verify_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="verify")
        #: Worker processes for signature checks (forked by ``serve`` before any
        #: thread exists); without them the thread pool above does the work.
        self.verifier = verifier
        self.sync = BlockSync(self)
        self.driver: Driver = None  # type: ignore[assignment]  # set in start()

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        timing, limits = self.config.timing, self.config.limits
        self.peers = PeerSet(
            self.key,
            self.app.chain_id,
            flush_ms=timing.gossip_flush_ms,
            backoff_max_ms=timing.peer_backoff_max_ms,
            queue_max=limits.peer_queue_messages_max,
            batch_bytes_max=limits.max_p2p_batch_bytes // 2,
            request_timeout_ms=timing.peer_request_timeout_ms,
            on_height=self._peer_height,
            on_delivered=self._delivered,
            on_task_ended=self._task_ended,
            # The largest honest reply: a block-sync reply (its byte
            # target plus one whole block) or one block, with framing.
            reply_bytes_max=SYNC_REPLY_BYTES_MAX
            + 2 * (self.genesis.consensus.max_block_bytes + P2P_ITEM_SLACK_BYTES),
        )
        for state, url in self.peer_urls().items():
            self.peers.add(
                state,
                url,
                self._node_key_of(state),
                self._transports.get(state),
                verify=self._peer_verify,
            )
        self.mempool.share_with(len(self.peers.peers) + 1, self._member_states())
        self.driver = Driver(
            self.app,
            self.mempool,
            self.key,
            self.peers.broadcast,
            inbox_max=limits.inbox_events_max,
            heartbeat_ms=self.genesis.consensus.heartbeat_interval_ms,
            rebroadcast_ms=timing.rebroadcast_interval_ms,
            on_commit=self._committed,
            on_behind=self.sync.behind,
            decided_elsewhere=self.sync.decided_elsewhere,
            on_evidence=self._report_evidence,
            fetch_block=self.sync.fetch_block,
        )
        self.peers.start()
        self.add_commit_listener(self._follow_membership)
        self._tasks = [
            asyncio.create_task(self.driver.run(), name="driver"),
            asyncio.create_task(self.sync.run(), name="sync"),
        ]
        for task in self._tasks:
            task.add_done_callback(self._task_ended)
        log.info("node %s started at height %d", self.config.state, self.app.height)

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        """A background task ended: unless we stopped it, the node is broken (a store
        error or a violated invariant stopped the driver): say so loudly, and fail
        /readyz with the reason, instead of serving as if consensus were running."""
        if task.cancelled():
            return
        exc = task.exception()
        self.failed = (
            f"task {task.get_name()} stopped: {exc!r}"
            if exc is not None
            else f"task {task.get_name()} returned"
        )
        log.critical("%s; this node no longer takes part in consensus", self.failed, exc_info=exc)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.peers is not None:
            await self.peers.stop()
        self._verify_pool.shutdown(wait=True, cancel_futures=True)
        self.store.close()

    # --- records ----------------------------------------------------------------------

    def _member_states(self) -> int:
        """The states that may sign records for the next block (the mempool's shares)."""
        return len(self.app.state.member_states(self.app.height + 1))

    def admit(self, envelope: Envelope) -> Submission:
        """Check a parsed envelope and add it to the mempool (idempotent).

        Another envelope of a pending record (another signature or signer) is
        refused with ``conflicting_envelope``. Room comes before the record's
        checks, so a full share costs no signature or schema check."""
        if self.mempool.holds(envelope):
            return Submission(envelope.id, "pending")
        if self.store.has_record(envelope.id):
            return Submission(envelope.id, "committed")
        self.mempool.check_fits([envelope])
        self.app.check_record(envelope, clock.utcnow())
        spread_to = len(self.peers.peers) if self.peers is not None else 0
        if self.mempool.add(envelope, spread_to=spread_to):
            if self.peers is not None:
                # The leaf is the envelope's canonical JSON: embed it as is.
                self.peers.broadcast(
                    {"record": orjson.Fragment(envelope.leaf)},
                    len(envelope.leaf),
                    gossip=True,
                    key=envelope.id,
                )
            if self.driver is not None:
                self.driver.wake()
        return Submission(envelope.id, "pending")

    def _delivered(self, state: str, record_ids: list[str]) -> None:
        """A peer has answered a gossip batch: it holds those records (or refused them)."""
        del state  # every peer link counts once: each record goes once down each lane
        self.mempool.delivered(record_ids)
        if self.driver is not None:
            self.driver.wake()  # the records may now be proposed

    def accept_gossip(self, envelope: Envelope) -> None:
        """A peer's record: checked like a client's, or refused with a ClientError.

        Over a share of the mempool, or another envelope of a record already
        pending (the first stays): dropped and counted in
        ``mempool.gossip_dropped``, never raised. The origin still holds its copy."""
        try:
            if self.mempool.holds(envelope) or self.store.has_record(envelope.id):
                return
            self.mempool.check_fits([envelope], client=False)
        except (Conflict, Overloaded) as exc:
            self.mempool.gossip_dropped[exc.code] += 1
            return
        self.app.check_record(envelope, clock.utcnow())
        if self.mempool.add(envelope, client=False) and self.driver is not None:
            self.driver.wake()

    async def verify_signatures(
        self, envelopes: Sequence[Envelope], *, admission: bool = False
    ) -> None:
        """Verify unseen signatures off the event loop, filling the signature cache.

        In the verifier's worker processes when the node has them (node/verifier.py),
        else in worker threads (libsodium releases the GIL). Either way the loop,
        and with it consensus, stays responsive under load. A signature that
        fails is simply not cached; ``check_record`` then reports it. For
        ``admission`` (client or gossip records for the mempool), envelopes whose
        signer may not sign them now are skipped (``_may_sign``); blocks (sync,
        fetched proposals) are checked whole, since their signers are judged
        against the state of their own height.
        """
        cache = self.app.signatures
        now = clock.utcnow()
        todo = [
            e
            for e in envelopes
            if e not in cache
            and e.id not in self.mempool
            and (not admission or self._may_sign(e, now))
        ]
        if not todo:
            return
        if len(todo) <= VERIFY_INLINE_MAX:
            # A few signatures (a single-record POST): checking them here costs less
            # than a round trip to a worker, and cannot queue behind a large batch
            # of gossip or block sync that the workers are busy with.
            for envelope, ok in zip(todo, _verify_all(todo), strict=True):
                if ok:
                    cache.remember(envelope)
            return
        verifier = self.verifier
        if verifier is not None and verifier.available:
            # Processes: one chunk per worker (each chunk costs a round trip through a
            # socket).
            size = max(VERIFY_CHUNK, min(VERIFY_CHUNK_MAX, -(-len(todo) // verifier.processes)))
            chunks = [todo[i : i + size] for i in range(0, len(todo), size)]
            try:
                results = await asyncio.gather(
                    *(
                        verifier.verify(
                            [
                                (
                                    bytes.fromhex(e.signer),
                                    e.record_bytes,
                                    bytes.fromhex(e.signature),
                                )
                                for e in chunk
                            ]
                        )
                        for chunk in chunks
                    )
                )
            except VerifierUnavailable:  # a worker exited (logged by the verifier)
                results = await self._verify_in_threads(chunks)
        else:
            # Threads: small chunks, so both threads get work.
            chunks = [todo[i : i + VERIFY_CHUNK] for i in range(0, len(todo), VERIFY_CHUNK)]
            results = await self._verify_in_threads(chunks)
        for chunk, oks in zip(chunks, results, strict=True):
            for envelope, ok in zip(chunk, oks, strict=True):
                if ok:
                    cache.remember(envelope)

    def _may_sign(self, envelope: Envelope, now: datetime) -> bool:
        """The cheap enrolment check (a dict lookup): a signer that may not sign this
        record is refused by ``check_record`` before it would look at the signature,
        so checking that signature here would only cost an Ed25519 verification."""
        try:
            self.app.state.authorise(envelope, now)
        except ClientError:
            return False
        return True

    async def _verify_in_threads(self, chunks: list[list[Envelope]]) -> list[list[bool]]:
        loop = asyncio.get_running_loop()
        return await asyncio.gather(
            *(loop.run_in_executor(self._verify_pool, _verify_all, chunk) for chunk in chunks)
        )

    async def wait_committed(self, record_id: str, timeout_s: float) -> bool:
        if self.store.has_record(record_id):
            return True
        if timeout_s <= 0:
            return False
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(record_id, []).append(future)
        try:
            await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            return self.store.has_record(record_id)
        finally:
            waiters = self._waiters.get(record_id, [])
            if future in waiters:
                waiters.remove(future)
            if not waiters:
                self._waiters.pop(record_id, None)
        return True

    def add_commit_listener(self, listener: Callable[[Block, CommitCertificate], None]) -> None:
        self._commit_listeners.append(listener)

    def _committed(self, block: Block, certificate: CommitCertificate) -> None:
        for envelope in block.envelopes:
            for future in self._waiters.pop(envelope.id, []):
                if not future.done():
                    future.set_result(None)
        for listener in self._commit_listeners:
            try:
                listener(block, certificate)
            except Exception:  # a listener's bug must not stop commits
                log.exception("commit listener failed")

    def envelope(self, record_id: str) -> Envelope | None:
        pending = self.mempool.get(record_id)
        if pending is not None:
            return pending
        if self.store.has_record(record_id):
            return self.app.load_envelope(record_id)
        return None

    def record_view(self, record_id: str) -> dict[str, Any]:
        located = self.store.locate(record_id)
        if located is not None:
            envelope = self.app.load_envelope(record_id)
            return {
                "id": record_id,
                "status": "committed",
                "envelope": envelope.to_json(),
                "height": located[0],
                "leaf_index": located[1],
            }
        pending = self.mempool.get(record_id)
        if pending is not None:
            return {
                "id": record_id,
                "status": "pending",
                "envelope": pending.to_json(),
                "height": None,
                "leaf_index": None,
            }
        raise NotFound(f"no record with id {record_id}", field="id", code="record_not_found")

    # --- peers and sync ---------------------------------------------------------------

    def peer_urls(self) -> dict[str, str]:
        """The other validators of the next two heights, by the URL the config gives
        for them, else the one their genesis entry or admission proposal gave."""
        state, height = self.app.state, self.app.height
        states = {v.state for v in state.validators(height + 1)} | {
            v.state for v in state.validators(height + 2)
        }
        configured = {p.state: p.p2p_url for p in self.config.peers}
        return {
            s: configured.get(s, state.members[s].p2p_url)
            for s in sorted(states)
            if s != self.config.state
        }

    def _follow_membership(self, block: Block, certificate: CommitCertificate) -> None:
        """After a commit: link to newly admitted members, unlink from removed ones."""
        if self.peers is None:
            return
        wanted = self.peer_urls()
        for state, url in wanted.items():
            if state not in self.peers.peers:
                log.info("member %s joins the validator set: adding peer %s", state, url)
                self.peers.add(
                    state,
                    url,
                    self._node_key_of(state),
                    self._transports.get(state),
                    verify=self._peer_verify,
                )
            else:  # a rotated node key: address and trust the new one from now on
                self.peers.peers[state].node_key = self._node_key_of(state)
        self.peers.start()
        self.mempool.share_with(len(wanted) + 1, self._member_states())
        for state in [s for s in self.peers.peers if s not in wanted]:
            log.info("member %s left the validator set: removing its peer link", state)
            task = asyncio.get_running_loop().create_task(self.peers.remove(state))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _report_evidence(self, evidence: Equivocation) -> None:
        """Turn the engine's equivocation evidence into a misbehaviour record, signed by
        this node's key, and submit it like any record (gossip, then a block)."""
        offender = evidence.first.signer
        height = evidence.first.height
        offender_state = next(
            (v.state for v in self.app.state.validators(height) if v.pubkey == offender), None
        )
        if offender_state is None:
            return
        name = self.app.state.members[self.config.state].name
        body = misbehaviour_record(
            evidence,
            reporter_state=self.config.state,
            agency=f"{name} validator node",
            offender_state=offender_state,
        )
        record = complete_record(body, chain_id=self.app.chain_id)
        envelope = parse_envelope(
            sign_envelope(self.key, record), max_record_bytes=self.app.params.max_record_bytes
        )
        try:
            self.admit(envelope)
        except ClientError as exc:  # usually: another node's report is already in
            log.info("misbehaviour report by %s not submitted: %s", offender_state, exc)

    def _node_key_of(self, state: str) -> str:
        """The node key ``state``'s node signs with: its key in the next height's set,
        else (a member just admitted) in the set after it."""
        height = self.app.height
        return next(
            v.pubkey
            for h in (height + 1, height + 2)
            for v in self.app.state.validators(h)
            if v.state == state
        )

    def peer_keys(self) -> set[str]:
        height = self.app.height + 1
        keys = {v.pubkey for v in self.app.state.validators(height)}
        keys |= {v.pubkey for v in self.app.state.validators(height + 1)}
        keys.discard(self.key.public_hex)
        return keys

    def metrics_peer_fault(self, reason: str) -> None:
        """Count a peer fault. Callers pass fixed reason codes; the cap on distinct
        keys bounds the counter even if some reason carries a peer's text."""
        key = reason[:80]
        if key not in self.peer_faults and len(self.peer_faults) >= PEER_FAULT_REASONS_MAX - 1:
            key = "other"  # the last slot: the counter never holds more keys than the cap"
        self.peer_faults[key] += 1
        log.debug("peer fault: %s", reason)

    def _peer_height(self, state: str, height: int) -> None:
        if self.peers is not None and state in self.peers.peers:
            self.peers.peers[state].stats.height = height

    def block_by_hash(self, block_hash: str) -> Block | None:
        """A proposed block we hold, or a committed one, by its hash."""
        block = self.driver.blocks.get(block_hash) if self.driver is not None else None
        if block is not None:
            return block
        height = self.store.height_of_block(block_hash) if len(block_hash) == 64 else None
        stored = self.app.stored_block(height) if height is not None else None
        return stored[0] if stored is not None else None

    # --- status -----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        header = self.store.get_header(self.app.height)
        peers: list[dict[str, Any]] = []
        if self.peers is not None:
            peers = [
                {
                    "state": p.state,
                    "up": p.stats.up,
                    "height": p.stats.height,
                    "last_error": p.stats.last_error,
                }
                for p in self.peers.peers.values()
            ]
        replica = self.driver.replica if self.driver is not None else None
        return {
            "chain_id": self.app.chain_id,
            "state": self.config.state,
            "node_pubkey": self.key.public_hex,
            "height": self.app.height,
            "latest_hash": header.hash() if header else None,
            "ledger_size": self.store.ledger_size,
            "round": replica.round if replica is not None else 0,
            "mempool": {"records": len(self.mempool), "bytes": self.mempool.bytes},
            # Behind only by a peer's verified proof, never by a claimed height.
            "syncing": self.sync.syncing(),
            "peers": peers,
        }


__all__ = ["ComityError", "Node", "Submission"]
