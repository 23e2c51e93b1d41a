"""The ledger-wide RFC 6962 Merkle log: append, roots, proofs and verifiers.

Theory of operation
-------------------
The ledger log is the Merkle Tree Hash (MTH) of RFC 6962 §2.1 over every
committed envelope in commit order. A leaf hash is SHA-256(0x00 || leaf), an
inner node SHA-256(0x01 || left || right), and the empty tree hashes to
SHA-256(""). MTH splits a list of n > 1 leaves at k, the largest power of two
smaller than n, so every node of the tree of size n covers a range [b, e) of
leaves that is either

* perfect: e - b is a power of two and b a multiple of it. Its hash never
  changes once leaf e - 1 exists; or
* on the right edge: e = n and b is a multiple of a power of two >= e - b.
  Its hash changes as the log grows.

Storage. The log stores only perfect nodes, keyed (level, index): node (L, i)
is the MTH of leaves [i * 2^L, (i + 1) * 2^L). Appending a leaf writes its
hash at level 0 and every perfect node it completes (on average one more per
leaf), so the store is append-only and each node is written exactly once, in
the write batch of the block that completes it. A right-edge node [b, n) is
the right fold of the perfect nodes it decomposes into (one per set bit of
n - b, largest first), because MTH's split at k peels off exactly that
largest perfect subtree. Roots and proofs therefore cost O(log n) reads and
never rebuild the tree.

Proofs. Working out which nodes a proof needs (inclusion_path,
consistency_path) is pure arithmetic returning NodeRange values; fetching
their hashes (inclusion_proof, consistency_proof) is separate, in the manner
of transparency-dev/merkle's proof.Inclusion.

Verification. root_from_inclusion, verify_inclusion and verify_consistency
use only hashlib and ledger.errors so that an auditor can read them alone.
They do not reuse the path code: they follow the bit arithmetic of RFC 9162
§2.1.3.2 / §2.1.4.2 (the verification algorithms for RFC 6962's proofs), so
the tests can check one half against the other.

Errors: local versus remote. The two halves fail differently on purpose.
The builder (appending, roots, paths, proofs) is only ever given this node's
own sizes, indexes and hashes: its callers (ledger/store.py, the API's
queries) check a client's numbers first and answer with a ``ClientError`` or
``NotFound``. An impossible argument reaching the builder is therefore a bug
here, and it raises ``InvariantViolation``; a node missing from, or the wrong
size in, the store is ``StoreError``. The verifiers take what someone else
sent (a proof, a size, a root), so any fault there is ``ProofError``
(``RootMismatchError`` carries both roots): a remote party's bad proof, which
an auditor reports and a node never crashes on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple, Protocol

from ledger.errors import InvariantViolation, ProofError, RootMismatchError, StoreError

HASH_SIZE: Final = 32
# CT and transparency-dev use uint64 sizes and indexes; anything larger is a
# malformed request rather than a big log.
MAX_TREE_SIZE: Final = 2**64 - 1
_LEAF_PREFIX: Final = b"\x00"
_NODE_PREFIX: Final = b"\x01"

EMPTY_ROOT: Final[bytes] = hashlib.sha256(b"").digest()

NodeKey = tuple[int, int]
"""(level, index) of a perfect node: MTH of leaves [index * 2^level, (index + 1) * 2^level)."""


def leaf_hash(leaf: bytes) -> bytes:
    """RFC 6962 §2.1: MTH({d(0)}) = SHA-256(0x00 || d(0))."""
    return hashlib.sha256(_LEAF_PREFIX + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 §2.1: SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


class HashReader(Protocol):
    def get_node(self, level: int, index: int) -> bytes:
        """The stored hash of perfect node (level, index); KeyError or StoreError if absent."""
        ...


@dataclass(frozen=True, slots=True)
class NodeRange:
    """The node of an RFC 6962 tree that covers leaves [begin, end).

    Perfect when end - begin is a power of two; otherwise a right-edge node
    whose hash is rebuilt from ``perfect_nodes()``.
    """

    begin: int
    end: int

    def __post_init__(self) -> None:
        width = self.end - self.begin
        if self.begin < 0 or width < 1:
            raise InvariantViolation(f"node range [{self.begin}, {self.end}) is empty or negative")
        # RFC 6962 §2.1 only ever splits at multiples of powers of two, so a
        # node starts at a multiple of the smallest power of two >= its width.
        # Any other range has no MTH in the log and would fold to nonsense.
        span = 1 << (width - 1).bit_length()
        if self.begin % span:
            raise InvariantViolation(
                f"node range [{self.begin}, {self.end}) is not a node of any "
                f"RFC 6962 tree: begin is not a multiple of {span}"
            )

    @property
    def is_perfect(self) -> bool:
        width = self.end - self.begin
        return width & (width - 1) == 0

    def perfect_nodes(self) -> list[NodeKey]:
        """The perfect nodes covering the range, left to right (largest first)."""
        keys: list[NodeKey] = []
        begin, width = self.begin, self.end - self.begin
        for level in range(width.bit_length() - 1, -1, -1):
            if width >> level & 1:
                keys.append((level, begin >> level))
                begin += 1 << level
        return keys


class MemoryHashStore:
    """A dict-backed HashReader for tests and the in-memory ledger store."""

    def __init__(self) -> None:
        self._nodes: dict[NodeKey, bytes] = {}

    def get_node(self, level: int, index: int) -> bytes:
        return self._nodes[(level, index)]

    def put_nodes(self, nodes: Mapping[NodeKey, bytes]) -> None:
        # Check everything before writing anything, so a refused batch leaves
        # the store as it was, like a LevelDB write batch would.
        for key, value in nodes.items():
            _require_hash_size(value, f"node {key}")
            # Perfect nodes are immutable: rewriting one with another value
            # means two different logs were appended to the same store.
            old = self._nodes.get(key, value)
            if old != value:
                raise StoreError(f"Merkle node {key} already stored with a different hash")
        self._nodes.update(nodes)

    def __len__(self) -> int:
        return len(self._nodes)


class _PendingOverlay:
    """Reads nodes created by the current append before they are written."""

    def __init__(self, pending: Mapping[NodeKey, bytes], reader: HashReader) -> None:
        self._pending = pending
        self._reader = reader

    def get_node(self, level: int, index: int) -> bytes:
        value = self._pending.get((level, index))
        return value if value is not None else self._reader.get_node(level, index)


# --- reading the store -------------------------------------------------------


def _require_hash_size(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise InvariantViolation(f"{what} has {len(value)} bytes, expected {HASH_SIZE}")


def _require_size(name: str, value: int) -> None:
    if not 0 <= value <= MAX_TREE_SIZE:
        raise InvariantViolation(f"{name} {value} is outside [0, 2^64 - 1]")


def _fetch(reader: HashReader, level: int, index: int) -> bytes:
    try:
        value = reader.get_node(level, index)
    except KeyError as exc:
        raise StoreError(
            f"Merkle node (level {level}, index {index}) is missing: the log "
            f"is shorter than requested or the store is corrupt"
        ) from exc
    if len(value) != HASH_SIZE:
        raise StoreError(
            f"Merkle node (level {level}, index {index}) has {len(value)} "
            f"bytes, expected {HASH_SIZE}: the store is corrupt"
        )
    return value


def range_hash(node: NodeRange, reader: HashReader) -> bytes:
    """MTH of the node's leaves, from at most log2(width) + 1 perfect nodes."""
    keys = node.perfect_nodes()
    # Right fold: MTH(D[b:e]) = node_hash(largest perfect part, MTH(rest)),
    # RFC 6962 §2.1 with k = the width of the first perfect part.
    calculated = _fetch(reader, *keys[-1])
    for level, index in reversed(keys[:-1]):
        calculated = node_hash(_fetch(reader, level, index), calculated)
    return calculated


def root(size: int, reader: HashReader) -> bytes:
    """MTH of the first ``size`` leaves; any size up to the log's current size."""
    _require_size("size", size)
    if size == 0:
        return EMPTY_ROOT
    return range_hash(NodeRange(0, size), reader)


# --- appending ---------------------------------------------------------------


class Appended(NamedTuple):
    """What appending leaves gives: the new perfect nodes, the new size and root."""

    nodes: dict[NodeKey, bytes]
    size: int
    root: bytes


def append_leaves(size: int, leaf_hashes: Sequence[bytes], reader: HashReader) -> Appended:
    """Append leaf hashes to a log of ``size`` leaves readable through ``reader``.

    Returns (new_nodes, new_size, new_root). new_nodes holds every perfect node
    the batch completes, level-0 leaf hashes included; the caller writes them
    atomically with its block. Costs O(k + log n): the only old nodes read are
    left siblings on the old tree's right edge, at most one per level.
    """
    _require_size("size", size)
    new_size = size + len(leaf_hashes)
    _require_size("new size", new_size)
    new_nodes: dict[NodeKey, bytes] = {}
    view = _PendingOverlay(new_nodes, reader)
    for index, value in enumerate(leaf_hashes, start=size):
        _require_hash_size(value, f"leaf hash {index}")
        level = 0
        new_nodes[(level, index)] = value
        # An odd index is a right child: writing it completes its parent.
        while index & 1:
            value = node_hash(_fetch(view, level, index - 1), value)
            level, index = level + 1, index >> 1
            new_nodes[(level, index)] = value
    return Appended(new_nodes, new_size, root(new_size, view))


# --- which nodes a proof needs (pure) -----------------------------------------


def _split(width: int) -> int:
    """k of RFC 6962 §2.1: the largest power of two smaller than width (> 1)."""
    return 1 << ((width - 1).bit_length() - 1)


def inclusion_path(index: int, size: int) -> list[NodeRange]:
    """The nodes of PATH(index, D[size]), RFC 6962 §2.1.1, leaf side first."""
    _require_size("size", size)
    if not 0 <= index < size:
        raise InvariantViolation(f"index {index} is not below size {size}")
    path: list[NodeRange] = []
    begin, end = 0, size
    # Walk down from the root, keeping the sibling of the half holding index.
    while end - begin > 1:
        mid = begin + _split(end - begin)
        if index < mid:
            path.append(NodeRange(mid, end))
            end = mid
        else:
            path.append(NodeRange(begin, mid))
            begin = mid
    path.reverse()
    return path


def consistency_path(size1: int, size2: int) -> list[NodeRange]:
    """The nodes of PROOF(size1, D[size2]), RFC 6962 §2.1.2, deepest first.

    Defined for 0 < size1 <= size2; equal sizes need no nodes.
    """
    _require_size("size2", size2)
    if not 0 < size1 <= size2:
        raise InvariantViolation(
            f"consistency needs 0 < size1 <= size2, got size1 {size1}, size2 {size2}"
        )
    path: list[NodeRange] = []
    begin, end = 0, size2
    # SUBPROOF(m, D[n], b): the flag b is "still on the left edge", where the
    # old root is known to the verifier and so is not sent.
    on_left_edge = True
    while end != size1:
        mid = begin + _split(end - begin)
        if size1 <= mid:
            path.append(NodeRange(mid, end))
            end = mid
        else:
            path.append(NodeRange(begin, mid))
            begin, on_left_edge = mid, False
    if not on_left_edge:
        path.append(NodeRange(begin, end))
    path.reverse()
    return path


def inclusion_proof(index: int, size: int, reader: HashReader) -> list[bytes]:
    """The RFC 6962 §2.1.1 audit path for leaf ``index`` in the tree of ``size``."""
    return [range_hash(node, reader) for node in inclusion_path(index, size)]


def consistency_proof(size1: int, size2: int, reader: HashReader) -> list[bytes]:
    """The RFC 6962 §2.1.2 consistency proof from tree size1 to tree size2."""
    return [range_hash(node, reader) for node in consistency_path(size1, size2)]


# --- verifiers: stdlib hashlib and ledger.errors only ------------------------


def _check_tree_size(name: str, value: int) -> None:
    if not 0 <= value <= MAX_TREE_SIZE:
        raise ProofError(f"{name} {value} is outside [0, 2^64 - 1]")


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} has {len(value)} bytes, expected {HASH_SIZE}")


def _check_proof_hashes(proof: Sequence[bytes]) -> None:
    for position, value in enumerate(proof):
        _check_hash(value, f"proof[{position}]")


def _path_shape(index: int, size: int) -> tuple[int, int]:
    """(inner, border): how the audit path of ``index`` in ``size`` splits.

    Below level ``inner`` the paths to ``index`` and to the last leaf differ,
    so every level has a sibling, on the side given by that bit of ``index``.
    From ``inner`` up the node is on the right edge: it has a left sibling
    where ``index`` has a 1 bit and is a lone left child, promoted unchanged
    by RFC 6962 §2.1, where it has a 0 bit.
    """
    inner = (index ^ (size - 1)).bit_length()
    return inner, (index >> inner).bit_count()


def _fold_path(seed: bytes, index: int, inner: int, proof: Sequence[bytes]) -> bytes:
    calculated = seed
    for level, sibling in enumerate(proof[:inner]):
        if index >> level & 1:
            calculated = node_hash(sibling, calculated)
        else:
            calculated = node_hash(calculated, sibling)
    for sibling in proof[inner:]:
        calculated = node_hash(sibling, calculated)
    return calculated


def root_from_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` places ``leaf_hash`` under, or ProofError.

    RFC 9162 §2.1.3.2, written as the inner/border split of the path.
    """
    _check_tree_size("size", size)
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not below size {size}")
    _check_hash(leaf_hash, "leaf hash")
    _check_proof_hashes(proof)
    inner, border = _path_shape(index, size)
    if len(proof) != inner + border:
        raise ProofError(
            f"proof has {len(proof)} hashes, expected {inner + border} "
            f"for index {index} in size {size}"
        )
    return _fold_path(leaf_hash, index, inner, proof)


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that leaf ``index`` of the tree of ``size`` and ``root`` is ``leaf_hash``."""
    _check_hash(root, "root")
    calculated = root_from_inclusion(leaf_hash, index, size, proof)
    if calculated != root:
        raise RootMismatchError(expected=root, calculated=calculated)


def roots_from_consistency(
    size1: int, size2: int, root1: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """The (old, new) roots a consistency proof for 0 < size1 < size2 leads to.

    The old tree ends with the perfect node at level L = trailing zeros of
    size1, index (size1 - 1) >> L, which is also a node of the new tree. The
    proof is that node's hash (omitted when size1 is a power of two: it is
    then root1, RFC 6962 §2.1.2's SUBPROOF(m, D[m], true) = {}) followed by its
    audit path at level L in the new tree. Left siblings on that path are the
    old tree's other perfect nodes, so folding only them rebuilds root1, and
    folding all of them rebuilds root2 (RFC 9162 §2.1.4.2).
    """
    level = (size1 & -size1).bit_length() - 1
    index = (size1 - 1) >> level
    inner, border = _path_shape(index, ((size2 - 1) >> level) + 1)
    seeded = index == 0
    expected = inner + border + (0 if seeded else 1)
    if len(proof) != expected:
        raise ProofError(
            f"proof has {len(proof)} hashes, expected {expected} for size1 "
            f"{size1} and size2 {size2}"
        )
    seed, path = (root1, proof) if seeded else (proof[0], proof[1:])
    calculated1 = calculated2 = seed
    for position, sibling in enumerate(path):
        if position >= inner or index >> position & 1:
            # A left sibling lies wholly in the old tree: it feeds both roots.
            calculated1 = node_hash(sibling, calculated1)
            calculated2 = node_hash(sibling, calculated2)
        else:
            # A right sibling covers leaves appended after size1.
            calculated2 = node_hash(calculated2, sibling)
    return calculated1, calculated2


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of size2 and root2 extends the tree of size1 and root1.

    RFC 6962 §2.1.2 defines consistency for 0 < size1 < size2; equal sizes
    are consistent with an empty proof exactly when the roots are equal.
    """
    _check_tree_size("size1", size1)
    _check_tree_size("size2", size2)
    if size1 > size2:
        raise ProofError(f"size1 {size1} > size2 {size2}")
    if size1 == 0:
        # Every tree extends the empty one; a "proof" of it proves nothing and
        # is rejected, as the published vectors require.
        raise ProofError(f"size1 is 0: there is no consistency to prove with size2 {size2}")
    if size1 == size2:
        if proof:
            raise ProofError(
                f"proof has {len(proof)} hashes, expected 0 for size1 == size2 == {size1}"
            )
        if root1 != root2:
            raise RootMismatchError(expected=root2, calculated=root1)
        return
    _check_hash(root1, "root1")
    _check_hash(root2, "root2")
    _check_proof_hashes(proof)
    calculated1, calculated2 = roots_from_consistency(size1, size2, root1, proof)
    if calculated1 != root1:
        raise RootMismatchError(expected=root1, calculated=calculated1)
    if calculated2 != root2:
        raise RootMismatchError(expected=root2, calculated=calculated2)
