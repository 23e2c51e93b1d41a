"""The KV seam: both backends must agree on ranges, order, limits and atomic batches."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import plyvel
import pytest

from ledger.errors import InvariantViolation, StoreError
from ledger.kv import KV, LevelDBKV, LevelDBOptions, MemoryKV, prefix_upper_bound

KEYS = [b"a", b"a\x00", b"ab", b"a\xff", b"b", b"b\xff\xff", b"c"]  # byte order


@pytest.fixture(params=["memory", "leveldb"])
def kv(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KV]:
    store: KV = MemoryKV() if request.param == "memory" else LevelDBKV.open(tmp_path / "kv")
    assert sorted(KEYS) == KEYS
    store.write([(key, key.upper()) for key in reversed(KEYS)], sync=True)
    yield store
    store.close()


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        (b"\xff", None),
        (b"a", b"b"),
        (b"a\xff", b"b"),
        (b"b\xff\xff", b"c"),
        (b"\xff\xff", None),
    ],
)
def test_prefix_upper_bound(prefix: bytes, expected: bytes | None) -> None:
    assert prefix_upper_bound(prefix) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, KEYS),
        ({"prefix": b"a"}, [b"a", b"a\x00", b"ab", b"a\xff"]),
        ({"prefix": b"b"}, [b"b", b"b\xff\xff"]),
        ({"prefix": b"a", "start": b"a\x01"}, [b"ab", b"a\xff"]),
        ({"prefix": b"a", "stop": b"a\xff"}, [b"a", b"a\x00", b"ab"]),
        ({"start": b"ab", "stop": b"c"}, [b"ab", b"a\xff", b"b", b"b\xff\xff"]),
        ({"prefix": b"a", "reverse": True, "limit": 2}, [b"a\xff", b"ab"]),
        ({"prefix": b"a", "limit": 2}, [b"a", b"a\x00"]),
        ({"prefix": b"a", "start": b"b"}, []),
        ({"prefix": b"z"}, []),
    ],
)
def test_iterate_ranges(kv: KV, query: dict[str, object], expected: list[bytes]) -> None:
    got = list(kv.iterate(**query))  # type: ignore[arg-type]
    assert got == [(key, key.upper()) for key in expected]


def test_batch_puts_and_deletes(kv: KV) -> None:
    kv.write([(b"a", None), (b"new", b"1"), (b"b", b"changed"), (b"missing", None)], sync=True)
    assert kv.get(b"a") is None
    assert kv.get(b"new") == b"1"
    assert kv.get(b"b") == b"changed"
    assert [key for key, _ in kv.iterate(prefix=b"a")] == [b"a\x00", b"ab", b"a\xff"]


def test_a_bad_item_writes_none_of_the_batch(kv: KV) -> None:
    before = list(kv.iterate())
    with pytest.raises(TypeError):
        kv.write([(b"x", b"1"), (b"y", "not bytes")], sync=True)  # type: ignore[list-item]
    assert list(kv.iterate()) == before


def test_leveldb_use_after_close_is_a_store_error(tmp_path: Path) -> None:
    """LevelDB only: the memory backend has nothing to close."""
    kv = LevelDBKV.open(tmp_path / "kv")
    kv.close()
    with pytest.raises(StoreError, match="failed"):
        kv.get(b"a")


class _BrokenDB:
    """Stands in for a plyvel.DB whose disk failed: every call raises plyvel's error."""

    closed = False

    def __getattr__(self, name: str) -> Any:
        def fail(*args: object, **kwargs: object) -> None:
            raise plyvel.IOError(f"IO error: {name}: No space left on device")

        return fail


@pytest.mark.parametrize(
    "use",
    [
        lambda kv: kv.get(b"a"),
        lambda kv: kv.write([(b"a", b"1")], sync=True),
        lambda kv: list(kv.iterate()),
        lambda kv: list(kv.snapshot_items()),
        lambda kv: kv.close(),
    ],
    ids=["get", "write", "iterate", "snapshot", "close"],
)
def test_every_plyvel_error_becomes_a_store_error(
    tmp_path: Path, use: Callable[[LevelDBKV], object]
) -> None:
    kv = LevelDBKV.open(tmp_path / "kv")
    real, kv._db = kv._db, _BrokenDB()
    try:
        with pytest.raises(StoreError, match="No space left on device") as caught:
            use(kv)
        assert isinstance(caught.value.__cause__, plyvel.IOError)
    finally:
        real.close()


# --- memory: LevelDB maps the tables it keeps open ------------------------------------------


def _mapped_tables(directory: Path) -> int:
    """Table files under ``directory`` this process has mapped (Linux /proc)."""
    prefix = str(directory.resolve()) + "/"
    with open("/proc/self/maps", encoding="utf-8") as maps:
        return sum(
            1
            for line in maps
            if line.rstrip().endswith(".ldb") and line.split()[-1].startswith(prefix)
        )


def _read_across_many_tables(path: Path, options: LevelDBOptions) -> tuple[int, int]:
    """Fill a store with more small tables than the options keep open, read a key of
    each, and return (table files on disk, table files mapped)."""
    rng = random.Random(7)
    keys = [b"k" + i.to_bytes(8, "big") for i in range(16_000)]
    kv = LevelDBKV.open(path, options)
    for start in range(0, len(keys), 64):  # in order: each memtable becomes a table
        kv.write([(key, rng.randbytes(1024)) for key in keys[start : start + 64]], sync=False)
    kv.close()
    kv = LevelDBKV.open(path, options)
    try:
        assert all(kv.get(key) is not None for key in keys[::32])
        return len(list(path.glob("*.ldb"))), _mapped_tables(path)
    finally:
        kv.close()


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
def test_leveldb_maps_no_more_tables_than_the_options_keep_open(tmp_path: Path) -> None:
    """Reads over a store of many tables map at most ``tables_open_max`` of them, so
    the node's RSS does not grow with the store (the reads benchmark's 600 MiB)."""
    small = LevelDBOptions(open_files_max=74, write_buffer_bytes=64 * 2**10)
    tables, mapped = _read_across_many_tables(tmp_path / "capped", small)
    assert tables > 2 * small.tables_open_max()
    assert 0 < mapped <= small.tables_open_max()


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
def test_leveldb_maps_every_table_it_keeps_open(tmp_path: Path) -> None:
    """Negative control: with room for every table (LevelDB's default is 1000 files)
    the same reads map them all, so the test above would see a missing cap."""
    roomy = LevelDBOptions(open_files_max=1000, write_buffer_bytes=64 * 2**10)
    tables, mapped = _read_across_many_tables(tmp_path / "roomy", roomy)
    assert mapped == tables > 2 * 64


def test_production_leveldb_options_bound_the_mapped_tables() -> None:
    options = LevelDBOptions()
    assert options.tables_open_max() == options.open_files_max - 10
    assert options.mapped_bytes_max() <= 400 * 2**20
    with pytest.raises(InvariantViolation):  # LevelDB would quietly raise it to 74
        LevelDBOptions(open_files_max=20)


def test_a_store_written_with_snappy_reads_and_grows_without_compression(tmp_path: Path) -> None:
    """Stores written before compression was turned off keep working: LevelDB marks
    compression per block, so old blocks are read and rewritten as they come."""
    old = LevelDBOptions(write_buffer_bytes=64 * 2**10, compression="snappy")
    values = {f"k{i:06d}".encode(): (f"{i:x}" * 40).encode() for i in range(5000)}
    kv = LevelDBKV.open(tmp_path / "kv", old)
    kv.write(list(values.items()), sync=True)
    kv.close()
    assert LevelDBOptions().compression is None
    kv = LevelDBKV.open(tmp_path / "kv", LevelDBOptions(write_buffer_bytes=64 * 2**10))
    try:
        more = {f"m{i:06d}".encode(): b"v" * 100 for i in range(5000)}
        kv.write(list(more.items()), sync=True)
        kv._db.compact_range()  # old snappy blocks rewritten next to new plain ones
        assert dict(kv.iterate()) == {**values, **more}
    finally:
        kv.close()
