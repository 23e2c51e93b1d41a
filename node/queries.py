"""Read-side queries the HTTP API serves: blocks, proofs, validators, search, readiness.

Theory of operation
-------------------
Everything here reads committed data from the ``Store`` (and the chain state
for validator sets); nothing writes. Each function returns plain JSON-able
dicts in the shapes documented in docs/API.md, or raises a ``ClientError``
with a stable code, so the routers stay one-liners.

Time-bounded search maps a commit-time range to a range of leaf indexes:
block times strictly increase with height (Application._check_time), so a
binary search over headers finds the first and last block inside the range,
and the ``ledger_size`` of their neighbours bounds the leaves they hold.
Index entries are keyed by leaf index, so a page is one ordered range scan
that stops at the upper leaf bound. Cursors are the last leaf index returned:
stable because the log is append-only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from ledger.block import BlockHeader
from ledger.canonical import parse_json
from ledger.errors import ClientError, NotFound, RecordInvalid, StoreError
from ledger.hashing import parse_hex
from ledger.quorum import quorum
from ledger.records import Envelope, parse_time
from ledger.store import SEARCH_LIMIT_MAX, Store
from node.application import Application
from node.peers import PeerSet
from node.state import ChainState

#: Query parameter of GET /v1/search -> store index name.
SEARCH_KEYS = {
    "case_ref": "case_ref",
    "evidence_sha256": "evidence",
    "actor_state": "actor_state",
    "territorial_state": "territorial_state",
    "type": "type",
    "signer": "signer",
}
BLOCKS_PAGE_MAX = 100


# --- blocks ------------------------------------------------------------------------------


def block_view(store: Store, height: int, *, envelopes: bool = False) -> dict[str, Any]:
    """A block; with ``envelopes`` also its envelopes, so an auditor can re-check it all."""
    header, certificate = store.get_header(height), store.get_certificate(height)
    if header is None or certificate is None:
        raise NotFound(
            f"no block at height {height} (chain height is {store.height})",
            field="height",
            code="block_not_found",
        )
    ids = store.get_block_record_ids(height)
    view = {
        "hash": header.hash(),
        "header": header.to_json(),
        "record_ids": ids,
        "commit": certificate.to_json(),
    }
    if envelopes:
        view["envelopes"] = [_stored_envelope(store, rid) for rid in ids]
    return view


def _stored_envelope(store: Store, record_id: str) -> Any:
    data = store.get_envelope_bytes(record_id)
    if data is None:
        raise StoreError(f"record {record_id} is indexed but its envelope is missing")
    return parse_json(data)


def latest_block(store: Store, *, envelopes: bool = False) -> dict[str, Any]:
    return block_view(store, store.height, envelopes=envelopes)


def blocks_page(
    store: Store, from_height: int, limit: int, *, envelopes: bool = False
) -> dict[str, Any]:
    """Up to ``limit`` blocks from ``from_height`` on; ``next_from`` pages forward."""
    limit = max(1, min(limit, BLOCKS_PAGE_MAX))
    last = min(store.height, from_height + limit - 1)
    blocks = [
        block_view(store, h, envelopes=envelopes) for h in range(max(from_height, 1), last + 1)
    ]
    return {"blocks": blocks, "next_from": last + 1 if last < store.height else None}


# --- proofs ------------------------------------------------------------------------------


def record_proof(store: Store, record_id: str, tree_size: int | None) -> dict[str, Any]:
    """RFC 6962 inclusion proof of a committed record.

    By default against the checkpoint of the block that committed it, so
    ``root``/``tree_size`` equal that header's ``ledger_root``/``ledger_size``.
    """
    located = store.locate(record_id)
    if located is None:
        raise NotFound(
            f"no committed record with id {record_id}", field="id", code="record_not_found"
        )
    height, leaf_index = located
    header = _header(store, height)
    if tree_size is None:
        size, root = header.ledger_size, header.ledger_root
    else:
        if not leaf_index < tree_size <= store.ledger_size:
            raise ClientError(
                f"tree_size must be in [{leaf_index + 1}, {store.ledger_size}] for this record",
                field="tree_size",
                code="bad_tree_size",
            )
        size, root = tree_size, store.ledger_root(tree_size).hex()
    path = store.inclusion_proof(leaf_index, size)
    return {
        "id": record_id,
        "leaf_index": leaf_index,
        "tree_size": size,
        "audit_path": [h.hex() for h in path],
        "root": root,
        "height": height,
        "checkpoint_height": checkpoint_height(store, size),
    }


def consistency(store: Store, first: int, second: int) -> dict[str, Any]:
    if not 0 < first <= second:
        raise ClientError(
            f"consistency needs 0 < first <= second, got {first} and {second}",
            field="first",
            code="bad_range",
        )
    proof = store.consistency_proof(first, second)
    return {
        "first": first,
        "second": second,
        "first_root": store.ledger_root(first).hex(),
        "second_root": store.ledger_root(second).hex(),
        "proof": [h.hex() for h in proof],
    }


def checkpoint_height(store: Store, tree_size: int) -> int | None:
    """The first block whose header has ``ledger_size == tree_size``, if any."""
    height = _first_height(store, lambda h: h.ledger_size >= tree_size)
    header = store.get_header(height)
    return height if header is not None and header.ledger_size == tree_size else None


# --- validators --------------------------------------------------------------------------


def validators_view(app: Application, height: int | None) -> dict[str, Any]:
    """The validator set of ``height`` (default: the next height, the set voting now)."""
    top = app.height + 1
    height = top if height is None else height
    if not 1 <= height <= top:
        raise NotFound(
            f"validator set of height {height} is not known; heights 1..{top}",
            field="height",
            code="height_not_found",
        )
    return {
        "height": height,
        "validators": [
            {"state": v.state, "pubkey": v.pubkey} for v in app.state.validators(height)
        ],
    }


# --- search ------------------------------------------------------------------------------


def search(
    app: Application,
    filters: dict[str, str],
    *,
    from_time: str | None = None,
    to_time: str | None = None,
    cursor: str | None = None,
    limit: int = 100,
    load: Callable[[str], Envelope] | None = None,
    sealed: bool = False,
) -> dict[str, Any]:
    """One page of committed records matching exactly one key filter, in commit order.

    ``sealed`` (a body reader's search) also matches what private bodies hold, and
    ``load`` then shows their types; otherwise a private act is found only by its
    header and shows as ``private_act``."""
    if len(filters) != 1:
        raise ClientError(
            f"give exactly one of {', '.join(SEARCH_KEYS)}", field="query", code="bad_query"
        )
    ((key, value),) = filters.items()
    if key not in SEARCH_KEYS:
        raise ClientError(f"unknown search key {key!r}", field=key, code="bad_query")
    if not 1 <= limit <= SEARCH_LIMIT_MAX:
        raise ClientError(
            f"limit must be in 1..{SEARCH_LIMIT_MAX}", field="limit", code="bad_query"
        )
    store = app.store
    low, high = leaf_range(store, from_time, to_time)
    after = max(_parse_cursor(cursor), low - 1)
    index = SEARCH_KEYS[key]
    found = store.search(index, value, after_leaf=after, limit=limit, sealed=sealed)
    pairs = [p for p in found if p[0] < high]
    loader = load or app.load_envelope
    results = [_search_row(app, loader, leaf, record_id) for leaf, record_id in pairs]
    more = len(pairs) == limit and any(
        leaf < high
        for leaf, _ in store.search(index, value, after_leaf=pairs[-1][0], limit=1, sealed=sealed)
    )
    return {"results": results, "next_cursor": str(pairs[-1][0]) if more else None}


def _search_row(
    app: Application, load: Callable[[str], Envelope], leaf_index: int, record_id: str
) -> dict[str, Any]:
    located = app.store.locate(record_id)
    envelope = load(record_id)
    return {
        "id": record_id,
        "height": located[0] if located else None,
        "leaf_index": leaf_index,
        "type": envelope.type,
        "actor_state": envelope.actor_state,
    }


def _parse_cursor(cursor: str | None) -> int:
    if cursor is None:
        return -1
    if not cursor.isdigit() or len(cursor) > 19:
        raise ClientError("cursor is not one this node issued", field="cursor", code="bad_cursor")
    return int(cursor)


def leaf_range(store: Store, from_time: str | None, to_time: str | None) -> tuple[int, int]:
    """Leaf indexes [low, high) committed by blocks with from_time <= time <= to_time."""
    low, high = 0, store.ledger_size
    if from_time is not None:
        low = first_leaf_from(store, query_time(from_time, "from_time"))
    if to_time is not None:
        end = query_time(to_time, "to_time")
        after_end = _first_height(store, lambda h: _time(h) > end)
        high = _size_before(store, after_end)
    return low, max(low, high)


def first_leaf_from(store: Store, start: datetime) -> int:
    """The first leaf index committed by a block whose time is ``start`` or later."""
    return _size_before(store, _first_height(store, lambda h: _time(h) >= start))


def query_time(text: str, name: str) -> datetime:
    """A time given as a query parameter: an impossible one is a 400 ``bad_time``
    (a malformed request), where the same in a record is a 422."""
    try:
        return parse_time(text, name)
    except RecordInvalid as exc:  # a query parameter, not a record field: 400, not 422
        raise ClientError(exc.message, field=name, code="bad_time") from exc


def _time(header: BlockHeader) -> datetime:
    return parse_time(header.time, "header.time")


def _first_height(store: Store, predicate: Callable[[BlockHeader], bool]) -> int:
    """Smallest height whose header satisfies a monotone ``predicate``; height+1 if none."""
    low, high = 1, store.height + 1
    while low < high:
        mid = (low + high) // 2
        if predicate(_header(store, mid)):
            high = mid
        else:
            low = mid + 1
    return low


def _size_before(store: Store, height: int) -> int:
    """Ledger size after block ``height - 1`` (0 before block 1)."""
    return 0 if height <= 1 else _header(store, height - 1).ledger_size


def _header(store: Store, height: int) -> BlockHeader:
    header = store.get_header(height)
    if header is None:
        raise NotFound(f"no block at height {height}", field="height", code="block_not_found")
    return header


# --- records, readiness and peers ---------------------------------------------------------


def parse_record_id(record_id: str) -> str:
    parse_hex(record_id, 32, "id")
    return record_id


def readiness(
    status: dict[str, Any], validators: int, *, started: bool, failed: str | None
) -> dict[str, Any]:
    """Ready = started, not syncing, and in touch with enough peers to reach a quorum.

    ``status`` is ``Node.status()``, ``validators`` the size of the next height's
    set. With n validators a quorum is floor(2n/3)+1 including this node, so it
    needs quorum-1 peers up; a lone validator (n = 1) needs none.
    """
    needed = quorum(validators) - 1
    peers_up = sum(1 for p in status["peers"] if p["up"])
    ready = started and failed is None and not status["syncing"] and peers_up >= needed
    body = {
        "ready": ready,
        "started": started,
        "syncing": status["syncing"],
        "peers_up": peers_up,
        "peers_needed": needed,
        "height": status["height"],
    }
    if failed is not None:
        body["failed"] = failed
    return body


def peers_view(peers: PeerSet, state: str, faults: Mapping[str, int]) -> dict[str, Any]:
    """Peer link details for operators (endpoints, errors, traffic counters)."""
    links: list[dict[str, Any]] = []
    for peer in peers.peers.values():
        s = peer.stats
        links.append(
            {
                "state": peer.state,
                "url": peer.url,
                "up": s.up,
                "height": s.height,
                "last_error": s.last_error,
                "sent_batches": s.sent_batches,
                "sent_bytes": s.sent_bytes,
                "dropped_items": s.dropped_items,
                "failures": s.failures,
                "queued": peer.queue.qsize(),
            }
        )
    return {"state": state, "peers": links, "peer_faults": dict(faults)}


# --- governance views (issue 16 part 3: moved here from node/state.py) -------------------
# The chain state is data and transitions; these are its JSON faces for the API.


def set_origin(state: ChainState, height: int) -> dict[str, Any]:
    """Since which height the set of ``height`` holds, and the records that made it."""
    since = state.set_since(height)
    return {
        "since_height": since,
        "changes": [c.to_json() for c in state.changes if c.height == since],
    }


def members_view(state: ChainState) -> list[dict[str, Any]]:
    """Every member the chain has known; ``validating`` is for the next height."""
    current = set(state.member_states(state.height + 1))
    return [
        {**info.to_json(), "validating": code in current}
        for code, info in sorted(state.members.items())
    ]


def observers_view(state: ChainState) -> list[dict[str, Any]]:
    """Every observer the chain has admitted; ``party`` is for the next height."""
    members = set(state.member_states(state.height + 1))
    rows = sorted(state.observers.values(), key=lambda o: (o.since_height, o.node_pubkey))
    return [
        {
            **info.to_json(),
            "admitted": info.until_height is None,
            "party": info.until_height is None and info.state in members,
        }
        for info in rows
    ]


def proposals_view(state: ChainState, status: str | None) -> list[dict[str, Any]]:
    rows = [
        p.to_json(state.height + 1, state.expiry_blocks())
        for p in sorted(state.proposals.values(), key=lambda p: (p.height, p.id))
    ]
    return [row for row in rows if status is None or row["status"] == status]


def misbehaviour_view(state: ChainState, offender_state: str | None) -> list[dict[str, Any]]:
    rows = sorted(state.misbehaviour.values(), key=lambda m: (m.committed_at, m.record_id))
    return [
        m.to_json() for m in rows if offender_state is None or m.offender_state == offender_state
    ]


# --- end of governance views ----------------------------------------------------------------
