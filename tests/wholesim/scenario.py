"""Running one seeded plan: the consortium, its clients, its faults, its invariants.

A run, all in virtual time:

1. every member's node starts (Byzantine ones are real nodes too, their
   behaviour rewrites what they send and answer, and may act on its own);
2. until GST, clients submit ``plan.records`` records at honest nodes (and
   ``plan.private_acts`` private acts, each at a party's node), the
   planned crashes and restarts happen, the network is as bad as the plan
   says, and a governance change may be proposed and voted on;
3. at GST a client submits one more record; every honest node must hold it
   committed within ``plan.liveness_bound_s`` (plus any downtime of a crash
   after GST), else ``liveness`` is violated;
4. the nodes stop, and every honest store is audited.

The run stops early at the first violation found as it happens.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ledger.block import CommitCertificate
from node.application import Block
from tests.wholesim.byzantine import BEHAVIOURS, Behaviour
from tests.wholesim.invariants import Checker
from tests.wholesim.net import Net
from tests.wholesim.plan import Crash, Plan, Restore, make_plan
from tests.wholesim.vloop import VirtualClock, run, wall_clock
from tests.wholesim.world import SIM_LIMITS, SimNode, World


@dataclass
class Result:
    plan: Plan
    violation: tuple[str, str] | None
    stats: Counter[str] = field(default_factory=Counter)
    virtual_s: float = 0.0
    wall_s: float = 0.0
    heights: int = 0
    violations: list[tuple[str, str]] = field(default_factory=list)  # all found, in order

    @property
    def ok(self) -> bool:
        return self.violation is None


class Scenario:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.clock = VirtualClock()
        self.rng = random.Random(f"run:{plan.seed}")
        self.net = Net(plan.net, self.clock, random.Random(f"net:{plan.seed}"))
        self.world = World(
            plan.seed,
            plan.n,
            self.net,
            self.clock,
            disk_mode=plan.disk_mode,
            limits=plan.limits or SIM_LIMITS,
            event_cost_ms=plan.event_cost_ms,
        )
        byzantine = dict(plan.byzantine)
        self.honest = {s for s in plan.states if s not in byzantine}
        for state in byzantine:
            self.net.hosts[state].honest = False
        self.checker = Checker(
            self.world.genesis_json,
            {self.world.member(s).node.public_hex for s in self.honest},
            key_states={m.node.public_hex: m.state for m in self.world.universe},
        )
        self.net.tap = self.checker.tap
        self.net.on_server_error = self.checker.on_server_error
        self.net.on_answered = self.answered
        self.net.on_arrived = self.arrived
        self.world.on_refused = self.refused
        self.behaviours: list[Behaviour] = [
            BEHAVIOURS[kind](
                self.world, self.world.nodes[state], random.Random(f"byz:{plan.seed}:{state}")
            )
            for state, kind in plan.byzantine
        ]
        for (state, _), behaviour in zip(plan.byzantine, self.behaviours, strict=True):
            self.net.hosts[state].behaviour = behaviour
            behaviour.intensity = plan.intensity
            behaviour.on_filed = self.checker.bodies.learn
            behaviour.witness = self.checker.fail
        self.stats: Counter[str] = Counter()
        self.removed: set[str] = set()
        self.extra_down_s = 0.0
        self._tasks: list[asyncio.Task[Any]] = []
        self.governance: asyncio.Task[None] | None = None

    # --- the run ----------------------------------------------------------------------------

    async def main(self) -> None:
        world = self.world
        for state in self.plan.states:
            await self.start(world.nodes[state])
        for behaviour in self.behaviours:
            await behaviour.setup()
        spawn = asyncio.get_running_loop().create_task
        self._tasks = [spawn(self.clients()), spawn(self.sample_memory())]
        self._tasks.append(spawn(self.private_clients()))
        self._tasks += [spawn(self.crash(c)) for c in self.plan.crashes]
        self._tasks += [spawn(self.restore(r)) for r in self.plan.restores]
        self._tasks += [spawn(b.act()) for b in self.behaviours]
        if self.plan.governance is not None:
            from tests.wholesim.governance import change_members

            self.governance = spawn(change_members(self, self.plan.governance))
            self._tasks.append(self.governance)
        try:
            await asyncio.sleep(self.plan.gst_s)
            await self.liveness()
            await self.hold()
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await world.stop_all()

    async def start(self, sim: SimNode) -> None:
        await self.world.start(sim)
        node = sim.node
        assert node is not None
        if sim.state in self.honest:
            state, store = sim.state, node.store

            def listener(block: Block, certificate: CommitCertificate) -> None:
                self.checker.on_commit(state, block, certificate)
                self.checker.bodies.committed(state, store, block.envelopes)

            node.add_commit_listener(listener)

    async def clients(self) -> None:
        per_s = self.plan.records / max(self.plan.gst_s, 0.5)
        for _ in range(self.plan.records):
            await asyncio.sleep(self.rng.expovariate(per_s))
            await self.submit_anywhere()

    async def submit_anywhere(self, envelope: Any = None) -> str | None:
        """Submit at a random running honest node; the record id, or None if all refused."""
        world = self.world
        envelope = envelope or world.envelope(self.rng.choice(self.signing_states()))
        candidates = sorted(
            s.state for s in world.up() if s.state in self.honest and s.state not in self.removed
        )
        self.rng.shuffle(candidates)
        for state in candidates:
            if await world.submit(state, envelope):
                self.stats["records_submitted"] += 1
                return str(envelope.id)
        return None

    async def private_clients(self) -> None:
        """Private acts, each filed at one of its parties' running honest nodes (its
        actor's first), with their own generator: the clear records' schedule is the
        seed's as before."""
        rng = random.Random(f"private:{self.plan.seed}")
        per_s = self.plan.private_acts / max(self.plan.gst_s, 0.5)
        for _ in range(self.plan.private_acts):
            await asyncio.sleep(rng.expovariate(per_s))
            actor = rng.choice(self.signing_states())
            others = [s for s in self.plan.states if s != actor]
            envelope = self.world.private_envelope(
                actor, sorted(rng.sample(others, min(len(others), rng.randint(1, 2))))
            )
            self.checker.bodies.learn(envelope)
            up = {s.state for s in self.world.up()} & (self.honest - self.removed)
            parties = [s for s in envelope.record["parties"] if s in up and s != actor]
            rng.shuffle(parties)
            for state in ([actor] if actor in up else []) + parties:
                if await self.world.submit(state, envelope):
                    self.stats["private_acts_submitted"] += 1
                    break

    async def crash(self, crash: Crash) -> None:
        await asyncio.sleep(crash.at_s)
        sim = self.world.nodes[crash.state]
        if sim.node is None:
            return
        self.stats["crashes"] += 1
        if crash.at_s >= self.plan.gst_s:
            self.extra_down_s += crash.down_s
        await self.world.crash(sim)
        await asyncio.sleep(crash.down_s)
        self.stats["restarts"] += 1
        await self.start(sim)

    async def restore(self, restore: Restore) -> None:
        """Stop a node and restart it over an older backup of its disk, with the hold
        ``comity db restore`` places (tests/wholesim/disk.py ``SimDisk.restore``)."""
        await asyncio.sleep(restore.backup_at_s)
        sim = self.world.nodes[restore.state]
        backup = sim.disk.backup()
        await asyncio.sleep(restore.at_s - restore.backup_at_s)
        if sim.node is None:  # down for a crash: the operator waits for it
            return
        self.stats["restores"] += 1
        if restore.at_s >= self.plan.gst_s:
            self.extra_down_s += restore.down_s
        await self.world.crash(sim)
        sim.disk.restore(backup)
        await asyncio.sleep(restore.down_s)
        if sim.node is None:
            await self.start(sim)

    async def sample_memory(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            for sim in self.world.up():
                if sim.node is not None:
                    self.checker.memory(sim.state, sim.node, sim.replay)
                if sim.node is not None and sim.state in self.honest:
                    self.checker.bodies.check_counts(sim.state, sim.host.incarnation, sim.node)
                    self.checker.bodies.pool(sim.state, sim.node)

    async def liveness(self) -> None:
        """After GST: one more record must reach every honest node within the bound."""
        plan, world = self.plan, self.world
        record_id = None
        envelope = self.world.envelope(self.rng.choice(self.signing_states()))
        while (
            record_id is None
            and not self.checker.violations
            and self.clock.now_s < plan.gst_s + plan.liveness_bound_s
        ):
            record_id = await self.submit_anywhere(envelope)
            if record_id is None:
                await asyncio.sleep(0.2)
        retry_at = self.clock.now_s + 5.0
        if record_id is None:
            self.checker.fail("liveness", "no honest node accepted a record after GST")
        while record_id is not None and not self.checker.violations:
            if self.clock.now_s > retry_at:  # a client retries (its node may have been removed)
                retry_at = self.clock.now_s + 5.0
                if envelope.actor_state in self.removed:  # its state left: no node takes it
                    envelope = self.world.envelope(self.rng.choice(self.signing_states()))
                    record_id = str(envelope.id)
                await self.submit_anywhere(envelope)
            deadline = plan.gst_s + plan.liveness_bound_s + self.extra_down_s
            watched = [
                world.nodes[s]
                for s in sorted(self.honest - self.removed)
                if world.nodes[s].node is not None or s in self.crashing()
            ]
            changing = self.governance is not None and not self.governance.done()
            if not changing and all(
                s.node is not None and s.node.store.has_record(record_id) for s in watched
            ):
                self.stats["live_s_total_ms"] += int((self.clock.now_s - plan.gst_s) * 1000)
                return
            if self.clock.now_s > deadline:
                heights = {s.state: s.node.app.height if s.node else None for s in watched}
                self.checker.fail(
                    "liveness",
                    f"record submitted at GST not committed on every "
                    f"honest node by {deadline:.1f}s: heights {heights}",
                )
                return
            await asyncio.sleep(0.1)

    async def hold(self) -> None:
        """Keep running until ``plan.hold_s`` after GST, or the first violation."""
        until = self.plan.gst_s + self.plan.hold_s
        while not self.checker.violations and self.clock.now_s < until:
            await asyncio.sleep(min(0.5, until - self.clock.now_s))

    def arrived(self, state: str, incarnation: int, request: Any) -> None:
        """Before an honest node handles a request: what bodies it brings or asks for."""
        node = self.world.nodes[state].node
        if node is not None and state in self.honest:
            self.checker.bodies.arrived(state, incarnation, request, node)

    def answered(self, state: str, incarnation: int, request: Any, status: int) -> None:
        """After each request an honest node handled: replays, its mempool shares, and
        the bodies it holds and the faults it counted."""
        self.checker.answered(state, incarnation, request, status)
        node = self.world.nodes[state].node
        if node is not None and state in self.honest:
            self.checker.mempool_shares(state, node)
            self.checker.bodies.answered(state, incarnation, request, status, node)

    def refused(self, state: str, sender: str) -> None:
        """A driver refused a peer's event: an honest one's refusals are checked."""
        if state in self.honest:
            self.checker.refused(state, sender)

    def signing_states(self) -> list[str]:
        """Honest members whose demo investigator is enrolled: the genesis members (a
        member admitted during the run enrols only its admin key)."""
        return sorted((self.honest - self.removed) & set(self.plan.states))

    def crashing(self) -> set[str]:
        downs: list[Crash | Restore] = [*self.plan.crashes, *self.plan.restores]
        return {c.state for c in downs if c.at_s + c.down_s >= self.clock.now_s}

    # --- results ----------------------------------------------------------------------------

    def finish(self) -> Result:
        world = self.world
        honest = [world.nodes[s] for s in sorted(self.honest)]
        self.checker.stores((s.state, s.node_store()) for s in honest if s.ever_started)
        stats = Counter(self.stats)
        stats.update(self.net.stats)
        for kind in self.plan.behaviours:
            stats[f"byz_{kind}"] += 1
        for (_, _, reason), count in self.checker.bodies.counted.items():
            stats[f"counted: {reason}"] += count
        stores = [s.node_store() for s in honest if s.ever_started]
        heights = min((st.height for st in stores), default=0)
        stats["commits"] += sum(st.height for st in stores)
        return Result(
            self.plan,
            self.checker.first,
            stats,
            self.clock.now_s,
            0.0,
            heights,
            list(self.checker.violations),
        )


def run_plan(plan: Plan) -> Result:
    comity = logging.getLogger("comity")
    level = comity.level
    comity.setLevel(logging.CRITICAL)  # the nodes' warnings are the expected faults
    started = time.perf_counter()
    try:
        scenario = Scenario(plan)
        with wall_clock(scenario.clock):
            run(scenario.main(), scenario.clock)
        result = scenario.finish()
    finally:
        comity.setLevel(level)
    result.wall_s = time.perf_counter() - started
    return result


def run_seed(seed: int, **kwargs: Any) -> Result:
    return run_plan(make_plan(seed, **kwargs))
