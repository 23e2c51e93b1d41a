"""A deterministic message-schedule harness over ``consensus.engine.Replica``.

Four replicas (the fixtures' AT, BE, CZ, DE) on virtual time. The test says
which messages a link delivers through a ``deliver(sender, receiver, msg,
after_gst)`` predicate; every delivered message arrives ``DELAY_MS`` later.
Timeouts fire on virtual time, every replica rebroadcasts every
``REBROADCAST_MS``, every block is valid, and a proposer's ``need_proposal``
is answered at once. A crashed replica neither sends nor receives. Events at
the same instant run in the order they were scheduled, so a run is a pure
function of its inputs.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from consensus.engine import Replica
from consensus.messages import Proposal, Vote
from consensus.signing import Ed25519Signer, Ed25519Verifier
from consensus.state import Ready, Timeout
from tests.unit.consensus_fixtures import CHAIN, KEYS, PARAMS, VALIDATORS, block

DELAY_MS = 10
REBROADCAST_MS = 1000

Deliver = Callable[[int, int, Proposal | Vote, bool], bool]


@dataclass
class Schedule:
    deliver: Deliver
    now_ms: int = 0
    gst_ms: int | None = None
    crashed: set[int] = field(default_factory=set)
    decided: dict[int, tuple[int, str]] = field(default_factory=dict)  # i -> (ms, hash)
    replicas: list[Replica] = field(default_factory=list)
    _queue: list[tuple[int, int, Callable[[], None]]] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.replicas = [Replica(CHAIN, Ed25519Signer(k), Ed25519Verifier(), PARAMS) for k in KEYS]
        for i, replica in enumerate(self.replicas):
            self._handle(i, replica.enter_height(1, VALIDATORS))
            self._at(REBROADCAST_MS, partial(self._rebroadcast, i))

    # --- running ----------------------------------------------------------------------

    def run_until(self, done: Callable[[], bool], limit_ms: int) -> None:
        """Process events until ``done()`` or virtual time ``limit_ms``."""
        while self._queue and not done():
            at, _, action = self._queue[0]
            if at > limit_ms:
                break
            heapq.heappop(self._queue)
            self.now_ms = at
            action()
        self.now_ms = max(
            self.now_ms, min(limit_ms, self._queue[0][0] if self._queue else limit_ms)
        )

    def _at(self, delay_ms: int, action: Callable[[], None]) -> None:
        heapq.heappush(self._queue, (self.now_ms + delay_ms, next(self._seq), action))

    # --- the node around each replica --------------------------------------------------

    def _handle(self, i: int, ready: Ready) -> None:
        replica = self.replicas[i]
        for msg in ready.send:
            self._send(i, msg)
        for commit in ready.commits:
            self.decided.setdefault(i, (self.now_ms, commit.block_hash))
        for t in ready.timeouts:
            self._at(t.delay_ms, partial(self._timeout, i, t))
        for block_hash in ready.validate:
            self._handle(i, replica.on_validated(block_hash, True))
        if ready.need_proposal is not None:
            height, round_ = ready.need_proposal
            value = block(f"{height}/{round_}/{i}")
            self._handle(i, replica.propose(height, round_, value))

    def _send(self, sender: int, msg: Proposal | Vote) -> None:
        after_gst = self.gst_ms is not None and self.now_ms >= self.gst_ms
        for receiver in range(len(self.replicas)):
            if receiver != sender and self.deliver(sender, receiver, msg, after_gst):
                self._at(DELAY_MS, partial(self._receive, receiver, msg))

    def _receive(self, i: int, msg: Proposal | Vote) -> None:
        if i not in self.crashed:
            self._handle(i, self.replicas[i].on_message(msg))

    def _timeout(self, i: int, t: Timeout) -> None:
        if i not in self.crashed:
            self._handle(i, self.replicas[i].on_timeout(t))

    def _rebroadcast(self, i: int) -> None:
        if i in self.crashed:
            return
        self._handle(i, self.replicas[i].rebroadcast())
        self._at(REBROADCAST_MS, lambda: self._rebroadcast(i))
