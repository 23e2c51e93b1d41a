"""The simulated network: one ``httpx`` transport per (sender, receiver) link.

Theory of operation
-------------------
Each node's ``PeerSet`` is given a ``Link`` for every peer instead of a
socket. A request on a link is, in order:

1. tapped (``Net.tap``: the invariant checker sees every byte an honest node
   sends) and, for a Byzantine sender, rewritten by its behaviour (which may
   also drop it, or send it twice);
2. given a fate by ``Net.fate``, from the run's seeded generator: before GST
   it may be lost (loss rate, or a partition between the two), duplicated,
   and delayed by a random delay, or by the adversarial scheduler's choice;
   after GST it arrives once, within ``delta_ms``;
3. after that virtual delay, handed to the receiver's real P2P ASGI app
   (``api.p2p.create_p2p_app``). A node that is down raises
   ``httpx.ConnectError``, as a refused TCP connection does;
4. its reply, for a Byzantine receiver, rewritten by its behaviour.

The whole exchange runs under the request's own read timeout (the httpx
client's, which an ASGI transport would otherwise ignore), so a withheld
reply costs the sender exactly what it would over TCP.

The adversarial scheduler (``adversarial``): before GST, every height-sized
window picks half of the honest nodes; proposals reach that half only after
the propose timeout, and votes between the halves are late half of the
time. The honest nodes then disagree on what they saw in time, which is
the schedule that makes rounds fail, rather than independent random delays.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from tests.wholesim.vloop import VirtualClock


@dataclass(frozen=True)
class Partition:
    start_s: float
    end_s: float
    groups: tuple[frozenset[str], ...]

    def cuts(self, now_s: float, a: str, b: str) -> bool:
        return self.start_s <= now_s < self.end_s and not any(
            a in g and b in g for g in self.groups
        )


@dataclass(frozen=True)
class NetPlan:
    gst_s: float = 0.0
    loss: float = 0.0
    duplicate: float = 0.0
    delay_ms: tuple[int, int] = (1, 20)
    delta_ms: int = 50  # the bound on a delay after GST
    partitions: tuple[Partition, ...] = ()
    adversarial: bool = False
    split_late_ms: int = 700  # past the propose timeout of round 0 and 1


class Behaviour(Protocol):
    """What a Byzantine node does to its own requests and replies (tests/wholesim/byzantine.py)."""

    def outgoing(self, dst: str, request: httpx.Request) -> list[httpx.Request]: ...

    async def reply(
        self, src: str, request: httpx.Request, response: httpx.Response
    ) -> httpx.Response: ...


@dataclass
class Host:
    """Where a state's node is reachable: its P2P app (None: down) and its behaviour."""

    state: str
    app: httpx.AsyncBaseTransport | None = None
    behaviour: Behaviour | None = None
    honest: bool = True
    #: Twins: a second node with the same key; ``twin_for`` says which senders reach it.
    twin: Host | None = None
    twin_for: frozenset[str] = frozenset()
    incarnation: int = 0  # bumped at each (re)start: each process has its own replay cache


@dataclass
class Net:
    plan: NetPlan
    clock: VirtualClock
    rng: random.Random
    hosts: dict[str, Host] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)
    tap: Callable[[str, bytes], None] = lambda state, body: None
    on_server_error: Callable[[str, str, int], None] = lambda state, path, code: None
    #: Every request an honest node answered: (state, incarnation, request, status).
    on_answered: Callable[[str, int, httpx.Request, int], None] = lambda s, i, r, c: None
    #: Every request as it reaches an honest node, before it handles it: (state,
    #: incarnation, request).
    on_arrived: Callable[[str, int, httpx.Request], None] = lambda s, i, r: None
    _split: tuple[int, frozenset[str]] = (-1, frozenset())
    _background: set[asyncio.Task[None]] = field(default_factory=set)

    def count(self, key: str, by: int = 1) -> None:
        self.stats[key] = self.stats.get(key, 0) + by

    def link(self, src: Host, dst: str) -> Link:
        return Link(self, src, dst)

    def target(self, src: str, dst: str) -> Host:
        host = self.hosts[dst]
        return host.twin if host.twin is not None and src in host.twin_for else host

    # --- fates ----------------------------------------------------------------------------

    def fate(self, src: str, dst: str, body: bytes) -> list[float]:
        """Delays (s) of the copies that arrive: [] lost, two items duplicated."""
        now, plan = self.clock.now_s, self.plan
        if now >= plan.gst_s:
            return [self.rng.uniform(0.001, plan.delta_ms / 1000)]
        if any(p.cuts(now, src, dst) for p in plan.partitions):
            self.count("drop_partition")
            return []
        if self.rng.random() < plan.loss:
            self.count("drop_loss")
            return []
        delay = self.rng.uniform(*plan.delay_ms) / 1000
        if plan.adversarial:
            delay = self._adversarial(src, dst, body, delay)
        if self.rng.random() < plan.duplicate:
            self.count("duplicate")
            return [delay, delay + self.rng.uniform(0.0, 0.2)]
        return [delay]

    def _adversarial(self, src: str, dst: str, body: bytes, delay: float) -> float:
        window = int(self.clock.now_s)  # a new split every virtual second
        if self._split[0] != window:
            honest = sorted(s for s, h in self.hosts.items() if h.honest)
            self.rng.shuffle(honest)
            self._split = (window, frozenset(honest[: len(honest) // 2]))
        late = self._split[1]
        if b'"proposal"' in body and dst in late:
            self.count("split_late_proposal")
            return self.plan.split_late_ms / 1000 + delay
        if (src in late) != (dst in late) and b'"vote"' in body and self.rng.random() < 0.5:
            self.count("split_late_vote")
            return self.plan.split_late_ms / 2000 + delay
        return delay

    # --- delivery -------------------------------------------------------------------------

    async def deliver(
        self, src: str, dst: str, request: httpx.Request, delay_s: float
    ) -> httpx.Response:
        await asyncio.sleep(delay_s)
        host = self.target(src, dst)
        if host.app is None:
            raise httpx.ConnectError(f"{dst} is down", request=request)
        if host.honest:
            self.on_arrived(host.state, host.incarnation, request)
        response = await host.app.handle_async_request(request)
        self.count("delivered")
        if response.status_code >= 500:
            self.on_server_error(dst, request.url.path, response.status_code)
        if host.honest:
            self.on_answered(host.state, host.incarnation, request, response.status_code)
        if host.behaviour is not None:
            response = await host.behaviour.reply(src, request, response)
        return response

    def background(self, delivery: Coroutine[Any, Any, object]) -> None:
        """A copy whose reply nobody reads (a duplicate, a Byzantine node's own request)."""

        async def run() -> None:
            with contextlib.suppress(httpx.HTTPError, OSError):
                await delivery

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)


class Link(httpx.AsyncBaseTransport):
    """The transport a node uses to reach one peer (see the module docstring)."""

    def __init__(self, net: Net, src: Host, dst: str) -> None:
        self.net, self.host, self.src, self.dst = net, src, src.state, dst

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {}).get("read") or 10.0
        try:
            return await asyncio.wait_for(self._exchange(request), timeout)
        except TimeoutError as exc:
            raise httpx.ReadTimeout(
                f"{self.dst} did not answer in {timeout} s", request=request
            ) from exc

    async def _exchange(self, request: httpx.Request) -> httpx.Response:
        net = self.net
        sender = self.host
        requests = [request]
        if sender.behaviour is not None:
            requests = sender.behaviour.outgoing(self.dst, request)
        elif sender.honest:
            net.tap(self.src, request.content)
        if not requests:
            net.count("withheld")
            await asyncio.sleep(net.plan.delta_ms / 1000)
            raise httpx.ConnectError("withheld by its sender", request=request)
        for extra in requests[1:]:
            for delay in net.fate(self.src, self.dst, extra.content):
                net.background(net.deliver(self.src, self.dst, extra, delay))
        delays = net.fate(self.src, self.dst, requests[0].content)
        if not delays:
            await asyncio.sleep(net.rng.uniform(0.001, net.plan.delta_ms / 1000))
            raise httpx.ConnectError("lost", request=request)
        for delay in delays[1:]:
            net.background(net.deliver(self.src, self.dst, requests[0], delay))
        return await net.deliver(self.src, self.dst, requests[0], delays[0])
