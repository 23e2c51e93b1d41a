"""The invariants of a whole-node run, checked as it happens and at its end.

* ``agreement``: one block hash per height over every honest node (checked at
  each commit, and over the stores at the end);
* ``audit``: every honest node's chain passes what ``comity verify`` checks
  (``ledger.audit.ChainVerifier`` over the blocks as ``GET /v1/blocks``
  serves them: links, certificates against the validator set replayed from
  the chain, signatures, the recomputed ledger root);
* ``double_sign``: no honest key signs two different votes (or proposals) for
  one (height, round, type), as seen on the wire, across crashes and restarts;
* ``liveness``: after GST, with at most f Byzantine nodes, every honest node
  commits a record submitted then within the bound (the scenario checks it);
* ``memory``: mempool (and each member state's part of it), block cache,
  inbox, peer queues, evidence, peer-fault counters, signature cache and P2P
  replay cache stay within their limits;
* ``replay``: an honest node accepts a signed P2P request at most once (a
  copy, by the network or by a Byzantine sender, is refused), per process:
  a restarted node's cache starts empty, as the process's does;
* ``inbox_fairness``: an honest validator's message is never turned away by
  a peer's inbox (each sender has its share, so a flood of one fills only
  its own);
* ``server_error``: a P2P request never makes a node answer 5xx (every peer
  byte is hostile, and must be refused with a 4xx);
* ``privacy``, ``integrity``, ``refused``: need to know (``Bodies`` below):
  bodies only at parties, a kept body is the committed one, and every body
  pushed against the rules or asked for by a non-party is refused and counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from ledger.audit.chain import AuditFailure, ChainVerifier
from ledger.block import CommitCertificate
from ledger.private import commitment, is_private
from ledger.records import Envelope
from ledger.store import Store
from node import queries
from node.application import Block
from node.blockcache import block_cache_max
from node.driver import EVIDENCE_MAX
from node.mempool import GENERAL
from node.privacy import BODIES
from node.runtime import PEER_FAULT_REASONS_MAX, Node
from node.wire import ReplayCache, WireRefusal, parse_request_headers

INVARIANTS = (
    "agreement",
    "audit",
    "double_sign",
    "liveness",
    "memory",
    "replay",
    "inbox_fairness",
    "server_error",
    "task_died",
    "privacy",
    "integrity",
    "refused",
)


#: The peer faults the body exchange counts (node/privacy.py), by what provokes them.
TO_NON_PARTY = "body sent to a non-party"
BY_NON_PARTY = "body sent by a non-party"
MISMATCH = "body does not match its commitment"
ASKED = "non-party asked for a body"
BODY_FAULTS = (TO_NON_PARTY, BY_NON_PARTY, MISMATCH, ASKED)


def body_fault(receiver: str, sender: str | None, header: dict[str, Any], body: Any) -> str | None:
    """The peer fault a pushed body must cost its sender at ``receiver`` (None: none),
    judged from the header alone, as docs/PRIVACY.md states the rule."""
    parties = header["parties"]
    if receiver not in parties:
        return TO_NON_PARTY
    if sender not in parties:
        return BY_NON_PARTY
    if not isinstance(body, dict) or commitment(body) != header["commitment"]:
        return MISMATCH
    return None


@dataclass
class Bodies:
    """The need-to-know invariants (docs/PRIVACY.md):

    * ``privacy``: no honest node that is not a party of a private act ever holds
      its body (in its store, with a note or without, or in its ``BodyPool``), is
      sent it by an honest node, or gives it to a non-party that asks;
    * ``integrity``: every body an honest party keeps as valid (its store's note
      ``kept``, or its ``BodyPool``) hashes to its header's commitment;
    * ``refused``: each body a Byzantine node pushes against the rules, and each
      request of a non-party for a body, is refused and counted as the peer fault
      it names. Per honest node and process, its ``peer_faults`` count of each
      reason is at least the pushes and requests it answered whose header it held
      committed when they came, and at most all that reached it; a request for
      the bodies of acts it holds committed is answered 403.
    """

    fail: Callable[[str, str], None]
    honest_keys: set[str]
    key_states: dict[str, str]  # node key -> member state
    headers: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: (state, incarnation, reason) -> [due for certain, at most due]
    due: dict[tuple[str, int, str], list[int]] = field(default_factory=dict)
    #: Each request in flight at an honest node (held, so its id is not reused): the
    #: faults it may cost and whether surely, and whether it asks for bodies.
    flight: dict[int, tuple[Any, list[tuple[str, bool]], bool]] = field(default_factory=dict)
    #: The last ``peer_faults`` count seen of each reason, by (state, incarnation).
    counted: dict[tuple[str, int, str], int] = field(default_factory=dict)

    def learn(self, envelope: Envelope) -> None:
        if is_private(envelope.record):
            self.headers[envelope.id] = envelope.record

    def _due(self, state: str, incarnation: int, reason: str) -> list[int]:
        return self.due.setdefault((state, incarnation, reason), [0, 0])

    # --- on the wire ------------------------------------------------------------------------

    def arrived(self, state: str, incarnation: int, request: Any, node: Node) -> None:
        """A request reaches an honest node: what it may cost its sender, and if surely."""
        path = request.url.path
        if path != BODIES and (path != "/p2p/v1/batch" or b'"body"' not in request.content):
            return
        try:
            sender = parse_request_headers(request.headers).sender
            payload = orjson.loads(request.content)
        except (WireRefusal, orjson.JSONDecodeError):
            return
        if not isinstance(payload, dict):
            return
        if path == BODIES:
            costs = self._asked(state, sender, payload, node)
        else:
            costs = self._pushed(state, sender, payload, node)
        for reason, _ in costs:
            self._due(state, incarnation, reason)[1] += 1
        if costs:
            self.flight[id(request)] = (request, costs, path == BODIES)

    def _pushed(
        self, state: str, sender: str, payload: dict[str, Any], node: Node
    ) -> list[tuple[str, bool]]:
        costs = []
        for item in payload.get("items") or []:
            body = item.get("body") if isinstance(item, dict) else None
            if not isinstance(body, dict) or not isinstance(body.get("id"), str):
                continue
            header = self.headers.get(body["id"])
            if header is None:
                continue
            reason = body_fault(state, self.key_states.get(sender), header, body.get("private"))
            if reason is None:
                continue
            if sender in self.honest_keys:
                kind = "integrity" if reason == MISMATCH else "privacy"
                self.fail(kind, f"honest {self.key_states[sender]} pushed {state} a body: {reason}")
            costs.append((reason, node.store.has_record(body["id"])))
        return costs

    def _asked(
        self, state: str, sender: str, payload: dict[str, Any], node: Node
    ) -> list[tuple[str, bool]]:
        asker = self.key_states.get(sender)
        ids = payload.get("ids")
        foreign = [
            i
            for i in (ids if isinstance(ids, list) else [])
            if isinstance(i, str) and i in self.headers and asker not in self.headers[i]["parties"]
        ]
        if not foreign or sender in self.honest_keys:
            return []
        return [(ASKED, any(node.store.has_record(i) for i in foreign))]

    def answered(self, state: str, incarnation: int, request: Any, status: int, node: Node) -> None:
        """The honest node answered: the faults it surely owes now, and its counts."""
        _, costs, asked = self.flight.pop(id(request), (request, [], False))
        for reason, certain in costs:
            if asked and certain and status != 403:
                self.fail("refused", f"{state} answered {status} to a non-party asking for bodies")
            if certain and status == (403 if asked else 200):
                self._due(state, incarnation, reason)[0] += 1
        if costs:
            self.check_counts(state, incarnation, node)
        self.pool(state, node)

    def check_counts(self, state: str, incarnation: int, node: Node) -> None:
        faults = node.peer_faults
        for reason in BODY_FAULTS:
            low, high = self.due.get((state, incarnation, reason), (0, 0))
            count = faults.get(reason, 0)
            self.counted[(state, incarnation, reason)] = count
            capped = reason not in faults and len(faults) >= PEER_FAULT_REASONS_MAX - 1
            if count < low and not capped:
                self.fail("refused", f"{state} counted {count} '{reason}', {low} were due")
            if count > high:
                self.fail("refused", f"{state} counted {count} '{reason}', at most {high} due")

    # --- what the nodes hold ----------------------------------------------------------------

    def pool(self, state: str, node: Node) -> None:
        """An honest node's ``BodyPool``: parties' bodies only, each the committed one."""
        for record_id, (body, _) in node.app.bodies._bodies.items():
            header = self.headers.get(record_id)
            if header is not None:
                self._held(state, record_id, header, body, "holds in its body pool")

    def _held(
        self, state: str, record_id: str, header: dict[str, Any], body: Any, where: str
    ) -> None:
        if state not in header["parties"]:
            self.fail("privacy", f"non-party {state} {where} the body of {record_id[:16]}")
        elif not isinstance(body, dict) or commitment(body) != header["commitment"]:
            self.fail("integrity", f"{state} {where} a body of {record_id[:16]} not committed")

    def committed(self, state: str, store: Store, envelopes: Iterable[Envelope]) -> None:
        for envelope in envelopes:
            self.learn(envelope)
            if is_private(envelope.record):
                self.stored(state, store, envelope.id, envelope.record)

    def stored(self, state: str, store: Store, record_id: str, header: dict[str, Any]) -> None:
        """An honest store's copy of a private act's body, if any."""
        note, body = store.body_note(record_id), store.get_body(record_id)
        if state not in header["parties"]:
            if note is not None or body is not None:
                self.fail("privacy", f"non-party {state} stores the body of {record_id[:16]}")
        elif note is not None and note.get("status") == "kept":
            self._held(state, record_id, header, body, "keeps as valid")

    def stores(self, stores: Iterable[tuple[str, Store]]) -> None:
        """At the end: every private act header of every honest store."""
        for state, store in stores:
            after: int | None = None
            while page := store.search("type", "private_act", after_leaf=after, limit=500):
                after = page[-1][0]
                for _, record_id in page:
                    raw = store.get_envelope_bytes(record_id)
                    if raw is not None:
                        header = orjson.loads(raw)["record"]
                        self.stored(state, store, record_id, header)


@dataclass
class Checker:
    genesis_json: dict[str, Any]
    honest_keys: set[str]
    violations: list[tuple[str, str]] = field(default_factory=list)
    decided: dict[int, str] = field(default_factory=dict)
    signed: dict[tuple[str, int, int, str], tuple[Any, ...]] = field(default_factory=dict)
    #: (receiver, its incarnation, sender, nonce) of every request an honest node accepted.
    accepted: set[tuple[str, int, str, str]] = field(default_factory=set)
    #: The largest per-state mempool share each honest node has had (a governance
    #: change may shrink it under records admitted before).
    state_share: dict[str, int] = field(default_factory=dict)
    #: Node key -> member state, for the need-to-know invariants (``Bodies``).
    key_states: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.bodies = Bodies(self.fail, self.honest_keys, self.key_states)

    def fail(self, kind: str, detail: str) -> None:
        if len(self.violations) < 20:
            self.violations.append((kind, detail))

    @property
    def first(self) -> tuple[str, str] | None:
        return self.violations[0] if self.violations else None

    # --- as it happens ----------------------------------------------------------------------

    def on_commit(self, state: str, block: Block, certificate: CommitCertificate) -> None:
        known = self.decided.setdefault(block.height, block.hash)
        if known != block.hash:
            self.fail(
                "agreement",
                f"{state} committed {block.hash[:16]} at height "
                f"{block.height}, another honest node {known[:16]}",
            )

    def tap(self, state: str, body: bytes) -> None:
        """Every request body an honest node sends: remember each message it signed."""
        if b'"msg"' not in body:
            return
        items = orjson.loads(body).get("items", [])
        for item in items:
            msg = item.get("msg") if isinstance(item, dict) else None
            if isinstance(msg, dict):
                self._signed(state, msg)

    def _signed(self, state: str, msg: dict[str, Any]) -> None:
        if msg.get("kind") == "proposal":
            signer, kind, what = (
                msg["proposer"],
                "proposal",
                (msg["block_hash"], msg["valid_round"]),
            )
        else:
            signer, kind, what = msg["validator"], msg["type"], (msg["block_hash"], None)
        if signer not in self.honest_keys:
            return
        slot = (signer, msg["height"], msg["round"], kind)
        known = self.signed.setdefault(slot, what)
        if known != what:
            self.fail(
                "double_sign",
                f"{state} signed two {kind}s at height {msg['height']} "
                f"round {msg['round']}: {known} and {what}",
            )

    def on_server_error(self, state: str, path: str, status: int) -> None:
        self.fail("server_error", f"{state} answered {status} on {path}")

    def answered(self, state: str, incarnation: int, request: Any, status: int) -> None:
        """An honest node answered ``request``: a second 2xx for one nonce is a replay."""
        if not 200 <= status < 300:
            return
        try:
            claim = parse_request_headers(request.headers)
        except WireRefusal:
            return
        key = (state, incarnation, claim.sender, claim.nonce)
        if key in self.accepted:
            self.fail(
                "replay",
                f"{state} accepted request {claim.nonce[:16]} from {claim.sender[:16]} "
                f"on {request.url.path} twice",
            )
        self.accepted.add(key)

    def refused(self, state: str, sender: str) -> None:
        if sender in self.honest_keys:
            self.fail("inbox_fairness", f"{state} refused an event of honest {sender[:16]}")

    def mempool_shares(self, state: str, node: Node) -> None:
        """No member state holds more of an honest node's general lane than its share."""
        mempool = node.mempool
        share = self.state_share[state] = max(
            self.state_share.get(state, 0), mempool.state_max_records
        )
        for member, records in mempool._lanes[GENERAL].items():
            if len(records) > share:
                self.fail(
                    "memory",
                    f"{state}: mempool holds {len(records)} records of {member}, "
                    f"over its share {share}",
                )

    def memory(self, state: str, node: Node, replay: ReplayCache | None = None) -> None:
        if node.failed is not None:  # a background task died: the node is broken
            self.fail("task_died", f"{state}: {node.failed}")
        limits = node.config.limits
        sizes = {
            "mempool": (len(node.mempool), node.mempool.max_records),
            "block cache": (
                len(node.driver.blocks),
                block_cache_max(len(node.app.state.validators(node.app.height + 1))),
            ),
            "wanted blocks": (
                len(node.driver.blocks.wanted),
                block_cache_max(len(node.app.state.validators(node.app.height + 1))),
            ),
            "inbox": (node.driver.inbox.qsize(), limits.inbox_events_max),
            "evidence": (len(node.driver.evidence), EVIDENCE_MAX),
            "peer_faults keys": (len(node.peer_faults), PEER_FAULT_REASONS_MAX),
            "signature cache": (len(node.app.signatures._seen), node.app.signatures._max_entries),
        }
        if replay is not None:
            sizes["replay cache"] = (len(replay), replay.total_max)
        self.mempool_shares(state, node)
        for peer in node.peers.peers.values():
            sizes[f"queue to {peer.state}"] = (
                peer.queue.qsize() + peer.gossip.qsize(),
                2 * limits.peer_queue_messages_max,
            )
        for what, (size, limit) in sizes.items():
            if size > limit:
                self.fail("memory", f"{state}: {what} holds {size}, over its limit {limit}")

    # --- at the end -------------------------------------------------------------------------

    def stores(self, stores: Iterable[tuple[str, Store]]) -> None:
        hashes: dict[int, tuple[str, str]] = {}
        stores = list(stores)
        self.bodies.stores(stores)
        for state, store in stores:
            verifier = ChainVerifier(self.genesis_json)
            for height in range(1, store.height + 1):
                block = queries.block_view(store, height, envelopes=True)
                first = hashes.setdefault(height, (state, block["hash"]))
                if first[1] != block["hash"]:
                    self.fail(
                        "agreement",
                        f"height {height}: {first[0]} holds "
                        f"{first[1][:16]}, {state} {block['hash'][:16]}",
                    )
                try:
                    verifier.feed(block)
                except AuditFailure as exc:
                    self.fail(
                        "audit", f"{state} height {exc.height}: {exc.code}: {str(exc.detail)[:120]}"
                    )
                    break
