"""The mempool: records accepted but not yet committed, bounded and shared fairly.

Nothing accepted is dropped silently: a record that does not fit is refused
with ``Overloaded`` (503 + Retry-After, a stable ``code``) before it is
accepted; gossip that does not fit is dropped and counted
(``gossip_dropped``, by code), never raised at the peer.

Room and shares
---------------
The pool (``max_records``, ``max_bytes``; every bound below holds for both)
has two lanes. ``governance_reserve_percent`` of it is the governance lane:
only governance records (``ledger.roles.GOVERNANCE_TYPES``) may use it, and
they use nothing else, so under any flood an admin can still revoke a key.
The rest is the general lane. Within each lane:

* each member state may use ``lane / states`` (``share_with``: the member
  states that may sign records); past it, ``state_quota``;
* each signer may use ``signer_share_percent`` of its state's share; past
  it, ``signer_quota``, so one key cannot crowd out its own state's others;
* in the general lane, this node's own clients (the API, ``client=True``)
  together may use ``lane / nodes`` (the nodes that gossip to each other:
  this one and its peers); past it, ``mempool_full``.

Why every node's pool holds the records pending anywhere: each node's
clients add at most ``lane / nodes``, so all nodes' clients together add at
most one lane's worth, which fits every node's lane; peers never have to
drop each other's gossip. (Without that share each node filled its pool
with its own clients' records before their gossip arrived elsewhere, peers
dropped what did not fit, and then missed those records in proposals and
fetched whole blocks on the consensus path.) The state and signer shares
only bound how much of that one member or key may take at any node, gossip
included: a member that floods, or whose key is used at every node's API,
fills its own share and only its own gossip is dropped past it (a node that
dropped a record fetches the block that holds it whole). A pool too small
for a reserve (``max_records * governance_reserve_percent < 100``) gives
governance one record, at most half the pool; with a reserve of 0 percent
governance records share the general lane.

Proposals
---------
``reap`` offers governance records first, then the general lane, each lane
one record per state in turn (each state's records in arrival order, so a
signer's records keep their order), so one state's flood cannot fill every
block. Peers rebuild a compact proposal (header and record ids) from their
own mempools; ``get_leaf`` gives the pending copy only when its leaf is the
one the proposal names, since two envelopes of one record (another signature
or signer) share its id. A second envelope of a pending record is refused
(``conflicting_envelope``); the first stays.

A record a client gave this node that some peer has not yet acknowledged
(``is_spreading``) travels in the proposal in full instead, so a proposal
that overtakes its records' gossip does not make peers fetch the whole block
on the consensus path. Under load (``spread_backlog`` records pending: a full
block's worth) such records are not proposed until every peer has answered
the gossip batch that carried them (``delivered``), or after
``SPREAD_WAIT_S`` in any case (a peer may be down): the block fills up with
records that spread already, and proposals stay small. Records leave the pool
only when a block that holds them commits (or, at commit time, when they
became invalid, e.g. their nonce was used meanwhile).

``SignatureCache`` remembers envelopes whose Ed25519 signature verified, so
each node verifies each record once: at ingress or gossip, not again when it
validates a proposed block that holds it.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence

from ledger.errors import Conflict, InvariantViolation, Overloaded
from ledger.merkle import leaf_hash
from ledger.records import Envelope, verify_signature
from ledger.roles import GOVERNANCE_TYPES


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
#: Defaults of the node's ``[limits]`` (node/config.py).
GOVERNANCE_RESERVE_PERCENT = 5
SIGNER_SHARE_PERCENT = 50

GOVERNANCE = "governance"
GENERAL = "general"
#: A usage counter: ("pool",), ("lane", lane), ("local",), ("state", lane, state)
#: or ("signer", lane, signer). Checked in this order, so the first bound a
#: refusal names is the widest one that is full.
UsageKey = tuple[str, ...]
_ORDER = {"pool": 0, "lane": 1, "local": 2, "state": 3, "signer": 4}
_CODES = {
    "pool": "mempool_full",
    "lane": "mempool_full",
    "local": "mempool_full",
    "state": "state_quota",
    "signer": "signer_quota",
}
Room = tuple[int, int]  # (records, bytes)


class Mempool:
    def __init__(
        self,
        max_records: int,
        max_bytes: int,
        clock: Callable[[], float] = time.monotonic,
        *,
        spread_backlog: int | None = None,
        governance_reserve_percent: int = GOVERNANCE_RESERVE_PERCENT,
        signer_share_percent: int = SIGNER_SHARE_PERCENT,
    ) -> None:
        if not (0 <= governance_reserve_percent <= 50 and 1 <= signer_share_percent <= 100):
            raise InvariantViolation(
                f"mempool shares out of range: governance reserve {governance_reserve_percent}%, "
                f"signer share {signer_share_percent}% (config validation lets neither through)"
            )
        self._pending: OrderedDict[str, Envelope] = OrderedDict()
        #: lane -> state -> that state's pending records in arrival order (for reap).
        self._lanes: dict[str, dict[str, dict[str, Envelope]]] = {GOVERNANCE: {}, GENERAL: {}}
        self._local: set[str] = set()  # ids this node's clients gave (general lane)
        self._used: dict[UsageKey, list[int]] = {}
        #: Records still spreading: id -> (admitted at, peers yet to answer).
        self._spreading: dict[str, tuple[float, int]] = {}
        self._clock = clock
        self.spread_backlog = SPREAD_BACKLOG_MIN if spread_backlog is None else spread_backlog
        self._nonces: dict[tuple[str, str], str] = {}
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.bytes = 0
        #: Gossiped records dropped, by the code they would have been refused with.
        self.gossip_dropped: Counter[str] = Counter()
        self._reserve: Room = (
            _reserve(max_records, governance_reserve_percent),
            _reserve(max_bytes, governance_reserve_percent),
        )
        self._signer_percent = signer_share_percent
        self.share_with(1)

    # --- shares -------------------------------------------------------------------------

    def share_with(self, nodes: int, states: int | None = None) -> None:
        """Share the pool among ``nodes`` gossiping nodes and ``states`` member states
        (default: one state per node); see the module docstring."""
        nodes, states = max(1, nodes), max(1, nodes if states is None else states)
        general = (self.max_records - self._reserve[0], self.max_bytes - self._reserve[1])
        self._lane_room = {GOVERNANCE: self._reserve, GENERAL: general}
        self._state_room = {
            lane: (max(1, room[0] // states), max(1, room[1] // states))
            for lane, room in self._lane_room.items()
        }
        self._signer_room = {
            lane: (
                max(1, room[0] * self._signer_percent // 100),
                max(1, room[1] * self._signer_percent // 100),
            )
            for lane, room in self._state_room.items()
        }
        self._client_room = (max(1, general[0] // nodes), max(1, general[1] // nodes))

    @property
    def client_max_records(self) -> int:
        return self._client_room[0]

    @property
    def client_max_bytes(self) -> int:
        return self._client_room[1]

    @property
    def state_max_records(self) -> int:
        return self._state_room[GENERAL][0]

    @property
    def signer_max_records(self) -> int:
        return self._signer_room[GENERAL][0]

    @property
    def governance_max_records(self) -> int:
        return self._lane_room[GOVERNANCE][0]

    def lane(self, envelope: Envelope) -> str:
        if envelope.type in GOVERNANCE_TYPES and self._reserve[0] > 0:
            return GOVERNANCE
        return GENERAL

    # --- reads --------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._pending

    def get(self, record_id: str) -> Envelope | None:
        return self._pending.get(record_id)

    def by_nonce(self, signer: str, nonce: str) -> str | None:
        """The id of the pending record ``signer`` signed with ``nonce``, if any."""
        return self._nonces.get((signer, nonce))

    def get_leaf(self, record_id: str, leaf: bytes | str) -> Envelope | None:
        """The pending envelope of ``record_id`` only if its leaf hash
        (``ledger.merkle.leaf_hash(envelope.leaf)``) is ``leaf``: 32 bytes, or
        64 lowercase hex characters as a compact proposal names it."""
        envelope = self._pending.get(record_id)
        if envelope is None:
            return None
        digest = leaf_hash(envelope.leaf)
        return envelope if leaf in (digest, digest.hex()) else None

    def holds(self, envelope: Envelope) -> bool:
        """True if this very envelope is pending, False if its record is not;
        ``Conflict`` if another envelope of the record (another signature or
        signer, so another leaf) is: the first one stays."""
        pending = self._pending.get(envelope.id)
        if pending is None:
            return False
        if pending.leaf != envelope.leaf:
            raise Conflict(
                "another envelope of this record (another signature or signer) "
                "is already pending; it is kept",
                field="signature",
                code="conflicting_envelope",
            )
        return True

    # --- room ---------------------------------------------------------------------------

    def room(self) -> int:
        """Records that still fit the whole pool, whatever their lane and state."""
        return max(0, self.max_records - len(self._pending))

    def check_room(self, count: int = 1, size: int = 0) -> None:
        """Raise ``Overloaded`` unless ``count`` more records of ``size`` bytes fit the
        whole pool: the cheap check before a body is parsed (``check_fits`` after)."""
        if len(self._pending) + count > self.max_records or self.bytes + size > self.max_bytes:
            raise self._refusal(("pool",))

    def check_fits(self, envelopes: Iterable[Envelope], *, client: bool = True) -> None:
        """Raise ``Overloaded`` unless all of ``envelopes`` not yet pending fit together:
        every share they count against (see the module docstring)."""
        demand: dict[UsageKey, list[int]] = {}
        for envelope in envelopes:
            if envelope.id not in self._pending:
                _tally(demand, self._keys(envelope, local=client), len(envelope.leaf))
        full = self._full(demand)
        if full is not None:
            raise self._refusal(full)

    def fitting(self, envelopes: Sequence[Envelope]) -> list[Envelope]:
        """The gossiped ``envelopes`` that fit, taken in order; the others are
        dropped (and counted) before anyone checks their signatures."""
        out: list[Envelope] = []
        demand: dict[UsageKey, list[int]] = {}
        for envelope in envelopes:
            if envelope.id in self._pending:
                out.append(envelope)  # already here: accept_gossip decides
                continue
            keys = self._keys(envelope, local=False)
            wanted = {key: list(demand.get(key, (0, 0))) for key in keys}
            _tally(wanted, keys, len(envelope.leaf))
            full = self._full(wanted)
            if full is not None:
                self.gossip_dropped[_CODES[full[0]]] += 1
                continue
            demand.update(wanted)
            out.append(envelope)
        return out

    def _full(self, demand: dict[UsageKey, list[int]]) -> UsageKey | None:
        """The first (widest) share that ``demand`` more would overflow, if any."""
        for key in sorted(demand, key=lambda k: _ORDER[k[0]]):
            used, limit = self._used.get(key, (0, 0)), self._limit(key)
            if used[0] + demand[key][0] > limit[0] or used[1] + demand[key][1] > limit[1]:
                return key
        return None

    def _keys(self, envelope: Envelope, *, local: bool) -> list[UsageKey]:
        lane = self.lane(envelope)
        keys: list[UsageKey] = [("pool",), ("lane", lane)]
        if local and lane == GENERAL:
            keys.append(("local",))
        keys += [("state", lane, envelope.actor_state), ("signer", lane, envelope.signer)]
        return keys

    def _limit(self, key: UsageKey) -> Room:
        kind = key[0]
        if kind == "pool":
            return self.max_records, self.max_bytes
        if kind == "local":
            return self._client_room
        rooms = {"lane": self._lane_room, "state": self._state_room, "signer": self._signer_room}
        return rooms[kind][key[1]]

    def _refusal(self, key: UsageKey) -> Overloaded:
        kind = key[0]
        used = self._used.get(key, (0, 0))[0]
        if kind == "state":
            return Overloaded(
                f"record.actor.state {key[2]} has its share of the mempool "
                f"({used} {key[1]} records pending); retry later",
                retry_after_s=1,
                field="record.actor.state",
                code="state_quota",
            )
        if kind == "signer":
            return Overloaded(
                f"signer has its share of the mempool ({used} {key[1]} records "
                "pending); retry later",
                retry_after_s=1,
                field="signer",
                code="signer_quota",
            )
        what = {
            "pool": "mempool",
            "lane": f"mempool's {key[-1]} lane",
            "local": "share of the mempool for this node's clients",
        }[kind]
        return Overloaded(
            f"{what} is full ({len(self._pending)} records pending); retry later",
            retry_after_s=1,
            code=_CODES[kind],
        )

    # --- changes ------------------------------------------------------------------------

    def add(self, envelope: Envelope, *, client: bool = True, spread_to: int = 0) -> bool:
        """Add ``envelope``; False if it is already pending (idempotent).

        ``client`` says whether it came from a client (API) or a peer (gossip):
        see ``check_fits``. ``spread_to`` peers must answer its gossip before
        ``reap`` offers it (see the module docstring)."""
        if self.holds(envelope):
            return False
        nonce_key = (envelope.signer, str(envelope.record["nonce"]))
        if nonce_key in self._nonces:
            raise Conflict(
                "record.nonce was already used by this signer in a pending record",
                field="record.nonce",
                code="duplicate_nonce",
            )
        self.check_fits([envelope], client=client)
        self._pending[envelope.id] = envelope
        self._lanes[self.lane(envelope)].setdefault(envelope.actor_state, {})[envelope.id] = (
            envelope
        )
        local = client and self.lane(envelope) == GENERAL
        if local:
            self._local.add(envelope.id)
        self._count(envelope, local, +1)
        if spread_to > 0:
            self._spreading[envelope.id] = (self._clock(), spread_to)
        self._nonces[nonce_key] = envelope.id
        self.bytes += len(envelope.leaf)
        return True

    def _count(self, envelope: Envelope, local: bool, sign: int) -> None:
        for key in self._keys(envelope, local=local):
            used = self._used.setdefault(key, [0, 0])
            used[0] += sign
            used[1] += sign * len(envelope.leaf)
            if used[0] < 0 or used[1] < 0:
                raise InvariantViolation(f"mempool usage {key} below zero: {used}")
            if used[0] == 0:
                del self._used[key]  # bounded: only keys of pending records stay

    def remove(self, record_ids: Iterable[str]) -> None:
        for record_id in record_ids:
            envelope = self._pending.pop(record_id, None)
            self._spreading.pop(record_id, None)
            if envelope is None:
                continue
            lane, state = self.lane(envelope), envelope.actor_state
            records = self._lanes[lane][state]
            del records[record_id]
            if not records:
                del self._lanes[lane][state]
            local = record_id in self._local
            self._local.discard(record_id)
            self._count(envelope, local, -1)
            self._nonces.pop((envelope.signer, str(envelope.record["nonce"])), None)
            self.bytes -= len(envelope.leaf)

    # --- spreading and proposals --------------------------------------------------------

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
            return True  # some pending record is not spreading
        if not self._spreading:
            return False
        if len(self._pending) < self.spread_backlog:
            return True
        oldest_at, _ = next(iter(self._spreading.values()))  # insertion order
        return oldest_at <= self._clock() - SPREAD_WAIT_S

    def reap(self, max_records: int, max_bytes: int) -> list[Envelope]:
        """Pending records for a proposal, within the limits (they stay pending).

        Governance first, then the general lane; in each, one record per state
        in turn, each state's in arrival order (a state whose next record does
        not fit the bytes left is done). Records still spreading to peers for
        less than ``SPREAD_WAIT_S`` are skipped (see the module docstring)."""
        out: list[Envelope] = []
        size = 0
        waiting = self._spreading if len(self._pending) >= self.spread_backlog else {}
        cutoff = self._clock() - SPREAD_WAIT_S
        for lane in (GOVERNANCE, GENERAL):
            queues = [
                _ready(records, waiting, cutoff) for _, records in sorted(self._lanes[lane].items())
            ]
            while queues and len(out) < max_records:
                for queue in tuple(queues):
                    envelope = next(queue, None)
                    if envelope is None or size + len(envelope.leaf) > max_bytes:
                        queues.remove(queue)
                        continue
                    out.append(envelope)
                    size += len(envelope.leaf)
                    if len(out) >= max_records:
                        break
        return out


def _tally(demand: dict[UsageKey, list[int]], keys: Iterable[UsageKey], size: int) -> None:
    for key in keys:
        wanted = demand.setdefault(key, [0, 0])
        wanted[0] += 1
        wanted[1] += size


def _ready(
    records: dict[str, Envelope], waiting: dict[str, tuple[float, int]], cutoff: float
) -> Iterator[Envelope]:
    """``records`` in order, without those spreading since after ``cutoff``."""
    for envelope in records.values():
        entry = waiting.get(envelope.id) if waiting else None
        if entry is None or entry[0] <= cutoff:
            yield envelope


def _reserve(total: int, percent: int) -> int:
    """The governance lane of a pool of ``total``: at least one, at most half."""
    if percent == 0 or total < 2:
        return 0
    return min(total // 2, max(1, total * percent // 100))
