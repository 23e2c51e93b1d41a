"""Assembling proof bundles (ledger/audit/bundle.py) from a node's store or its HTTP API.

``build_bundle`` asks a ``BundleSource`` for the pieces and lays them out in
the bundle format; it checks nothing itself (``verify_bundle`` does, and the
exporter runs it before writing). ``StoreSource`` reads a node's own store
(``GET /v1/records/{id}/bundle``); ``api.cli.audit_client.HttpSource`` reads a
node's public API (``comity bundle export``). Working out what a bundle
needs is kept apart from fetching it, in the manner of
transparency-dev/merkle's proof.Inclusion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ledger.audit.bundle import FORMAT
from ledger.audit.gov import REPLAYED_TYPES
from ledger.canonical import parse_json
from ledger.errors import NotFound
from ledger.store import Store

GOVERNANCE_PAGE = 1000


@dataclass(frozen=True, slots=True)
class Located:
    """A committed record: its envelope, block height and leaf index."""

    id: str
    envelope: dict[str, Any]
    height: int
    leaf_index: int


class BundleSource(Protocol):
    async def genesis(self) -> dict[str, Any]: ...

    async def record(self, record_id: str) -> Located:
        """The committed record; NotFound (or the client's error) otherwise."""
        ...

    async def audit_path(self, record_id: str) -> list[str]:
        """Inclusion proof (hex) of the record against its own block's checkpoint."""
        ...

    async def block(self, height: int | None) -> dict[str, Any]:
        """``{"header", "commit"}`` of ``height`` (None: the latest block)."""
        ...

    async def governance_ids(self) -> list[str]:
        """Ids of every committed governance record, in commit order."""
        ...

    async def consistency(self, first: int, second: int) -> list[str]: ...


async def build_bundle(
    source: BundleSource, record_ids: list[str], *, latest: bool = False
) -> dict[str, Any]:
    """A bundle proving ``record_ids``, optionally with the latest checkpoint."""
    if not record_ids:
        raise ValueError("a bundle needs at least one record")
    subjects = [await source.record(rid) for rid in dict.fromkeys(record_ids)]
    top = await source.block(None) if latest else None
    cutoff = top["header"]["height"] if top else max(s.height for s in subjects)
    entries: dict[int, dict[int, Located]] = {}
    for item in subjects:
        entries.setdefault(item.height, {})[item.leaf_index] = item
    for rid in await source.governance_ids():
        found = await source.record(rid)
        if found.height <= cutoff:
            entries.setdefault(found.height, {})[found.leaf_index] = found
    blocks = []
    for height in sorted(entries):
        block = await source.block(height)
        rows = [
            {
                "envelope": e.envelope,
                "leaf_index": e.leaf_index,
                "audit_path": await source.audit_path(e.id),
            }
            for _, e in sorted(entries[height].items())
        ]
        blocks.append({"header": block["header"], "commit": block["commit"], "entries": rows})
    bundle: dict[str, Any] = {
        "format": FORMAT,
        "genesis": await source.genesis(),
        "records": list(dict.fromkeys(record_ids)),
        "blocks": blocks,
        "latest": None,
    }
    if top is not None:
        size = top["header"]["ledger_size"]
        bundle["latest"] = {
            "header": top["header"],
            "commit": top["commit"],
            "consistency": [
                {
                    "height": b["header"]["height"],
                    "proof": await source.consistency(b["header"]["ledger_size"], size),
                }
                for b in blocks
            ],
        }
    return bundle


class StoreSource:
    """A node's own store as a ``BundleSource``."""

    def __init__(self, store: Store, genesis: dict[str, Any]) -> None:
        self.store = store
        self._genesis = genesis

    async def genesis(self) -> dict[str, Any]:
        return self._genesis

    async def record(self, record_id: str) -> Located:
        located = self.store.locate(record_id)
        data = self.store.get_envelope_bytes(record_id)
        if located is None or data is None:
            raise NotFound(
                f"no committed record with id {record_id}", field="id", code="record_not_found"
            )
        envelope = parse_json(data)
        assert isinstance(envelope, dict)
        return Located(record_id, envelope, located[0], located[1])

    async def audit_path(self, record_id: str) -> list[str]:
        located = self.store.locate(record_id)
        assert located is not None, "audit_path of a record not located first"
        header = self.store.get_header(located[0])
        assert header is not None
        return [h.hex() for h in self.store.inclusion_proof(located[1], header.ledger_size)]

    async def block(self, height: int | None) -> dict[str, Any]:
        at = self.store.height if height is None else height
        header, cert = self.store.get_header(at), self.store.get_certificate(at)
        if header is None or cert is None:
            raise NotFound(f"no block at height {at}", field="height", code="block_not_found")
        return {"header": header.to_json(), "commit": cert.to_json()}

    async def governance_ids(self) -> list[str]:
        found: list[tuple[int, str]] = []
        for type_name in REPLAYED_TYPES:
            after: int | None = None
            while page := self.store.search(
                "type", type_name, after_leaf=after, limit=GOVERNANCE_PAGE
            ):
                found.extend(page)
                after = page[-1][0]
        return [rid for _, rid in sorted(found)]

    async def consistency(self, first: int, second: int) -> list[str]:
        return [h.hex() for h in self.store.consistency_proof(first, second)]
