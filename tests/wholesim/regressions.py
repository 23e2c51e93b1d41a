"""The bugs of the review of b40cc0b, put back for the negative controls.

Each patcher restores, for one test, the behaviour a finding described, so the
whole-node campaign of the matching Byzantine class must find a violation
again (tests/wholesim/test_wholesim.py). They are short re-statements of the
old logic, not copies of whole functions: just enough to undo the fix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import pytest

from ledger import store as store_module
from ledger.errors import BodyMismatch, ChainError
from ledger.records import Envelope
from node.application import Application, Block
from node.driver import Driver, PeerMessage
from node.inbound import Inbound
from node.sync import BlockSync

Patcher = Callable[[pytest.MonkeyPatch], None]


def c1_rebuild_by_id(monkeypatch: pytest.MonkeyPatch) -> None:
    """C1: rebuild a compact proposal from whatever envelope of the id is pending, and
    judge a body that does not match its header as an invalid block."""
    monkeypatch.setattr(Inbound, "_pending", lambda self, rid, leaf: self.mempool.get(rid))
    validate = Application.validate_block

    def body_is_block(self: Application, block: Block, *, now: datetime | None) -> None:
        try:
            validate(self, block, now=now)
        except BodyMismatch as exc:
            raise ChainError(str(exc)) from exc

    monkeypatch.setattr(Application, "validate_block", body_is_block)


def c2_repeated_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """C2: a block may hold one record twice (ids not checked in the block)."""

    def records(
        self: Application,
        envelopes: Sequence[Envelope],
        block_time: datetime,
        *,
        live: bool = True,
    ) -> None:
        seen: set[Any] = set()
        context = self.acts.with_pending(())
        for envelope in envelopes:
            key = (envelope.signer, str(envelope.record["nonce"]))
            if key in seen:
                raise ChainError("block reuses nonce")
            seen.add(key)
            context.push(self.check_record(envelope, block_time, context, live=live))

    monkeypatch.setattr(Application, "_check_records", records)
    monkeypatch.setattr(store_module, "_check_unique", lambda envelopes: None)


def c3_cache_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    """C3: cache a block attached to any message, before any check, in a cache that
    refuses new blocks (its own included) once 64 are held above the height."""

    def cache(self: Driver, block: Block, meta: tuple[int, int, str] = (0, 0, "")) -> None:
        if block.hash in self.blocks:
            return
        if len(self.blocks) >= 64:
            self.blocks.forget_through(self.app.height)
            if len(self.blocks) >= 64:
                return
        self.blocks.put(block, meta, protected=set(), validators=10**6)  # no quota: old

    async def on_message(self: Driver, event: PeerMessage) -> None:
        msg, block = event.msg, event.block
        if (
            block is not None
            and block.hash == msg.block_hash
            and self.app.height < block.height <= self.app.height + 2
        ):
            cache(self, block)
        await self._maybe_enter()
        await self._step(lambda r: r.on_message(msg))
        if block is not None and block.hash in self._awaiting:
            await self._validate(block.hash)

    monkeypatch.setattr(Driver, "_cache_block", cache)
    monkeypatch.setattr(Driver, "_on_peer_message", on_message)


def c4_believe_claims(monkeypatch: pytest.MonkeyPatch) -> None:
    """C4: a peer's claimed height decides: above ours, do not vote, and sync from it."""

    def decided(self: BlockSync, height: int) -> bool:
        return any(p.stats.height >= height + 1 for p in self.peers.peers.values())

    monkeypatch.setattr(BlockSync, "decided_elsewhere", decided)
    monkeypatch.setattr(
        BlockSync, "_proves_next", lambda self, peer, proof, height: peer.stats.height > height
    )


def c4_sync_stops_at_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """The C4 ``break``: sync tries one peer a poll and never penalises it; a block is
    fetched from its proposer only."""
    sync_blocks = BlockSync._sync_blocks

    async def once(self: BlockSync, peer: Any) -> bool:
        await sync_blocks(self, peer)
        return True

    fetch = BlockSync.fetch_block

    def from_proposer(self: BlockSync, block_hash: str, height: int, prefer: str | None) -> None:
        if prefer is not None:
            fetch(self, block_hash, height, prefer)

    monkeypatch.setattr(BlockSync, "_sync_from", once)
    monkeypatch.setattr(BlockSync, "fetch_block", from_proposer)


#: Byzantine class -> the finding it targets and the patcher that puts its bug back.
REINTRODUCE: dict[str, tuple[str, Patcher]] = {
    "conflicting_envelopes": ("C1", c1_rebuild_by_id),
    "duplicate_record": ("C2", c2_repeated_ids),
    "junk_blocks": ("C3", c3_cache_anything),
    "lying_heights": ("C4", c4_believe_claims),
    "withhold": ("C4", c4_sync_stops_at_first),
}
