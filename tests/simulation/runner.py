"""The deterministic simulator: N replicas, a faulty network, virtual time, one seed.

Method (FoundationDB / TigerBeetle VOPR style, with Diem's Twins):

* virtual time in ms; one event heap ordered by (time, sequence number), so
  ties break by insertion order and a run is a pure function of its seed;
* all randomness from ``random.Random`` seeded from the plan's seed -- never
  the global generator, never the wall clock;
* the network drops (loss, partitions), duplicates and delays every message
  independently until GST; after GST nothing is lost and every message
  arrives within ``DELTA_MS``; crashed nodes restart before GST;
* invariants are checked as the events happen (``check_signed`` on every
  send of an honest node, ``on_commit`` on every commit), and liveness at the
  end: every honest node must commit beyond the highest height committed at
  GST within ``liveness_bound_ms`` of virtual time.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from consensus.engine import Replica
from consensus.messages import PRECOMMIT, Proposal, Vote, slot
from consensus.state import Commit, TimeoutParams
from ledger.block import CommitCertificate, Validator, vote_sign_bytes
from ledger.quorum import quorum
from tests.simulation.crypto import SimSigner, SimVerifier, make_signers
from tests.simulation.nodes import NODE_KINDS, SimNode, TwinNode
from tests.simulation.schedule import DELTA_MS, Plan

SIM_PARAMS = TimeoutParams(
    propose_initial_ms=300,
    propose_delta_ms=100,
    prevote_initial_ms=200,
    prevote_delta_ms=50,
    precommit_initial_ms=200,
    precommit_delta_ms=50,
)


class Violation(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


@dataclass
class Result:
    plan: Plan
    violation: str | None
    stats: Counter[str] = field(default_factory=Counter)
    heights: int = 0  # lowest committed height over honest nodes
    virtual_ms: int = 0
    gst_to_live_ms: int | None = None
    latency_ms: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.violation is None


class Sim:
    def __init__(
        self,
        plan: Plan,
        replica_factory: Callable[..., Replica] = Replica,
        params: TimeoutParams = SIM_PARAMS,
    ) -> None:
        self.plan = plan
        self.replica_factory = replica_factory
        self.params = params
        self.chain_id = f"sim-{plan.seed}"
        self.rng = random.Random(f"run:{plan.seed}")
        signers = make_signers(plan.seed, plan.n)
        self.verifier = SimVerifier(signers)
        self.validators = tuple(Validator(f"V{i:03d}", s.public_hex) for i, s in enumerate(signers))
        self.nodes: list[SimNode] = [
            NODE_KINDS[plan.byzantine.get(i, "honest")](self, i, i, s)
            for i, s in enumerate(signers)
        ]
        for i, kind in plan.byzantine.items():
            if kind == "twins":
                self.nodes.append(TwinNode(self, len(self.nodes), i, signers[i]))
        self.honest = [node for node in self.nodes if node.honest]
        self.now = 0
        self._heap: list[
            tuple[int, int, Callable[..., None], tuple[Any, ...], SimNode | None, int]
        ] = []
        self._seq = 0
        self.stats: Counter[str] = Counter()
        self.decided: dict[int, str] = {}
        self.blocks: dict[str, tuple[int, bool]] = {}
        self._signed: dict[tuple[str, tuple[int, int, str]], tuple[object, ...]] = {}
        self.target: int | None = None
        self._live_dirty = False  # re-check liveness only after a commit or GST
        self.latency_ms: list[int] = []

    # -- scheduling ---------------------------------------------------------------------------

    def _push(
        self,
        at_ms: int,
        fn: Callable[..., None],
        args: tuple[Any, ...],
        node: SimNode | None = None,
    ) -> None:
        self._seq += 1
        heapq.heappush(
            self._heap, (at_ms, self._seq, fn, args, node, node.epoch if node is not None else 0)
        )

    def after(self, node: SimNode, delay_ms: int, fn: Callable[..., None], *args: Any) -> None:
        """A timer of ``node``: dropped if the node crashes before it fires."""
        self._push(self.now + delay_ms, fn, args, node)

    def every(self, node: SimNode, period_ms: int, fn: Callable[[], None]) -> None:
        def tick() -> None:
            fn()
            self.after(node, period_ms, tick)

        self.after(node, self.rng.randrange(1, period_ms + 1), tick)

    # -- the network --------------------------------------------------------------------------

    def broadcast(self, sender: SimNode, msg: Proposal | Vote) -> None:
        for node in self.nodes:
            if node is not sender:
                self.send_raw(sender, node, node.deliver, (msg, sender))

    def split_broadcast(self, sender: SimNode, a: Proposal | Vote, b: Proposal | Vote) -> None:
        others = [node for node in self.nodes if node is not sender]
        self.rng.shuffle(others)
        half = len(others) // 2
        for i, node in enumerate(others):
            self.send_raw(sender, node, node.deliver, (a if i < half else b, sender))

    def send_raw(
        self, src: SimNode, dst: SimNode, fn: Callable[..., None], args: tuple[Any, ...]
    ) -> None:
        copies = 1
        if self.now < self.plan.gst_ms:
            if self._partitioned(src.id, dst.id):
                self.stats["drop_partition"] += 1
                return
            if self.rng.random() < self.plan.loss:
                self.stats["drop_loss"] += 1
                return
            if self.rng.random() < self.plan.duplicate:
                self.stats["duplicate"] += 1
                copies = 2
        for _ in range(copies):
            self._push(self.now + self._delay(), self._deliver, (dst, fn, args))

    def _deliver(self, dst: SimNode, fn: Callable[..., None], args: tuple[Any, ...]) -> None:
        if dst.up:
            self.stats["delivered"] += 1
            fn(*args)

    def _partitioned(self, a: int, b: int) -> bool:
        for p in self.plan.partitions:
            if p.start_ms <= self.now < p.end_ms and not any(a in g and b in g for g in p.groups):
                return True
        return False

    def _delay(self) -> int:
        lo, hi = self.plan.delay_ms
        kind = self.plan.delay_kind
        if kind == "constant":
            delay = lo
        elif kind == "exponential":
            delay = lo + min(int(self.rng.expovariate(1 / max(hi - lo, 1))), 10 * hi)
        elif kind == "bimodal" and self.rng.random() < 0.1:
            delay = self.rng.randint(hi, 5 * hi)
        else:
            delay = self.rng.randint(lo, hi)
        return min(delay, DELTA_MS) if self.now >= self.plan.gst_ms else delay

    # -- the world the nodes live in ------------------------------------------------------------

    def register_block(self, block_hash: str, height: int, *, valid: bool) -> None:
        self.blocks[block_hash] = (height, valid)

    def is_valid(self, block_hash: str, height: int) -> bool:
        return self.blocks.get(block_hash) == (height, True)

    def random_value(self, height: int, exclude: str | None) -> str | None:
        pick = self.rng.random()
        if pick < 0.3:
            return None if exclude is not None else f"{self.rng.getrandbits(256):064x}"
        known = [h for h, (ht, _) in self.blocks.items() if ht == height and h != exclude]
        if pick < 0.7 and known:
            return self.rng.choice(known)
        return f"{self.rng.getrandbits(256):064x}"

    def sign_vote(self, signer: SimSigner, vote: Vote, value: str | None) -> Vote:
        unsigned = Vote(vote.type, vote.height, vote.round, value, signer.public_hex, "")
        return Vote(
            vote.type,
            vote.height,
            vote.round,
            value,
            signer.public_hex,
            signer.sign(unsigned.sign_bytes(self.chain_id)),
        )

    def sign_proposal(self, signer: SimSigner, p: Proposal, value: str) -> Proposal:
        unsigned = Proposal(p.height, p.round, value, p.valid_round, signer.public_hex, "")
        return Proposal(
            p.height,
            p.round,
            value,
            p.valid_round,
            signer.public_hex,
            signer.sign(unsigned.sign_bytes(self.chain_id)),
        )

    # -- invariants -------------------------------------------------------------------------------

    def check_signed(self, node: SimNode, msgs: tuple[Proposal | Vote, ...]) -> None:
        """No honest double-sign: one content per (key, h, r, kind), across crashes."""
        me = node.signer.public_hex
        for msg in msgs:
            if msg.signer != me:
                continue
            content = (msg.block_hash, msg.valid_round if isinstance(msg, Proposal) else None)
            first = self._signed.setdefault((me, slot(msg)), content)
            if first != content:
                raise Violation(
                    "double_sign", f"node {node.id} signed {content} after {first} at {slot(msg)}"
                )

    def on_commit(self, node: SimNode, commit: Commit) -> None:
        if not node.honest:
            self.stats["byzantine_commits"] += 1
            return
        h, block_hash = commit.height, commit.block_hash
        if h != len(node.chain) + 1:
            raise Violation("height_gap", f"node {node.id} committed {h} after {len(node.chain)}")
        if not self.is_valid(block_hash, h):
            raise Violation("validity", f"node {node.id} committed unproposed/invalid block at {h}")
        if (
            not certificate_ok(commit.certificate, self.chain_id, self.validators, self.verifier)
            or commit.certificate.block_hash != block_hash
            or commit.certificate.height != h
        ):
            raise Violation("certificate", f"node {node.id} bad certificate at height {h}")
        first = self.decided.setdefault(h, block_hash)
        if first != block_hash:
            raise Violation(
                "agreement",
                f"height {h}: node {node.id} committed {block_hash[:12]}"
                f", another honest node {first[:12]}",
            )
        self.stats["commits"] += 1
        self._live_dirty = True
        self.latency_ms.append(self.now - node.height_started_ms)

    # -- running ------------------------------------------------------------------------------------

    def _schedule_faults(self) -> None:
        for c in self.plan.crashes:
            node = self.nodes[c.node]
            self._push(c.at_ms, self._crash, (node, c.mid_send))
            self._push(c.restart_ms, self._restart, (node,))
        self.stats["partitions"] += len(self.plan.partitions)
        for kind in self.plan.byzantine.values():
            self.stats[f"byz_{kind}"] += 1
        self._push(self.plan.gst_ms, self._gst, ())

    def _crash(self, node: SimNode, mid_send: bool) -> None:
        if not node.up:
            return
        self.stats["crashes"] += 1
        if mid_send:
            node.crash_mid_send = True  # crash inside its next send
            self._push(self.now + 50, self._crash_now, (node,))
        else:
            node.crash()

    def _crash_now(self, node: SimNode) -> None:
        if node.crash_mid_send:
            node.crash()

    def _restart(self, node: SimNode) -> None:
        node.crash_mid_send = False
        if not node.up:
            self.stats["restarts"] += 1
            node.start()

    def _gst(self) -> None:
        self._live_dirty = True
        self.target = max(
            self.plan.min_heights, 1 + max((len(n.chain) for n in self.honest), default=0)
        )

    def _live(self) -> bool:
        target = self.target
        return target is not None and all(len(n.chain) >= target for n in self.honest)

    def run(self) -> Result:
        self._schedule_faults()
        for node in self.nodes:
            node.start()
        deadline = self.plan.gst_ms + self.plan.liveness_bound_ms
        violation: str | None = None
        try:
            while self._heap:
                if self._live_dirty:
                    self._live_dirty = False
                    if self._live():
                        break
                at_ms, _, fn, args, owner, epoch = heapq.heappop(self._heap)
                if at_ms > deadline:
                    break
                self.now = at_ms
                if owner is None or owner.epoch == epoch:
                    fn(*args)
            if not self._live():
                violation = (
                    f"liveness: honest heights {[len(n.chain) for n in self.honest]}"
                    f", target {self.target} by {deadline} ms"
                )
        except Violation as exc:
            violation = str(exc)
        heights = min((len(n.chain) for n in self.honest), default=0)
        live_ms = self.now - self.plan.gst_ms if violation is None else None
        return Result(self.plan, violation, self.stats, heights, self.now, live_ms, self.latency_ms)


def certificate_ok(
    cert: CommitCertificate, chain_id: str, validators: tuple[Validator, ...], verifier: SimVerifier
) -> bool:
    """ledger.block.verify_certificate's rules, over the simulator's signature scheme."""
    members = {v.pubkey for v in validators}
    message = vote_sign_bytes(PRECOMMIT, chain_id, cert.height, cert.round, cert.block_hash)
    signers = [s.validator for s in cert.signatures]
    return (
        len(set(signers)) == len(signers)
        and set(signers) <= members
        and all(verifier.verify(s.validator, message, s.signature) for s in cert.signatures)
        and len(signers) >= quorum(len(members))
    )


def run_seed(
    seed: int, plan: Plan | None = None, replica_factory: Callable[..., Replica] = Replica
) -> Result:
    from tests.simulation.schedule import make_plan

    return Sim(plan or make_plan(seed), replica_factory).run()
