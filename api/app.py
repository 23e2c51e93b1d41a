"""``create_app(node)``: the FastAPI application a node serves on its API port.

Handlers are thin: they translate HTTP to calls on ``node.runtime.Node`` and
``node.queries`` and back, hashing and deciding nothing themselves. One
router per resource. The app owns three things besides the node: the SSE
event hub (fed by a commit listener), the bearer-token store read from
``DATA_DIR/tokens.json`` and the write routes' rate limits (api/ratelimit.py).
"""

from __future__ import annotations

from fastapi import FastAPI

from api.deps import ReadAccess
from api.errors import install_error_handlers
from api.metrics import install_metrics
from api.ratelimit import WriteLimits
from api.routers import (
    acts,
    admin,
    blocks,
    bundle,
    cases,
    events,
    governance,
    proofs,
    records,
    sealed,
    search,
    sovereignty,
    status,
    validators,
)
from node.events import EventHub
from node.runtime import Node
from node.tokens import TokenStore, tokens_path

TAGS = [
    {
        "name": "records",
        "description": "Submit signed envelopes (authorised by their "
        "signature) and read them back.",
    },
    {"name": "proofs", "description": "RFC 6962 proofs over the ledger log."},
    {"name": "blocks", "description": "Blocks with their commit certificates."},
    {"name": "validators", "description": "Validator sets, to check certificates."},
    {"name": "search", "description": "Indexed search over committed records."},
    {"name": "events", "description": "Server-Sent Events of commits."},
    {"name": "status", "description": "Status, liveness, readiness, peers."},
]


def create_app(node: Node) -> FastAPI:
    app = FastAPI(
        title="Comity",
        version="1",
        openapi_tags=TAGS,
        description="Permissioned cross-border evidence ledger: append signed "
        "records of investigative acts, query and verify the chain. "
        'Errors are `{"error": {"code", "message", "field"?}}`; '
        "see docs/API.md.",
    )
    app.state.node = node
    app.state.tokens = TokenStore(tokens_path(node.config.data_dir))
    app.state.events = EventHub(node.config.limits.sse_subscribers_max)
    app.state.write_limits = WriteLimits.from_limits(node.config.limits)
    node.add_commit_listener(app.state.events.on_commit)
    install_error_handlers(app)
    for module in (records, proofs, blocks, validators, search, events, status, governance):
        app.include_router(module.router)
    app.include_router(acts.router)
    app.include_router(sovereignty.router)
    app.include_router(cases.router)
    app.include_router(sealed.router)
    install_metrics(
        app, node, sse_subscribers=lambda: len(app.state.events), dependencies=[ReadAccess]
    )
    app.include_router(admin.router)
    app.include_router(bundle.router)
    return app
