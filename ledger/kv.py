"""Ordered key-value backends: the one seam between the store and the disk.

Theory of operation
-------------------
``ledger/store.py`` is written once over ``KV``, a tiny ordered byte-key
interface, so the in-memory backend used by tests and simulations and the
LevelDB backend used in production run exactly the same store logic:

* ``get(key)`` returns the value, or None if the key is absent;
* ``iterate(prefix=, start=, stop=, reverse=, limit=)`` yields ``(key, value)``
  pairs in byte order over ``[start, stop)`` intersected with ``prefix``;
* ``write(batch, sync=)`` applies a list of puts (value bytes) and deletes
  (value None) atomically: after a crash either the whole batch is visible or
  none of it. With ``sync=True`` the batch is on stable storage (fsync of the
  LevelDB log) before ``write`` returns, which is what "persist, then send"
  and "a block is durable once committed" rely on.

``MemoryKV`` is a dict plus a sorted key list (``bisect``); it validates the
whole batch before touching anything so a bad item cannot leave half a batch
applied. ``close()`` keeps its contents, so a test can "reopen" it by building
a new Store over the same object.

``LevelDBKV`` wraps plyvel. A batch is one ``WriteBatch``, written only after
every item was added, so an exception while building it writes nothing.
plyvel's errors (a data dir locked by another process, corruption, use after
close) are translated here into ``StoreError`` naming the path.

Memory: LevelDB (1.22, as plyvel bundles it) maps each table file it opens
into the process with mmap and keeps up to ``max_open_files - 10`` tables open.
Every page a read touches stays mapped, and counts in the node's RSS, until its
table leaves that cache. With LevelDB's default of 1000 open files a node that
serves random reads over a 10^6-record store (1 GB in ~510 tables) ends up with
most of the store mapped: ~500 MiB of its ~600 MiB RSS. ``LevelDBOptions``
therefore sets every size explicitly and keeps far fewer tables open, which
bounds the mapped bytes by ``LevelDBOptions.mapped_bytes_max()``. Writes add
at most two memtables (``2 * write_buffer_bytes``) while a node commits.
"""

from __future__ import annotations

import bisect
import itertools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import plyvel

from ledger.errors import InvariantViolation, StoreError

Batch = Sequence[tuple[bytes, bytes | None]]


class KV(Protocol):
    """An ordered byte-key store with atomic batches (see module docstring)."""

    location: str  # shown in error messages: a directory, or "<memory>"

    def get(self, key: bytes) -> bytes | None: ...

    def iterate(
        self,
        *,
        prefix: bytes | None = None,
        start: bytes | None = None,
        stop: bytes | None = None,
        reverse: bool = False,
        limit: int | None = None,
    ) -> Iterator[tuple[bytes, bytes]]: ...

    def write(self, batch: Batch, *, sync: bool) -> None: ...

    def compact(self) -> None: ...

    def close(self) -> None: ...


def prefix_upper_bound(prefix: bytes) -> bytes | None:
    """Smallest key greater than every key starting with ``prefix`` (None: no bound)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


def key_range(
    prefix: bytes | None, start: bytes | None, stop: bytes | None
) -> tuple[bytes, bytes | None]:
    """Fold a prefix into ``[lo, hi)`` bounds; ``hi`` None means unbounded."""
    lo = start or b""
    hi = stop
    if prefix:
        lo = max(lo, prefix)
        upper = prefix_upper_bound(prefix)
        if upper is not None:
            hi = upper if hi is None else min(hi, upper)
    return lo, hi


def _check_batch(batch: Batch) -> None:
    for key, value in batch:
        if not isinstance(key, bytes) or not key:
            raise TypeError(f"KV keys are non-empty bytes, got {key!r:.40}")
        if value is not None and not isinstance(value, bytes):
            raise TypeError(f"KV values are bytes or None (delete), got {type(value).__name__}")


class MemoryKV:
    """A dict with a sorted key list; batches are validated, then applied whole."""

    def __init__(self) -> None:
        self.location = "<memory>"
        self._data: dict[bytes, bytes] = {}
        self._keys: list[bytes] = []

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def iterate(
        self,
        *,
        prefix: bytes | None = None,
        start: bytes | None = None,
        stop: bytes | None = None,
        reverse: bool = False,
        limit: int | None = None,
    ) -> Iterator[tuple[bytes, bytes]]:
        lo, hi = key_range(prefix, start, stop)
        first = bisect.bisect_left(self._keys, lo)
        last = len(self._keys) if hi is None else bisect.bisect_left(self._keys, hi)
        if limit is not None:
            if reverse:
                first = max(first, last - limit)
            else:
                last = min(last, first + limit)
        # Snapshot the slice so a write during iteration cannot shift what we yield.
        keys = self._keys[first:last]
        if reverse:
            keys.reverse()
        pairs = [(key, self._data[key]) for key in keys]
        return iter(pairs)

    def write(self, batch: Batch, *, sync: bool) -> None:
        del sync  # memory has nothing to flush
        _check_batch(batch)
        for key, value in batch:
            if value is None:
                if self._data.pop(key, None) is not None:
                    del self._keys[bisect.bisect_left(self._keys, key)]
            else:
                if key not in self._data:
                    bisect.insort(self._keys, key)
                self._data[key] = value

    def snapshot_items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every pair as of this call, in key order (a copy: later writes are not seen)."""
        return iter([(key, self._data[key]) for key in self._keys])

    def compact(self) -> None:
        """Nothing to rewrite: a deleted pair is gone from memory at once."""

    def close(self) -> None:
        """Nothing to release; the contents stay so a test can reopen a Store over them."""


#: Files LevelDB keeps open besides its tables (log, manifest, lock, ...).
LEVELDB_NON_TABLE_FILES = 10


@dataclass(frozen=True, slots=True)
class LevelDBOptions:
    """What LevelDB may hold in memory (see "Memory" in the module docstring)."""

    # Files open at once. Each open table is mapped whole and the pages reads
    # touch count in the RSS, so this bounds them (190 tables of 2 MiB). A
    # lookup in a table that is not open pays to open it (0.1-0.4 ms here: read
    # and decompress its index block). 200 keeps ~2/5 of a 10^6-record store
    # open: a node serving reads of it stays near 220 MiB instead of 600 MiB,
    # and a search of 10 records takes ~1 ms longer (docs/PERFORMANCE.md).
    open_files_max: int = 200
    table_file_bytes: int = 2 * 2**20  # LevelDB's default size of a table file
    block_cache_bytes: int = 8 * 2**20  # uncompressed blocks, on the heap
    # A memtable; two while one is flushed. Larger than LevelDB's 4 MiB default
    # and no block compression (below): LevelDB's background compaction
    # otherwise costs more CPU than the commit itself. Measured with
    # scripts/bench_pipeline.py over 100,000 records into each of two stores
    # (docs/PERFORMANCE.md): 48.7 s of compaction CPU with snappy and 4 MiB
    # buffers, 31.1 s without compression, 11.0 s with 16 MiB and 6.4 s with
    # 32 MiB buffers. The price is disk: the benchmark's 10^6-record store
    # takes 1,475 MiB instead of 979 MiB (records are mostly hex digests and
    # signatures, which snappy shrinks little); reads got faster, not slower.
    write_buffer_bytes: int = 32 * 2**20
    compression: str | None = None  # "snappy" or None (plyvel's names)
    # A Bloom filter (10 bits a key: about 1% false positives) lets a lookup of
    # an absent key skip the table files. Those are the common case on the
    # write path: "is this record id / (signer, nonce) already on the chain?"
    # is asked for every record at admission and again in every block, and the
    # answer is almost always no.
    bloom_bits_per_key: int = 10
    # A damaged record in the write-ahead log (a flipped byte, not a torn tail)
    # fails the open instead of being skipped: LevelDB otherwise drops that
    # block's commit batch and replays the later ones, leaving a store whose
    # meta height is past a missing block (found by tests/fault/test_disk_faults.py).
    # A log cut off at its end is still a crash, recovered as one.
    paranoid_checks: bool = True

    def __post_init__(self) -> None:
        # LevelDB silently raises smaller values to these; refuse them instead,
        # so what is set here is what LevelDB uses.
        if (
            self.open_files_max < 64 + LEVELDB_NON_TABLE_FILES
            or self.table_file_bytes < 2**20
            or self.write_buffer_bytes < 64 * 2**10
        ):
            raise InvariantViolation(f"LevelDB options below LevelDB's minimums: {self}")

    def tables_open_max(self) -> int:
        return self.open_files_max - LEVELDB_NON_TABLE_FILES

    def mapped_bytes_max(self) -> int:
        """About the most table bytes mapped at once (a table may end one block over)."""
        return self.tables_open_max() * self.table_file_bytes


class LevelDBKV:
    """plyvel.DB behind the KV protocol; every plyvel error becomes StoreError."""

    def __init__(self, db: plyvel.DB, location: str) -> None:
        self._db = db
        self.location = location

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], options: LevelDBOptions = LevelDBOptions()
    ) -> LevelDBKV:
        location = str(Path(path).resolve())
        try:
            Path(location).mkdir(parents=True, exist_ok=True)
            db = plyvel.DB(
                location,
                create_if_missing=True,
                max_open_files=options.open_files_max,
                max_file_size=options.table_file_bytes,
                lru_cache_size=options.block_cache_bytes,
                write_buffer_size=options.write_buffer_bytes,
                compression=options.compression,
                bloom_filter_bits=options.bloom_bits_per_key,
                paranoid_checks=options.paranoid_checks,
            )
        except plyvel.IOError as exc:
            raise StoreError(
                f"cannot open store at {location}: {exc}; is another node using this data dir?"
            ) from exc
        except (plyvel.Error, OSError) as exc:
            raise StoreError(f"cannot open store at {location}: {exc}") from exc
        return cls(db, location)

    def _fail(self, exc: Exception) -> StoreError:
        return StoreError(f"store at {self.location} failed: {exc}")

    def get(self, key: bytes) -> bytes | None:
        try:
            value: bytes | None = self._db.get(key)
        except (plyvel.Error, RuntimeError) as exc:
            raise self._fail(exc) from exc
        return value

    def iterate(
        self,
        *,
        prefix: bytes | None = None,
        start: bytes | None = None,
        stop: bytes | None = None,
        reverse: bool = False,
        limit: int | None = None,
    ) -> Iterator[tuple[bytes, bytes]]:
        lo, hi = key_range(prefix, start, stop)
        try:
            iterator = self._db.iterator(start=lo or None, stop=hi, reverse=reverse)
        except (plyvel.Error, RuntimeError) as exc:
            raise self._fail(exc) from exc
        return self._drain(iterator, limit)

    def _drain(self, iterator: plyvel.Iterator, limit: int | None) -> Iterator[tuple[bytes, bytes]]:
        try:
            with iterator:
                yield from itertools.islice(iterator, limit)
        except (plyvel.Error, RuntimeError) as exc:
            raise self._fail(exc) from exc

    def write(self, batch: Batch, *, sync: bool) -> None:
        try:
            # Not the context-manager form: an error while building must write nothing.
            # Each pair is checked as it is added, not in a pass of its own: a
            # block's commit puts about ten keys per record.
            write_batch = self._db.write_batch(sync=sync)
            put, delete = write_batch.put, write_batch.delete
            for key, value in batch:
                if (
                    type(key) is not bytes
                    or not key
                    or (value is not None and type(value) is not bytes)
                ):
                    _check_batch([(key, value)])  # raises TypeError naming the pair
                if value is None:
                    delete(key)
                else:
                    put(key, value)
            write_batch.write()
        except (plyvel.Error, RuntimeError) as exc:
            raise self._fail(exc) from exc

    def snapshot_items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every pair as of this call, in key order, from a LevelDB snapshot: writes made
        while the caller iterates are not seen, so a backup is one consistent state."""
        try:
            snapshot = self._db.snapshot()
        except (plyvel.Error, RuntimeError) as exc:
            raise self._fail(exc) from exc
        return self._drain_snapshot(snapshot)

    def _drain_snapshot(self, snapshot: plyvel.Snapshot) -> Iterator[tuple[bytes, bytes]]:
        try:
            with snapshot.iterator() as iterator:
                yield from iterator
        except (plyvel.Error, RuntimeError) as exc:
            raise self._fail(exc) from exc
        finally:
            snapshot.close()

    def compact(self) -> None:
        """Rewrite the tables so that deleted pairs leave the files (a purge's last step:
        LevelDB keeps a deleted value on disk until a compaction drops it)."""
        try:
            # An explicit range: with none given, plyvel compacts an empty one.
            self._db.compact_range(start=b"\x00", stop=b"\xff" * 64)
        except (plyvel.Error, RuntimeError) as exc:
            raise self._fail(exc) from exc

    def close(self) -> None:
        try:
            if not self._db.closed:
                self._db.close()
        except (plyvel.Error, RuntimeError) as exc:
            raise self._fail(exc) from exc
