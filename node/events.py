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

Deadline events (``deadline``) are not in the ledger: they say that a clock
of ``node/deadlines.py`` entered its warning window or became overdue. The
hub computes them while anyone listens, after each commit and on a timer
(``DeadlinePump``), and gives each one a position after the records of the
current height (``DEADLINE_LEAF_BASE`` + a sequence number), so positions
stay increasing and ids stay ``H:L``. They are live only: a replay from the
store (a reconnect, or a lagged subscriber's catch-up) does not repeat them;
``GET /v1/deadlines`` is their state.

Deadline events come in two classes (docs/PRIVACY.md, "Deadline events"):

* **clear**: the clocks of the acts every reader sees (``view``), offered to
  every subscriber whose filter matches, as ever;
* **private**: the clocks of the private acts whose body this node holds
  (``private_view``, which reads bodies without logging: nobody reads them
  yet). Such an event is offered only to a subscription that carries a
  ``BodyReader`` allowed to read that act's body (``require_body_reader``
  with the act's case), and the stream appends one access-log line (the
  act's id, outcome ``ok``) just before it sends the event, since the event
  tells the reader that the act and its clock exist. The token is looked up
  again at each offer and each send, so a revoked token gets nothing more.
  The private class is computed only while such a subscription exists; a
  node that is not a party holds no body, so its private class is empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ledger.block import CommitCertificate
from ledger.errors import ClientError, Forbidden, Overloaded, StoreError, Unauthorized
from ledger.private import is_private
from ledger.records import Envelope
from ledger.store import Store
from node.application import Block
from node.clock import utcnow
from node.deadlines import DeadlineWatch
from node.evidence import ChainView
from node.tokens import TokenInfo, require_body_reader

log = logging.getLogger(__name__)
Position = tuple[int, int]
#: Deadline events sit after every record leaf of their height (leaf ids stay 18 digits).
DEADLINE_LEAF_BASE = 10**17
#: "After every record at this height", but before its deadline events.
LIVE_ONLY_LEAF = DEADLINE_LEAF_BASE - 1
QUEUE_EVENTS_MAX = 4096
DEADLINE_TICK_S = 30.0


@dataclass(frozen=True, slots=True)
class Event:
    position: Position
    kind: str  # "block" | "record" | "deadline"
    data: dict[str, Any]
    state: str | None = None  # actor state of a record (or deadline's act) event
    type: str | None = None  # record type of a record (or deadline's act) event
    territory: frozenset[str] = frozenset()  # territorial states of the record
    #: A private act's deadline: only for a ``BodyReader`` that may read the act's body.
    private: bool = False
    case_ref: str | None = None  # of a deadline's act (checked against a token's cases)

    @property
    def id(self) -> str:
        height, leaf = self.position
        return str(height) if leaf < 0 else f"{height}:{leaf}"


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which record and deadline events a subscriber wants; block events always pass."""

    states: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()
    territories: frozenset[str] = frozenset()
    foreign_only: bool = False  # with territories: only acts by another state

    def matches(self, event: Event) -> bool:
        if event.kind not in ("record", "deadline"):
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


def deadline_event(
    height: int, sequence: int, item: dict[str, Any], *, private: bool = False
) -> Event:
    """An SSE ``deadline`` event for one transition (``node/deadlines.item_json``).

    Its data is the item ``GET /v1/deadlines`` shows the same reader, nothing more."""
    case_ref = item.get("case_ref")
    return Event(
        (height, DEADLINE_LEAF_BASE + sequence),
        "deadline",
        item,
        item["actor_state"],
        item["type"],
        frozenset(item["territorial_states"]),
        private,
        case_ref if isinstance(case_ref, str) else None,
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


@dataclass(frozen=True, slots=True)
class BodyReader:
    """A subscriber's right to private acts' deadline events: its bearer token, which
    ``require_body_reader`` checks for this node's ``state`` and each act's case.

    ``current`` gives the token as the node's token file holds it now (None
    once revoked), so a revocation reaches a stream already open; ``logged``
    appends the access-log line of one act (outcome ``ok``)."""

    token: TokenInfo
    state: str
    current: Callable[[TokenInfo], TokenInfo | None]
    logged: Callable[[str, TokenInfo], None]

    def live(self) -> TokenInfo | None:
        return self.current(self.token)

    def allows(self, token: TokenInfo | None, event: Event) -> bool:
        """Whether ``token`` may read the body of the event's act (its case)."""
        try:
            require_body_reader(token, state=self.state, case_ref=event.case_ref)
        except (Unauthorized, Forbidden):
            return False
        return True

    def reveal(self, event: Event) -> bool:
        """Check again and log the act's read: whether the event may be sent now."""
        token = self.live()
        if token is None or not self.allows(token, event):
            return False
        self.logged(str(event.data["id"]), token)
        return True


@dataclass(eq=False)
class Subscription:
    wanted: EventFilter
    queue: asyncio.Queue[Event] = field(default_factory=lambda: asyncio.Queue(QUEUE_EVENTS_MAX))
    lagged: bool = False
    reader: BodyReader | None = None  # None: the clear deadline events only


def _offered(sub: Subscription, token: TokenInfo | None, event: Event) -> bool:
    if not sub.wanted.matches(event):
        return False
    if not event.private:
        return True
    return sub.reader is not None and sub.reader.allows(token, event)


class EventHub:
    """Fan committed events out to at most ``subscribers_max`` bounded queues."""

    def __init__(self, subscribers_max: int) -> None:
        self.subscribers_max = subscribers_max
        self._subs: weakref.WeakSet[Subscription] = weakref.WeakSet()
        self.pump: DeadlinePump | None = None

    def __len__(self) -> int:
        return len(self._subs)

    def readers(self) -> int:
        """Subscriptions that may get private acts' deadline events."""
        return sum(1 for sub in list(self._subs) if sub.reader is not None)

    def subscribe(self, wanted: EventFilter, reader: BodyReader | None = None) -> Subscription:
        if len(self._subs) >= self.subscribers_max:
            raise Overloaded(
                f"event stream has its maximum of {self.subscribers_max} subscribers; retry later",
                retry_after_s=5,
                code="too_many_subscribers",
            )
        sub = Subscription(wanted, reader=reader)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)
        if self.pump is not None and not self._subs:
            self.pump.wake()  # its loop sees nobody listens and ends

    def on_commit(self, block: Block, certificate: CommitCertificate) -> None:
        """Commit listener: offer the block's events to every subscriber, never blocking."""
        if not self._subs:
            return  # nobody listens: build no events (a block's worth a commit)
        self.publish(events_of_block(block))
        if self.pump is not None:
            self.pump.wake()

    def publish(self, events: list[Event]) -> None:
        """Offer events to every subscriber that wants them (and may see them: a private
        act's deadline goes to a body reader of its case only), never blocking."""
        private = any(event.private for event in events)
        for sub in list(self._subs):
            if sub.lagged:
                continue
            # the token once per subscriber and call: a revoked one is offered nothing
            token = sub.reader.live() if private and sub.reader is not None else None
            for event in events:
                if not _offered(sub, token, event):
                    continue
                try:
                    sub.queue.put_nowait(event)
                except asyncio.QueueFull:
                    _overflow(sub)
                    break


@dataclass(eq=False)
class DeadlinePump:
    """Computes deadline transitions after commits and every ``tick_s``, while anyone listens.

    ``run`` returns once the hub has no subscriber; ``ensure_running`` (the
    events route, on each subscription) starts it again. Each pass is one
    bounded evaluation per class (``node/deadlines.py``: bounded scans, at most
    ``TRANSITIONS_PER_TICK_MAX`` events; the rest come on the next pass):
    the clear class over ``view``, and, while the hub has a body reader, the
    private class over ``private_view`` (the private acts' clocks only; the
    acts in clear are the clear class's).
    """

    hub: EventHub
    store: Store
    view: Callable[[], ChainView]
    tick_s: float = DEADLINE_TICK_S
    watch: DeadlineWatch = field(default_factory=DeadlineWatch)
    now: Callable[[], Any] = utcnow
    #: Over the bodies this node holds, read without an access-log line (None: no class).
    private_view: Callable[[], ChainView] | None = None
    private_watch: DeadlineWatch = field(default_factory=DeadlineWatch)
    _sequence: int = 0
    _task: asyncio.Task[None] | None = None
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _loop: asyncio.AbstractEventLoop | None = None

    def ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._loop = asyncio.get_running_loop()
            self._task = self._loop.create_task(self.run())

    def wake(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    def step(self) -> list[Event]:
        """One pass: the new transitions as events, published to the hub."""
        now = self.now()
        events = self._events(self.watch.transitions(self.view(), now), private=False)
        if self.private_view is not None and self.hub.readers() > 0:
            items = self.private_watch.transitions(
                self.private_view(), now, acts=lambda act: is_private(act.record)
            )
            events += self._events(items, private=True)
        self.hub.publish(events)
        return events

    def _events(self, items: list[dict[str, Any]], *, private: bool) -> list[Event]:
        events = []
        for item in items:
            self._sequence += 1
            events.append(deadline_event(self.store.height, self._sequence, item, private=private))
        return events

    async def run(self) -> None:
        while len(self.hub) > 0:
            try:
                self.step()
            except Exception:  # a bug here must not end the stream of blocks
                log.exception("deadline pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.tick_s)
            self._wake.clear()


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
            if event is LAG_MARKER or event.position <= last:
                continue
            if event.private and not await _revealed(sub, event):
                continue
            yield event
            last = event.position
    finally:
        hub.unsubscribe(sub)  # releases the subscriber slot when the client goes away


async def _revealed(sub: Subscription, event: Event) -> bool:
    """A private act's deadline event: checked again and its read logged (an fsync,
    off the event loop) before the stream sends it."""
    reader = sub.reader
    if reader is None:  # never offered one; a bug if it were
        return False
    return await asyncio.to_thread(reader.reveal, event)
