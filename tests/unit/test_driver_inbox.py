"""The driver's inbox: timeouts are never lost, no peer takes the whole inbox,
and a local bug stops the driver instead of being logged as a peer's fault.

Findings B1 and B3 of the review of b40cc0b: timeouts went through the same
bounded, lossy inbox as peer input (a full inbox dropped them for good), and
``_handle_group`` swallowed every ``ComityError``, an ``InvariantViolation``
or ``StoreError`` included.
"""

from __future__ import annotations

import asyncio

import pytest

from consensus.messages import Vote
from consensus.state import Ready, Timeout
from ledger.errors import InvariantViolation, PeerFault, StoreError
from node.driver import Driver, PeerMessage
from node.mempool import Mempool
from tests.unit.test_governance import Chain


def _driver(inbox_max: int) -> Driver:
    chain = Chain()
    return Driver(
        chain.app,
        Mempool(100, 1 << 20),
        chain.keys("CN").node,
        lambda item, size: None,
        inbox_max=inbox_max,
        heartbeat_ms=3_600_000,
        rebroadcast_ms=1000,
        on_commit=lambda b, c: None,
        on_behind=lambda h: None,
    )


def _vote(sender: str, round_: int) -> PeerMessage:
    vote = Vote("prevote", 1, round_, None, sender, "00" * 64)
    return PeerMessage(vote, None, sender)


async def test_a_timeout_fires_even_when_the_inbox_is_full() -> None:
    driver = _driver(inbox_max=8)
    while driver.post("tick"):
        pass
    assert driver.inbox.full()
    timeout = Timeout("propose", 1, 0, 1)
    await driver._absorb(Ready(timeouts=(timeout,)))
    await asyncio.sleep(0.02)
    assert timeout in driver._urgent  # delivered outside the inbox, not dropped


async def test_one_sender_cannot_take_the_whole_inbox() -> None:
    driver = _driver(inbox_max=8)  # 4 validators: 2 events each
    flooder, honest = "aa" * 32, "bb" * 32
    accepted = [driver.post(_vote(flooder, r)) for r in range(8)]
    assert accepted == [True, True] + [False] * 6
    assert driver.stats.inbox_refused == 6
    assert driver.post(_vote(honest, 0)) and driver.post(_vote(honest, 1))
    await driver._handle_group([driver.inbox.get_nowait() for _ in range(driver.inbox.qsize())])
    assert driver.post(_vote(flooder, 9))  # its share is free again once handled


@pytest.mark.parametrize("error", [InvariantViolation("bug"), StoreError("disk")])
async def test_a_local_failure_stops_the_driver(
    error: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = _driver(inbox_max=8)

    async def broken(event: object) -> None:
        raise error

    monkeypatch.setattr(driver, "_dispatch", broken)
    with pytest.raises(type(error)):
        await driver._handle_group(["tick"])


async def test_a_peers_fault_is_logged_and_the_loop_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    driver = _driver(inbox_max=8)
    seen: list[object] = []

    async def dispatch(event: object) -> None:
        seen.append(event)
        if event == "bad":
            raise PeerFault("a peer's junk")

    monkeypatch.setattr(driver, "_dispatch", dispatch)
    await driver._handle_group(["bad", "tick"])
    assert seen == ["bad", "tick"]


async def test_wake_ups_are_coalesced() -> None:
    """Every admitted record wakes the driver: under load that is thousands a second,
    and none may pile up outside the bounded inbox."""
    driver = _driver(inbox_max=8)
    for _ in range(10_000):
        driver.wake()
        driver.post_urgent("tick")
    driver.post_urgent(Timeout("propose", 1, 0, 1))
    assert list(driver._urgent) == ["wake", "tick", Timeout("propose", 1, 0, 1)]
