"""The mempool: records accepted but not yet committed, bounded, in arrival order.

Nothing accepted is dropped silently: when the pool is full a submission is
refused with ``Overloaded`` (503 + Retry-After) before it is accepted.

Clients may fill the pool only up to ``client_max_records``: the pool's size
divided by the number of nodes that gossip records to each other (this node
and its peers; ``share_with``). Every node's pool holds its own clients'
records and its peers', so with that share the records pending anywhere in
the consortium always fit every node's pool, and no node ever has to drop a
peer's gossip. Without it, each node filled its pool with its own clients'
records before their gossip arrived elsewhere, peers dropped what did not
fit, and then missed those records in proposals and fetched whole blocks on
the consensus path (on the benchmark: at most heights).

Peers rebuild a compact proposal (header and record ids) from their own
mempools. A record a client gave this node that some peer has not yet
acknowledged (``is_spreading``) travels in the proposal in full instead, so a
proposal that overtakes its records' gossip does not make peers fetch the
whole block on the consensus path. Under load (``spread_backlog`` records
pending: a full block's worth) such records are not proposed until every
peer has answered the gossip batch that carried them (``delivered``), or
after ``SPREAD_WAIT_S`` in any case (a peer may be down): the block fills up
with records that spread already, and proposals stay small.
Records leave the pool only when a block that holds them commits (or, at
commit time, when they became invalid, e.g. their nonce was used meanwhile).

``SignatureCache`` remembers envelopes whose Ed25519 signature verified, so
each node verifies each record once: at ingress or gossip, not again when it
validates a proposed block that holds it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from ledger.errors import Conflict, Overloaded
from ledger.records import Envelope, verify_signature


class SignatureCache:
    """A bounded LRU set of (record id, signer, signature) that verified.

    It only has to span a record's way from admission (or gossip, or a
    block-sync reply) to the block that holds it: the pending records plus
    what block sync has fetched ahead. 65,536 entries (about 570 bytes each,
    some 36 MiB) cover the default mempool six times over; an entry evicted
    early costs one more verification, never a wrong answer.
    """

    def __init__(self, max_entries: int = 65_536) -> None:
        self._seen: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._max_entries = max_entries

    def __contains__(self, envelope: object) -> bool:
        if not isinstance(envelope, Envelope):
            return False
        return (envelope.id, envelope.signer, envelope.signature) in self._seen

    def remember(self, envelope: Envelope) -> None:
        """Record that ``envelope``'s signature verified (checked elsewhere, e.g. a thread)."""
        self._seen[(envelope.id, envelope.signer, envelope.signature)] = None
        if len(self._seen) > self._max_entries:
            self._seen.popitem(last=False)

    def verify(self, envelope: Envelope) -> None:
        key = (envelope.id, envelope.signer, envelope.signature)
        if key in self._seen:
            self._seen.move_to_end(key)
            return
        verify_signature(envelope)
        self._seen[key] = None
        if len(self._seen) > self._max_entries:
            self._seen.popitem(last=False)


#: How long a client's record may wait for its gossip to reach every peer before
#: this node proposes it anyway.
SPREAD_WAIT_S = 2.0
#: Pending records from which the spreading wait applies, unless the node gives
#: its own (``spread_backlog``: the consortium's ``max_block_records``, so the
#: wait only ever delays a record when the next block fills up with records
#: that have spread already).
SPREAD_BACKLOG_MIN = 1000


class Mempool:
    def __init__(self, max_records: int, max_bytes: int,
                 clock: Callable[[], float] = time.monotonic, *,
                 spread_backlog: int | None = None) -> None:
        self._pending: OrderedDict[str, Envelope] = OrderedDict()
        #: Records still spreading: id -> (admitted at, peers yet to answer).
        self._spreading: dict[str, tuple[float, int]] = {}
        self._clock = clock
        self.spread_backlog = SPREAD_BACKLOG_MIN if spread_backlog is None else spread_backlog
        self._nonces: dict[tuple[str, str], str] = {}
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.client_max_records = max_records
        self.client_max_bytes = max_bytes
        self.bytes = 0

    def share_with(self, nodes: int) -> None:
        """Clients' share: the pool divided among ``nodes`` gossiping nodes."""
        nodes = max(1, nodes)
        self.client_max_records = max(1, self.max_records // nodes)
        self.client_max_bytes = max(1, self.max_bytes // nodes)

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._pending

    def get(self, record_id: str) -> Envelope | None:
        return self._pending.get(record_id)

    def check_room(self, count: int = 1, size: int = 0, *, client: bool = True) -> None:
        """Raise ``Overloaded`` unless ``count`` more records of ``size`` bytes fit:
        within the clients' share, or (``client=False``, gossip) the whole pool."""
        max_records = self.client_max_records if client else self.max_records
        max_bytes = self.client_max_bytes if client else self.max_bytes
        if len(self._pending) + count > max_records or self.bytes + size > max_bytes:
            raise Overloaded(f"mempool is full ({len(self._pending)} records pending); "
                             "retry later", retry_after_s=1, code="mempool_full")

    def add(self, envelope: Envelope, *, client: bool = True, spread_to: int = 0) -> bool:
        """Add ``envelope``; False if it is already pending (idempotent).

        ``client`` says whether it came from a client (API) or a peer (gossip):
        see ``check_room``. ``spread_to`` peers must answer its gossip before
        ``reap`` offers it (see the module docstring)."""
        if envelope.id in self._pending:
            return False
        nonce_key = (envelope.signer, str(envelope.record["nonce"]))
        if nonce_key in self._nonces:
            raise Conflict("record.nonce was already used by this signer in a pending record",
                           field="record.nonce", code="duplicate_nonce")
        self.check_room(1, len(envelope.leaf), client=client)
        self._pending[envelope.id] = envelope
        if spread_to > 0:
            self._spreading[envelope.id] = (self._clock(), spread_to)
        self._nonces[nonce_key] = envelope.id
        self.bytes += len(envelope.leaf)
        return True

    def delivered(self, record_ids: Iterable[str]) -> None:
        """One more peer has answered the gossip of ``record_ids``."""
        spreading = self._spreading
        for record_id in record_ids:
            entry = spreading.get(record_id)
            if entry is not None:
                if entry[1] <= 1:
                    del spreading[record_id]
                else:
                    spreading[record_id] = (entry[0], entry[1] - 1)

    def spreading(self) -> int:
        return len(self._spreading)

    def is_spreading(self, record_id: str) -> bool:
        """True while some peer has not yet answered the gossip of ``record_id``."""
        return record_id in self._spreading

    def proposable(self) -> bool:
        """True if ``reap`` would offer at least one record."""
        if len(self._pending) > len(self._spreading):
            return True   # some pending record is not spreading
        if not self._spreading:
            return False
        if len(self._pending) < self.spread_backlog:
            return True
        oldest_at, _ = next(iter(self._spreading.values()))   # insertion order
        return oldest_at <= self._clock() - SPREAD_WAIT_S

    def reap(self, max_records: int, max_bytes: int) -> list[Envelope]:
        """The oldest pending records that fit the limits (they stay pending),
        skipping those still spreading to peers for less than ``SPREAD_WAIT_S``."""
        out: list[Envelope] = []
        size = 0
        spreading = self._spreading if len(self._pending) >= self.spread_backlog else {}
        cutoff = self._clock() - SPREAD_WAIT_S
        for envelope in self._pending.values():
            if len(out) >= max_records or size + len(envelope.leaf) > max_bytes:
                break
            entry = spreading.get(envelope.id) if spreading else None
            if entry is not None and entry[0] > cutoff:
                continue
            out.append(envelope)
            size += len(envelope.leaf)
        return out

    def remove(self, record_ids: Iterable[str]) -> None:
        for record_id in record_ids:
            envelope = self._pending.pop(record_id, None)
            self._spreading.pop(record_id, None)
            if envelope is not None:
                self._nonces.pop((envelope.signer, str(envelope.record["nonce"])), None)
                self.bytes -= len(envelope.leaf)
