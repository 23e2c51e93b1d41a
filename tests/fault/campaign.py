"""The fault campaign: 4 real nodes under load, seeded faults, safety checks at the end.

Every directed P2P link runs through a relay (``tests.fault.proxy``), so link
faults need no root. The schedule, victims and hold times come from one
seeded ``random.Random``; a failing run prints the seed that reproduces its
schedule (process timing still varies). Fault classes:

  kill          kill -9 one node, restart it after the hold
  pause         SIGSTOP one node past the consensus (and often request) timeouts
  wal_corrupt   kill -9, damage the consensus WAL value: the node must refuse to
                start with a clear message; the operator restores the value
  log_truncate  kill -9, truncate the newest LevelDB .log (torn last writes): the
                node recovers and catches up, or refuses clearly and is resynced
  isolate       cut every link of one node
  split         cut the consortium 2/2: nobody has a quorum, nothing commits
  slow          latency 40-150 ms plus jitter on every link
  lossy         5-20 % of chunks "lost" (one retransmission timeout each)

With ``--byzantine``, the last state (VN for 4 nodes) runs the real node
binary under ``--byzantine`` (node/byzantine.py), rotating through
``BYZANTINE_GROUPS`` each time it restarts; the ``byzantine`` fault class
restarts it with the next group. That node is the one fault n = 4 tolerates,
so node faults (kill, pause, disk damage, isolation) then strike only it;
slow and lossy links and 2/2 splits still strike everyone. Its conflicting
votes and misbehaviour records naming it are expected; the honest three
must agree, lose nothing, and keep committing.

After each fault heals, every node must pass the height the majority had,
within ``HEAL_TIMEOUT_S``; while a fault leaves a quorum connected, the
majority's height must grow. A node whose disk lost fsynced writes may sign
again what it signed before the loss, so it alone may be named by a
misbehaviour record; everyone else is honest.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import shutil
import signal
import sys
import time
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from node.byzantine import ENV_FLAG
from node.config import dump_config
from tests.fault.checks import Verdict, check_stores
from tests.fault.harness import FaultNet, Load
from tests.fault.proxy import Links

CLASSES = (
    "kill",
    "pause",
    "wal_corrupt",
    "log_truncate",
    "isolate",
    "split",
    "slow",
    "lossy",
    "byzantine",
)
#: Behaviour groups a Byzantine node rotates through (node/byzantine.py).
BYZANTINE_GROUPS = (
    "dup-records",
    "conflicting-envelopes,flood-gossip",
    "equivocate",
    "junk-blocks,flood-inbox",
    "withhold-blocks",
    "lying-heights",
    "replay",
    "equivocate,junk-blocks,lying-heights,replay",
)
NODE_FAULTS = {"kill", "pause", "wal_corrupt", "log_truncate", "isolate", "byzantine"}
HEAL_TIMEOUT_S = 60
QUORUM_FAULTS = {"kill", "pause", "isolate", "slow", "lossy", "byzantine"}


@dataclass
class Summary:
    seed: int
    seconds: float = 0.0
    faults: Counter[str] = field(default_factory=Counter)
    refusals: list[str] = field(default_factory=list)
    stalls: list[str] = field(default_factory=list)
    verdict: Verdict | None = None
    committed: int = 0
    unconfirmed: int = 0
    allowed_faulty: set[str] = field(default_factory=set)
    link_connections_max: int = 0
    byzantine: str | None = None
    behaviours: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        found = list(self.stalls)
        if self.verdict is not None:
            found += self.verdict.problems(self.allowed_faulty)
        if self.byzantine is not None:  # a Byzantine node's own double votes are its fault
            found = [p for p in found if not p.startswith(f"{self.byzantine} signed ")]
        return found

    def line(self) -> str:
        v = self.verdict or Verdict()
        faults = " ".join(f"{c}={self.faults[c]}" for c in CLASSES if self.faults[c])
        byzantine = (
            f" | byzantine {self.byzantine}: {len(self.behaviours)} groups"
            if self.byzantine
            else ""
        )
        return (
            f"chaos seed={self.seed} {self.seconds:.0f}s{byzantine} | faults {sum(self.faults.values())}"
            f" ({faults}) | records committed {self.committed} (unconfirmed "
            f"{self.unconfirmed}, on chain {v.committed_on_chain}) | records lost "
            f"{len(v.lost)} | divergences {len(v.divergences)} | conflicting votes "
            f"{len(v.conflicting_votes)} | stalls {len(self.stalls)} | refused starts "
            f"{len(self.refusals)} | {'PASS' if not self.problems else 'FAIL'}"
        )


class Campaign:
    def __init__(
        self,
        root: Path,
        seed: int,
        *,
        classes: tuple[str, ...] = CLASSES,
        hold_s: tuple[float, float] = (2.0, 6.0),
        gap_s: tuple[float, float] = (1, 4),
        log: Any = print,
        byzantine: bool = False,
    ) -> None:
        self.rng = random.Random(seed)
        self.net = FaultNet(root)
        if not byzantine:
            classes = tuple(c for c in classes if c != "byzantine")
        self.links = Links(
            {r["state"]: int(r["p2p_url"].rsplit(":", 1)[1]) for r in self.net.rows}, seed
        )
        self._route_through_links()
        self.classes = classes
        self.hold_s, self.gap_s = hold_s, gap_s
        self.summary = Summary(seed)
        self.load = Load(self.net, seed)
        self.log = log
        self.byzantine = self.net.states[-1] if byzantine else None
        if self.byzantine is not None:
            self.summary.byzantine = self.byzantine
            self.summary.allowed_faulty.add(self.byzantine)
            self.net.run_args[self.byzantine] = self._byzantine_args

    def _byzantine_args(self) -> tuple[tuple[str, ...], dict[str, str]]:
        """The next behaviour group, each time the Byzantine node (re)starts."""
        assert self.byzantine is not None
        group = BYZANTINE_GROUPS[len(self.summary.behaviours) % len(BYZANTINE_GROUPS)]
        self.summary.behaviours.append(group)
        self.log(f"[{time.strftime('%H:%M:%S')}] {self.byzantine} runs Byzantine: {group}")
        signer = self.net.root / self.byzantine / "investigator.key"
        return ("--byzantine", group, "--byzantine-signer", str(signer)), {ENV_FLAG: "1"}

    def _route_through_links(self) -> None:
        for state in self.net.states:
            path = self.net.root / state / "node.toml"
            config = tomllib.loads(path.read_text())
            config["peers"] = [
                {"state": other, "p2p_url": self.links.url(state, other)}
                for other in self.net.states
                if other != state
            ]
            path.write_text(dump_config(config))

    # --- the run ---------------------------------------------------------------------

    def run(
        self, seconds: float, at_least_once: bool = False, faults_max: int = 1_000_000
    ) -> Summary:
        started = time.monotonic()
        self.net.start()
        self.load.start()
        order = list(self.classes)
        self.rng.shuffle(order)
        try:
            while (
                time.monotonic() - started < seconds
                and sum(self.summary.faults.values()) < faults_max
            ):
                fault = order.pop(0) if at_least_once and order else self.rng.choice(self.classes)
                self._inject(fault)
                time.sleep(self.rng.uniform(*self.gap_s))
            self._finish()
        finally:
            self._teardown()
        self.summary.seconds = time.monotonic() - started
        return self.summary

    def _inject(self, fault: str) -> None:
        victim = self.rng.choice(self.net.states)
        if self.byzantine is not None and fault in NODE_FAULTS:
            victim = self.byzantine  # the one fault n = 4 tolerates is already there
        hold = self.rng.uniform(*self.hold_s)
        before = self._top()
        self.log(
            f"[{time.strftime('%H:%M:%S')}] {fault} {victim} hold {hold:.1f}s at height {before}"
        )
        getattr(self, f"_fault_{fault}")(victim, hold)
        self.summary.faults[fault] += 1
        self._await_heal(fault, victim)

    def _hold(self, fault: str, victim: str, hold: float, majority: list[str]) -> None:
        """Sleep through the fault; the majority side must commit if it has a quorum."""
        start = self._top(majority)
        time.sleep(hold)
        if fault in QUORUM_FAULTS and hold >= 3 and self.load.stats.submitted:
            deadline = time.monotonic() + 10
            while self._top(majority) <= start and time.monotonic() < deadline:
                time.sleep(0.2)
            if self._top(majority) <= start:
                self.summary.stalls.append(
                    f"{fault} {victim}: majority {majority} stuck at "
                    f"{start} with a quorum connected"
                )

    def _others(self, victim: str) -> list[str]:
        return [s for s in self.net.states if s != victim]

    def _fault_byzantine(self, victim: str, hold: float) -> None:
        """Restart the Byzantine node with its next behaviour group."""
        self.net.kill(victim, signal.SIGKILL)
        self._start(victim)
        self._hold("byzantine", victim, hold, self._others(victim))

    def _fault_kill(self, victim: str, hold: float) -> None:
        self.net.kill(victim)
        self._hold("kill", victim, hold, self._others(victim))
        self._start(victim)

    def _fault_pause(self, victim: str, hold: float) -> None:
        self.net.pause(victim)
        self._hold("pause", victim, hold * 2, self._others(victim))  # past the timeouts
        self.net.resume(victim)

    def _fault_wal_corrupt(self, victim: str, hold: float) -> None:
        self.net.kill(victim)
        old = self.net.corrupt_wal(victim, self.rng)
        ok, why = self.net.try_start(victim)
        if ok:
            self.summary.stalls.append(f"wal_corrupt {victim}: node started on a corrupt WAL")
        elif "cannot start" not in self.net.log(victim)[-2000:]:
            self.summary.stalls.append(
                f"wal_corrupt {victim}: refused without a clear message: {why[-300:]}"
            )
        else:
            self.summary.refusals.append(f"{victim}: corrupt WAL refused")
        if ok:
            self.net.kill(victim)
        self.net.restore_wal(victim, old)  # the operator restores the WAL from backup
        self._start(victim)

    def _fault_log_truncate(self, victim: str, hold: float) -> None:
        self.net.kill(victim)
        cut = self.net.truncate_newest_log(victim, self.rng)
        self.summary.allowed_faulty.add(victim)  # its disk lost fsynced writes
        ok, why = self.net.try_start(victim)
        self.log(f"    truncated {cut}: {'recovered' if ok else 'refused'}")
        if not ok:
            if "cannot start" not in self.net.log(victim)[-3000:]:
                self.summary.stalls.append(
                    f"log_truncate {victim}: refused without a clear message: {why[-300:]}"
                )
            self.summary.refusals.append(f"{victim}: truncated store refused")
            shutil.rmtree(self.net.root / victim / "data")  # the operator wipes and resyncs
            self._start(victim)

    def _fault_isolate(self, victim: str, hold: float) -> None:
        self.links.cut((victim, other) for other in self._others(victim))
        self._hold("isolate", victim, hold, self._others(victim))
        self.links.heal()

    def _fault_split(self, victim: str, hold: float) -> None:
        side = [victim, self.rng.choice(self._others(victim))]
        rest = [s for s in self.net.states if s not in side]
        self.links.cut((a, b) for a in side for b in rest)
        time.sleep(1)  # a block already in flight may still land
        before = {s: self.net.height(s) for s in self.net.states}
        time.sleep(hold)
        after = {s: self.net.height(s) for s in self.net.states}
        # A node may still catch up to a height committed before the cut (block sync
        # within its side); only a height above every node's before it is a commit.
        if max(after.values()) > max(before.values()):
            self.summary.stalls.append(
                f"split {side}/{rest}: committed without a quorum {before} -> {after}"
            )
        self.links.heal()

    def _fault_slow(self, victim: str, hold: float) -> None:
        delay = self.rng.uniform(40, 150)
        self.links.shape(delay_ms=delay, jitter_ms=delay / 2)
        self._hold("slow", victim, hold, self.net.states)
        self.links.heal()

    def _fault_lossy(self, victim: str, hold: float) -> None:
        self.links.shape(delay_ms=5, jitter_ms=5, loss=self.rng.uniform(0.05, 0.2))
        self._hold("lossy", victim, hold, self.net.states)
        self.links.heal()

    # --- helpers ---------------------------------------------------------------------

    def _start(self, state: str) -> None:
        ok, why = self.net.try_start(state)
        if not ok:
            raise AssertionError(f"{state} does not start after its fault was repaired: {why}")

    def _top(self, states: list[str] | None = None) -> int:
        best = 0
        for state in states or self.net.up():
            if state in self.net.up():
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    best = max(best, self.net.height(state))
        return best

    def _await_heal(self, fault: str, victim: str) -> None:
        target = self._top() + 1
        deadline = time.monotonic() + HEAL_TIMEOUT_S
        while time.monotonic() < deadline:
            if all(self._height_or_zero(s) >= target for s in self.net.states):
                return
            time.sleep(0.25)
        self.summary.stalls.append(
            f"after {fault} {victim}: not all nodes reached {target}: "
            f"{ {s: self._height_or_zero(s) for s in self.net.states} }"
        )

    def _height_or_zero(self, state: str) -> int:
        try:
            return self.net.height(state)
        except (httpx.HTTPError, ValueError):
            return 0

    def _finish(self) -> None:
        self.links.heal()
        for state in list(self.net.paused):
            self.net.resume(state)
        for state in self.net.states:
            if state not in self.net.procs:
                self._start(state)
        self.load.stop()
        self.load.sweep(30)
        self._converge()

    def _converge(self) -> None:
        deadline = time.monotonic() + HEAL_TIMEOUT_S
        while time.monotonic() < deadline:
            heights = {s: self._height_or_zero(s) for s in self.net.states}
            if len(set(heights.values())) == 1:
                return
            time.sleep(0.3)

    def _teardown(self) -> None:
        self.load.stopping.set()
        for state in list(self.net.paused):
            self.net.resume(state)
        for state in list(self.net.procs):
            try:
                self.net.kill(state, signal.SIGTERM)
            except Exception:  # a node that will not stop must not hide the verdict
                self.net.kill(state, signal.SIGKILL)
        self.summary.link_connections_max = max(r.open_max for r in self.links.relays.values())
        self.links.close()
        self.summary.committed = len(self.load.stats.acked)
        self.summary.unconfirmed = len(self.load.pending)
        self.summary.verdict = check_stores(self.net.root, self.net.states, self.load.stats.acked)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/chaos",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--dir", type=Path, default=None, help="default: a fresh temp dir")
    parser.add_argument("--classes", default=",".join(CLASSES))
    parser.add_argument(
        "--byzantine",
        action="store_true",
        help="the last node runs the real binary under --byzantine, rotating "
        "through every behaviour of node/byzantine.py",
    )
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    classes = tuple(c for c in args.classes.split(",") if c)
    unknown = set(classes) - set(CLASSES)
    if unknown or not classes:
        parser.error(f"unknown fault classes {sorted(unknown)}; choose from {CLASSES}")
    import tempfile

    root = args.dir or Path(tempfile.mkdtemp(prefix="comity-chaos-"))
    print(f"chaos: seed {seed}, {args.minutes} min, dir {root}", flush=True)
    campaign = Campaign(
        root / "net",
        seed,
        classes=classes,
        hold_s=(2, 12),
        log=lambda m: print(m, flush=True),
        byzantine=args.byzantine,
    )
    summary = campaign.run(args.minutes * 60, at_least_once=True)
    for problem in summary.problems[:50]:
        print("PROBLEM:", problem)
    print(summary.line(), flush=True)
    return 0 if not summary.problems else 1


if __name__ == "__main__":
    sys.exit(main())
