"""Committed-block and record events for Server-Sent Events subscribers.

Theory of operation
-------------------
Every event has a position in one total order: block ``H`` is ``(H, -1)``
and the record at leaf ``L`` of block ``H`` is ``(H, L)``, so a block's event
comes just before its records'. Event ids are ``"H"`` and ``"H:L"``; a client
that reconnects with ``Last-Event-ID`` gets exactly the events after that
position.

The hub turns each commit into events once and offers them to every
subscriber's bounded queue. Nothing is lost when a slow subscriber's queue
overflows: the hub clears that queue and flags the subscription ``lagged``,
and the subscriber's stream catches up by replaying from the store (which
holds every committed event) from the last position it sent, exactly as a
reconnect does. The stream subscribes *before* it replays, so an event
committed during a replay is either replayed or queued, and positions
deduplicate the overlap.

Subscriptions are held weakly as well as removed explicitly, so a stream
that is abandoned before it ever starts cannot hold a slot of the
subscriber cap forever.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ledger.block import CommitCertificate
from ledger.errors import ClientError, Overloaded, StoreError
from ledger.records import Envelope
from ledger.store import Store
from node.application import Block

Position = tuple[int, int]
LIVE_ONLY_LEAF = 2**63  # "after everything at this height"
QUEUE_EVENTS_MAX = 4096


@dataclass(frozen=True, slots=True)
class Event:
    position: Position
    kind: str  # "block" | "record"
    data: dict[str, Any]
    state: str | None = None  # actor state of a record event
    type: str | None = None  # record type of a record event
    territory: frozenset[str] = frozenset()  # territorial states of a record event

    @property
    def id(self) -> str:
        height, leaf = self.position
        return str(height) if leaf < 0 else f"{height}:{leaf}"


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which record events a subscriber wants; block events always pass."""

    states: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()
    territories: frozenset[str] = frozenset()
    foreign_only: bool = False  # with territories: only acts by another state

    def matches(self, event: Event) -> bool:
        if event.kind != "record":
            return True
        if self.territories and not (self.territories & event.territory):
            return False
        if self.foreign_only and event.state in self.territories:
            return False
        return (not self.states or event.state in self.states) and (
            not self.types or event.type in self.types
        )


LAG_MARKER = Event((0, 0), "lag", {})


def parse_event_id(text: str) -> Position:
    """``"H"`` or ``"H:L"`` -> position; ClientError 400 otherwise."""
    height, _, leaf = text.partition(":")
    if (
        not height.isdigit()
        or len(height) > 18
        or (leaf and (not leaf.isdigit() or len(leaf) > 18))
    ):
        raise ClientError(
            "Last-Event-ID must be 'HEIGHT' or 'HEIGHT:LEAF'",
            field="Last-Event-ID",
            code="bad_event_id",
        )
    return int(height), int(leaf) if leaf else -1


def block_event(block_height: int, header_json: dict[str, Any], block_hash: str) -> Event:
    data = {
        "height": block_height,
        "hash": block_hash,
        **{
            k: header_json[k]
            for k in ("time", "proposer", "record_count", "ledger_size", "ledger_root")
        },
    }
    return Event((block_height, -1), "block", data)


def record_event(height: int, leaf_index: int, envelope: Envelope) -> Event:
    territory = envelope.content.get("territorial_states") or []
    data = {
        "id": envelope.id,
        "height": height,
        "leaf_index": leaf_index,
        "type": envelope.type,
        "actor_state": envelope.actor_state,
        "territorial_states": territory,
    }
    if "parties" in envelope.record:  # a private act's header: its parties, never more
        territory = envelope.record["parties"]
        data["parties"] = territory
    return Event(
        (height, leaf_index),
        "record",
        data,
        envelope.actor_state,
        envelope.type,
        frozenset(territory),
    )


def events_of_block(block: Block) -> list[Event]:
    header = block.header
    first_leaf = header.ledger_size - header.record_count
    events = [block_event(header.height, header.to_json(), header.hash())]
    events += [
        record_event(header.height, first_leaf + i, envelope)
        for i, envelope in enumerate(block.envelopes)
    ]
    return events


def replay(
    store: Store, load: Callable[[str], Envelope], wanted: EventFilter, after: Position
) -> Iterator[Event]:
    """Stored events after position ``after`` that ``wanted`` matches, in order.

    Reads the store height lazily, so blocks committed during the replay are
    included too.
    """
    height = max(after[0], 1)
    while height <= store.height:
        header = store.get_header(height)
        if header is None:
            raise StoreError(f"block {height} vanished below the store height {store.height}")
        if (height, -1) > after:
            yield block_event(height, header.to_json(), header.hash())
        first_leaf = header.ledger_size - header.record_count
        for i, record_id in enumerate(store.get_block_record_ids(height)):
            if (height, first_leaf + i) > after:
                event = record_event(height, first_leaf + i, load(record_id))
                if wanted.matches(event):
                    yield event
        height += 1


@dataclass(eq=False)
class Subscription:
    wanted: EventFilter
    queue: asyncio.Queue[Event] = field(default_factory=lambda: asyncio.Queue(QUEUE_EVENTS_MAX))
    lagged: bool = False


class EventHub:
    """Fan committed events out to at most ``subscribers_max`` bounded queues."""

    def __init__(self, subscribers_max: int) -> None:
        self.subscribers_max = subscribers_max
        self._subs: weakref.WeakSet[Subscription] = weakref.WeakSet()

    def __len__(self) -> int:
        return len(self._subs)

    def subscribe(self, wanted: EventFilter) -> Subscription:
        if len(self._subs) >= self.subscribers_max:
            raise Overloaded(
                f"event stream has its maximum of {self.subscribers_max} subscribers; retry later",
                retry_after_s=5,
                code="too_many_subscribers",
            )
        sub = Subscription(wanted)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def on_commit(self, block: Block, certificate: CommitCertificate) -> None:
        """Commit listener: offer the block's events to every subscriber, never blocking."""
        if not self._subs:
            return  # nobody listens: build no events (a block's worth a commit)
        events = events_of_block(block)
        for sub in list(self._subs):
            if sub.lagged:
                continue
            for event in events:
                if not sub.wanted.matches(event):
                    continue
                try:
                    sub.queue.put_nowait(event)
                except asyncio.QueueFull:
                    _overflow(sub)
                    break


def _overflow(sub: Subscription) -> None:
    """Drop the queued events (the stream replays them from the store) and wake it.

    The marker matters: a stream blocked in ``queue.get()`` must wake up to
    see ``lagged``, since the hub offers a lagged subscription nothing more.
    """
    while not sub.queue.empty():
        sub.queue.get_nowait()
    sub.lagged = True
    sub.queue.put_nowait(LAG_MARKER)


def stream(
    hub: EventHub,
    sub: Subscription,
    store: Store,
    load: Callable[[str], Envelope],
    after: Position | None,
) -> AsyncIterator[Event]:
    """Events after ``after`` (default: only those committed from now on), forever.

    The start position is fixed here, when the caller subscribes, not when the
    generator first runs: a block committed in between is queued and must
    not be mistaken for history.
    """
    start = after if after is not None else (store.height, LIVE_ONLY_LEAF)
    return _stream(hub, sub, store, load, start, catch_up=after is not None)


async def _stream(
    hub: EventHub,
    sub: Subscription,
    store: Store,
    load: Callable[[str], Envelope],
    last: Position,
    catch_up: bool,
) -> AsyncIterator[Event]:
    try:
        while True:
            if catch_up or sub.lagged:
                sub.lagged, catch_up = False, False
                for event in replay(store, load, sub.wanted, last):
                    yield event
                    last = event.position
                    await asyncio.sleep(0)  # let commits and other streams run
                continue  # the queue may have overflowed again meanwhile
            event = await sub.queue.get()
            if event is not LAG_MARKER and event.position > last:
                yield event
                last = event.position
    finally:
        hub.unsubscribe(sub)  # releases the subscriber slot when the client goes away
