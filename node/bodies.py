"""Private bodies this node holds before their headers commit (docs/PRIVACY.md).

A party node receives a private body with its header (from a client) or from
another party (``/p2p/v1/bodies``). Until the header commits, the body waits
here, in memory only: a body whose header never commits is never written to
disk. At commit the application moves the body into the store in the block's
own batch (``Application.commit``).

The pool is bounded in entries and bytes (a limit on everything); when full, the
oldest body goes first. A body dropped early is fetched again from another party
after its header commits (``Node`` keeps the list of wanted bodies in the store).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from ledger.canonical import canonical_bytes

BODIES_MAX = 20_000
BODY_BYTES_MAX = 256 * 1024 * 1024


class BodyPool:
    def __init__(self, max_entries: int = BODIES_MAX, max_bytes: int = BODY_BYTES_MAX) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._bodies: OrderedDict[str, tuple[dict[str, Any], int]] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._bodies)

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._bodies

    def put(self, record_id: str, body: dict[str, Any]) -> None:
        """Hold ``body`` (already checked against its header's commitment)."""
        if record_id in self._bodies:
            return
        size = len(canonical_bytes(body))
        self._bodies[record_id] = (body, size)
        self._bytes += size
        while len(self._bodies) > self.max_entries or self._bytes > self.max_bytes:
            _, (_, dropped) = self._bodies.popitem(last=False)
            self._bytes -= dropped

    def get(self, record_id: str) -> dict[str, Any] | None:
        held = self._bodies.get(record_id)
        return None if held is None else held[0]

    def pop(self, record_id: str) -> dict[str, Any] | None:
        held = self._bodies.pop(record_id, None)
        if held is None:
            return None
        self._bytes -= held[1]
        return held[0]


ORPHANS_MAX = 2_000
ORPHAN_BYTES_MAX = 32 * 1024 * 1024


class OrphanBodies:
    """Bodies pushed before their header reached this node (it was dropped from a full
    share of the mempool, say), with the state of the node that sent each. Nothing
    is checked yet but the shape: ``Application.attach`` checks the commitment and
    that the sender is a party once the header is here, and drops it otherwise.
    Bounded apart from the pool, so junk from a peer never evicts a checked body."""

    def __init__(self, max_entries: int = ORPHANS_MAX, max_bytes: int = ORPHAN_BYTES_MAX) -> None:
        self._pool = BodyPool(max_entries, max_bytes)
        self._senders: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._pool)

    def put(self, record_id: str, body: dict[str, Any], sender_state: str) -> None:
        self._pool.put(record_id, body)
        self._senders[record_id] = sender_state
        if len(self._senders) > 2 * self._pool.max_entries:  # evicted ones: forget them
            self._senders = {k: v for k, v in self._senders.items() if k in self._pool}

    def pop(self, record_id: str) -> tuple[dict[str, Any], str] | None:
        body = self._pool.pop(record_id)
        sender = self._senders.pop(record_id, None)
        return None if body is None or sender is None else (body, sender)
