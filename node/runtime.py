"""A Comity node: one process holding the store, the engine driver, peers and APIs.

``Node`` wires the parts together and offers the small facade the HTTP API
uses (read, wait, status). It is built in one phase: ``Node.open`` does the
I/O (genesis, keys, the store) and the constructor then builds every part,
each given only the collaborators it uses: the ``Driver``, the ``PeerSet``,
block sync (``node.sync.BlockSync``), admission (``node.admission``) and the
P2P paths' handlers (``node.inbound``). ``Node.start``/``stop`` link the peers
and run the background tasks (driver, peer senders, block sync);
``api.serve.serve`` puts the API and P2P apps behind uvicorn. Tests build
several ``Node`` objects in one process and connect them with
``httpx.ASGITransport`` (no sockets).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from consensus.messages import Equivocation
from ledger.block import CommitCertificate
from ledger.errors import ClientError, ComityError, NotFound
from ledger.keys import KeySigner, load_signing_key, verify
from ledger.records import Envelope, parse_envelope
from ledger.store import Store
from node import clock
from node.admission import Admission, Submission
from node.application import Application, Block
from node.authoring import complete_record, sign_envelope
from node.config import ConfigError, NodeConfig
from node.driver import Driver
from node.genesis import Genesis, load_genesis
from node.governance import misbehaviour_record
from node.hsm import open_signer
from node.inbound import Inbound
from node.mempool import Mempool, SignatureCache
from node.peers import PeerSet
from node.privacy import BodyExchange
from node.receipts import ReceiptDesk
from node.rules import build_registry
from node.sealed_access import load_enc_key
from node.sync import BlockSync
from node.tls import client_context
from node.verifier import ProcessVerifier, VerifierUnavailable
from node.wire import SYNC_REPLY_BYTES_MAX

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


def check_limits(config: NodeConfig, genesis: Genesis) -> None:
    """Refuse a P2P batch limit too small for the genesis block size."""
    limits = config.limits
    block_bytes_max = genesis.consensus.max_block_bytes
    if limits.max_p2p_batch_bytes < 2 * (block_bytes_max + P2P_ITEM_SLACK_BYTES):
        # A proposal carries its block and a batch may overshoot its half-limit target
        # by one item: below this, peers refuse our proposals and the chain stalls.
        raise ConfigError(
            f"limits.max_p2p_batch_bytes = {limits.max_p2p_batch_bytes} is "
            f"too small for blocks of up to {block_bytes_max} bytes (genesis "
            f"max_block_bytes); it must be at least "
            f"{2 * (block_bytes_max + P2P_ITEM_SLACK_BYTES)}"
        )


def load_node_key(config: NodeConfig) -> KeySigner:
    """The node key the config names: in a PKCS#11 token, or in a PEM file."""
    if config.node_key_pkcs11 is not None:
        return open_signer(config.node_key_pkcs11)
    assert config.node_key_path is not None  # NodeConfig has exactly one of the two
    return load_signing_key(config.node_key_path)


def check_observer_key(app: Application, pubkey: str) -> None:
    """Refuse to run an observer with a validator's node key: it would hold a key that
    signs certificates while promising never to vote (docs/OPERATIONS.md)."""
    state = app.state
    heights = (app.height + 1, app.height + 2, max(state.validators_by_height))
    if any(v.pubkey == pubkey for h in heights for v in state.validators(h)):
        raise ConfigError(
            "role = observer, but its node key is a validator's node key; an observer "
            "runs with a key of its own (comity init --observer), admitted by add_observer"
        )


class Node:
    @classmethod
    def open(cls, config: NodeConfig, *, verifier: ProcessVerifier | None = None) -> Node:
        """Load the genesis and keys the config names, open the store, and build."""
        genesis = load_genesis(config.genesis_path)
        check_limits(config, genesis)
        key = load_node_key(config)
        enc_key = load_enc_key(config.enc_key_path) if config.enc_key_path is not None else None
        config.data_dir.mkdir(parents=True, exist_ok=True)
        store = Store.open_leveldb(config.data_dir / "ledger")
        return cls(
            config, genesis=genesis, key=key, store=store, enc_key=enc_key, verifier=verifier
        )

    def __init__(
        self,
        config: NodeConfig,
        *,
        genesis: Genesis,
        key: KeySigner,
        store: Store,
        transports: dict[str, httpx.AsyncBaseTransport] | None = None,
        enc_key: X25519PrivateKey | None = None,
        verifier: ProcessVerifier | None = None,
    ) -> None:
        check_limits(config, genesis)
        self.config, self.genesis, self.key, self.enc_key = config, genesis, key, enc_key
        self.store = store
        #: An observer node follows by block sync and serves reads; it never votes.
        self.observer = config.role == "observer"
        limits, timing = config.limits, config.timing
        self.app = Application(
            genesis,
            store,
            build_registry(),
            signatures=SignatureCache(max(SIGNATURE_CACHE_MIN, 2 * limits.max_pending_records)),
            me=config.state,
        )
        if self.observer:
            check_observer_key(self.app, key.public_hex)
        self.mempool = Mempool(
            limits.max_pending_records,
            limits.max_pending_bytes,
            spread_backlog=genesis.consensus.max_block_records,
            governance_reserve_percent=limits.mempool_governance_reserve_percent,
            signer_share_percent=limits.mempool_signer_share_percent,
        )
        self.peer_faults: Counter[str] = Counter()
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._commit_listeners: list[Callable[[Block, CommitCertificate], None]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.started = False
        #: Why the node stopped working (a background task died), or None.
        self.failed: str | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._transports = transports if transports is not None else {}
        tls = config.tls  # peer links trust only the consortium CA and present our cert
        self._peer_verify: ssl.SSLContext | bool = (
            True if tls is None else client_context(tls.ca_path, tls.cert_path, tls.key_path)
        )
        self._verify_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="verify")
        #: Worker processes for signature checks (forked by ``serve`` before any
        #: thread exists); without them the thread pool above does the work.
        self.verifier = verifier
        self.peers = PeerSet(
            key,
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
            + 2 * (genesis.consensus.max_block_bytes + P2P_ITEM_SLACK_BYTES),
        )
        # Block sync and the driver call each other: sync posts to the driver's
        # inbox (late-bound here, the driver is built next), the driver asks sync.
        self.sync = BlockSync(
            self.app,
            self.peers,
            post=lambda event: self.driver.post(event),
            rejected=lambda source: self.driver.stats.rejected_sync.get(source, 0),
            verify=self.verify_signatures,
            fault=self.metrics_peer_fault,
            task_ended=self._task_ended,
            interval_ms=timing.peer_status_interval_ms,
            batch_blocks=limits.sync_batch_blocks,
            eager=self.observer,
            home=config.state if self.observer else None,
        )
        self.driver = Driver(
            self.app,
            self.mempool,
            key,
            self.peers.broadcast,
            inbox_max=limits.inbox_events_max,
            heartbeat_ms=genesis.consensus.heartbeat_interval_ms,
            rebroadcast_ms=timing.rebroadcast_interval_ms,
            on_commit=self._committed,
            on_behind=self.sync.behind,
            decided_elsewhere=self.sync.decided_elsewhere,
            on_evidence=self._report_evidence,
            fetch_block=self.sync.fetch_block,
            observer=self.observer,
        )
        self.admission = Admission(
            self.app,
            store,
            self.mempool,
            verify=self.verify_signatures,
            broadcast=self.peers.broadcast,
            peer_count=lambda: len(self.peers.peers),
            wake=self.driver.wake,
            max_batch_records=limits.max_batch_records,
            send_body=lambda envelope: self.privacy.send(envelope),
            read_only=self.observer,
        )
        self.privacy = BodyExchange(
            self.app,
            self.peers,
            key,
            config.state,
            fault=self.metrics_peer_fault,
            submit=self.admission.admit,
            purge_every_s=timing.purge_scan_interval_ms / 1000,
            observer=self.observer,
        )
        self.inbound = Inbound(
            self.app,
            store,
            self.mempool,
            key,
            config.state,
            body_max_bytes=limits.max_p2p_batch_bytes,
            allowed=self.peer_keys,
            observers=self.observer_keys,
            fault=self.metrics_peer_fault,
            post=self.driver.post,
            held_block=self.driver.blocks.get,
            find_block=self.block_by_hash,
            fetch_block=self.sync.fetch_block,
            verify=self.verify_signatures,
            accept_gossip=self.admission.accept_gossip,
            bodies=self.privacy,
            wait_above=self.wait_above,
            observer_requests_per_s=limits.observer_requests_per_s,
            observer_burst_requests=limits.observer_burst_requests,
        )
        #: The receipt webhook (docs/CHANNELS.md), when the config names its secret and key.
        self.receipts = (
            None
            if config.receipts is None
            else ReceiptDesk.from_config(
                config.receipts,
                app=self.app,
                store=store,
                mempool=self.mempool,
                admit=self.admission.admit,
                state=config.state,
            )
        )
        self.add_commit_listener(self._follow_membership)
        self.add_commit_listener(self._private_bodies)
        self._private_work = asyncio.Event()
        #: Set and replaced at each commit: what long-polled status requests wait on.
        self._commit_event = asyncio.Event()

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Link to the peers (their transports are known now) and run the tasks."""
        for state, url in self.peer_urls().items():
            self.peers.add(
                state,
                url,
                self._node_key_of(state),
                self._transports.get(state),
                verify=self._peer_verify,
            )
        self.mempool.share_with(len(self.peers.peers) + 1, self._member_states())
        self.peers.start()
        self._tasks = [
            asyncio.create_task(self.driver.run(), name="driver"),
            asyncio.create_task(self.sync.run(), name="sync"),
            asyncio.create_task(self._private_upkeep(), name="private-bodies"),
        ]
        for task in self._tasks:
            task.add_done_callback(self._task_ended)
        self.started = True
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
        await self.peers.stop()
        self._verify_pool.shutdown(wait=True, cancel_futures=True)
        self.store.close()

    # --- records ----------------------------------------------------------------------

    def _member_states(self) -> int:
        """The states that may sign records for the next block (the mempool's shares)."""
        return len(self.app.state.member_states(self.app.height + 1))

    def _delivered(self, state: str, record_ids: list[str]) -> None:
        """A peer has answered a gossip batch: it holds those records (or refused them)."""
        del state  # every peer link counts once: each record goes once down each lane
        self.mempool.delivered(record_ids)
        self.driver.wake()  # the records may now be proposed

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

    async def wait_above(self, height: int, timeout_s: float) -> None:
        """Return once this node has committed a block above ``height``, or after
        ``timeout_s`` (an observer's long-polled status request, node/inbound.py)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.app.height <= height:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._commit_event.wait(), remaining)

    def add_commit_listener(self, listener: Callable[[Block, CommitCertificate], None]) -> None:
        self._commit_listeners.append(listener)

    def _committed(self, block: Block, certificate: CommitCertificate) -> None:
        self._commit_event.set()
        self._commit_event = asyncio.Event()
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
            # An observer is not its state's validator: it follows that one too.
            if s != self.config.state or self.observer
        }

    def _follow_membership(self, block: Block, certificate: CommitCertificate) -> None:
        """After a commit: link to newly admitted members, unlink from removed ones."""
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

    def _private_bodies(self, block: Block, certificate: CommitCertificate) -> None:
        """After a commit: erase what our purge records name, report void bodies, and
        wake the upkeep once this node is a party of a committed private act."""
        del certificate
        self.privacy.committed(block.envelopes)
        self.privacy.report_voided()
        if any(self.app.is_party(e) for e in block.envelopes):
            self._private_work.set()

    async def _private_upkeep(self) -> None:
        """Fetch the committed bodies this node lacks; purge those past retention.

        Asleep until this node holds (or wants) a private body: a node that is
        party of no private act runs no timer for them."""
        if not self.store.has_body_notes():
            await self._private_work.wait()
        interval_s = max(self.config.timing.peer_status_interval_ms, 200) / 1000
        while True:
            await asyncio.sleep(interval_s)
            await self.privacy.fetch_wanted()
            self.privacy.purge_due(time.monotonic())

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
            self.admission.admit(envelope)
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
        """The node keys that may send to this node's P2P paths: the validators of
        the next two heights (an observer node serves nobody: none)."""
        if self.observer:
            return set()
        height = self.app.height + 1
        keys = {v.pubkey for v in self.app.state.validators(height)}
        keys |= {v.pubkey for v in self.app.state.validators(height + 1)}
        keys.discard(self.key.public_hex)
        return keys

    def observer_keys(self) -> set[str]:
        """The admitted observer nodes, which may send sync requests (node/inbound.py)."""
        if self.observer:
            return set()
        return {k for k, info in self.app.state.observers.items() if info.until_height is None}

    def metrics_peer_fault(self, reason: str) -> None:
        """Count a peer fault. Callers pass fixed reason codes; the cap on distinct
        keys bounds the counter even if some reason carries a peer's text."""
        key = reason[:80]
        if key not in self.peer_faults and len(self.peer_faults) >= PEER_FAULT_REASONS_MAX - 1:
            key = "other"  # the last slot: the counter never holds more keys than the cap"
        self.peer_faults[key] += 1
        log.debug("peer fault: %s", reason)

    def _peer_height(self, state: str, height: int) -> None:
        if state in self.peers.peers:
            self.peers.peers[state].stats.height = height

    def block_by_hash(self, block_hash: str) -> Block | None:
        """A proposed block we hold, or a committed one, by its hash."""
        block = self.driver.blocks.get(block_hash)
        if block is not None:
            return block
        height = self.store.height_of_block(block_hash) if len(block_hash) == 64 else None
        stored = self.app.stored_block(height) if height is not None else None
        return stored[0] if stored is not None else None

    # --- status -----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        header = self.store.get_header(self.app.height)
        peers = [
            {
                "state": p.state,
                "up": p.stats.up,
                "height": p.stats.height,
                "last_error": p.stats.last_error,
            }
            for p in self.peers.peers.values()
        ]
        replica = self.driver.replica
        return {
            "chain_id": self.app.chain_id,
            "state": self.config.state,
            "node_pubkey": self.key.public_hex,
            "role": self.config.role,
            "height": self.app.height,
            "latest_hash": header.hash() if header else None,
            "ledger_size": self.store.ledger_size,
            "round": replica.round if replica is not None else 0,
            "mempool": {"records": len(self.mempool), "bytes": self.mempool.bytes},
            # Behind only by a peer's verified proof, never by a claimed height.
            "syncing": self.sync.syncing(),
            # Whether the next block follows the need-to-know rules (docs/PRIVACY.md).
            "need_to_know": self.app.state.need_to_know_active(self.app.height + 1),
            # The act catalogue version the next block follows (docs/ACTS.md §18).
            "catalogue_version": self.app.catalogue_version(),
            "peers": peers,
        }


__all__ = ["ComityError", "Node", "Submission"]
