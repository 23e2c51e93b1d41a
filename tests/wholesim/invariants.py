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
  byte is hostile, and must be refused with a 4xx).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from ledger.audit.chain import AuditFailure, ChainVerifier
from ledger.block import CommitCertificate
from ledger.store import Store
from node import queries
from node.application import Block
from node.blockcache import block_cache_max
from node.driver import EVIDENCE_MAX
from node.mempool import GENERAL
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
)


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
