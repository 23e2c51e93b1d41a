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

The workers are forked by ``ProcessVerifier()`` when the node starts, before
it has any thread, so a child never inherits a lock held by some other
thread. Each worker asks the kernel to kill it when the node dies
(``PR_SET_PDEATHSIG``), so a node killed with SIGKILL leaves no worker behind,
and ignores SIGINT (Ctrl-C in a terminal reaches the whole process group; the
node stops its workers itself).

A worker receives ``(public key, message, signature)`` triples and returns one
bool each; it shares no state with the node. When the node runs without
workers (``verify_processes = 0``, or an in-process test cluster),
``node.runtime`` checks signatures in threads instead.
"""

from __future__ import annotations

import asyncio
import ctypes
import multiprocessing
import os
import signal
from collections.abc import Sequence
from multiprocessing.pool import Pool

from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

PR_SET_PDEATHSIG = 1   # linux/prctl.h

Triple = tuple[bytes, bytes, bytes]   # (public key, message, signature)


def verify_triples(items: Sequence[Triple]) -> list[bool]:
    """True for each triple whose Ed25519 signature verifies (runs in a worker)."""
    out = []
    for public_key, message, signature in items:
        if len(public_key) != 32 or len(signature) != 64:
            out.append(False)
            continue
        try:
            crypto_sign_open(signature + message, public_key)
        except (BadSignatureError, ValueError, TypeError):
            out.append(False)
        else:
            out.append(True)
    return out


def _worker_init(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the parent check below still holds
        pass
    if os.getppid() != parent:  # the node died before prctl took effect
        os._exit(0)


class ProcessVerifier:
    """A pool of forked worker processes that check Ed25519 signatures."""

    def __init__(self, processes: int) -> None:
        if processes < 1:
            raise ValueError("ProcessVerifier needs at least one process")
        context = multiprocessing.get_context("fork")
        self.processes = processes
        self._pool: Pool | None = context.Pool(processes, initializer=_worker_init,
                                               initargs=(os.getpid(),))

    def pids(self) -> list[int]:
        pool = self._pool
        return [p.pid for p in getattr(pool, "_pool", []) if p.pid is not None]

    async def verify(self, items: Sequence[Triple]) -> list[bool]:
        """Check ``items`` in a worker; the event loop is free meanwhile."""
        if self._pool is None:
            raise RuntimeError("the signature verifier is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[bool]] = loop.create_future()

        def done(result: list[bool]) -> None:
            loop.call_soon_threadsafe(_settle, future, result, None)

        def failed(exc: BaseException) -> None:
            loop.call_soon_threadsafe(_settle, future, None, exc)

        self._pool.apply_async(verify_triples, (list(items),), callback=done,
                               error_callback=failed)
        return await future

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None


def _settle(future: asyncio.Future[list[bool]], result: list[bool] | None,
            exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        assert result is not None
        future.set_result(result)
