"""Which validator an observer syncs from (``BlockSync._follow``, docs/OPERATIONS.md
"Observer nodes").

Validators may hold different, equally valid certificates for one block, so an own
observer follows its own state's validator: it then serves the certificates that
validator serves. The real ``_follow`` loop runs here; only the two steps that
touch the network are scripted: a poll (which validator proves which height, after
how long a wait) and a sync (the observer's height moves to the source's).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from node.peers import PeerStats
from node.sync import HOME_GRACE_MS, BlockSync

pytestmark = pytest.mark.asyncio


@dataclass
class FakePeer:
    state: str
    stats: PeerStats = field(default_factory=PeerStats)


@dataclass
class Script:
    """What each validator holds: ``tip[state]`` (None: unreachable); a validator in
    ``commits`` commits the observer's next height during its next poll, one in
    ``commit_at`` during its poll of that number (1: the first)."""

    tip: dict[str, int | None]
    commits: set[str] = field(default_factory=set)
    commit_at: dict[str, int] = field(default_factory=dict)
    polls: list[tuple[str, int]] = field(default_factory=list)
    synced: list[tuple[str, int]] = field(default_factory=list)


def follower(script: Script, home: str | None, height: int = 5) -> BlockSync:
    peers = {s: FakePeer(s) for s in script.tip}
    app: Any = SimpleNamespace(height=height)
    sync = BlockSync(
        app,
        SimpleNamespace(peers=peers),  # type: ignore[arg-type]
        post=lambda _event: True,
        rejected=lambda _source: 0,
        verify=lambda _envelopes: asyncio.sleep(0),
        fault=lambda _what: None,
        task_ended=lambda _task: None,
        interval_ms=200,
        batch_blocks=16,
        eager=True,
        home=home,
    )

    async def poll(peer: Any, *, wait_ms: int = 0) -> None:
        script.polls.append((peer.state, wait_ms))
        await asyncio.sleep(0)
        if script.tip[peer.state] is None:
            peer.stats.up = False
            return
        asked = sum(1 for state, _ in script.polls if state == peer.state)
        if peer.state in script.commits or script.commit_at.get(peer.state) == asked:
            script.commits.discard(peer.state)
            script.tip[peer.state] = app.height + 1
        tip = script.tip[peer.state]
        assert tip is not None
        peer.stats.up, peer.stats.height = True, tip
        if tip > app.height:
            sync.proven[peer.state] = app.height + 1

    async def sync_from(peer: Any) -> bool:
        await asyncio.sleep(0)
        tip = script.tip[peer.state]
        if tip is None or tip <= app.height:
            return False
        app.height = tip
        script.synced.append((peer.state, tip))
        return True

    sync._poll = poll  # type: ignore[method-assign]
    sync._sync_from = sync_from  # type: ignore[method-assign]
    return sync


@contextlib.asynccontextmanager
async def following(sync: BlockSync) -> AsyncIterator[None]:
    task = asyncio.create_task(sync._follow())
    try:
        yield
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def until(script: Script, done: Callable[[], bool]) -> None:
    for _ in range(5000):
        if done():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"not done: polls {script.polls[-12:]}, synced {script.synced}")


async def test_the_home_validator_is_the_source_when_every_validator_is_ahead() -> None:
    script = Script(tip={"CN": 9, "FR": 9, "TH": 9, "VN": 9})
    async with following(follower(script, home="TH")):
        await until(script, lambda: bool(script.synced))
    assert script.synced == [("TH", 9)]
    assert script.polls[0] == ("TH", 200)  # long-polled first


async def test_a_newer_height_seen_elsewhere_waits_a_grace_for_the_home_validator() -> None:
    # FR proves height 6 at once; CN commits it a moment later, within the grace.
    script = Script(tip={"CN": 5, "FR": 6, "TH": 5}, commit_at={"CN": 2})
    async with following(follower(script, home="CN")):
        await until(script, lambda: bool(script.synced))
    assert script.synced == [("CN", 6)]
    assert script.polls[:3] == [("CN", 200), ("FR", 0), ("CN", min(200, HOME_GRACE_MS))]


async def test_a_lagging_home_validator_does_not_hold_the_observer_back() -> None:
    script = Script(tip={"CN": 5, "FR": 7, "TH": 7})
    async with following(follower(script, home="CN")):
        await until(script, lambda: bool(script.synced))
        assert script.synced == [("FR", 7)]
        assert script.polls[:3] == [("CN", 200), ("FR", 0), ("CN", 200)]
        # Lagging: asked without waiting from then on, the others long-polled.
        script.tip.update(FR=None, TH=8)
        mark = len(script.polls)
        await until(script, lambda: len(script.synced) == 2)
        assert script.synced[1] == ("TH", 8)
        assert ("CN", 0) in script.polls[mark:] and ("CN", 200) not in script.polls[mark:]
        assert ("TH", 200) in script.polls[mark:]
        # Once it claims our height again it is the source again.
        script.tip["CN"] = 8
        script.commits.add("CN")
        await until(script, lambda: len(script.synced) == 3)
    assert script.synced[2] == ("CN", 9)


async def test_a_home_validator_that_is_down_hands_over_to_the_others() -> None:
    script = Script(tip={"CN": None, "FR": 8, "TH": 8})
    async with following(follower(script, home="CN")):
        await until(script, lambda: bool(script.synced))
    assert script.synced == [("FR", 8)]
    assert script.polls[:2] == [("CN", 200), ("FR", 200)]  # long-polled: CN is down


async def test_a_foreign_observer_long_polls_every_validator_in_turn() -> None:
    script = Script(tip={"CN": 5, "FR": 5, "TH": 6})
    async with following(follower(script, home="CH")):  # no validator of CH
        await until(script, lambda: bool(script.synced))
    assert script.synced == [("TH", 6)]
    assert script.polls[:3] == [("CN", 200), ("FR", 200), ("TH", 200)]
