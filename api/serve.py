"""Run one node in the foreground: the API and P2P apps behind uvicorn.

Both listeners share the process's event loop with the consensus driver.
SIGTERM and SIGINT stop accepting requests, stop the node's tasks and close
the store cleanly; a kill -9 at any moment is also safe, because every block
is one fsynced write batch and the consensus WAL is fsynced before sending.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections import Counter
from collections.abc import Generator
from typing import Any

import uvicorn

from api.app import create_app
from api.p2p import create_p2p_app
from ledger.keys import SigningKey
from node.config import NodeConfig
from node.runtime import Node
from node.tls import is_loopback, server_cert_reqs
from node.verifier import ProcessVerifier

#: Behaviours and signer of a Byzantine test node (``comity run --byzantine``).
ByzantineOptions = tuple[frozenset[str], SigningKey | None]

log = logging.getLogger("comity.serve")


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to ``serve``."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


#: How long the P2P listener keeps an idle peer connection. Longer than the
#: peers' own idle expiry (node.peers.PEER_KEEPALIVE_S), so the client side always
#: closes first: a server closing a pooled connection just as the peer reuses it
#: made block sync fail with ReadError.
P2P_KEEPALIVE_S = 75

#: Requests one client address may have in flight on the P2P listener. A peer's
#: link opens at most 4 connections (node.peers.PeerSet.add), so this leaves room
#: for a few peers behind one address; each in-flight request may buffer up to
#: ``max_p2p_batch_bytes``, so it also bounds what one address can make us hold.
P2P_IN_FLIGHT_PER_CLIENT_MAX = 16

_BUSY = b'{"error":{"code":"overloaded","message":"too many requests in flight from this address"}}'


class PerClientLimit:
    """ASGI wrapper: at most ``max_in_flight`` concurrent requests per client address,
    the rest answered 503 at once (unsigned, so a peer counts it as a transport
    error and backs off). Loopback clients are local processes and are not capped."""

    def __init__(self, app: Any, max_in_flight: int) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.in_flight: Counter[str] = Counter()  # only addresses with a request open

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        client = scope.get("client")
        host = str(client[0]) if scope["type"] == "http" and client else ""
        if not host or is_loopback(host):
            await self.app(scope, receive, send)
            return
        if self.in_flight[host] >= self.max_in_flight:
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1")],
                }
            )
            await send({"type": "http.response.body", "body": _BUSY})
            return
        self.in_flight[host] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight[host] -= 1
            if self.in_flight[host] <= 0:
                del self.in_flight[host]


def _uvicorn_config(
    app: Any, host: str, port: int, tls: dict[str, Any] | None = None, keepalive_s: int = 5
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
        loop="none",
        timeout_graceful_shutdown=3,
        timeout_keep_alive=keepalive_s,
        limit_concurrency=2048,
        backlog=2048,
        **(tls or {}),
    )


def _tls_options(config: NodeConfig, *, p2p: bool) -> dict[str, Any] | None:
    """uvicorn's ssl_* options: P2P demands a CA-signed client cert (mutual TLS); the API
    serves HTTPS to ordinary clients, who authenticate with bearer tokens instead."""
    tls = config.tls
    if tls is None or not (p2p or tls.api):
        return None
    require = p2p and tls.require_client_cert
    return {
        "ssl_certfile": str(tls.cert_path),
        "ssl_keyfile": str(tls.key_path),
        "ssl_ca_certs": str(tls.ca_path),
        "ssl_cert_reqs": server_cert_reqs(require),
    }


async def serve(
    config: NodeConfig,
    verifier: ProcessVerifier | None = None,
    byzantine: ByzantineOptions | None = None,
) -> None:
    node = Node.open(config, verifier=verifier)
    await node.start()
    attacker = None
    if byzantine is not None:  # fault campaigns only (node/byzantine.py)
        from node.byzantine import Byzantine

        attacker = Byzantine(node, *byzantine)
        attacker.install()
    servers = [
        _Server(
            _uvicorn_config(
                create_app(node), config.api.host, config.api.port, _tls_options(config, p2p=False)
            )
        ),
        _Server(
            _uvicorn_config(
                PerClientLimit(create_p2p_app(node.inbound), P2P_IN_FLIGHT_PER_CLIENT_MAX),
                config.p2p.host,
                config.p2p.port,
                _tls_options(config, p2p=True),
                keepalive_s=P2P_KEEPALIVE_S,
            )
        ),
    ]
    loop = asyncio.get_running_loop()

    def stop() -> None:
        log.info("shutting down")
        for server in servers:
            server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    api_scheme = "https" if _tls_options(config, p2p=False) else "http"
    p2p_scheme = "https" if config.tls else "http"
    log.info(
        "API on %s://%s:%d, P2P on %s://%s:%d",
        api_scheme,
        config.api.host,
        config.api.port,
        p2p_scheme,
        config.p2p.host,
        config.p2p.port,
    )
    try:
        await asyncio.gather(*(server.serve() for server in servers))
    finally:
        if attacker is not None:
            await attacker.stop()
        await node.stop()
        log.info("stopped at height %d", node.app.height)


#: The interpreter's thread switch interval in a running node (CPython's default is
#: 5 ms). Signature checks run in worker threads that need the GIL for a moment
#: between two verifications; while the event loop runs Python code (a block
#: being applied), each such moment could wait the whole interval: two worker
#: threads next to a busy loop managed 577 verifications/s at 5 ms, 4,900 at
#: 0.5 ms and 6,300 at 0.2 ms (one 2-core run of the same script).
SWITCH_INTERVAL_S = 0.0002

#: Cyclic-GC thresholds of a running node (CPython's default: 700, 10, 10).
#: A node's heap holds hundreds of thousands of long-lived containers (pending
#: and proposed records, caches), and with the defaults every full collection
#: walked all of them: 13-14 full collections of ~170 ms each per node in a
#: 45 s n4-batch run, 13.1-13.8 s of GC in the four nodes together. With
#: these, 2.0-2.5 s and no full collection; the same three A/B runs committed
#: 1,173-1,522 rec/s against 1,177-1,366 (docs/PERFORMANCE.md). Garbage
#: cycles are still collected, later and in fewer passes.
GC_THRESHOLDS = (50_000, 20, 100)


def tune_runtime() -> None:
    """Interpreter settings for a node process (not for tests that embed nodes)."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    gc.set_threshold(*GC_THRESHOLDS)


def run(config: NodeConfig, byzantine: ByzantineOptions | None = None) -> None:
    tune_runtime()
    # Forked now, while this process has a single thread (see node/verifier.py).
    processes = config.limits.verify_processes
    verifier = ProcessVerifier(processes) if processes > 0 else None
    try:
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
            asyncio.run(serve(config, verifier, byzantine))
            return
        uvloop.run(serve(config, verifier, byzantine))
    finally:
        if verifier is not None:
            verifier.close()
