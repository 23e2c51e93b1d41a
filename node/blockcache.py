"""The driver's cache of proposed blocks, bounded against Byzantine proposers.

Theory of operation
-------------------
The engine decides on block hashes; the driver must hold the block behind a
hash to validate it, to send it with its proposal and to commit it. Every
block here came from one of three places, and nothing else gets in (finding
C3: junk attached to unsigned votes once filled the cache and stopped the
chain):

* built by this node (``Source.own``);
* attached to a proposal signed by the proposer of its height and round, at
  most ``CACHE_ROUNDS_AHEAD`` rounds ahead (the driver checks that before it
  calls ``put``);
* fetched by hash because a verified proposal, a pending validation or a
  decision named that hash (``wanted``).

Each block is kept with its origin, ``Meta`` = (height, round, proposer node
key). A proposer may hold ``PROPOSER_BLOCKS_MAX`` blocks beyond those the
engine still needs (its lock, its valid value, a block it waits to validate,
our own): a Byzantine proposer signing a block for every round it leads only
evicts its own older ones. ``block_cache_max`` is a backstop above what the
quotas allow; if it is ever reached, the block farthest ahead goes first,
and a needed block is never evicted.
"""

from __future__ import annotations

from collections.abc import Iterator

from node.application import Block

#: Blocks cached per proposer key beyond those the engine still needs.
PROPOSER_BLOCKS_MAX = 4
#: Rounds ahead of our current round for which a proposal's block is cached.
CACHE_ROUNDS_AHEAD = 8

#: Where a block came from: (height, round, proposer node key); round -1 and an
#: empty key for a block fetched by hash with no proposal seen.
Meta = tuple[int, int, str]


def block_cache_max(validators: int) -> int:
    """A backstop on the block cache: every proposer's quota at two heights, plus
    the blocks the engine needs. Quotas keep it well below this."""
    return PROPOSER_BLOCKS_MAX * 2 * (validators + 1) + 8


class BlockCache:
    """Proposed blocks by hash, their origins, and the hashes we still want."""

    def __init__(self, own_key: str) -> None:
        self.own_key = own_key
        self._blocks: dict[str, Block] = {}
        self.meta: dict[str, Meta] = {}
        #: Hashes named by a verified proposal whose block we lack.
        self.wanted: dict[str, Meta] = {}
        self.refused = 0

    def __contains__(self, block_hash: object) -> bool:
        return block_hash in self._blocks

    def __len__(self) -> int:
        return len(self._blocks)

    def __iter__(self) -> Iterator[str]:
        return iter(self._blocks)

    def get(self, block_hash: str) -> Block | None:
        return self._blocks.get(block_hash)

    def origin(self, block_hash: str) -> Meta | None:
        """Where a cached or wanted block came from."""
        return self.meta.get(block_hash) or self.wanted.get(block_hash)

    def put(self, block: Block, meta: Meta, *, protected: set[str], validators: int) -> bool:
        """Cache ``block``; False if it was refused (only when every cached block is
        one the engine needs and the backstop is reached)."""
        if block.hash in self._blocks:
            return True
        protected = protected | {h for h, m in self.meta.items() if m[2] == self.own_key}
        proposer = meta[2]
        if proposer and proposer != self.own_key:
            theirs = sorted(
                (m[0], m[1], h)
                for h, m in self.meta.items()
                if m[2] == proposer and h not in protected
            )
            while len(theirs) >= PROPOSER_BLOCKS_MAX:  # its oldest rounds go first
                self.drop(theirs.pop(0)[2])
        if len(self._blocks) >= block_cache_max(validators):
            evictable = sorted((m[0], m[1], h) for h, m in self.meta.items() if h not in protected)
            if not evictable:
                self.refused += 1
                return False
            self.drop(evictable[-1][2])  # the farthest ahead
        self._blocks[block.hash] = block
        self.meta[block.hash] = meta
        self.wanted.pop(block.hash, None)
        return True

    def want(self, block_hash: str, meta: Meta, validators: int) -> bool:
        """Remember a hash a verified proposal named; True if it is new (fetch it)."""
        if block_hash in self.wanted or block_hash in self._blocks:
            return False
        if len(self.wanted) >= block_cache_max(validators):
            self.wanted.pop(next(iter(self.wanted)))
        self.wanted[block_hash] = meta
        return True

    def drop(self, block_hash: str) -> None:
        self._blocks.pop(block_hash, None)
        self.meta.pop(block_hash, None)

    def forget_through(self, height: int) -> None:
        """Drop every block and wanted hash at or below ``height`` (committed)."""
        for stale in [h for h, b in self._blocks.items() if b.height <= height]:
            self.drop(stale)
        self.wanted = {h: m for h, m in self.wanted.items() if m[0] > height}
