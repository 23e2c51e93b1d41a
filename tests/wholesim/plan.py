"""Seeded scenarios for the whole-node simulator: one seed fixes a whole run.

``make_plan(seed)`` draws n in {4, 5, 7} (``n=`` fixes it, up to ``N_MAX``:
the n = 10 campaign of tests/wholesim/test_wholesim.py), up to f = (n-1)//3 Byzantine nodes
(each with a behaviour from ``tests.wholesim.byzantine``, alone or
colluding), the network before GST (loss, duplicates, delays, a partition,
or the adversarial scheduler), honest crashes before and after GST, the
disk's crash mode, and maybe a validator-set change by governance votes.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from api.cli.bootstrap import DEMO_STATES
from node.config import Limits
from tests.wholesim.disk import DISK_MODES
from tests.wholesim.net import NetPlan, Partition

NS = (4, 5, 7)
#: The most nodes a plan may ask for (``n=``): the demo states, one kept spare
#: for governance to admit.
N_MAX = len(DEMO_STATES) - 1
#: The share of seeds with a restore from an older backup (finding B5).
RESTORE_P = 0.05


@dataclass(frozen=True)
class Crash:
    state: str
    at_s: float
    down_s: float


@dataclass(frozen=True)
class Restore:
    """At ``at_s`` the node stops and is restarted over the backup taken at ``backup_at_s``."""

    state: str
    backup_at_s: float
    at_s: float
    down_s: float


@dataclass(frozen=True)
class Plan:
    seed: int
    n: int
    byzantine: tuple[tuple[str, str], ...] = ()  # (state, behaviour)
    net: NetPlan = field(default_factory=NetPlan)
    crashes: tuple[Crash, ...] = ()
    disk_mode: str = "durable"
    governance: str | None = None  # "add" | "remove" | None
    records: int = 4
    restores: tuple[Restore, ...] = ()
    liveness_bound_s: float = 60.0
    #: Private acts filed by honest clients at a party's node, beside ``records``
    #: (docs/PRIVACY.md): each names its actor and one or two other members.
    private_acts: int = 0
    # The knobs below are for the negative controls (tests/wholesim/controls.py);
    # ``make_plan`` leaves them at their defaults.
    #: The nodes' limits (None: ``world.SIM_LIMITS``, the production defaults).
    limits: Limits | None = None
    #: How many times its usual rate a flooding behaviour sends.
    intensity: int = 1
    #: Virtual ms the driver spends per event it handles (0: CPU is free, and an
    #: inbox is empty whenever a message arrives; see tests/wholesim/world.py).
    event_cost_ms: float = 0.0
    #: The run goes on at least this long after GST (the invariants keep watching).
    hold_s: float = 0.0

    @property
    def gst_s(self) -> float:
        return self.net.gst_s

    @property
    def states(self) -> list[str]:
        return [s for s, _ in DEMO_STATES[: self.n]]

    @property
    def behaviours(self) -> list[str]:
        return [b for _, b in self.byzantine]

    def describe(self) -> str:
        net = self.net
        lines = [
            f"seed={self.seed} n={self.n} gst={net.gst_s:.2f}s disk={self.disk_mode} "
            f"records={self.records} private_acts={self.private_acts} "
            f"governance={self.governance}",
            f"  network before GST: loss {net.loss:.2f}, duplicate {net.duplicate:.2f}, "
            f"delay {net.delay_ms} ms, adversarial={net.adversarial}",
        ]
        lines += [
            f"  partition {p.start_s:.2f}-{p.end_s:.2f}s: {[sorted(g) for g in p.groups]}"
            for p in net.partitions
        ]
        if (self.limits, self.intensity, self.event_cost_ms, self.hold_s) != (None, 1, 0.0, 0.0):
            lines.append(
                f"  control knobs: intensity {self.intensity}, event cost "
                f"{self.event_cost_ms} ms, hold {self.hold_s} s after GST, limits "
                f"{self.limits.model_dump(exclude_defaults=True) if self.limits else 'default'}"
            )
        lines += [f"  byzantine {state}: {kind}" for state, kind in self.byzantine]
        lines += [f"  crash {c.state} at {c.at_s:.2f}s for {c.down_s:.2f}s" for c in self.crashes]
        lines += [
            f"  restore {r.state} at {r.at_s:.2f}s (down {r.down_s:.2f}s) from the "
            f"backup of {r.backup_at_s:.2f}s"
            for r in self.restores
        ]
        return "\n".join(lines)


def _network(rng: random.Random, states: list[str], gst_s: float) -> NetPlan:
    partitions: tuple[Partition, ...] = ()
    if rng.random() < 0.3:
        cut = states[:]
        rng.shuffle(cut)
        k = rng.randint(1, len(cut) // 2)
        start = rng.uniform(0, gst_s / 2)
        partitions = (
            Partition(start, rng.uniform(start, gst_s), (frozenset(cut[:k]), frozenset(cut[k:]))),
        )
    lo = rng.choice((1, 5, 20))
    return NetPlan(
        gst_s=gst_s,
        loss=rng.choice((0.0, 0.05, 0.2)),
        duplicate=rng.choice((0.0, 0.05)),
        delay_ms=(lo, lo + rng.choice((10, 100))),
        partitions=partitions,
        adversarial=rng.random() < 0.3,
    )


def _crashes(rng: random.Random, honest: list[str], gst_s: float) -> tuple[Crash, ...]:
    crashes = [
        Crash(rng.choice(honest), rng.uniform(0.2, gst_s), rng.uniform(0.1, 1.5))
        for _ in range(rng.choice((0, 0, 1, 2)))
    ]
    if rng.random() < 0.3:  # after GST too: the restarted node must catch up in the bound
        crashes.append(
            Crash(rng.choice(honest), gst_s + rng.uniform(0.0, 2.0), rng.uniform(0.2, 1.5))
        )
    return tuple(crashes)


def _restores(
    seed: int, honest: list[str], gst_s: float, restore_p: float, spare_faults: int
) -> tuple[Restore, ...]:
    """Rarely, an honest node restored from an older backup (before or after GST).
    Its own generator: adding it left every other draw of existing seeds as it was.

    A restored node signs nothing at the heights its key may have signed before
    (the hold of finding B5) until a certificate past them exists: at those
    heights it counts as a fault, so a restore is planned only while fewer than
    f nodes are Byzantine (seed 100677: one Byzantine and one held node of four
    stalled height 4 for good, as the fault model says they may)."""
    rng = random.Random(f"restore:{seed}")
    if not honest or spare_faults <= 0 or rng.random() >= restore_p:
        return ()
    at_s = rng.uniform(0.5, gst_s + 2.0)
    return (
        Restore(
            rng.choice(honest), max(0.1, at_s - rng.uniform(0.05, 1.5)), at_s, rng.uniform(0.1, 1.0)
        ),
    )


def _privacy(
    seed: int, records: int, byzantine: tuple[tuple[str, str], ...], swap: list[str], share: float
) -> tuple[int, tuple[tuple[str, str], ...]]:
    """The seed's private acts (2 to half its records and one), and which Byzantine members
    behave as a privacy kind of ``swap`` instead (each with chance ``share``). Their
    own generator: adding them left every draw of existing seeds' plans as it was."""
    rng = random.Random(f"privacy:{seed}")
    count = rng.randint(2, max(2, records // 2 + 1))
    swapped = tuple(
        (state, rng.choice(swap) if swap and rng.random() < share else kind)
        for state, kind in byzantine
    )
    return count, swapped


def make_plan(
    seed: int,
    n: int | None = None,
    behaviours: Sequence[str] | None = None,
    faults: bool = True,
    restore_p: float = RESTORE_P,
) -> Plan:
    """The scenario of ``seed``; ``behaviours``: the Byzantine kinds it may draw from;
    ``restore_p``: the chance of a restore from an older backup."""
    from tests.wholesim.byzantine import BEHAVIOURS, PRIVACY_KINDS

    rng = random.Random(f"plan:{seed}")
    n = n or rng.choice(NS)
    states = [s for s, _ in DEMO_STATES[:n]]
    if not faults:
        return Plan(seed, n, net=NetPlan(gst_s=0.0))
    pool = list(behaviours if behaviours is not None else BEHAVIOURS)
    # The kinds before need to know are drawn as before; the privacy kinds replace
    # some of them afterwards (``_privacy``), so existing seeds keep their plans.
    legacy = [k for k in pool if k not in PRIVACY_KINDS]
    privacy = [k for k in pool if k in PRIVACY_KINDS]
    f = (n - 1) // 3
    count = 0 if not pool else (f if rng.random() < 0.7 else rng.randint(0, f))
    byzantine_states = states[n - count :]
    byzantine = tuple((s, rng.choice(legacy or privacy)) for s in byzantine_states)
    honest = [s for s in states if s not in byzantine_states]
    gst_s = rng.uniform(1.0, 4.0)
    governance = None
    roll = rng.random()
    if roll < 0.12:
        governance = "add"
    elif roll < 0.2 and n >= 5 and len(byzantine) <= (n - 2) // 3:
        governance = "remove"
    network = _network(rng, states, gst_s)
    crashes = _crashes(rng, honest[1:], gst_s)
    disk_mode = rng.choice(DISK_MODES)
    records = rng.randint(3, 8)
    private_acts, byzantine = _privacy(
        seed, records, byzantine, privacy if legacy else [], len(privacy) / len(pool or [None])
    )
    return Plan(
        seed,
        n,
        byzantine,
        network,
        crashes,
        disk_mode,
        governance,
        records,
        _restores(seed, honest[1:], gst_s, restore_p, f - count),
        private_acts=private_acts,
    )
