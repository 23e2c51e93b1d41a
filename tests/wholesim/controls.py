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
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

import node.driver
from tests.wholesim.plan import RESTORE_P, Plan, make_plan

Patcher = Callable[[pytest.MonkeyPatch], None]


def no_patch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The node as it is: the bug of this control is in the disk."""


def b5_ignore_the_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    """B5: a restored node signs at any height, whatever the hold says."""
    monkeypatch.setattr(node.driver, "may_sign", lambda store, height: True)


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

    def plan(self, seed: int, *, bug: bool) -> Plan:
        """The seed's plan of this campaign; with ``bug``, over a lying disk if it says so."""
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
}
