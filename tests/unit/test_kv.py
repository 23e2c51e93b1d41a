"""The KV seam: both backends must agree on ranges, order, limits and atomic batches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.errors import StoreError
from ledger.kv import KV, LevelDBKV, MemoryKV, prefix_upper_bound

KEYS = [b"a", b"a\x00", b"ab", b"a\xff", b"b", b"b\xff\xff", b"c"]  # byte order


@pytest.fixture(params=["memory", "leveldb"])
def kv(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KV]:
    store: KV = MemoryKV() if request.param == "memory" else LevelDBKV.open(tmp_path / "kv")
    assert sorted(KEYS) == KEYS
    store.write([(key, key.upper()) for key in reversed(KEYS)], sync=True)
    yield store
    store.close()


@pytest.mark.parametrize(("prefix", "expected"), [
    (b"\xff", None), (b"a", b"b"), (b"a\xff", b"b"), (b"b\xff\xff", b"c"), (b"\xff\xff", None),
])
def test_prefix_upper_bound(prefix: bytes, expected: bytes | None) -> None:
    assert prefix_upper_bound(prefix) == expected


@pytest.mark.parametrize(("query", "expected"), [
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
])
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
