"""``create_app(node)``: the FastAPI application a node serves on its API port.

Handlers are thin: they translate HTTP to calls on ``node.runtime.Node`` and
``node.queries`` and back, hashing and deciding nothing themselves. One
router per resource. The app owns three things besides the node: the SSE
event hub (fed by a commit listener), the bearer-token store read from
``DATA_DIR/tokens.json`` and the write routes' rate limits (api/ratelimit.py).
Routers are included as configured (api/openapi.py): the read routes' access,
and so the security the OpenAPI document declares, follow ``open_read``.
"""

from __future__ import annotations

from fastapi import FastAPI

from api import console, openapi
from api.deps import read_access
from api.errors import install_error_handlers
from api.metrics import install_metrics
from api.ratelimit import WriteLimits
from api.routers import (
    acts,
    admin,
    blocks,
    bundle,
    cases,
    directory,
    events,
    governance,
    private,
    proofs,
    receipts,
    records,
    sealed,
    search,
    sovereignty,
    stats,
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
    {
        "name": "receipts",
        "description": "Channel anchoring: what e-CODEX, I-24/7 or 24/7 e-mail carried.",
    },
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
        docs_url=None,
        redoc_url=None,
    )
    app.state.node = node
    app.state.tokens = TokenStore(tokens_path(node.config.data_dir))
    app.state.events = EventHub(node.config.limits.sse_subscribers_max)
    app.state.write_limits = WriteLimits.from_limits(node.config.limits)
    node.add_commit_listener(app.state.events.on_commit)
    install_error_handlers(app)
    open_read = node.config.open_read
    first = (records, proofs, blocks, validators, search, events, status, governance, directory)
    routers = [
        m.router for m in (*first, acts, sovereignty, cases, stats, sealed, private, receipts)
    ]
    for router in routers:
        app.include_router(openapi.configured(router, open_read))
    install_metrics(
        app,
        node,
        sse_subscribers=lambda: len(app.state.events),
        dependencies=read_access(open_read),
    )
    for router in (admin.router, bundle.router):
        app.include_router(openapi.configured(router, open_read))
        routers.append(router)
    app.state.routes = openapi.route_table(app, routers)
    openapi.install(app, node.app.chain_id, node.config.limits.max_batch_records)
    console.install(app)
    return app
