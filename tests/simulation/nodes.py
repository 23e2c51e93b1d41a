"""Simulated nodes: the honest driver of a Replica, and Byzantine variations of it.

``SimNode`` plays the role the real node will: it persists ``Ready.persist``
before handing ``Ready.send`` to the network, applies commits and calls
``enter_height``, answers ``validate`` and ``need_proposal`` from the block
registry, schedules timeouts and periodic rebroadcasts on virtual time,
block-syncs when told it is ``behind``, and can crash (losing everything but
its last persisted state and its committed chain) and restart.

Byzantine nodes run the same engine so that they stay in step with the
protocol, but rewrite what they send (``transmit``): an equivocating proposer
sends two proposals to two halves of the network, a double voter sends two
conflicting votes per slot, a random voter votes for random values. A silent
node does nothing; Twins are two ordinary nodes sharing one key.
"""

from __future__ import annotations

import hashlib
from collections import deque
from typing import TYPE_CHECKING

from consensus.engine import Replica
from consensus.messages import Proposal, Vote
from consensus.state import PersistedState, Ready, Timeout
from ledger.block import CommitCertificate
from tests.simulation.crypto import SimSigner

if TYPE_CHECKING:
    from tests.simulation.runner import Sim


class SimNode:
    honest = True

    def __init__(self, sim: Sim, node_id: int, index: int, signer: SimSigner) -> None:
        self.sim = sim
        self.id = node_id
        self.index = index  # validator index (twins share one)
        self.signer = signer
        self.up = False
        self.epoch = 0  # bumps on crash: stale timers/messages are dropped
        self.persisted: PersistedState | None = None
        self.chain: list[tuple[str, CommitCertificate]] = []
        self.commit_times: list[int] = []
        self.height_started_ms = 0
        self.crash_mid_send = False
        self.replica: Replica | None = None
        self._work: deque[Ready] = deque()
        self._build_counter = 0
        self.last_sync_ms = -10_000
        self.last_push: dict[int, int] = {}

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        self.up = True
        self.epoch += 1
        self.replica = self.sim.replica_factory(
            self.sim.chain_id,
            self.signer,
            self.sim.verifier,
            self.sim.params,
            restored=self.persisted,
        )
        self.height_started_ms = self.sim.now
        self.process(self.replica.enter_height(len(self.chain) + 1, self.sim.validators))
        self.sim.every(self, self.sim.plan.rebroadcast_ms, self.rebroadcast)

    def crash(self) -> None:
        """Lose all volatile state; ``persisted`` and ``chain`` are on 'disk'."""
        self.up = False
        self.epoch += 1
        self.replica = None
        self._work.clear()
        self.crash_mid_send = False

    # -- the driver loop ------------------------------------------------------------------

    def process(self, ready: Ready) -> None:
        self._work.append(ready)
        while self._work and self.up:
            self._handle(self._work.popleft())

    def _handle(self, ready: Ready) -> None:
        replica = self.replica
        assert replica is not None
        if ready.persist is not None:
            self.persisted = ready.persist  # durable before anything is sent
        if ready.send and not self._send(ready.send):
            return  # crashed mid-send
        for t in ready.timeouts:
            self.sim.after(self, t.delay_ms, self.on_timeout, t)
        for block_hash in ready.validate:
            self._work.append(
                replica.on_validated(block_hash, self.sim.is_valid(block_hash, replica.height))
            )
        if ready.need_proposal is not None:
            height, round_ = ready.need_proposal
            self._work.append(replica.propose(height, round_, self.build_block(height, round_)))
        self.sim.stats["evidence"] += len(ready.evidence)
        if ready.behind is not None:
            self.request_sync()
        for commit in ready.commits:  # last: enter_height moves the replica on
            self.sim.on_commit(self, commit)
            self.chain.append((commit.block_hash, commit.certificate))
            self.commit_times.append(self.sim.now)
            self.sim.after(self, self.sim.plan.block_interval_ms, self.enter_next)

    def enter_next(self) -> None:
        """The node applied the block (and waited its block interval): next height."""
        if self.replica is not None and self.replica.height == len(self.chain):
            self.height_started_ms = self.sim.now
            self.process(self.replica.enter_height(len(self.chain) + 1, self.sim.validators))

    def _send(self, msgs: tuple[Proposal | Vote, ...]) -> bool:
        if self.honest:
            self.sim.check_signed(self, msgs)
        if self.crash_mid_send:
            cut = self.sim.rng.randrange(len(msgs))
            self.transmit(msgs[:cut])
            self.sim.stats["crash_mid_send"] += 1
            self.crash()
            return False
        self.transmit(msgs)
        return True

    def transmit(self, msgs: tuple[Proposal | Vote, ...]) -> None:
        for msg in msgs:
            self.sim.broadcast(self, msg)

    def build_block(self, height: int, round_: int) -> str:
        self._build_counter += 1
        name = f"{self.sim.plan.seed}:{self.id}:{height}:{round_}:{self._build_counter}"
        block_hash = hashlib.sha256(name.encode()).hexdigest()
        self.sim.register_block(block_hash, height, valid=True)
        return block_hash

    # -- inputs from the simulator -----------------------------------------------------------

    def deliver(self, msg: Proposal | Vote, src: SimNode) -> None:
        if msg.height <= len(self.chain):
            self.push_catchup(src, msg.height)
        if self.replica is not None:
            self.process(self.replica.on_message(msg))

    def push_catchup(self, peer: SimNode, height: int) -> None:
        """The peer is still at a height we committed: send it blocks and certificates.

        The engine forgets a height once it moves on, so only the node can help
        a straggler whose missing precommits nobody will send again (the
        simulator found this deadlock: f+1 never reached, so ``behind`` never
        fires at the straggler). Rate-limited per peer.
        """
        if self.sim.now - self.last_push.get(peer.id, -10_000) < 200 or not self.honest:
            return
        self.last_push[peer.id] = self.sim.now
        self.sim.stats["catchup_pushes"] += 1
        entries = tuple(self.chain[height - 1 : height + 7])
        self.sim.send_raw(self, peer, peer.on_sync_reply, (height - 1, entries))

    def on_timeout(self, t: Timeout) -> None:
        if self.replica is not None:
            self.process(self.replica.on_timeout(t))

    def rebroadcast(self) -> None:
        if self.replica is not None:
            self.process(self.replica.rebroadcast())

    def request_sync(self) -> None:
        if self.sim.now - self.last_sync_ms < 100:
            return  # rate limit: one request per 100 ms
        self.last_sync_ms = self.sim.now
        self.sim.stats["sync_requests"] += 1
        for peer in self.sim.rng.sample(self.sim.nodes, min(3, len(self.sim.nodes))):
            if peer is not self:
                self.sim.send_raw(self, peer, peer.on_sync_request, (self, len(self.chain)))

    def on_sync_request(self, requester: SimNode, have: int) -> None:
        entries = tuple(self.chain[have : have + 8])
        if entries and self.honest:
            self.sim.send_raw(self, requester, requester.on_sync_reply, (have, entries))

    def on_sync_reply(self, have: int, entries: tuple[tuple[str, CommitCertificate], ...]) -> None:
        for block_hash, cert in entries:
            replica = self.replica
            if replica is None or cert.height != replica.height or replica.decision is not None:
                continue
            if self.sim.is_valid(block_hash, cert.height):  # the node checks the synced block
                self.sim.stats["sync_adopted"] += 1
                self.process(replica.adopt_commit(cert))


class SilentNode(SimNode):
    """Byzantine: never says anything (and never runs)."""

    honest = False

    def start(self) -> None:
        self.up = False


class EquivocatingNode(SimNode):
    """Byzantine proposer: a second, conflicting proposal to a random half of the network."""

    honest = False

    def transmit(self, msgs: tuple[Proposal | Vote, ...]) -> None:
        for msg in msgs:
            if isinstance(msg, Proposal) and msg.proposer == self.signer.public_hex:
                other = self.build_block(msg.height, msg.round + 1000)
                twin = self.sim.sign_proposal(self.signer, msg, other)
                self.sim.split_broadcast(self, msg, twin)
            else:
                self.sim.broadcast(self, msg)


class DoubleVoteNode(SimNode):
    """Byzantine: every own vote goes to half the network, a conflicting one to the rest."""

    honest = False

    def transmit(self, msgs: tuple[Proposal | Vote, ...]) -> None:
        for msg in msgs:
            if isinstance(msg, Vote) and msg.validator == self.signer.public_hex:
                value = self.sim.random_value(msg.height, exclude=msg.block_hash)
                self.sim.split_broadcast(self, msg, self.sim.sign_vote(self.signer, msg, value))
            else:
                self.sim.broadcast(self, msg)


class RandomVoteNode(SimNode):
    """Byzantine: own votes carry random values (known blocks, unknown hashes, nil)."""

    honest = False

    def transmit(self, msgs: tuple[Proposal | Vote, ...]) -> None:
        for msg in msgs:
            if isinstance(msg, Vote) and msg.validator == self.signer.public_hex:
                value = self.sim.random_value(msg.height, exclude=None)
                msg = self.sim.sign_vote(self.signer, msg, value)
            self.sim.broadcast(self, msg)

    def build_block(self, height: int, round_: int) -> str:
        if self.sim.rng.random() < self.sim.plan.invalid_rate:
            self._build_counter += 1
            name = f"invalid:{self.sim.plan.seed}:{self.id}:{height}:{self._build_counter}"
            block_hash = hashlib.sha256(name.encode()).hexdigest()
            self.sim.register_block(block_hash, height, valid=False)
            return block_hash
        return super().build_block(height, round_)


class TwinNode(SimNode):
    """Byzantine (Twins): an honest engine whose key is also used by another node."""

    honest = False


NODE_KINDS: dict[str, type[SimNode]] = {
    "honest": SimNode,
    "silent": SilentNode,
    "equivocate": EquivocatingNode,
    "double_vote": DoubleVoteNode,
    "random_votes": RandomVoteNode,
    "twins": TwinNode,
}
