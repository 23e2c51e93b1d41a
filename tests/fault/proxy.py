"""A userspace link emulator: asyncio TCP relays on 127.0.0.1 that delay, lose and cut.

The kernel here has no ``netem`` qdisc, so every directed P2P link of a test
consortium (node A's requests to node B) goes through its own ``Relay``:
node A's config lists B's ``p2p_url`` as the relay's port (config ``peers``
override genesis). A relay forwards bytes in order and adds, per chunk:

* ``delay_ms`` plus uniform ``jitter_ms`` (chunks never overtake each other);
* ``loss``: the probability a chunk was "lost" and retransmitted, which over
  TCP shows up as one retransmission timeout (``RTO_MS``) of extra delay;
* ``cut``: every open connection is closed at once and new ones are closed
  on accept, which is a partition as the nodes' HTTP clients see it.

Each direction of a connection has a bounded queue (backpressure, never
unbounded memory). All relays of a ``Links`` run on one event loop thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import Iterable

RTO_MS = 200
CHUNK_BYTES_MAX = 64 * 1024
QUEUE_CHUNKS_MAX = 64


class Relay:
    def __init__(self, name: str, target_port: int, rng: random.Random) -> None:
        self.name = name
        self.target_port = target_port
        self.rng = rng
        self.delay_ms = 0.0
        self.jitter_ms = 0.0
        self.loss = 0.0
        self.cut = False
        self.port = 0
        self.connections = 0
        self.open_now = 0
        self.open_max = 0  # most connections open at once: the per-peer pool bound
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self.sever()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def sever(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def _extra_s(self) -> float:
        extra = self.delay_ms + self.rng.uniform(0, self.jitter_ms)
        if self.loss and self.rng.random() < self.loss:
            extra += RTO_MS
        return extra / 1000

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self.open_now += 1
        self.open_max = max(self.open_max, self.open_now)
        self._writers |= {writer, up_writer}
        counted = True

        def closed_by_client() -> None:
            # The pool bound is the client's: a connection it has closed no longer counts,
            # even while its delayed bytes are still being pumped to the target (a paused or
            # restarted node's peers open new ones meanwhile, within their own bound).
            nonlocal counted
            if counted:
                counted = False
                self.open_now -= 1

        async def upstream() -> None:
            try:
                await self._pipe(reader, up_writer)
            finally:
                closed_by_client()

        try:
            with contextlib.suppress(OSError):  # a reset or cut link ends the relay quietly
                await asyncio.gather(upstream(), self._pipe(up_reader, writer))
        finally:
            closed_by_client()
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        pump = asyncio.create_task(self._pump(queue, writer))
        last_at = 0.0
        try:
            while not pump.done():
                try:
                    data = await reader.read(CHUNK_BYTES_MAX)
                except OSError:
                    data = b""
                last_at = max(last_at, loop.time() + self._extra_s())
                queue.put_nowait((last_at, data))
                while queue.qsize() >= QUEUE_CHUNKS_MAX and not pump.done():
                    await asyncio.sleep(0.005)  # backpressure: stop reading until it drains
                if not data or self.cut:
                    break
            await pump
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await pump

    async def _pump(
        self, queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter
    ) -> None:
        loop = asyncio.get_running_loop()
        while True:
            at, data = await queue.get()
            if self.cut:
                writer.transport.abort()
                return
            wait_s = at - loop.time()
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            if not data:
                with contextlib.suppress(OSError):
                    if writer.can_write_eof():
                        writer.write_eof()
                return
            writer.write(data)
            await writer.drain()


class Links:
    """One relay per directed link (src, dst), served by a private event-loop thread."""

    def __init__(self, targets: dict[str, int], seed: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="links", daemon=True)
        self.thread.start()
        rng = random.Random(seed)
        self.relays: dict[tuple[str, str], Relay] = {}
        for src in targets:
            for dst, port in targets.items():
                if src != dst:
                    self.relays[(src, dst)] = Relay(
                        f"{src}->{dst}", port, random.Random(rng.getrandbits(64))
                    )
        self._call(self._start_all())

    def _call(self, coro: object) -> None:
        asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)  # type: ignore[arg-type]

    async def _start_all(self) -> None:
        for relay in self.relays.values():
            await relay.start()

    def url(self, src: str, dst: str) -> str:
        return f"http://127.0.0.1:{self.relays[(src, dst)].port}"

    def shape(self, *, delay_ms: float = 0, jitter_ms: float = 0, loss: float = 0) -> None:
        for relay in self.relays.values():
            relay.delay_ms, relay.jitter_ms, relay.loss = delay_ms, jitter_ms, loss

    def cut(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Cut the links in ``pairs`` (both directions); everything else is healed."""
        wanted = set()
        for a, b in pairs:
            wanted |= {(a, b), (b, a)}

        def apply() -> None:
            for key, relay in self.relays.items():
                relay.cut = key in wanted
                if relay.cut:
                    relay.sever()

        self.loop.call_soon_threadsafe(apply)

    def heal(self) -> None:
        self.cut(())
        self.shape()

    def close(self) -> None:
        async def close_all() -> None:
            for relay in self.relays.values():
                await relay.close()

        self._call(close_all())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
