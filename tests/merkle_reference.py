"""A naive, recursive RFC 6962 §2.1 reference used only by the tests.

Each function transcribes the RFC's definition literally over a list of leaf
inputs, so it is slow (it rehashes whole subtrees) and obviously right. The
production log in ledger/merkle.py is checked against it. It deliberately
shares no code with ledger/merkle.py, not even the hash helpers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def _largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962 §2.1: the Merkle Tree Hash of a list of leaf inputs."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = _largest_power_of_two_below(n)
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """RFC 6962 §2.1.1: PATH(m, D[n])."""
    n = len(leaves)
    if n == 1:
        return []
    k = _largest_power_of_two_below(n)
    if m < k:
        return [*path(m, leaves[:k]), mth(leaves[k:])]
    return [*path(m - k, leaves[k:]), mth(leaves[:k])]


def subproof(m: int, leaves: Sequence[bytes], b: bool) -> list[bytes]:
    """RFC 6962 §2.1.2: SUBPROOF(m, D[n], b)."""
    n = len(leaves)
    if m == n:
        return [] if b else [mth(leaves)]
    k = _largest_power_of_two_below(n)
    if m <= k:
        return [*subproof(m, leaves[:k], b), mth(leaves[k:])]
    return [*subproof(m - k, leaves[k:], False), mth(leaves[:k])]


def proof(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """RFC 6962 §2.1.2: PROOF(m, D[n]) = SUBPROOF(m, D[n], true)."""
    return subproof(m, leaves, True)


def path_sides(m: int, n: int) -> list[str]:
    """Which side each PATH(m, D[n]) element sits on: "L" or "R" of the running hash.

    A verifier sees only this sequence (not the ranges), so two claims with
    the same sides are indistinguishable to it: the property tests use this
    to say exactly when a changed index or size must be rejected.
    """
    if n == 1:
        return []
    k = _largest_power_of_two_below(n)
    if m < k:
        return [*path_sides(m, k), "R"]
    return [*path_sides(m - k, n - k), "L"]


def subproof_sides(m: int, n: int, b: bool) -> list[str]:
    """Like path_sides for SUBPROOF(m, D[n], b); "seed" marks the sent old subtree."""
    if m == n:
        return [] if b else ["seed"]
    k = _largest_power_of_two_below(n)
    if m <= k:
        return [*subproof_sides(m, k, b), "R"]
    return [*subproof_sides(m - k, n - k, False), "L"]
