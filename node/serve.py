"""Run one node in the foreground: the API and P2P apps behind uvicorn.

Both listeners share the process's event loop with the consensus driver.
SIGTERM and SIGINT stop accepting requests, stop the node's tasks and close
the store cleanly; a kill -9 at any moment is also safe, because every block
is one fsynced write batch and the consensus WAL is fsynced before sending.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Generator
from typing import Any

import uvicorn

from api.app import create_app
from node.config import NodeConfig
from node.p2p import create_p2p_app
from node.runtime import Node

log = logging.getLogger("comity.serve")


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to ``serve``."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _uvicorn_config(app: Any, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False,
                          lifespan="off", loop="none", timeout_graceful_shutdown=3,
                          limit_concurrency=2048, backlog=2048)


async def serve(config: NodeConfig) -> None:
    node = Node(config)
    await node.start()
    servers = [_Server(_uvicorn_config(create_app(node), config.api.host, config.api.port)),
               _Server(_uvicorn_config(create_p2p_app(node), config.p2p.host, config.p2p.port))]
    loop = asyncio.get_running_loop()

    def stop() -> None:
        log.info("shutting down")
        for server in servers:
            server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    log.info("API on http://%s:%d, P2P on http://%s:%d", config.api.host, config.api.port,
             config.p2p.host, config.p2p.port)
    try:
        await asyncio.gather(*(server.serve() for server in servers))
    finally:
        await node.stop()
        log.info("stopped at height %d", node.app.height)


def run(config: NodeConfig) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        asyncio.run(serve(config))
        return
    uvloop.run(serve(config))
