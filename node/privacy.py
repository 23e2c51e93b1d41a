"""Private bodies between party nodes, their late arrival, purge and violation reports.

Theory of operation
-------------------
docs/PRIVACY.md. A private act's header travels like any record (gossip to every
peer, then a block); its body goes only to the nodes of the act's other
parties, point to point over the authenticated P2P links:

* **push**: the node a client files the act at sends ``{"body": {"id", "private"}}``
  on the gossip lane of each other party's link, right after the header;
* **pull** (``/p2p/v1/bodies``): a party whose body did not come (or was dropped
  from its bounded pool) asks the other parties' nodes once the header has
  committed. A node answers only a requester whose state is a party of every
  act asked for; a non-party that asks is refused and counted as a peer fault.

A received body must match its header's commitment and come from a party's
node, and this node must be a party: anything else is a peer fault, and the
body is dropped. A body that came after its header committed is checked against
the header (commitment, class, schema, derived parties) and stored; the act's
context rules were judged by the parties that held it at vote time.

When a committed body breaks a rule (``Application.voided``), this node signs a
``body_violation`` record with its node key: evidence against the signer on the
chain, naming the rule, never the body. When an act's ``retain_until`` has
passed, this node signs a ``body_purge`` record; once it commits, the node
erases its copy of each body it names (``Store.purge_body``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ledger.errors import ClientError, PeerFault
from ledger.keys import KeySigner
from ledger.private import check_body, is_private, parse_body
from ledger.records import Envelope, format_time, parse_envelope
from node import clock
from node.application import Application
from node.authoring import complete_record, sign_envelope
from node.peers import PeerSet

log = logging.getLogger("comity.privacy")

BODIES = "/p2p/v1/bodies"
IDS_PER_REQUEST_MAX = 100
RECORDS_PER_PURGE_MAX = 100
PURGE_RETRY_S = 60.0
VIOLATION_TYPE = "body_violation"
PURGE_TYPE = "body_purge"


@dataclass
class BodyExchange:
    """The node's side of private bodies (one per ``Node``)."""

    app: Application
    peers: PeerSet
    key: KeySigner
    state: str
    fault: Callable[[str], None]
    submit: Callable[[Envelope], object]  # the node's own records, through admission
    #: How often the kept bodies are scanned for ended retention (each scan reads
    #: every body note once).
    purge_every_s: float = 30.0
    #: An observer node (docs/OPERATIONS.md, "Observer nodes"): it fetches its own
    #: state's bodies from its state's validator too, and signs no record.
    observer: bool = False
    #: Bodies named in a purge record not yet committed, by when it was submitted.
    _purging: dict[str, float] = field(default_factory=dict)
    _last_scan: float = float("-inf")

    # --- sending -------------------------------------------------------------------

    def send(self, envelope: Envelope) -> None:
        """Push ``envelope``'s body to the other parties' nodes, never to another."""
        if envelope.body is None:
            return
        item = {"body": {"id": envelope.id, "private": envelope.body}}
        size = len(envelope.leaf) + 256
        for state in envelope.record["parties"]:
            peer = self.peers.peers.get(state)
            if state != self.state and peer is not None:
                self.peers.send_to(peer, item, size, gossip=True)

    # --- receiving -----------------------------------------------------------------

    def _sender_state(self, sender: str) -> str | None:
        """The state whose node ``sender`` is: a validator's, or the member state an
        admitted observer is a party node for (a foreign observer: None)."""
        height = self.app.height + 1
        for h in (height, height + 1):
            for validator in self.app.state.validators(h):
                if validator.pubkey == sender:
                    return validator.state
        return self.app.state.observer_party_state(sender)

    def _header(self, record_id: str, pending: Callable[[str], Envelope | None]) -> Envelope | None:
        found = pending(record_id)
        if found is not None:
            return found
        if self.app.store.has_record(record_id):
            return self.app.load_envelope(record_id)
        return None

    def receive(self, sender: str, item: Any, pending: Callable[[str], Envelope | None]) -> None:
        """One pushed body from peer ``sender`` (a node key)."""
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            self.fault("body item malformed")
            return
        try:
            body = parse_body(item.get("private"), max_bytes=self.app.params.max_record_bytes)
        except ClientError:
            self.fault("body item malformed")
            return
        header = self._header(item["id"], pending)
        if header is None:
            # Its header did not reach us (dropped from a full share): kept aside,
            # bounded, and judged like any body once the header is here.
            state = self._sender_state(sender)
            if state is not None:
                self.app.orphans.put(item["id"], body, state)
            return
        reason = self._refusal(sender, header, body)
        if reason is not None:
            self.fault(reason)
            return
        if self.app.store.has_record(header.id):
            self._store_late(header.with_body(body))
        else:
            self.app.bodies.put(header.id, body)

    def _refusal(self, sender: str, header: Envelope, body: dict[str, Any]) -> str | None:
        if not is_private(header.record) or not self.app.is_party(header):
            return "body sent to a non-party"
        if self._sender_state(sender) not in header.record["parties"]:
            return "body sent by a non-party"
        try:
            check_body(header.record, body)
        except ClientError:
            return "body does not match its commitment"
        return None

    def _store_late(self, envelope: Envelope) -> None:
        self._store_late_batch([envelope])

    def _store_late_batch(self, envelopes: list[Envelope]) -> int:
        """Bodies that came after their headers committed, judged and stored in one
        synced write; returns how many were stored."""
        judged: list[tuple[Envelope, bool]] = []
        for envelope in envelopes:
            note = self.app.store.body_note(envelope.id)
            if note is None or note.get("status") != "wanted":
                continue  # kept, void or purged already: a copy changes nothing
            try:
                self.app.check_late_body(envelope)
            except ClientError as exc:
                self.app.voided.append((envelope.id, exc))
                judged.append((envelope, False))
            else:
                judged.append((envelope, True))
        if judged:
            self.app.store.put_bodies(judged)
        return len(judged)

    def serve(self, sender: str, payload: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """``/p2p/v1/bodies``: the bodies a party's node asks for."""
        ids = payload.get("ids")
        if (
            not isinstance(ids, list)
            or not 1 <= len(ids) <= IDS_PER_REQUEST_MAX
            or not all(isinstance(i, str) and len(i) == 64 for i in ids)
        ):
            self.fault("body request malformed")
            return {"error": {"code": "bad_request", "message": "ids: 1-100 record ids"}}, 400
        state = self._sender_state(sender)
        bodies: dict[str, Any] = {}
        for record_id in ids:
            if not self.app.store.has_record(record_id):
                continue
            header = self.app.load_envelope(record_id)
            if not is_private(header.record) or state not in header.record["parties"]:
                self.fault("non-party asked for a body")
                return {
                    "error": {"code": "not_a_party", "message": "bodies go to parties only"}
                }, 403
            held = self.app.load_content(record_id)
            if held.body is not None:
                bodies[record_id] = held.body
        return {"bodies": bodies}, 200

    # --- fetching what is missing ----------------------------------------------------

    async def fetch_wanted(self) -> int:
        """Ask the other parties' nodes for the committed bodies this node lacks."""
        wanted = self.app.store.body_notes("wanted", limit=IDS_PER_REQUEST_MAX)
        by_state: dict[str, list[str]] = {}
        for record_id in wanted:
            for state in self.app.load_envelope(record_id).record["parties"]:
                if (state != self.state or self.observer) and state in self.peers.peers:
                    by_state.setdefault(state, []).append(record_id)
        got = 0
        for state, ids in by_state.items():
            ids = [i for i in ids if self.app.store.body_note(i) == {"status": "wanted"}]
            if ids:
                got += await self._fetch_from(state, ids)
        return got

    async def _fetch_from(self, state: str, ids: list[str]) -> int:
        peer = self.peers.peers[state]
        try:
            reply = await self.peers.request(peer, BODIES, {"ids": ids})
        except PeerFault as exc:
            log.info("bodies from %s not fetched: %s", state, exc)
            return 0
        bodies = reply.get("bodies")
        if not isinstance(bodies, dict):
            self.fault("body reply malformed")
            return 0
        late = []
        for record_id in ids:
            if record_id not in bodies:
                continue
            try:
                body = parse_body(bodies[record_id], max_bytes=self.app.params.max_record_bytes)
            except ClientError:
                self.fault("body item malformed")
                continue
            header = self.app.load_envelope(record_id)
            reason = self._refusal(peer.node_key, header, body)
            if reason is not None:
                self.fault(reason)
                continue
            late.append(header.with_body(body))
        return self._store_late_batch(late)

    # --- records this node signs -----------------------------------------------------

    def _sign(self, record: dict[str, Any]) -> Envelope:
        name = self.app.state.members[self.state].name
        record = complete_record(
            {**record, "actor": {"state": self.state, "agency": f"{name} validator node"}},
            chain_id=self.app.chain_id,
        )
        return parse_envelope(
            sign_envelope(self.key, record), max_record_bytes=self.app.params.max_record_bytes
        )

    def report_voided(self) -> None:
        """A ``body_violation`` record for each committed body found to break a rule
        (an observer only logs them: its state's validator reports them)."""
        voided, self.app.voided = self.app.voided, []
        if self.observer:
            for record_id, exc in voided:
                log.warning("committed body of %s breaks %s (not reported)", record_id, exc.code)
            return
        for record_id, exc in voided:
            record = {
                "type": VIOLATION_TYPE,
                "refs": [record_id],
                "rule": exc.code,
                "field": exc.field or "record",
            }
            self._submit(self._sign(record), "body violation")

    def purge_due(self, monotonic_s: float) -> None:
        """A ``body_purge`` record for the bodies whose retention has ended (at most
        one scan every ``purge_every_s``; ids already in a pending purge are skipped)."""
        if self.observer or monotonic_s - self._last_scan < self.purge_every_s:
            return  # an observer's copies go with its state's committed purge records
        self._last_scan = monotonic_s
        # A purge still pending after a while was dropped (its block refused it):
        # name its bodies again.
        stale = monotonic_s - PURGE_RETRY_S
        self._purging = {rid: t for rid, t in self._purging.items() if t > stale}
        # Due by this node's clock; a block whose time is earlier refuses the record
        # (retention_not_ended) and the purge is named again after PURGE_RETRY_S.
        now_ms = clock.now_ms()
        limit = RECORDS_PER_PURGE_MAX + len(self._purging)
        due = [
            record_id
            for record_id in self.app.store.bodies_due(now_ms, limit=limit)
            if record_id not in self._purging
        ][:RECORDS_PER_PURGE_MAX]
        if due:
            self._purging.update(dict.fromkeys(due, monotonic_s))
            self._submit(self._sign({"type": PURGE_TYPE, "refs": due}), "purge")

    def _submit(self, envelope: Envelope, what: str) -> None:
        try:
            self.submit(envelope)
        except ClientError as exc:
            log.info("%s record not submitted: %s", what, exc)
            if envelope.type == PURGE_TYPE:
                for record_id in envelope.record["refs"]:
                    self._purging.pop(record_id, None)

    def committed(self, envelopes: tuple[Envelope, ...]) -> None:
        """After a commit: erase the bodies our own committed purge records name."""
        for envelope in envelopes:
            if envelope.type != PURGE_TYPE or envelope.actor_state != self.state:
                continue
            for record_id in envelope.record["refs"]:
                self._purging.pop(record_id, None)
                held = self.app.load_content(record_id)
                body = self.app.store.get_body(record_id)
                if body is not None:
                    self.app.store.purge_body(
                        held.with_body(body), self.state, format_time(clock.utcnow())
                    )
                    log.info("purged the body of %s (retention ended)", record_id)
