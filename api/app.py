"""``create_app(node)``: the FastAPI application a node serves on its API port.

Handlers are thin: they translate HTTP to calls on ``node.runtime.Node`` and
back, hashing and deciding nothing themselves. One router per resource.
"""

from __future__ import annotations

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.routers import records, status
from node.runtime import Node


def create_app(node: Node) -> FastAPI:
    app = FastAPI(title="Comity", version="1",
                  description="Permissioned cross-border evidence ledger: append signed "
                              "records of investigative acts, query and verify the chain.")
    app.state.node = node
    install_error_handlers(app)
    app.include_router(records.router)
    app.include_router(status.router)
    return app
