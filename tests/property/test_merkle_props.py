"""Property tests: the stored Merkle log against the naive RFC 6962 §2.1 reference.

Logs are built through append_leaves in random batches (up to ~300 leaves),
then roots and proofs are compared with tests/merkle_reference.py and
attacked. Leaf inputs are distinct by construction: with repeated leaves,
swapping a node with its equal sibling would be a genuine, not a forged,
proof, and the "must fail" properties would not hold.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from ledger import merkle
from ledger.errors import ProofError, RootMismatchError
from tests import merkle_reference as ref

SETTINGS = settings(max_examples=150, deadline=None)


@dataclass
class Log:
    leaves: list[bytes]
    store: merkle.MemoryHashStore
    roots: list[bytes]  # the root append_leaves returned for each batch
    new_nodes: list[tuple[int, int, set[merkle.NodeKey]]]  # (size before, after, nodes)

    @property
    def size(self) -> int:
        return len(self.leaves)


@st.composite
def logs(draw: st.DrawFn, min_size: int = 1, max_size: int = 300) -> Log:
    total = draw(st.integers(min_size, max_size))
    salt = draw(st.binary(max_size=8))
    cuts = sorted(draw(st.lists(st.integers(0, total), max_size=12)))
    leaves = [i.to_bytes(4, "big") + salt for i in range(total)]
    log = Log(leaves=[], store=merkle.MemoryHashStore(), roots=[], new_nodes=[])
    for begin, end in zip([0, *cuts], [*cuts, total], strict=True):
        batch = [merkle.leaf_hash(x) for x in leaves[begin:end]]
        nodes, new_size, new_root = merkle.append_leaves(begin, batch, log.store)
        assert new_size == end
        log.store.put_nodes(nodes)
        log.leaves.extend(leaves[begin:end])
        log.new_nodes.append((begin, end, set(nodes)))
        log.roots.append(new_root)
    return log


def _perfect_nodes_completed(before: int, after: int) -> set[merkle.NodeKey]:
    """Every (L, i) whose last leaf (i + 1) * 2^L - 1 lies in [before, after)."""
    return {
        (level, index)
        for level in range(after.bit_length())
        for index in range(before >> level, after >> level)
        if (index + 1) << level > before
    }


@SETTINGS
@given(logs(min_size=0))
def test_appends_write_exactly_the_completed_perfect_nodes(log: Log) -> None:
    for (before, after, nodes), batch_root in zip(log.new_nodes, log.roots, strict=True):
        assert nodes == _perfect_nodes_completed(before, after)
        assert batch_root == ref.mth(log.leaves[:after])
    assert len(log.store) == 2 * log.size - log.size.bit_count()


@SETTINGS
@given(logs(min_size=0), st.data())
def test_root_of_any_prefix_equals_reference(log: Log, data: st.DataObject) -> None:
    size = data.draw(st.integers(0, log.size))
    assert merkle.root(size, log.store) == ref.mth(log.leaves[:size])


@SETTINGS
@given(logs(), st.data())
def test_inclusion_proofs_equal_reference_and_verify(log: Log, data: st.DataObject) -> None:
    size = data.draw(st.integers(1, log.size))
    index = data.draw(st.integers(0, size - 1))
    proof = merkle.inclusion_proof(index, size, log.store)
    assert proof == ref.path(index, log.leaves[:size])
    root = ref.mth(log.leaves[:size])
    leaf = merkle.leaf_hash(log.leaves[index])
    merkle.verify_inclusion(leaf, index, size, proof, root)
    assert merkle.root_from_inclusion(leaf, index, size, proof) == root


@SETTINGS
@given(logs(), st.data())
def test_consistency_proofs_equal_reference_and_verify(log: Log, data: st.DataObject) -> None:
    size2 = data.draw(st.integers(1, log.size))
    size1 = data.draw(st.integers(1, size2))
    proof = merkle.consistency_proof(size1, size2, log.store)
    assert proof == ref.proof(size1, log.leaves[:size2])
    merkle.verify_consistency(
        size1, size2, ref.mth(log.leaves[:size1]), ref.mth(log.leaves[:size2]), proof
    )


def _flip(proof: list[bytes], position: int, bit: int) -> list[bytes]:
    value = bytearray(proof[position])
    value[bit // 8] ^= 1 << (bit % 8)
    return [*proof[:position], bytes(value), *proof[position + 1 :]]


@SETTINGS
@given(logs(min_size=2), st.data())
def test_mangled_inclusion_proofs_fail(log: Log, data: st.DataObject) -> None:
    size = data.draw(st.integers(2, log.size))
    index = data.draw(st.integers(0, size - 1))
    proof = merkle.inclusion_proof(index, size, log.store)
    root, leaf = ref.mth(log.leaves[:size]), merkle.leaf_hash(log.leaves[index])
    position = data.draw(st.integers(0, len(proof) - 1))
    flipped = _flip(proof, position, data.draw(st.integers(0, 255)))
    with pytest.raises(RootMismatchError):
        merkle.verify_inclusion(leaf, index, size, flipped, root)
    with pytest.raises(ProofError, match="expected"):
        merkle.verify_inclusion(leaf, index, size, proof[:position] + proof[position + 1 :], root)
    extra = data.draw(st.binary(min_size=32, max_size=32))
    extended = [*proof[:position], extra, *proof[position:]]
    with pytest.raises(ProofError, match="expected"):
        merkle.verify_inclusion(leaf, index, size, extended, root)
    with pytest.raises(ProofError, match="expected"):
        merkle.verify_inclusion(leaf, index, size, [*proof, proof[-1]], root)


def _near(value: int) -> st.SearchStrategy[int]:
    """Mostly small changes, which are the ones likely to keep a proof's shape."""
    return st.integers(max(0, value - 8), value + 8) | st.integers(0, 2 * value)


@SETTINGS
@given(logs(min_size=2), st.data())
def test_inclusion_with_changed_index_or_size_fails_unless_indistinguishable(
    log: Log, data: st.DataObject
) -> None:
    size = data.draw(st.integers(2, log.size))
    index = data.draw(st.integers(0, size - 1))
    proof = merkle.inclusion_proof(index, size, log.store)
    root, leaf = ref.mth(log.leaves[:size]), merkle.leaf_hash(log.leaves[index])
    index2 = data.draw(st.just(index) | st.integers(0, 2 * size))
    size2 = data.draw(_near(size))
    if (index2, size2) == (index, size):
        return
    # The verifier sees only the sides of the path (left/right sibling at each
    # level), so the claim verifies exactly when they are unchanged. That can
    # happen for another index too: leaf 2 of 3 and leaf 1 of 2 both have one
    # left sibling. This is why a signed checkpoint must carry the tree size.
    same_sides = index2 < size2 and ref.path_sides(index2, size2) == ref.path_sides(index, size)
    event(f"indistinguishable: {same_sides}, index changed: {index2 != index}")
    if same_sides:
        merkle.verify_inclusion(leaf, index2, size2, proof, root)
    else:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(leaf, index2, size2, proof, root)


@SETTINGS
@given(logs(min_size=2), st.data())
def test_mangled_consistency_proofs_fail(log: Log, data: st.DataObject) -> None:
    size2 = data.draw(st.integers(2, log.size))
    size1 = data.draw(st.integers(1, size2 - 1))
    proof = merkle.consistency_proof(size1, size2, log.store)
    root1, root2 = ref.mth(log.leaves[:size1]), ref.mth(log.leaves[:size2])
    position = data.draw(st.integers(0, len(proof) - 1))
    flipped = _flip(proof, position, data.draw(st.integers(0, 255)))
    with pytest.raises(RootMismatchError):
        merkle.verify_consistency(size1, size2, root1, root2, flipped)
    with pytest.raises(ProofError, match="expected"):
        merkle.verify_consistency(
            size1, size2, root1, root2, proof[:position] + proof[position + 1 :]
        )
    extra = data.draw(st.binary(min_size=32, max_size=32))
    with pytest.raises(ProofError, match="expected"):
        merkle.verify_consistency(
            size1, size2, root1, root2, [*proof[:position], extra, *proof[position:]]
        )
    with pytest.raises(RootMismatchError):
        merkle.verify_consistency(size1, size2, root2, root1, proof)


@SETTINGS
@given(logs(min_size=2), st.data())
def test_consistency_with_changed_sizes_fails_unless_indistinguishable(
    log: Log, data: st.DataObject
) -> None:
    size2 = data.draw(st.integers(2, log.size))
    size1 = data.draw(st.integers(1, size2 - 1))
    proof = merkle.consistency_proof(size1, size2, log.store)
    root1, root2 = ref.mth(log.leaves[:size1]), ref.mth(log.leaves[:size2])
    new1 = data.draw(_near(size1))
    new2 = data.draw(_near(size2))
    if (new1, new2) == (size1, size2):
        return
    same_sides = 0 < new1 < new2 and (
        ref.subproof_sides(new1, new2, True) == ref.subproof_sides(size1, size2, True)
    )
    event(f"indistinguishable: {same_sides}")
    if same_sides:
        merkle.verify_consistency(new1, new2, root1, root2, proof)
    else:
        with pytest.raises(ProofError):
            merkle.verify_consistency(new1, new2, root1, root2, proof)


@SETTINGS
@given(logs(min_size=0, max_size=120), st.data())
def test_batching_does_not_change_the_store(log: Log, data: st.DataObject) -> None:
    # One leaf at a time and arbitrary batches must write identical nodes:
    # a node is a pure function of its leaves, whichever block completed it.
    one_by_one = merkle.MemoryHashStore()
    for index, leaf in enumerate(log.leaves):
        nodes, _, _ = merkle.append_leaves(index, [merkle.leaf_hash(leaf)], one_by_one)
        one_by_one.put_nodes(nodes)
    all_nodes = set().union(*(nodes for _, _, nodes in log.new_nodes))
    for level, index in all_nodes:
        assert one_by_one.get_node(level, index) == log.store.get_node(level, index)
    assert len(one_by_one) == len(log.store)
