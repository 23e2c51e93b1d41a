"""Virtual time for the whole-node simulator: an asyncio loop that never sleeps.

Theory of operation
-------------------
``VirtualLoop`` is a ``SelectorEventLoop`` whose selector is ``VirtualSelector``:
where a real selector would block in ``select(timeout)`` until a socket is
ready or the timeout passes, this one moves ``VirtualClock.now_s`` forward by
``timeout`` and returns at once with no events. asyncio computes that timeout
as "until the next timer", so the loop jumps from timer to timer, and
``loop.time()`` (which asyncio's ``sleep``, ``call_later`` and ``wait_for``
read) returns the virtual clock. The node code runs unchanged, single-threaded
and in the order asyncio gives it: a run is a pure function of its inputs.

The simulator has no sockets, so no event ever arrives through the selector;
``select(None)`` (nothing ready, no timer) would block a real loop forever and
here raises ``SimulationIdle``.

``wall_clock`` replaces, for one run, the node's readings of the wall clock
(``node.clock.utcnow`` and ``node.clock.now_ms``, the one seam) with
``EPOCH`` plus the virtual time, so block times, record freshness and P2P
timestamps all follow the same clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import selectors
from collections.abc import Coroutine, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

T = TypeVar("T")

#: Virtual time 0, as the nodes' wall clock sees it (genesis is one second before).
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
EPOCH_MS = int(EPOCH.timestamp() * 1000)


class SimulationIdle(RuntimeError):
    """Nothing is ready and no timer is set: every task waits for ever."""


class VirtualClock:
    __slots__ = ("now_s",)

    def __init__(self) -> None:
        self.now_s = 0.0

    def utcnow(self) -> datetime:
        return EPOCH + timedelta(seconds=self.now_s)

    def now_ms(self) -> int:
        return EPOCH_MS + int(self.now_s * 1000)

    def monotonic(self) -> float:
        return self.now_s


class VirtualSelector(selectors.BaseSelector):
    """Holds registrations (the loop's self-pipe) and turns waiting into clock ticks."""

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock
        self._keys: dict[int, selectors.SelectorKey] = {}

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        key = selectors.SelectorKey(fileobj, fd, events, data)
        self._keys[fd] = key
        return key

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        return self._keys.pop(fd)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:
            raise SimulationIdle("no task is ready and no timer is set")
        if timeout > 0:
            self._clock.now_s += timeout
        return []

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._keys

    def close(self) -> None:
        self._keys.clear()


class VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(VirtualSelector(clock))
        self.clock = clock

    def time(self) -> float:
        return self.clock.now_s


def run(coro: Coroutine[Any, Any, T], clock: VirtualClock) -> T:
    """Run ``coro`` to completion in virtual time, then cancel what is left and close."""
    loop = VirtualLoop(clock)
    try:
        return loop.run_until_complete(coro)
    finally:
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


@contextlib.contextmanager
def wall_clock(clock: VirtualClock) -> Iterator[None]:
    """Point the node's wall-clock readings at ``clock`` for the duration of a run."""
    import node.clock

    patches: list[tuple[object, str, object]] = [
        (node.clock, "utcnow", clock.utcnow),
        (node.clock, "now_ms", clock.now_ms),
    ]
    # httpx's ASGI transport asks, on every request, whether trio runs, by trying to
    # import sniffio (absent here): a few percent of a run. It never runs in the sim.
    import httpx._transports.asgi as asgi

    patches.append((asgi, "is_running_trio", lambda: False))
    saved = [(target, name, getattr(target, name)) for target, name, _ in patches]
    for target, name, value in patches:
        setattr(target, name, value)
    try:
        yield
    finally:
        for target, name, value in saved:
            setattr(target, name, value)
