"""Negative controls for the fault classes whose bug is not a C finding.

``tests/wholesim/regressions.py`` puts back the C findings for the Byzantine
classes that reproduce them. Here, for the classes left, a control is a bug
of the node (a monkeypatch, or a disk that breaks its contract) that the
campaign of that class must catch within its seed budget, and a seed that
catches it must hold without the bug (tests/wholesim/test_controls.py):

* ``crash``: honest crashes over a *lying* disk, one that acknowledges fsync
  and loses the write anyway (``SimDisk`` mode ``"lying"``). It loses the
  consensus WAL a node synced before it sent its votes, so the restarted node
  signs the (height, round) again, differently: ``double_sign``. This is the
  control of "persist, then send": in the simulator a crash falls between
  event-loop steps, and ``Driver._flush`` persists and sends in one step, so
  sending first could not be told apart there; losing the synced WAL is what
  sending first would lose. The lying mode is never in ``DISK_MODES``: an
  honest node over a lying disk is not honest.
* ``twins``: the same lying disk under the twins campaign. The twin pair's own
  equivocation is Byzantine by definition (the checker counts honest keys
  only), and no honest-node rule is exercised by twins that equivocating
  proposals do not exercise already, so the bug the class can expose is an
  honest node's own double-sign after a crash, as above.
* ``restore``: finding B5. An honest node restarted over an older backup
  (``plan.Restore``) with the signing hold ignored (``node.driver.may_sign``
  always yes): it enters heights it had signed at before the backup's moment,
  without their WAL, and signs them again: ``double_sign``.
* ``equivocate``, ``equivocate_compact``: every engine takes f+1 votes for a
  quorum (``tests.wholesim.broken.SmallQuorum``, in the real driver). With
  one Byzantine validator, honest nodes commit two blocks with valid
  certificates only if one of them breaks its lock or double-signs; with the
  thresholds too small, the equivocator's two proposals each gather a
  "quorum" that shares no honest validator: ``agreement``. (Small
  certificates also fail the ``audit``, and a seed may stall: those seeds
  count as ``symptoms`` and the next is tried.)
* ``forgets_lock``: the engine-only simulator's control, in the real node:
  every engine precommits without recording lockedValue/validValue
  (``broken.ForgetsLock``). The ordinary campaign of the equivocate classes
  breaks agreement rarely with it (seed 186 and 485 were the violations in seeds
  0..599 once private acts joined the workload; before, seed 212 in
  0..348), so the control replays that seed: it must break agreement, and
  hold with the engine as it is.
* ``replay``: the P2P replay cache disabled (``ReplayCache.is_replay`` never
  yes). The replay behaviour's old requests, and the network's duplicates,
  are then accepted a second time: ``replay``. (Accepting one is harmless in
  itself, consensus messages and gossip are idempotent, so no other invariant
  could see it; the ``replay`` invariant states the wire contract directly.)
* ``gossip_flood``: gossip not counted against the member state's and the
  signer's shares of the mempool (only the pool and its lane bound it). With
  a pool of 400 records and the flood at 10 times its rate (150 records a
  batch), one batch leaves more records of the flooding state at an honest
  node than its share (95): ``memory`` (checked after every P2P request an
  honest node answers, not only every half second: honest blocks drain the
  pool within milliseconds of virtual time).
* ``inbox_flood``: the per-sender share of the driver's inbox removed (every
  sender may fill all of it). In virtual time CPU is free, so an inbox is
  empty whenever a message arrives and no flood can fill it; the control
  gives the driver a service time (1 virtual ms per event: 1,000 events/s),
  an inbox of 400, and the flood at 10 times its rate (about 1,300 votes/s
  to each peer). Past its capacity the inbox fills with the flooder's votes
  and honest validators' messages are turned away: ``inbox_fairness``. With
  the share the flooder fills only its quarter.
* ``bad_body``: a party's node that takes a body without checking it against
  the header's commitment (``check_body`` a no-op where ``node.privacy`` and
  ``node.application`` call it). The bad_body member's rewritten pushes then
  enter an honest party's body pool and, at commit, its store as valid:
  ``integrity`` (and ``refused``: the mismatch is no longer counted).
* ``body_to_non_party``: a node that takes a body although it is not a party
  (``BodyExchange._refusal`` without that check). The bad_body member's pushes
  to non-parties then sit in an honest non-party's body pool: ``privacy``.
* ``body_snoop``: a node that serves ``/p2p/v1/bodies`` to any validator (the
  party check of ``BodyExchange.serve`` left out). The body_snoop member is
  given bodies of acts it is not a party of: ``privacy`` (its witness), and
  ``refused`` (an answer 200 where a 403 was due).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

import node.application
import node.driver
import node.privacy
from ledger.records import Envelope
from node.config import Limits
from node.driver import Driver
from node.mempool import Mempool, UsageKey
from node.privacy import BodyExchange
from node.wire import ReplayCache
from tests.wholesim.broken import ForgetsLock, SmallQuorum
from tests.wholesim.net import NetPlan
from tests.wholesim.plan import RESTORE_P, Plan, make_plan

Patcher = Callable[[pytest.MonkeyPatch], None]


def no_patch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The node as it is: the bug of this control is in the disk."""


def b5_ignore_the_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    """B5: a restored node signs at any height, whatever the hold says."""
    monkeypatch.setattr(node.driver, "may_sign", lambda store, height: True)


def no_replay_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every signed request is fresh to the node, however often it came."""
    monkeypatch.setattr(ReplayCache, "is_replay", lambda self, sender, nonce, ts_ms: False)


def gossip_without_shares(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gossip counts against the pool and its lane only, not its state's or signer's share."""
    keys = Mempool._keys

    def lane_only(self: Mempool, envelope: Any, *, local: bool) -> list[UsageKey]:
        if local:
            return keys(self, envelope, local=local)
        return [("pool",), ("lane", self.lane(envelope))]

    monkeypatch.setattr(Mempool, "_keys", lane_only)


def inbox_without_shares(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any one sender may fill the whole inbox."""
    monkeypatch.setattr(Driver, "_share", lambda self: self.inbox_max)


def small_quorum(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every node's engine counts f+1 votes as a quorum (tests/wholesim/broken.py)."""
    monkeypatch.setattr(node.driver, "Replica", SmallQuorum)


def forgets_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every node's engine precommits without recording its lock (tests/wholesim/broken.py)."""
    monkeypatch.setattr(node.driver, "Replica", ForgetsLock)


def unchecked_bodies(monkeypatch: pytest.MonkeyPatch) -> None:
    """A body is never checked against its header's commitment (nor its class)."""
    for module in (node.privacy, node.application):
        monkeypatch.setattr(module, "check_body", lambda header, body: None)


def bodies_for_non_parties(monkeypatch: pytest.MonkeyPatch) -> None:
    """A node takes a pushed body whether or not its state is a party."""
    refusal = BodyExchange._refusal

    def without_party_check(
        self: BodyExchange, sender: str, header: Envelope, body: dict[str, Any]
    ) -> str | None:
        reason = refusal(self, sender, header, body)
        return None if reason == "body sent to a non-party" else reason

    monkeypatch.setattr(BodyExchange, "_refusal", without_party_check)


def serve_any_validator(monkeypatch: pytest.MonkeyPatch) -> None:
    """``/p2p/v1/bodies`` answers every validator: the bodies held, party or not."""

    def serve(self: BodyExchange, sender: str, payload: dict[str, Any]) -> tuple[Any, int]:
        del sender
        bodies = {}
        for record_id in payload.get("ids") or []:
            if self.app.store.has_record(record_id):
                held = self.app.load_content(record_id)
                if held.body is not None:
                    bodies[record_id] = held.body
        return {"bodies": bodies}, 200

    monkeypatch.setattr(BodyExchange, "serve", serve)


def equivocation(kind: str) -> Callable[[int], Plan]:
    """Four nodes, VN equivocating, a lossy time before GST; a short liveness bound,
    as the broken engine may also stall a seed (then the next one is tried)."""

    def plan(seed: int) -> Plan:
        net = NetPlan(gst_s=3.0, loss=0.05, delay_ms=(5, 60))
        return Plan(seed, 4, (("VN", kind),), net, records=6, liveness_bound_s=10.0)

    return plan


def flood(kind: str, **knobs: Any) -> Callable[[int], Plan]:
    """A four-node plan with one flooding member and the given knobs (a short,
    lossy time before GST; the run holds 5 s past GST)."""

    def plan(seed: int) -> Plan:
        net = NetPlan(gst_s=2.0, loss=0.05, delay_ms=(5, 50))
        return Plan(seed, 4, (("VN", kind),), net, records=6, hold_s=5.0, **knobs)

    return plan


@dataclass(frozen=True)
class Control:
    bug: str
    behaviours: tuple[str, ...]
    expect: str
    seeds: range
    patch: Patcher = no_patch
    lying_disk: bool = False
    restore_p: float = RESTORE_P
    needs: tuple[str, ...] = field(default=())  # plan parts without which a seed is skipped
    make: Callable[[int], Plan] | None = None  # a plan of its own instead of the campaign's
    detail: str = ""  # what the violation's text must say
    #: Other violations the bug may cause first on a seed (tolerated there; the
    #: expected one must still come, on a later seed if not on this one).
    symptoms: tuple[str, ...] = ()

    def plan(self, seed: int, *, bug: bool) -> Plan:
        """The seed's plan of this campaign; with ``bug``, over a lying disk if it says so."""
        if self.make is not None:
            plan = self.make(seed)
        else:
            plan = make_plan(seed, behaviours=self.behaviours, restore_p=self.restore_p)
        return dataclasses.replace(plan, disk_mode="lying") if bug and self.lying_disk else plan

    def relevant(self, plan: Plan) -> bool:
        return all(getattr(plan, part) for part in self.needs)


CONTROLS: dict[str, Control] = {
    "crash": Control(
        "a disk that loses synced writes (the WAL persisted before sending)",
        (),
        "double_sign",
        range(16),
        lying_disk=True,
        needs=("crashes",),
    ),
    "twins": Control(
        "a disk that loses synced writes, under the twins campaign",
        ("twins",),
        "double_sign",
        range(1000, 1012),
        lying_disk=True,
        needs=("crashes",),
    ),
    "restore": Control(
        "B5: the signing hold of a restore ignored",
        (),
        "double_sign",
        range(16),
        patch=b5_ignore_the_hold,
        restore_p=1.0,
        needs=("restores",),
    ),
    **{
        kind: Control(
            "an engine that takes f+1 votes for a quorum (SmallQuorum)",
            (kind,),
            "agreement",
            range(6),
            patch=small_quorum,
            make=equivocation(kind),
            detail="another honest node",
            symptoms=("audit", "liveness"),
        )
        for kind in ("equivocate", "equivocate_compact")
    },
    "forgets_lock": Control(
        "an engine that forgets its lock and valid value (ForgetsLock)",
        ("equivocate", "equivocate_compact"),
        "agreement",
        range(186, 187),
        patch=forgets_lock,
        detail="another honest node",
    ),
    "replay": Control(
        "the P2P replay cache disabled",
        ("replay",),
        "replay",
        range(8),
        patch=no_replay_cache,
        needs=("byzantine",),
        detail="twice",
    ),
    "gossip_flood": Control(
        "gossip not held to its state's and signer's mempool shares",
        ("gossip_flood",),
        "memory",
        range(2),
        patch=gossip_without_shares,
        detail="records of VN, over its share",
        make=flood("gossip_flood", limits=Limits(max_pending_records=400), intensity=10),
    ),
    "inbox_flood": Control(
        "the per-sender share of the inbox removed",
        ("inbox_flood",),
        "inbox_fairness",
        range(2),
        patch=inbox_without_shares,
        detail="refused an event of honest",
        make=flood(
            "inbox_flood", limits=Limits(inbox_events_max=400), intensity=10, event_cost_ms=1.0
        ),
    ),
    "bad_body": Control(
        "a body taken without checking it against the header's commitment",
        ("bad_body",),
        "integrity",
        range(1000, 1008),
        patch=unchecked_bodies,
        needs=("byzantine",),
        detail="not committed",
        symptoms=("refused",),
    ),
    "body_to_non_party": Control(
        "a body taken by a node that is not a party of its act",
        ("bad_body",),
        "privacy",
        range(1000, 1008),
        patch=bodies_for_non_parties,
        needs=("byzantine",),
        detail="body pool",
        symptoms=("refused",),
    ),
    "body_snoop": Control(
        "bodies served to any validator that asks, party or not",
        ("body_snoop",),
        "privacy",
        range(1000, 1012),
        patch=serve_any_validator,
        needs=("byzantine",),
        detail="to non-party",
        symptoms=("refused",),
    ),
}
