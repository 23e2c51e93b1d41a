"""Store tests over both backends: round trips, indexes, proofs, atomicity, recovery.

Every test that makes sense on both backends runs on both (the ``backend``
fixture); LevelDB-only ones (lock, SIGKILL) say so. Blocks are real: signed
envelopes, headers whose ledger_root comes from the factory's own Merkle log,
and certificates signed by the factory's validators (tests/factory.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import plyvel
import pytest

from ledger import keyspace as ks
from ledger import merkle
from ledger.canonical import canonical_bytes
from ledger.errors import (
    ChainError,
    ClientError,
    InvariantViolation,
    NotFound,
    StoreError,
)
from ledger.kv import MemoryKV
from ledger.records import Envelope
from ledger.store import SEARCH_LIMIT_MAX, Store
from tests.factory import (
    GENESIS_HASH,
    Block,
    ChainBuilder,
    EnvelopeMaker,
    certify,
    key,
    varied_envelopes,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
CHAIN_HEIGHT = 12


class Backend:
    """Opens (and reopens) one store; ``raw_put`` edits its bytes while it is closed."""

    def __init__(self, kind: str, path: Path) -> None:
        self.kind = kind
        self.path = path / "data"
        self.memory = MemoryKV()

    def open(self) -> Store:
        if self.kind == "memory":
            return Store(self.memory)
        return Store.open_leveldb(self.path)

    def raw_put(self, key: bytes, value: bytes | None) -> None:
        if self.kind == "memory":
            self.memory.write([(key, value)], sync=False)
            return
        db = plyvel.DB(str(self.path))
        try:
            if value is None:
                db.delete(key)
            else:
                db.put(key, value)
        finally:
            db.close()


@pytest.fixture(params=["memory", "leveldb"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return Backend(request.param, tmp_path)


@pytest.fixture
def store(backend: Backend) -> Iterator[Store]:
    opened = backend.open()
    opened.check_genesis(GENESIS_HASH)
    yield opened
    opened.close()


def build_chain(height: int) -> ChainBuilder:
    builder, maker = ChainBuilder(), EnvelopeMaker()
    for next_height in range(1, height + 1):
        builder.next_block(varied_envelopes(maker, next_height))
    return builder


@pytest.fixture(scope="module")
def chain() -> ChainBuilder:
    return build_chain(CHAIN_HEIGHT)


def commit(store: Store, *blocks: Block) -> None:
    for block in blocks:
        store.commit_block(block.header, block.envelopes, block.certificate)


def dump(store: Store) -> list[tuple[bytes, bytes]]:
    return list(store.kv.iterate())


def all_envelopes(chain: ChainBuilder) -> list[Envelope]:
    return [envelope for block in chain.blocks for envelope in block.envelopes]


def assert_block_complete(store: Store, block: Block, first_leaf: int) -> None:
    """Every key a committed block writes is present and points back correctly."""
    header = block.header
    assert store.get_header(header.height) == header
    assert store.get_certificate(header.height) == block.certificate
    assert store.height_of_block(header.hash()) == header.height
    assert store.get_block_record_ids(header.height) == [e.id for e in block.envelopes]
    for leaf_index, envelope in enumerate(block.envelopes, start=first_leaf):
        assert store.get_envelope_bytes(envelope.id) == envelope.leaf
        assert store.locate(envelope.id) == (header.height, leaf_index)
        assert store.record_id_at(leaf_index) == envelope.id
        assert store.nonce_used(envelope.signer, envelope.record["nonce"])
        for index, value in ks.index_entries(envelope):
            found = store.search(index, value, after_leaf=leaf_index - 1, limit=1)
            assert found == [(leaf_index, envelope.id)], (index, value)


# --- round trip ---------------------------------------------------------------


def test_fresh_store_is_empty(store: Store) -> None:
    assert (store.height, store.ledger_size) == (0, 0)
    assert store.ledger_root() == merkle.EMPTY_ROOT
    assert store.get_header(1) is None
    assert store.search("type", "evidence_submitted") == []
    assert list(store.iter_blocks()) == []
    with pytest.raises(NotFound):
        store.get_block_record_ids(1)


def test_commit_then_read_back_every_block(store: Store, chain: ChainBuilder) -> None:
    commit(store, *chain.blocks)
    assert store.height == CHAIN_HEIGHT
    assert store.ledger_size == chain.size
    assert store.ledger_root().hex() == chain.blocks[-1].header.ledger_root
    first_leaf = 0
    for block in chain.blocks:
        assert_block_complete(store, block, first_leaf)
        first_leaf += len(block.envelopes)
    assert store.record_id_at(chain.size) is None
    assert store.get_header(CHAIN_HEIGHT + 1) is None
    assert not store.has_record("00" * 32)


def test_iter_blocks_pages_in_height_order(store: Store, chain: ChainBuilder) -> None:
    commit(store, *chain.blocks)
    page = list(store.iter_blocks(from_height=3, limit=4))
    assert [b.header for b in page] == [b.header for b in chain.blocks[2:6]]
    assert [b.certificate for b in page] == [b.certificate for b in chain.blocks[2:6]]
    assert [list(b.record_ids) for b in page] == [
        [e.id for e in b.envelopes] for b in chain.blocks[2:6]
    ]


# --- indexes -----------------------------------------------------------------


def expected_index(chain: ChainBuilder) -> dict[tuple[str, str], list[tuple[int, str]]]:
    expected: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for leaf_index, envelope in enumerate(all_envelopes(chain)):
        for entry in sorted(ks.index_entries(envelope)):
            expected.setdefault(entry, []).append((leaf_index, envelope.id))
    return expected


def test_every_index_lists_records_in_commit_order(store: Store, chain: ChainBuilder) -> None:
    commit(store, *chain.blocks)
    expected = expected_index(chain)
    # Only exchange_receipts give the receipt indexes (tests/unit/test_receipts.py).
    assert {name for name, _ in expected} == set(ks.INDEX_NAMES) - set(ks.RECEIPT_INDEXES)
    for (index, value), rows in expected.items():
        assert store.search(index, value, limit=SEARCH_LIMIT_MAX) == rows


def test_search_pages_with_a_leaf_cursor(store: Store, chain: ChainBuilder) -> None:
    commit(store, *chain.blocks)
    for (index, value), rows in expected_index(chain).items():
        pages: list[tuple[int, str]] = []
        cursor: int | None = None
        while page := store.search(index, value, after_leaf=cursor, limit=2):
            assert len(page) <= 2
            pages += page
            cursor = page[-1][0]
        assert pages == rows


def test_index_values_cannot_bleed_into_each_other(store: Store) -> None:
    maker, builder, signer = EnvelopeMaker(), ChainBuilder(), key("escaper")
    refs = ["a", "a\x00b", "a\x01", "a\x00", "ab"]
    envelopes = [maker.make(signer, case_ref=ref) for ref in refs]
    commit(store, builder.next_block(envelopes))
    for leaf_index, ref in enumerate(refs):
        assert store.search("case_ref", ref) == [(leaf_index, envelopes[leaf_index].id)]


def test_search_refuses_unknown_index_and_bad_limit(store: Store) -> None:
    with pytest.raises(ClientError, match="unknown index"):
        store.search("colour", "red")
    with pytest.raises(ClientError, match="limit"):
        store.search("type", "x", limit=0)


def test_search_limit_is_capped(store: Store) -> None:
    maker, builder, signer = EnvelopeMaker(), ChainBuilder(), key("bulk")
    block = builder.next_block(
        [maker.make(signer, case_ref="BULK") for _ in range(SEARCH_LIMIT_MAX + 5)]
    )
    commit(store, block)
    rows = store.search("case_ref", "BULK", limit=10 * SEARCH_LIMIT_MAX)
    assert [leaf for leaf, _ in rows] == list(range(SEARCH_LIMIT_MAX))
    assert len(store.search("case_ref", "BULK", after_leaf=rows[-1][0])) == 5


# --- nonces and duplicates ---------------------------------------------------


def test_nonce_is_tracked_per_signer(store: Store) -> None:
    maker, builder = EnvelopeMaker(), ChainBuilder()
    alice, bob = key("alice"), key("bob")
    first = maker.make(alice, nonce="nonce-0001")
    assert not store.nonce_used(alice.public_hex, "nonce-0001")
    commit(store, builder.next_block([first]))
    assert store.nonce_used(alice.public_hex, "nonce-0001")
    assert not store.nonce_used(bob.public_hex, "nonce-0001")
    # Same nonce, another signer: another (signer, nonce) key, so accepted. The record
    # must differ too: the record id hashes the record alone, not its signer.
    commit(store, builder.next_block([maker.make(bob, nonce="nonce-0001", agency="bka")]))
    assert store.nonce_used(bob.public_hex, "nonce-0001")


@pytest.mark.parametrize("reuse", ["nonce", "record", "nonce_within_block"])
def test_reused_nonce_or_record_is_refused_and_writes_nothing(store: Store, reuse: str) -> None:
    maker, builder, alice = EnvelopeMaker(), ChainBuilder(), key("alice")
    first = maker.make(alice, nonce="nonce-0001", case_ref="A")
    commit(store, builder.next_block([first]))
    again = maker.make(alice, nonce="nonce-0001", case_ref="B")
    envelopes = {
        "nonce": [again],
        "record": [first],
        "nonce_within_block": [
            maker.make(alice, nonce="nonce-0002"),
            maker.make(alice, nonce="nonce-0002", case_ref="C"),
        ],
    }
    before = dump(store)
    with pytest.raises(ChainError, match=r"reuses nonce|already in the ledger"):
        commit(store, builder.build(envelopes[reuse]))
    assert dump(store) == before
    assert store.height == 1


def test_a_checked_append_writes_what_the_store_would_compute(chain: ChainBuilder) -> None:
    # The node passes the Merkle append its block validation computed; the
    # store must end up byte for byte where its own computation would take it.
    computed, handed = Store(MemoryKV()), Store(MemoryKV())
    for opened in (computed, handed):
        opened.check_genesis(GENESIS_HASH)
    for block in chain.blocks:
        computed.commit_block(block.header, block.envelopes, block.certificate)
        appended = merkle.append_leaves(
            handed.ledger_size, [merkle.leaf_hash(e.leaf) for e in block.envelopes], handed
        )
        handed.commit_block(block.header, block.envelopes, block.certificate, checked=appended)
    assert dump(handed) == dump(computed)


def test_a_checked_append_must_still_match_the_header(store: Store, chain: ChainBuilder) -> None:
    first, second = chain.blocks[0], chain.blocks[1]
    commit(store, first)
    wrong = merkle.append_leaves(store.ledger_size, [b"\x00" * 32] * len(second.envelopes), store)
    before = dump(store)
    with pytest.raises(ChainError, match="ledger_root"):
        store.commit_block(second.header, second.envelopes, second.certificate, checked=wrong)
    assert dump(store) == before and store.height == 1


# --- proofs ------------------------------------------------------------------


def test_proofs_verify_against_header_roots(store: Store, chain: ChainBuilder) -> None:
    commit(store, *chain.blocks)
    leaves = [merkle.leaf_hash(e.leaf) for e in all_envelopes(chain)]
    headers = [b.header for b in chain.blocks if b.header.ledger_size > 0]
    for header in headers:
        size, root = header.ledger_size, bytes.fromhex(header.ledger_root)
        assert store.ledger_root(size) == root
        for leaf_index in range(size):
            proof = store.inclusion_proof(leaf_index, size)
            merkle.verify_inclusion(leaves[leaf_index], leaf_index, size, proof, root)
        for older in headers:
            if older.ledger_size <= size:
                proof = store.consistency_proof(older.ledger_size, size)
                merkle.verify_consistency(
                    older.ledger_size, size, bytes.fromhex(older.ledger_root), root, proof
                )


def test_proof_sizes_beyond_the_ledger_are_not_found(store: Store, chain: ChainBuilder) -> None:
    commit(store, *chain.blocks)
    size = store.ledger_size
    with pytest.raises(NotFound):
        store.ledger_root(size + 1)
    with pytest.raises(NotFound):
        store.inclusion_proof(0, size + 1)
    with pytest.raises(NotFound):
        store.inclusion_proof(size, size)
    with pytest.raises(NotFound):
        store.consistency_proof(1, size + 1)
    with pytest.raises(ClientError, match="size1"):
        store.consistency_proof(size, size - 1)


class CountingKV(MemoryKV):
    def __init__(self) -> None:
        super().__init__()
        self.gets = 0

    def get(self, key: bytes) -> bytes | None:
        self.gets += 1
        return super().get(key)


def test_proofs_cost_logarithmic_reads() -> None:
    kv = CountingKV()
    store, maker, builder, signer = Store(kv), EnvelopeMaker(), ChainBuilder(), key("bulk")
    for _ in range(3):
        commit(store, builder.next_block([maker.make(signer) for _ in range(700)]))
    size = store.ledger_size
    budget = 2 * size.bit_length() + 2
    for leaf_index in (0, 1, size // 2, size - 2, size - 1):
        kv.gets = 0
        store.inclusion_proof(leaf_index, size)
        assert kv.gets <= budget, (leaf_index, kv.gets)
    kv.gets = 0
    store.consistency_proof(1234, size)
    assert kv.gets <= budget


# --- bad blocks write nothing ------------------------------------------------


def wrong(block: Block, **changes: Any) -> Block:
    header = dataclasses.replace(block.header, **changes)
    return Block(header, block.envelopes, certify(header))


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda b: wrong(b, ledger_root="00" * 32), ChainError),
        (lambda b: wrong(b, height=b.header.height + 1), ChainError),
        (lambda b: wrong(b, record_count=b.header.record_count + 1), ChainError),
        (lambda b: wrong(b, ledger_size=b.header.ledger_size - 1), ChainError),
        (lambda b: wrong(b, prev_hash="11" * 32), ChainError),
        (lambda b: Block(b.header, b.envelopes[:-1], b.certificate), ChainError),
        (
            lambda b: Block(b.header, b.envelopes, certify(wrong(b, time="x").header)),
            InvariantViolation,
        ),
    ],
    ids=[
        "ledger_root",
        "height",
        "record_count",
        "ledger_size",
        "prev_hash",
        "missing_envelope",
        "foreign_certificate",
    ],
)
def test_rejected_block_writes_nothing(
    store: Store, chain: ChainBuilder, mutate: Callable[[Block], Block], error: type[Exception]
) -> None:
    commit(store, *chain.blocks[:3])
    good = chain.blocks[3]
    assert good.envelopes, "the test needs a non-empty block"
    before = dump(store)
    with pytest.raises(error):
        commit(store, mutate(good))
    assert dump(store) == before
    assert (store.height, store.ledger_size) == (3, good.header.ledger_size - len(good.envelopes))
    commit(store, good)
    assert store.height == 4


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"height": 5}, "header.height"),
        ({"record_count": 99}, "header.record_count"),
        ({"prev_hash": "11" * 32}, "header.prev_hash"),
    ],
)
def test_a_chain_error_carries_the_height_field_and_both_values(
    store: Store, chain: ChainBuilder, changes: dict[str, Any], field: str
) -> None:
    commit(store, *chain.blocks[:3])
    good = chain.blocks[3]
    with pytest.raises(ChainError) as caught:
        commit(store, wrong(good, **changes))
    error = caught.value
    assert error.field == field
    assert error.actual == changes[field.removeprefix("header.")]
    assert (
        error.expected
        == {
            "header.height": 4,
            "header.record_count": len(good.envelopes),
            "header.prev_hash": good.header.prev_hash,
        }[field]
    )
    assert error.height == changes.get("height", 4)


def test_extra_keys_must_be_caller_keys(store: Store, chain: ChainBuilder) -> None:
    block = chain.blocks[0]
    before = dump(store)
    with pytest.raises(InvariantViolation):
        store.commit_block(
            block.header, block.envelopes, block.certificate, extra={b"Mheight": b"\x00" * 8}
        )
    assert dump(store) == before


# --- state -------------------------------------------------------------------


def test_caller_state_commits_with_its_block(store: Store, chain: ChainBuilder) -> None:
    first, second = chain.blocks[0], chain.blocks[1]
    store.commit_block(
        first.header,
        first.envelopes,
        first.certificate,
        extra={b"gmember/FR": b"in", b"gmember/DE": b"in", b"gother": b"1"},
    )
    store.commit_block(
        second.header,
        second.envelopes,
        second.certificate,
        extra={b"gmember/DE": None, b"gmember/IT": b"in"},
    )
    assert store.get_kv(b"gmember/FR") == b"in"
    assert store.get_kv(b"gmember/DE") is None
    assert list(store.iter_prefix(b"gmember/")) == [(b"gmember/FR", b"in"), (b"gmember/IT", b"in")]
    with pytest.raises(InvariantViolation):
        store.get_kv(b"Mheight")


def test_node_local_state_round_trips(store: Store) -> None:
    assert store.get_state("consensus/wal") is None
    store.put_state("consensus/wal", b"vote-1")
    store.put_state("consensus/wal", b"vote-2", sync=False)
    assert store.get_state("consensus/wal") == b"vote-2"
    store.delete_state("consensus/wal")
    assert store.get_state("consensus/wal") is None


def test_set_certificate_replaces_only_a_matching_one(store: Store, chain: ChainBuilder) -> None:
    commit(store, *chain.blocks[:2])
    header = chain.blocks[1].header
    fuller = certify(header, round_=2, signers=("DE", "ES", "FR", "IT"))
    store.set_certificate(2, fuller)
    assert store.get_certificate(2) == fuller
    with pytest.raises(InvariantViolation):
        store.set_certificate(1, fuller)
    with pytest.raises(NotFound):
        store.set_certificate(3, fuller)


# --- reopening, corruption, genesis -------------------------------------------


def test_reopen_gives_the_same_state(backend: Backend, chain: ChainBuilder) -> None:
    with backend.open() as first:
        first.check_genesis(GENESIS_HASH)
        commit(first, *chain.blocks)
        first.put_state("wal", b"w")
        before = dump(first)
    with backend.open() as again:
        assert dump(again) == before
        assert (again.height, again.ledger_size) == (CHAIN_HEIGHT, chain.size)
        assert again.genesis_hash == GENESIS_HASH
        assert again.get_state("wal") == b"w"
        commit(again, build_chain(CHAIN_HEIGHT + 1).blocks[-1])
        assert again.height == CHAIN_HEIGHT + 1


def _flip_merkle_nodes(store: Store) -> list[tuple[bytes, bytes | None]]:
    return [(k, bytes(b ^ 0xFF for b in v)) for k, v in store.kv.iterate(prefix=ks.NODE)]


def _rewrite_last_root(store: Store) -> list[tuple[bytes, bytes | None]]:
    header = store.get_header(store.height)
    assert header is not None
    forged = dataclasses.replace(header, ledger_root="ab" * 32)
    return [(ks.block_key(store.height), canonical_bytes(forged.to_json()))]


def _unmap_last_hash(store: Store) -> list[tuple[bytes, bytes | None]]:
    header = store.get_header(store.height)
    assert header is not None
    return [(ks.block_hash_key(bytes.fromhex(header.hash())), None)]


Edits = list[tuple[bytes, bytes | None]]
CORRUPTIONS: dict[str, tuple[Callable[[Store], Edits], str]] = {
    "merkle_nodes": (_flip_merkle_nodes, "ledger_root [0-9a-f]+ != log root"),
    "header_root": (_rewrite_last_root, "ledger_root abab.* != log root"),
    "meta_height": (lambda s: [(ks.META_HEIGHT, ks.u64(s.height - 1))], "block 12 is stored"),
    "meta_size": (lambda s: [(ks.META_LEDGER_SIZE, ks.u64(s.ledger_size + 1))], "ledger_size"),
    "block_hash_map": (_unmap_last_hash, "does not map back"),
    "last_header_gone": (lambda s: [(ks.block_key(s.height), None)], "block 12 is missing"),
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_corrupt_store_refuses_to_open(
    backend: Backend, chain: ChainBuilder, corruption: str
) -> None:
    edit, message = CORRUPTIONS[corruption]
    with backend.open() as store:
        commit(store, *chain.blocks)
        edits = edit(store)
    for key_bytes, value in edits:
        backend.raw_put(key_bytes, value)
    with pytest.raises(StoreError, match="is inconsistent") as caught:
        backend.open()
    assert caught.match(message)
    assert caught.match("restore from backup or wipe and resync")
    assert caught.match(str(backend.path) if backend.kind == "leveldb" else "<memory>")


def test_genesis_mismatch_is_refused(backend: Backend) -> None:
    with backend.open() as store:
        store.check_genesis(GENESIS_HASH)
    with backend.open() as store:
        store.check_genesis(GENESIS_HASH)
        with pytest.raises(StoreError, match="belongs to genesis"):
            store.check_genesis("ee" * 32)
        with pytest.raises(StoreError, match="belongs to genesis"):
            store.set_genesis_hash("ee" * 32)


def test_first_block_must_follow_the_pinned_genesis(store: Store) -> None:
    block = ChainBuilder(prev_hash="ee" * 32).build([])
    with pytest.raises(ChainError, match="prev_hash"):
        commit(store, block)


def test_data_without_schema_is_not_a_store() -> None:
    kv = MemoryKV()
    kv.write([(b"zz", b"stray")], sync=True)
    with pytest.raises(StoreError, match="not a Comity store"):
        Store(kv)


def test_leveldb_locked_by_another_user_is_a_store_error(tmp_path: Path) -> None:
    """LevelDB only: memory stores have no lock."""
    with (
        Store.open_leveldb(tmp_path / "node") as _held,
        pytest.raises(StoreError, match="another node using this data dir"),
    ):
        Store.open_leveldb(tmp_path / "node")


# --- crash atomicity (LevelDB, real SIGKILL) ------------------------------------

CHILD = """
import sys
from ledger.keyspace import u64
from ledger.store import Store
from tests.factory import GENESIS_HASH, ChainBuilder, EnvelopeMaker, varied_envelopes
store = Store.open_leveldb(sys.argv[1])
store.check_genesis(GENESIS_HASH)
builder, maker = ChainBuilder(), EnvelopeMaker()
while True:
    block = builder.next_block(varied_envelopes(maker, builder.height + 1))
    if block.header.height == store.height + 1:
        # Caught up with what survived the last kill: from here on every loop writes.
        print("ready", store.height, flush=True)
    if block.header.height > store.height:
        store.commit_block(block.header, block.envelopes, block.certificate,
                           extra={b"glast": u64(block.header.height)})
"""


def run_and_kill(path: Path, rng: random.Random) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith(b"ready"), child.stderr.read() if child.stderr else line
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=rng.uniform(0.05, 0.6))
        assert child.poll() is None, "the writer died on its own"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.slow
def test_sigkill_leaves_whole_blocks(tmp_path: Path) -> None:
    """LevelDB only: a writer killed at random points never leaves half a block."""
    rng = random.Random(20260101)
    path, builder, maker = tmp_path / "node", ChainBuilder(), EnvelopeMaker()
    checked_height = 0
    for _ in range(5):
        run_and_kill(path, rng)
        with Store.open_leveldb(path) as store:  # runs the open-time checks
            store.check_genesis(GENESIS_HASH)
            while builder.height < store.height:
                builder.next_block(varied_envelopes(maker, builder.height + 1))
            assert store.height >= checked_height
            first_leaf = 0
            for block in builder.blocks:
                assert_block_complete(store, block, first_leaf)
                first_leaf += len(block.envelopes)
            assert store.ledger_size == first_leaf
            assert_nothing_beyond(store)
            checked_height = store.height
    assert checked_height > 0


def assert_nothing_beyond(store: Store) -> None:
    """No trace of a block after the last committed one: it was all or nothing."""
    last_block = next(store.kv.iterate(prefix=ks.BLOCK, reverse=True, limit=1))[0]
    assert ks.read_u64(last_block[1:]) == store.height
    last_leaf = next(store.kv.iterate(prefix=ks.LEAF, reverse=True, limit=1))[0]
    assert ks.read_u64(last_leaf[1:]) == store.ledger_size - 1
    assert store.get_kv(b"glast") == ks.u64(store.height)
