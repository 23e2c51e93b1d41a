"""Admission: which records enter the mempool, from clients and from peers.

One place holds the policy for a single record, a batch and a gossiped
record, so the HTTP routes only translate between HTTP and these calls:

* ``submit``: a client's one envelope. Room first (a full pool refuses before
  anything is parsed), then parse, charge the client's rate, verify the
  signature off the loop, and ``admit``.
* ``submit_batch``: a client's batch, all or nothing on rate and room: a
  client told 429 or 503 resends the same batch after Retry-After, and no
  envelope is verified only to be refused. Room is checked again after the
  signature wait (peers' gossip may have taken it meanwhile); from there to
  the reply nothing else runs, so the batch is admitted whole or not. Each
  item is then checked and admitted on its own: one bad item does not reject
  the others.
* ``admit``: a parsed, verified envelope (idempotent); the record's checks
  come after room, so a full share costs no schema check. Also used for the
  node's own misbehaviour reports.
* ``accept_gossip``: a peer's record, checked like a client's; what is over a
  share, or another envelope of a pending record, is dropped and counted.

The rate limit is the API's (per client address): it comes in as ``charge``,
called with the signers before any signature is verified.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from ledger.canonical import parse_json
from ledger.errors import (
    ClientError,
    Conflict,
    EncodingError,
    Forbidden,
    Overloaded,
    RecordInvalid,
    TooLarge,
)
from ledger.private import check_body, is_private, parse_body
from ledger.records import Envelope, parse_envelope
from ledger.store import Store
from node import clock
from node.application import Application
from node.mempool import Mempool

#: Charges a client's write rate for these signers; raises ``RateLimited``.
Charge = Callable[[Iterable[str]], None]


@dataclass(frozen=True, slots=True)
class Submission:
    id: str
    status: str  # "pending" | "committed"
    #: Admitted, but worth a look: ``{code, field, message}`` (a request in no language
    #: its requested state accepts, ``ledger/acts_treaty.py``). Only on first admission.
    warnings: tuple[dict[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "status": self.status}
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out


@dataclass
class Admission:
    """The node's admission policy (one per ``Node``)."""

    app: Application
    store: Store
    mempool: Mempool
    verify: Callable[..., Awaitable[None]]  # signatures off the loop, into the cache
    broadcast: Callable[..., None]  # the peers' gossip lane
    peer_count: Callable[[], int]
    wake: Callable[[], None]  # the driver: records may be proposable now
    max_batch_records: int
    send_body: Callable[[Envelope], None]  # to the other parties' nodes only
    #: An observer node takes no records (docs/OPERATIONS.md, "Observer nodes").
    read_only: bool = False

    def _refuse_if_read_only(self) -> None:
        if self.read_only:
            raise Forbidden(
                "this node is an observer: it follows the chain and takes no records; "
                "submit to a validator of your state",
                field="record",
                code="observer_read_only",
            )

    async def submit(self, body: bytes, charge: Charge) -> Submission:
        """A client's single envelope (its raw JSON body), with the private body of a
        private act in its ``private`` member."""
        self._refuse_if_read_only()
        self.mempool.check_room(1)  # refuse cheaply before parsing when the pool is full
        envelope = parse_submission(parse_json(body), self.app.params.max_record_bytes)
        charge([envelope.signer])
        await self.verify([envelope], admission=True)
        return self.admit(envelope)

    async def submit_batch(self, body: bytes, charge: Charge) -> list[dict[str, Any]]:
        """A client's batch (its raw JSON body): one result per item, in order."""
        self._refuse_if_read_only()
        self.mempool.check_room(1)  # refuse cheaply before parsing when the pool is full
        # Up to max_request_bytes of JSON: parsed in a worker thread, so the event
        # loop (consensus, P2P) keeps running meanwhile.
        parsed = await asyncio.to_thread(
            parse_batch, body, self.max_batch_records, self.app.params.max_record_bytes
        )
        envelopes = [e for e in parsed if isinstance(e, Envelope)]
        charge(e.signer for e in envelopes)
        self.mempool.check_fits(envelopes)
        await self.verify(envelopes, admission=True)
        self.mempool.check_fits(envelopes)  # again: gossip may have taken the room
        return [self._admit_item(i, item) for i, item in enumerate(parsed)]

    def _admit_item(self, index: int, item: Envelope | ClientError) -> dict[str, Any]:
        try:
            if isinstance(item, ClientError):
                raise item
            result = self.admit(item)
        except ClientError as exc:
            return {"index": index, "error": exc.to_json()["error"]}
        return {"index": index, **result.to_json()}

    def admit(self, envelope: Envelope) -> Submission:
        """Check a parsed envelope and add it to the mempool (idempotent).

        Another envelope of a pending record (another signature or signer) is
        refused with ``conflicting_envelope``. Room comes before the record's
        checks, so a full share costs no signature or schema check."""
        self._refuse_if_read_only()
        if self.mempool.holds(envelope):
            return Submission(envelope.id, "pending")
        if self.store.has_record(envelope.id):
            return Submission(envelope.id, "committed")
        self._check_private(envelope)
        self.mempool.check_fits([envelope])
        checked = self.app.check_record(envelope, clock.utcnow())
        if envelope.body is not None:
            self.app.bodies.put(envelope.id, envelope.body)
            self.send_body(envelope)
        if self.mempool.add(envelope, spread_to=self.peer_count()):
            # The leaf is the envelope's canonical JSON: embed it as is.
            self.broadcast(
                {"record": orjson.Fragment(envelope.leaf)},
                len(envelope.leaf),
                gossip=True,
                key=envelope.id,
            )
            self.wake()
        return Submission(envelope.id, "pending", tuple(self.app.warnings(checked)))

    def _check_private(self, envelope: Envelope) -> None:
        """A private act is filed at a party's node, with its body (docs/PRIVACY.md)."""
        if not is_private(envelope.record):
            if envelope.body is not None:
                raise RecordInvalid(
                    "private is only for a record of type private_act",
                    field="private",
                    code="not_private",
                )
            return
        if envelope.body is None:
            raise RecordInvalid(
                "a private_act is filed with its private body", field="private", code="no_body"
            )
        if not self.app.is_party(envelope):
            raise Forbidden(
                f"this node's state ({self.app.me}) is not a party: file the act at a party's "
                "node, the body must never reach another",
                field="record.parties",
                code="not_a_party_node",
            )
        check_body(envelope.record, envelope.body)

    def accept_gossip(self, envelope: Envelope) -> None:
        """A peer's record: checked like a client's, or refused with a ClientError.

        Over a share of the mempool, or another envelope of a record already
        pending (the first stays): dropped and counted in
        ``mempool.gossip_dropped``, never raised. The origin still holds its copy."""
        try:
            if self.mempool.holds(envelope) or self.store.has_record(envelope.id):
                return
            self.mempool.check_fits([envelope], client=False)
        except (Conflict, Overloaded) as exc:
            self.mempool.gossip_dropped[exc.code] += 1
            return
        self.app.check_record(envelope, clock.utcnow())
        if self.mempool.add(envelope, client=False):
            self.wake()


def parse_submission(obj: Any, max_record_bytes: int) -> Envelope:
    """A client's envelope, with the private body it carries in ``private`` if any."""
    if isinstance(obj, dict) and "private" in obj:
        obj = dict(obj)
        body = parse_body(obj.pop("private"), max_bytes=max_record_bytes)
        return parse_envelope(obj, max_record_bytes=max_record_bytes).with_body(body)
    return parse_envelope(obj, max_record_bytes=max_record_bytes)


def parse_batch(body: bytes, limit: int, max_record_bytes: int) -> list[Envelope | ClientError]:
    """The batch's envelopes, each parsed or the error that refused it (pure)."""
    items = _batch_items(parse_json(body), limit)
    parsed: list[Envelope | ClientError] = []
    for item in items:
        try:
            parsed.append(parse_submission(item, max_record_bytes))
        except ClientError as exc:
            parsed.append(exc)
    return parsed


def _batch_items(obj: Any, limit: int) -> list[Any]:
    if (
        not isinstance(obj, dict)
        or set(obj) != {"envelopes"}
        or not isinstance(obj["envelopes"], list)
    ):
        raise EncodingError(
            'batch body must be {"envelopes": [...]}', field="envelopes", code="bad_type"
        )
    items: list[Any] = obj["envelopes"]
    if len(items) > limit:
        raise TooLarge(
            f"batch has {len(items)} envelopes, limit is {limit}",
            field="envelopes",
            code="batch_too_large",
        )
    return items
