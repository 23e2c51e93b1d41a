"""RFC 6962 Merkle log against published vectors, the CT reference tree and hostile input.

The JSON vectors are transparency-dev/merkle's testdata (see
tests/vectors/rfc6962/README.md); leafIdx there is 0-based, as the
happy-path files show against the reference tree below.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from ledger import merkle
from ledger.errors import InvariantViolation, ProofError, RootMismatchError, StoreError
from tests import merkle_reference as ref

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "rfc6962"

# The 8 leaf inputs of Certificate Transparency's merkle tests, with the
# RFC 6962 §2.1 roots of their prefixes of size 1..8.
CT_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_ROOTS = [
    bytes.fromhex(h)
    for h in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]


def _vector_files(kind: str) -> list[Path]:
    return sorted((VECTORS / kind).rglob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _proof(data: dict[str, Any]) -> list[bytes]:
    return [_b64(h) for h in data["proof"] or []]


def _vector_id(path: Path) -> str:
    return str(path.relative_to(VECTORS))


def _ct_store() -> merkle.MemoryHashStore:
    store = merkle.MemoryHashStore()
    nodes, _, _ = merkle.append_leaves(0, [merkle.leaf_hash(x) for x in CT_LEAVES], store)
    store.put_nodes(nodes)
    return store


# --- published vectors -------------------------------------------------------


def test_vector_folders_are_complete() -> None:
    assert (VECTORS / "README.md").is_file() and (VECTORS / "LICENSE").is_file()
    assert len(_vector_files("inclusion")) == 98
    assert len(_vector_files("consistency")) == 98


@pytest.mark.parametrize("path", _vector_files("inclusion"), ids=_vector_id)
def test_inclusion_vector(path: Path) -> None:
    data = _load(path)
    args = (
        _b64(data["leafHash"]),
        data["leafIdx"],
        data["treeSize"],
        _proof(data),
        _b64(data["root"]),
    )
    if data["wantErr"]:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(*args)
    else:
        merkle.verify_inclusion(*args)


@pytest.mark.parametrize("path", _vector_files("consistency"), ids=_vector_id)
def test_consistency_vector(path: Path) -> None:
    data = _load(path)
    args = (data["size1"], data["size2"], _b64(data["root1"]), _b64(data["root2"]), _proof(data))
    if data["wantErr"]:
        with pytest.raises(ProofError):
            merkle.verify_consistency(*args)
    else:
        merkle.verify_consistency(*args)


@pytest.mark.parametrize(
    "path", sorted(VECTORS.glob("inclusion/[0-9]/happy-path.json")), ids=_vector_id
)
def test_generated_inclusion_proof_equals_published(path: Path) -> None:
    data = _load(path)
    index, size = data["leafIdx"], data["treeSize"]
    # leafIdx is 0-based: the vector's leaf hash is that of CT leaf [leafIdx].
    assert _b64(data["leafHash"]) == merkle.leaf_hash(CT_LEAVES[index])
    store = _ct_store()
    assert merkle.root(size, store) == _b64(data["root"])
    assert merkle.inclusion_proof(index, size, store) == _proof(data)


@pytest.mark.parametrize(
    "path", sorted(VECTORS.glob("consistency/[0-9]/happy-path.json")), ids=_vector_id
)
def test_generated_consistency_proof_equals_published(path: Path) -> None:
    data = _load(path)
    size1, size2 = data["size1"], data["size2"]
    store = _ct_store()
    assert merkle.root(size1, store) == _b64(data["root1"])
    assert merkle.root(size2, store) == _b64(data["root2"])
    assert merkle.consistency_proof(size1, size2, store) == _proof(data)


# --- the CT reference tree (RFC 6962 §2.1) ------------------------------------


def test_empty_root_is_sha256_of_nothing() -> None:
    assert merkle.EMPTY_ROOT.hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert merkle.root(0, merkle.MemoryHashStore()) == merkle.EMPTY_ROOT


def test_reference_tree_roots_one_leaf_at_a_time() -> None:
    store, size = merkle.MemoryHashStore(), 0
    for leaf, want in zip(CT_LEAVES, CT_ROOTS, strict=True):
        nodes, size, got = merkle.append_leaves(size, [merkle.leaf_hash(leaf)], store)
        store.put_nodes(nodes)
        assert got == want == ref.mth(CT_LEAVES[:size])
    for size, want in enumerate(CT_ROOTS, start=1):
        assert merkle.root(size, store) == want


def test_reference_tree_proofs_match_rfc_definitions() -> None:
    store = _ct_store()
    for size in range(1, 9):
        for index in range(size):
            proof = merkle.inclusion_proof(index, size, store)
            assert proof == ref.path(index, CT_LEAVES[:size])
            merkle.verify_inclusion(
                merkle.leaf_hash(CT_LEAVES[index]), index, size, proof, CT_ROOTS[size - 1]
            )
        for size1 in range(1, size + 1):
            proof = merkle.consistency_proof(size1, size, store)
            assert proof == ref.proof(size1, CT_LEAVES[:size])
            merkle.verify_consistency(size1, size, CT_ROOTS[size1 - 1], CT_ROOTS[size - 1], proof)


# --- the storage model ----------------------------------------------------------


def test_append_writes_exactly_the_completed_perfect_nodes() -> None:
    store = merkle.MemoryHashStore()
    nodes, size, _ = merkle.append_leaves(0, [merkle.leaf_hash(x) for x in CT_LEAVES[:5]], store)
    assert set(nodes) == {(0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (1, 0), (1, 1), (2, 0)}
    store.put_nodes(nodes)
    # Leaves 5..7 complete (1, 2), (1, 3), (2, 1) and the root (3, 0); the
    # left sibling (0, 4) is the only old node the batch needs.
    counting = _CountingReader(store)
    nodes, size, got = merkle.append_leaves(
        size, [merkle.leaf_hash(x) for x in CT_LEAVES[5:]], counting
    )
    assert set(nodes) == {(0, 5), (0, 6), (0, 7), (1, 2), (1, 3), (2, 1), (3, 0)}
    assert counting.reads == [(0, 4), (2, 0)]
    assert (size, got) == (8, CT_ROOTS[7])


class _CountingReader:
    """Wraps a reader, recording every node read."""

    def __init__(self, inner: merkle.HashReader) -> None:
        self.inner = inner
        self.reads: list[merkle.NodeKey] = []

    def get_node(self, level: int, index: int) -> bytes:
        self.reads.append((level, index))
        return self.inner.get_node(level, index)


class _AnyNodeReader:
    """Pretends to hold a log of any size: node (L, i) hashes to SHA-256 of its key."""

    def __init__(self) -> None:
        self.reads = 0

    def get_node(self, level: int, index: int) -> bytes:
        self.reads += 1
        return merkle.leaf_hash(f"{level}/{index}".encode())


@pytest.mark.parametrize("size", [2**20 + 1, 10**9 + 7, 2**40 - 1, 2**63 + 12345])
def test_roots_and_proofs_read_o_log_n_nodes(size: int) -> None:
    depth = size.bit_length()
    for index in (0, size // 3, size - 2, size - 1):
        reader = _AnyNodeReader()
        assert len(merkle.inclusion_proof(index, size, reader)) <= depth
        assert reader.reads <= 2 * depth
    for size1 in (1, size // 2 + 1, size - 1):
        reader = _AnyNodeReader()
        merkle.consistency_proof(size1, size, reader)
        assert reader.reads <= 2 * depth
    reader = _AnyNodeReader()
    merkle.root(size, reader)
    assert reader.reads == size.bit_count()


def test_append_batch_reads_at_most_one_old_node_per_level() -> None:
    reader = _AnyNodeReader()
    size = 2**40 - 1  # every level has an old left sibling waiting on the frontier
    nodes, new_size, _ = merkle.append_leaves(size, [merkle.leaf_hash(b"x")] * 1000, reader)
    assert new_size == size + 1000
    assert reader.reads <= 2 * new_size.bit_length()
    assert len(nodes) < 2 * 1000 + new_size.bit_length()


def test_append_reads_pending_nodes_before_the_store() -> None:
    # An empty store: every read must be served from the batch's own nodes.
    nodes, size, got = merkle.append_leaves(
        0, [merkle.leaf_hash(x) for x in CT_LEAVES], merkle.MemoryHashStore()
    )
    assert (size, got, len(nodes)) == (8, CT_ROOTS[7], 15)


def test_missing_node_is_a_store_error() -> None:
    store = _ct_store()
    with pytest.raises(StoreError, match=r"node \(level 0, index 8\) is missing"):
        merkle.root(9, store)
    with pytest.raises(StoreError, match="missing"):
        merkle.append_leaves(9, [merkle.EMPTY_ROOT], store)


def test_store_refuses_to_overwrite_a_node_with_another_hash() -> None:
    store = _ct_store()
    store.put_nodes({(0, 0): merkle.leaf_hash(CT_LEAVES[0])})
    with pytest.raises(StoreError, match=r"\(0, 0\) already stored"):
        store.put_nodes({(0, 99): merkle.EMPTY_ROOT, (0, 0): merkle.EMPTY_ROOT})
    assert len(store) == 15  # the refused batch wrote nothing, not even (0, 99)


def test_append_rejects_a_leaf_hash_of_the_wrong_size() -> None:
    with pytest.raises(InvariantViolation, match="leaf hash 3 has 31 bytes"):
        merkle.append_leaves(3, [bytes(31)], merkle.MemoryHashStore())


@pytest.mark.parametrize(("begin", "end"), [(0, 0), (3, 2), (-1, 1), (1, 3), (4, 9), (6, 9)])
def test_node_range_rejects_ranges_outside_any_rfc6962_tree(begin: int, end: int) -> None:
    with pytest.raises(InvariantViolation, match="range"):
        merkle.NodeRange(begin, end)


def test_paths_name_perfect_and_right_edge_nodes() -> None:
    assert merkle.inclusion_path(2, 7) == [
        merkle.NodeRange(3, 4),
        merkle.NodeRange(0, 2),
        merkle.NodeRange(4, 7),
    ]
    assert merkle.NodeRange(4, 7).perfect_nodes() == [(1, 2), (0, 6)]
    assert not merkle.NodeRange(4, 7).is_perfect
    assert merkle.consistency_path(6, 7) == [
        merkle.NodeRange(4, 6),
        merkle.NodeRange(6, 7),
        merkle.NodeRange(0, 4),
    ]
    assert merkle.consistency_path(4, 4) == []


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: merkle.inclusion_path(8, 8), "index 8 is not below size 8"),
        (lambda: merkle.inclusion_path(-1, 8), "index -1 is not below size 8"),
        (lambda: merkle.consistency_path(0, 8), "0 < size1 <= size2, got size1 0"),
        (lambda: merkle.consistency_path(9, 8), "got size1 9, size2 8"),
        (lambda: merkle.inclusion_path(0, 2**64), "outside"),
    ],
)
def test_path_functions_reject_impossible_requests(call: Any, message: str) -> None:
    # The builder's arguments are this node's own: an impossible one is a bug here.
    with pytest.raises(InvariantViolation, match=message):
        call()


# --- hostile proofs beyond the vectors -------------------------------------------


def _inclusion_args(index: int, size: int) -> tuple[bytes, int, int, list[bytes], bytes]:
    proof = merkle.inclusion_proof(index, size, _ct_store())
    return merkle.leaf_hash(CT_LEAVES[index]), index, size, proof, CT_ROOTS[size - 1]


def _raises(match: str, verify: Any, *args: Any) -> ProofError:
    with pytest.raises(ProofError, match=match) as info:
        verify(*args)
    return info.value


def test_inclusion_rejects_a_tampered_proof_node_with_both_roots() -> None:
    leaf, index, size, proof, root = _inclusion_args(5, 8)
    proof[1] = bytes([proof[1][0] ^ 0x80]) + proof[1][1:]
    error = _raises("root mismatch", merkle.verify_inclusion, leaf, index, size, proof, root)
    assert isinstance(error, RootMismatchError)
    assert error.expected == root
    assert error.calculated == merkle.root_from_inclusion(leaf, index, size, proof)
    assert error.calculated != root


def test_inclusion_rejects_wrong_lengths_with_the_expected_count() -> None:
    leaf, index, size, proof, root = _inclusion_args(5, 8)
    _raises(
        r"proof has 4 hashes, expected 3 for index 5 in size 8",
        merkle.verify_inclusion,
        leaf,
        index,
        size,
        [*proof, proof[0]],
        root,
    )
    _raises(
        r"proof has 2 hashes, expected 3 for index 5 in size 8",
        merkle.verify_inclusion,
        leaf,
        index,
        size,
        proof[:2],
        root,
    )
    _raises(
        r"proof has 3 hashes, expected 2 for index 5 in size 6",
        merkle.verify_inclusion,
        leaf,
        index,
        6,
        proof,
        root,
    )


def test_inclusion_rejects_index_at_or_beyond_size() -> None:
    leaf, _, size, proof, root = _inclusion_args(5, 8)
    _raises("index 8 is not below size 8", merkle.verify_inclusion, leaf, 8, size, proof, root)
    _raises("index -1 is not below size 8", merkle.verify_inclusion, leaf, -1, 8, proof, root)
    _raises(
        "index 0 is not below size 0", merkle.verify_inclusion, leaf, 0, 0, [], merkle.EMPTY_ROOT
    )
    _raises(
        r"size 18446744073709551616 is outside",
        merkle.verify_inclusion,
        leaf,
        0,
        2**64,
        proof,
        root,
    )


def test_inclusion_rejects_trailing_garbage_and_short_hashes() -> None:
    leaf, index, size, proof, root = _inclusion_args(2, 8)
    _raises(
        r"proof\[3\] has 1 bytes, expected 32",
        merkle.verify_inclusion,
        leaf,
        index,
        size,
        [*proof, b"\x00"],
        root,
    )
    _raises(
        r"proof\[0\] has 33 bytes",
        merkle.verify_inclusion,
        leaf,
        index,
        size,
        [proof[0] + b"\x00", *proof[1:]],
        root,
    )
    _raises("leaf hash has 0 bytes", merkle.verify_inclusion, b"", index, size, proof, root)
    _raises("root has 31 bytes", merkle.verify_inclusion, leaf, index, size, proof, root[1:])


def test_inclusion_does_not_accept_the_proof_of_a_neighbour() -> None:
    leaf, index, size, _, root = _inclusion_args(6, 8)
    _raises(
        "root mismatch",
        merkle.verify_inclusion,
        leaf,
        index,
        size,
        merkle.inclusion_proof(7, 8, _ct_store()),
        root,
    )


def test_inclusion_proof_does_not_bind_size_without_a_checkpoint() -> None:
    # RFC 6962 proofs bind a leaf to a root, not to a size: for a given index
    # the sides of the path depend only on its length, so index 0 of size 4
    # "verifies" against root(3). A wrong size is caught only when it changes
    # the path length (see above); the size itself is authenticated by the
    # signed block header that carries the root.
    leaf, index, _, proof, root = _inclusion_args(0, 3)
    merkle.verify_inclusion(leaf, index, 4, proof, root)


def _consistency_args(size1: int, size2: int) -> tuple[int, int, bytes, bytes, list[bytes]]:
    proof = merkle.consistency_proof(size1, size2, _ct_store())
    return size1, size2, CT_ROOTS[size1 - 1], CT_ROOTS[size2 - 1], proof


def test_consistency_rejects_tampered_node_and_wrong_roots() -> None:
    size1, size2, root1, root2, proof = _consistency_args(3, 7)
    tampered = [proof[0], bytes(32), *proof[2:]]
    _raises("root mismatch", merkle.verify_consistency, size1, size2, root1, root2, tampered)
    error = _raises(
        "root mismatch", merkle.verify_consistency, size1, size2, root1, CT_ROOTS[7], proof
    )
    assert isinstance(error, RootMismatchError)
    assert (error.expected, error.calculated) == (CT_ROOTS[7], root2)
    error = _raises(
        "root mismatch", merkle.verify_consistency, size1, size2, CT_ROOTS[1], root2, proof
    )
    assert isinstance(error, RootMismatchError)
    assert (error.expected, error.calculated) == (CT_ROOTS[1], root1)


def test_consistency_rejects_bad_sizes_with_specific_messages() -> None:
    size1, size2, root1, root2, proof = _consistency_args(3, 7)
    _raises("size1 5 > size2 3", merkle.verify_consistency, 5, 3, root1, root2, proof)
    _raises("size1 is 0", merkle.verify_consistency, 0, 7, merkle.EMPTY_ROOT, root2, [])
    _raises("size1 is 0", merkle.verify_consistency, 0, 0, merkle.EMPTY_ROOT, merkle.EMPTY_ROOT, [])
    _raises(
        r"proof has 5 hashes, expected 4 for size1 3 and size2 7",
        merkle.verify_consistency,
        size1,
        size2,
        root1,
        root2,
        [*proof, proof[0]],
    )
    _raises(
        r"proof has 3 hashes, expected 4 for size1 3 and size2 7",
        merkle.verify_consistency,
        size1,
        size2,
        root1,
        root2,
        proof[1:],
    )
    _raises(
        r"proof\[4\] has 3 bytes",
        merkle.verify_consistency,
        size1,
        size2,
        root1,
        root2,
        [*proof, b"abc"],
    )
    _raises("root1 has 0 bytes", merkle.verify_consistency, size1, size2, b"", root2, proof)


def test_consistency_with_equal_sizes_needs_empty_proof_and_equal_roots() -> None:
    root = CT_ROOTS[4]
    merkle.verify_consistency(5, 5, root, root, [])
    _raises(
        "proof has 1 hashes, expected 0 for size1 == size2 == 5",
        merkle.verify_consistency,
        5,
        5,
        root,
        root,
        [root],
    )
    error = _raises("root mismatch", merkle.verify_consistency, 5, 5, root, CT_ROOTS[3], [])
    assert isinstance(error, RootMismatchError)


def _flip_each_bit_rejected(proofs: Sequence[bytes], verify: Any) -> None:
    for position, value in enumerate(proofs):
        for bit in range(len(value) * 8):
            flipped = bytearray(value)
            flipped[bit // 8] ^= 1 << (bit % 8)
            changed = [*proofs[:position], bytes(flipped), *proofs[position + 1 :]]
            with pytest.raises(RootMismatchError):
                verify(changed)


def test_every_single_bit_flip_is_rejected() -> None:
    leaf, index, size, proof, root = _inclusion_args(4, 7)
    _flip_each_bit_rejected(proof, lambda p: merkle.verify_inclusion(leaf, index, size, p, root))
    size1, size2, root1, root2, cproof = _consistency_args(6, 8)
    _flip_each_bit_rejected(
        cproof, lambda p: merkle.verify_consistency(size1, size2, root1, root2, p)
    )
