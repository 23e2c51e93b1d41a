"""The mempool: records accepted but not yet committed, bounded, in arrival order.

Nothing accepted is dropped silently: when the pool is full a submission is
refused with ``Overloaded`` (503 + Retry-After) before it is accepted.

Clients may fill the pool only up to ``client_max_records`` (three quarters of
it); the last quarter is kept for records gossiped by peers. Every node's
pool holds about the same pending records (its own clients' and its peers'),
so all nodes stop taking clients' records at about the same time while the
records already on their way between nodes still find room. Without that
reserve a node full of its own clients' records would drop its peers'
gossip, and then miss records of their proposals and have to fetch the whole
block on the consensus path.
Records leave the pool only when a block that holds them commits (or, at
commit time, when they became invalid, e.g. their nonce was used meanwhile).

``SignatureCache`` remembers envelopes whose Ed25519 signature verified, so
each node verifies each record once: at ingress or gossip, not again when it
validates a proposed block that holds it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

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


class Mempool:
    def __init__(self, max_records: int, max_bytes: int) -> None:
        self._pending: OrderedDict[str, Envelope] = OrderedDict()
        self._nonces: dict[tuple[str, str], str] = {}
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.client_max_records = max(1, max_records - max_records // 4)
        self.client_max_bytes = max(1, max_bytes - max_bytes // 4)
        self.bytes = 0

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

    def add(self, envelope: Envelope, *, client: bool = True) -> bool:
        """Add ``envelope``; False if it is already pending (idempotent).

        ``client`` says whether it came from a client (API) or a peer (gossip):
        see ``check_room``."""
        if envelope.id in self._pending:
            return False
        nonce_key = (envelope.signer, str(envelope.record["nonce"]))
        if nonce_key in self._nonces:
            raise Conflict("record.nonce was already used by this signer in a pending record",
                           field="record.nonce", code="duplicate_nonce")
        self.check_room(1, len(envelope.leaf), client=client)
        self._pending[envelope.id] = envelope
        self._nonces[nonce_key] = envelope.id
        self.bytes += len(envelope.leaf)
        return True

    def reap(self, max_records: int, max_bytes: int) -> list[Envelope]:
        """The oldest pending records that fit the limits (they stay pending)."""
        out: list[Envelope] = []
        size = 0
        for envelope in self._pending.values():
            if len(out) >= max_records or size + len(envelope.leaf) > max_bytes:
                break
            out.append(envelope)
            size += len(envelope.leaf)
        return out

    def remove(self, record_ids: Iterable[str]) -> None:
        for record_id in record_ids:
            envelope = self._pending.pop(record_id, None)
            if envelope is not None:
                self._nonces.pop((envelope.signer, str(envelope.record["nonce"])), None)
                self.bytes -= len(envelope.leaf)
