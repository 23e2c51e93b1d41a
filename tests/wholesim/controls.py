"""Negative controls for the Byzantine classes and faults not tied to a C finding.

Each patcher puts back, for one test, a plausible bug of the node that the
campaign of one class must catch (tests/wholesim/test_controls.py): the
bounded inbox that also carried timeouts (B1), the mempool without state and
signer shares (M3), ... They are short re-statements of the old or broken
logic, applied with ``monkeypatch``; node/ and consensus/ stay as they are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from ledger.records import Envelope
from node.config import Limits
from node.driver import Driver
from node.mempool import Mempool, UsageKey
from tests.wholesim import world as world_module

Patcher = Callable[[pytest.MonkeyPatch], None]

#: What one event costs a node's CPU in the B1 control (virtual seconds).
EVENT_COST_S = 0.03


def slow_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """The driver takes one inbox event at a time (timeouts first), and each costs
    ``EVENT_COST_S`` of virtual time. In virtual time handling is otherwise free,
    so no flood could fill an inbox; the simulated flood (about 100 votes a
    second) is far smaller than a real one, so each event costs more than a
    real node's CPU would, and the flood outruns the node as a real one does.
    The inbox is at its configurable minimum (100 events)."""
    async def run(self: Driver) -> None:
        ticker = asyncio.create_task(self._ticker(), name="driver-tick")
        try:
            self._handle_group(["wake"])
            while True:
                events = [self._urgent.popleft() for _ in range(len(self._urgent))]
                if not events:
                    events = [await self.inbox.get()]
                await asyncio.sleep(EVENT_COST_S * len(events))
                self._handle_group(events)
        finally:
            ticker.cancel()

    monkeypatch.setattr(Driver, "run", run)
    monkeypatch.setattr(world_module, "SIM_LIMITS", Limits(inbox_events_max=100))


def b1_timeouts_in_inbox(monkeypatch: pytest.MonkeyPatch) -> None:
    """B1: timeouts and ticks go through the bounded inbox like peer input, and a
    peer's messages have no share of it: one validator's flood fills it, and a
    timeout posted then is lost (the replica waits in its step for ever). The
    inbox is shrunk to its configurable minimum (100) so a flood of a few
    batches fills it."""
    def post(self: Driver, event: object) -> bool:
        try:
            self.inbox.put_nowait(event)
        except asyncio.QueueFull:
            return False
        return True

    def post_urgent(self: Driver, event: object) -> None:
        post(self, event)

    monkeypatch.setattr(Driver, "post", post)
    monkeypatch.setattr(Driver, "post_urgent", post_urgent)
    slow_cpu(monkeypatch)


def m3_no_gossip_shares(monkeypatch: pytest.MonkeyPatch) -> None:
    """M3: the mempool checks only the whole pool: gossip from one member state
    may fill it, and then every client's record is refused (503) on every node.
    The pool is shrunk (200 records) so a flood of a few seconds fills it."""
    def keys(self: Mempool, envelope: Envelope, *, local: bool) -> list[UsageKey]:
        return [("pool",)]

    monkeypatch.setattr(Mempool, "_keys", keys)
    monkeypatch.setattr(world_module, "SIM_LIMITS", Limits(max_pending_records=200))
