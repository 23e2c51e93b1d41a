"""Committed records that match several secondary indexes at once.

Theory of operation
-------------------
Each secondary index of the store (``ledger/keyspace.py``) lists its records
in commit order, keyed by leaf index, and ``Store.search`` can seek to the
first entry after any leaf. A record that matches every term of a query is a
leaf index present in every one of those lists. ``intersect`` leapfrogs: it
asks each list in turn for its first entry at or after a target leaf; an
entry past the target becomes the new target, and a target that every list
holds is a match.

Each round of seeks (one per term) moves past at least one entry of EVERY
list, so the cost is bounded by the shortest list, whatever the others hold.
That is the point: a state that floods one index (its own case, its own
custody events of a hash) cannot push a record another state made out of
reach, as long as one term names something the flooder cannot sign (the
other state's ``actor_state``). A ``SeekBudget`` still caps the work; a
caller learns from ``exhausted`` that its answer is incomplete.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ledger.errors import InvariantViolation
from ledger.store import Store

#: One index term: (index name, value), as ``Store.search`` takes them.
Term = tuple[str, str]


@dataclass
class SeekBudget:
    """How many index seeks a query may still make."""

    remaining: int
    exhausted: bool = False

    def take(self) -> bool:
        if self.remaining <= 0:
            self.exhausted = True
            return False
        self.remaining -= 1
        return True


def intersect(
    store: Store, terms: Sequence[Term], budget: SeekBudget, *, after_leaf: int | None = None
) -> Iterator[tuple[int, str]]:
    """(leaf_index, record_id) of records in every ``terms`` index, in commit order."""
    if not terms:
        raise InvariantViolation("intersect needs at least one term")
    target = 0 if after_leaf is None else after_leaf + 1
    agreed = 0
    turn = 0
    while budget.take():
        index, value = terms[turn]
        page = store.search(index, value, after_leaf=target - 1, limit=1)
        if not page:
            return
        leaf, record_id = page[0]
        if leaf == target:
            agreed += 1
        else:
            target, agreed = leaf, 1
        if agreed == len(terms):
            yield target, record_id
            target, agreed = target + 1, 0
        turn = (turn + 1) % len(terms)
