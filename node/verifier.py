"""Ed25519 signature checks in worker processes.

Why processes
-------------
A node checks the signature of every record it admits, gossips in or syncs.
libsodium releases the GIL while it verifies, but each verification in a
worker *thread* still needs the GIL for a few microseconds around the call,
and the event loop holds the GIL whenever it runs Python code (parsing,
validating and storing blocks). Measured on the 2-core bench machine, two
verification threads next to a busy event loop managed 577 verifications/s
at CPython's default 5 ms switch interval, and the threads in turn slowed the
loop. A worker process has its own interpreter: it verifies at the full speed
of its core while the node's loop runs untouched.

Theory of operation
-------------------
``ProcessVerifier(n)`` forks ``n`` workers when the node starts, before it has
any thread, so a child never inherits a lock held by some other thread. Each
worker owns one end of a private ``socketpair``; the node's event loop owns
the other end and talks to it directly (``loop.sock_sendall`` /
``loop.sock_recv``). There is no helper thread, no queue and no lock shared
between processes, so:

* the node's loop never competes with pool threads for the GIL;
* a worker may die at any moment (a process-group SIGTERM from systemd,
  ``docker stop`` or the devnet, the OOM killer) without leaving anything
  locked: the node sees end-of-file on that socket, fails the requests in
  flight on it with ``VerifierUnavailable`` and stops using the worker, and
  ``close()`` only has to close sockets and reap children.

A worker asks the kernel to kill it when the node dies (``PR_SET_PDEATHSIG``),
so a node killed with SIGKILL leaves no worker behind, and ignores SIGINT
(Ctrl-C in a terminal reaches the whole process group; the node stops its
workers itself).

Wire format on a worker's socket (private to this module; both ends are the
same program): a request is a 4-byte big-endian length, then for each triple
``public key (32) || message length (4, big-endian) || signature (64) ||
message``; the reply is a 4-byte length, then one byte per triple, 1 when the
signature verifies. One request is in flight per worker at a time; the
exchange runs in a task of its own, so a caller that is cancelled cannot cut
a frame in half. A worker shares no state with the node. When the node runs
without workers (``verify_processes = 0``, an in-process test cluster, or
every worker gone), ``node.runtime`` checks signatures in threads instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import struct
from collections import deque
from collections.abc import Sequence
from multiprocessing.process import BaseProcess

from ledger.errors import ComityError
from ledger.keys import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, verify

log = logging.getLogger("comity.verifier")

PR_SET_PDEATHSIG = 1  # linux/prctl.h
#: Bound on one request frame; the node sends at most a few MiB (a chunk of
#: records of at most ``max_record_bytes`` each), anything larger is a bug.
FRAME_BYTES_MAX = 256 * 1024 * 1024
JOIN_TIMEOUT_S = 2.0

Triple = tuple[bytes, bytes, bytes]  # (public key, message, signature)
_LENGTH = struct.Struct(">I")


class VerifierUnavailable(ComityError):
    """No worker could answer: the verifier is closed or its workers exited.

    Local and recoverable: callers check the signatures in threads instead."""


def verify_triples(items: Sequence[Triple]) -> list[bool]:
    """True for each triple whose Ed25519 signature verifies."""
    return [verify(public_key, message, signature) for public_key, message, signature in items]


def encode_request(items: Sequence[Triple]) -> tuple[bytes, list[int]]:
    """The request frame for the well-formed triples, and their indexes in ``items``."""
    parts: list[bytes] = []
    sent: list[int] = []
    for index, (public_key, message, signature) in enumerate(items):
        if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
            continue
        parts += (public_key, _LENGTH.pack(len(message)), signature, message)
        sent.append(index)
    body = b"".join(parts)
    return _LENGTH.pack(len(body)) + body, sent


def answer_request(body: bytes) -> bytes:
    """Verify every triple of a request body (without its length prefix)."""
    view = memoryview(body)
    out = bytearray()
    offset = 0
    while offset < len(body):
        public_key = bytes(view[offset : offset + PUBLIC_KEY_BYTES])
        (length,) = _LENGTH.unpack_from(body, offset + PUBLIC_KEY_BYTES)
        start = offset + PUBLIC_KEY_BYTES + _LENGTH.size
        end = start + SIGNATURE_BYTES + length
        if end > len(body):
            raise ValueError("truncated verification request")
        signature = bytes(view[start : start + SIGNATURE_BYTES])
        out.append(verify(public_key, bytes(view[start + SIGNATURE_BYTES : end]), signature))
        offset = end
    return bytes(out)


def _recv_exact_blocking(sock: socket.socket, count: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < count:
        chunk = sock.recv(min(count - len(chunks), 1 << 20))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def _worker_main(sock: socket.socket, parent: int, inherited: list[socket.socket]) -> None:
    """A worker's whole life: answer requests until the node closes its end."""
    for other in inherited:  # the node's ends of earlier workers: their EOF is theirs
        other.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the parent check below still holds
        pass
    if os.getppid() != parent:  # the node died before prctl took effect
        os._exit(0)
    while True:
        head = _recv_exact_blocking(sock, _LENGTH.size)
        if head is None:
            return
        (length,) = _LENGTH.unpack(head)
        if length > FRAME_BYTES_MAX:
            return
        body = _recv_exact_blocking(sock, length)
        if body is None:
            return
        reply = answer_request(body)
        sock.sendall(_LENGTH.pack(len(reply)) + reply)


class _Worker:
    def __init__(self, process: BaseProcess, sock: socket.socket) -> None:
        self.process = process
        self.sock = sock
        self.alive = True


class ProcessVerifier:
    """Forked worker processes that check Ed25519 signatures for one event loop."""

    def __init__(self, processes: int) -> None:
        if processes < 1:
            raise ValueError("ProcessVerifier needs at least one process")
        context = multiprocessing.get_context("fork")
        self.processes = processes
        self._workers: list[_Worker] = []
        self._idle: deque[_Worker] = deque()
        self._waiters: deque[asyncio.Future[_Worker]] = deque()
        self._closed = False
        for _ in range(processes):
            ours, theirs = socket.socketpair()
            inherited = [w.sock for w in self._workers] + [ours]
            process = context.Process(
                target=_worker_main,
                args=(theirs, os.getpid(), inherited),
                name="comity-verify",
                daemon=True,
            )
            process.start()
            theirs.close()
            ours.setblocking(False)
            worker = _Worker(process, ours)
            self._workers.append(worker)
            self._idle.append(worker)

    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    @property
    def available(self) -> bool:
        """False once closed or once every worker has exited."""
        return not self._closed and any(w.alive for w in self._workers)

    async def verify(self, items: Sequence[Triple]) -> list[bool]:
        """Check ``items`` in a worker; the event loop is free meanwhile.

        Raises ``VerifierUnavailable`` when no worker can answer; the caller
        then checks the signatures some other way.
        """
        results = [False] * len(items)
        frame, sent = encode_request(items)
        if not sent:
            if not self.available:
                raise VerifierUnavailable("the signature verifier is closed")
            return results
        worker = await self._acquire()
        # The exchange is a task of its own: cancelling the caller must not leave
        # half a frame on the socket. The task gives the worker back when done.
        exchange = asyncio.ensure_future(self._exchange(worker, frame))
        reply = await asyncio.shield(exchange)
        if len(reply) != len(sent):
            raise VerifierUnavailable(
                f"a verifier worker answered {len(reply)} of {len(sent)} signatures"
            )
        for index, ok in zip(sent, reply, strict=True):
            results[index] = ok == 1
        return results

    async def _acquire(self) -> _Worker:
        while True:
            if not self.available:
                raise VerifierUnavailable("the signature verifier is closed or its workers exited")
            while self._idle:
                worker = self._idle.popleft()
                if worker.alive:
                    return worker
            waiter: asyncio.Future[_Worker] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                worker = await waiter
            except VerifierUnavailable:
                continue
            except asyncio.CancelledError:
                # Cancelled after a worker was handed over: give it back.
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    self._release(waiter.result())
                raise
            return worker

    def _release(self, worker: _Worker) -> None:
        if not worker.alive:
            if not self.available:  # nobody left to wake the waiters: fail them
                while self._waiters:
                    waiter = self._waiters.popleft()
                    if not waiter.done():
                        waiter.set_exception(VerifierUnavailable("verifier workers exited"))
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(worker)
                return
        self._idle.append(worker)

    async def _exchange(self, worker: _Worker, frame: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        try:
            await loop.sock_sendall(worker.sock, frame)
            (length,) = _LENGTH.unpack(await _recv_exact(loop, worker.sock, _LENGTH.size))
            return await _recv_exact(loop, worker.sock, length)
        except (OSError, EOFError) as exc:
            if worker.alive and not self._closed:
                log.error(
                    "signature worker %s exited (%s); %d of %d left",
                    worker.process.pid,
                    exc or type(exc).__name__,
                    sum(w.alive for w in self._workers) - 1,
                    len(self._workers),
                )
            worker.alive = False
            raise VerifierUnavailable(f"signature worker {worker.process.pid} exited") from exc
        finally:
            self._release(worker)

    def close(self) -> None:
        """Stop the workers: closing a socket ends its worker; stragglers get SIGKILL."""
        self._closed = True
        for worker in self._workers:
            worker.alive = False
            with contextlib.suppress(OSError):
                worker.sock.close()
        for worker in self._workers:
            worker.process.join(JOIN_TIMEOUT_S)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(JOIN_TIMEOUT_S)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(VerifierUnavailable("the signature verifier is closed"))


async def _recv_exact(loop: asyncio.AbstractEventLoop, sock: socket.socket, count: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < count:
        chunk = await loop.sock_recv(sock, min(count - len(chunks), 1 << 20))
        if not chunk:
            raise EOFError("the worker closed its socket")
        chunks += chunk
    return bytes(chunks)
