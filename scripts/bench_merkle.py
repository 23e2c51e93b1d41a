#!/usr/bin/env python3
"""Benchmark the ledger Merkle log (ledger/merkle.py) over LevelDB.

Appends N leaves through append_leaves in batches, writing each batch's new
perfect nodes in one plyvel write batch (as a block commit would), then
times random inclusion and consistency proofs at the full size. Nodes are
read back from LevelDB on every proof: the script keeps no cache of its own,
only LevelDB's block cache (8 MiB by default) and the OS page cache.

Key layout: b"m" + level (1 byte) + index (8 bytes, big-endian) -> 32-byte hash.

Run from the repository's venv:  .venv/bin/python scripts/bench_merkle.py --leaves 1000000
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import plyvel

from ledger import merkle

NODE_PREFIX = b"m"


def node_key(level: int, index: int) -> bytes:
    return NODE_PREFIX + bytes([level]) + index.to_bytes(8, "big")


class LevelDBHashReader:
    """The HashReader seam over plyvel: one point read per node, no cache."""

    def __init__(self, db: Any) -> None:
        self._db = db

    def get_node(self, level: int, index: int) -> bytes:
        value: bytes | None = self._db.get(node_key(level, index))
        if value is None:
            raise KeyError((level, index))
        return value


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=1_000_000, help="leaves to append")
    parser.add_argument("--batch", type=int, default=1000, help="leaves per append batch")
    parser.add_argument("--proofs", type=int, default=1000, help="proofs of each kind to time")
    parser.add_argument(
        "--db",
        type=Path,
        default=None,
        help="LevelDB directory to create (default: a temporary directory)",
    )
    parser.add_argument(
        "--sync", action="store_true", help="fsync every write batch, as a block commit does"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed for the proof positions")
    args = parser.parse_args()
    if args.leaves < 2 or args.batch < 1 or args.proofs < 1:
        parser.error("need --leaves >= 2, --batch >= 1 and --proofs >= 1")
    return args


@contextmanager
def open_db(path: Path | None) -> Iterator[tuple[Any, Path]]:
    with tempfile.TemporaryDirectory(prefix="bench-merkle-") as scratch:
        where = path if path is not None else Path(scratch) / "db"
        # error_if_exists: appending onto an old run would skew every figure.
        db = plyvel.DB(str(where), create_if_missing=True, error_if_exists=True)
        try:
            yield db, where
        finally:
            db.close()


def append_all(db: Any, leaves: int, batch: int, sync: bool) -> bytes:
    reader = LevelDBHashReader(db)
    size, root = 0, merkle.EMPTY_ROOT
    while size < leaves:
        end = min(leaves, size + batch)
        hashes = [merkle.leaf_hash(b"bench-leaf-%d" % i) for i in range(size, end)]
        nodes, size, root = merkle.append_leaves(size, hashes, reader)
        with db.write_batch(sync=sync) as write:
            for (level, index), value in nodes.items():
                write.put(node_key(level, index), value)
    return root


def percentile_ms(samples_ns: list[int], fraction: float) -> float:
    ordered = sorted(samples_ns)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1e6


def time_each(calls: list[Callable[[], list[bytes]]]) -> tuple[list[int], list[list[bytes]]]:
    samples_ns, results = [], []
    for call in calls:
        start = time.perf_counter_ns()
        results.append(call())
        samples_ns.append(time.perf_counter_ns() - start)
    return samples_ns, results


def bench_proofs(db: Any, size: int, root: bytes, count: int, seed: int) -> None:
    reader = LevelDBHashReader(db)
    rng = random.Random(seed)
    indexes = [rng.randrange(size) for _ in range(count)]
    sizes1 = [rng.randrange(1, size) for _ in range(count)]
    samples, proofs = time_each([partial(merkle.inclusion_proof, i, size, reader) for i in indexes])
    print(
        f"inclusion proofs ({count} at size {size:,}): p50 {percentile_ms(samples, 0.5):.3f} "
        f"ms, p99 {percentile_ms(samples, 0.99):.3f} ms"
    )
    # Outside the timing: each proof must verify, or the figures mean nothing.
    for index, proof in zip(indexes, proofs, strict=True):
        leaf = merkle.leaf_hash(b"bench-leaf-%d" % index)
        merkle.verify_inclusion(leaf, index, size, proof, root)
    samples, proofs = time_each(
        [partial(merkle.consistency_proof, s, size, reader) for s in sizes1]
    )
    print(
        f"consistency proofs ({count} to size {size:,}): p50 "
        f"{percentile_ms(samples, 0.5):.3f} ms, p99 {percentile_ms(samples, 0.99):.3f} ms"
    )
    for size1, proof in zip(sizes1, proofs, strict=True):
        merkle.verify_consistency(size1, size, merkle.root(size1, reader), root, proof)
    print(f"verified all {2 * count} proofs against the root")


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    with open_db(args.db) as (db, where):
        print(
            f"merkle bench: {args.leaves:,} leaves in batches of {args.batch:,}, "
            f"LevelDB at {where}, sync={args.sync}"
        )
        start = time.perf_counter()
        root = append_all(db, args.leaves, args.batch, args.sync)
        elapsed = time.perf_counter() - start
        print(
            f"append: {args.leaves:,} leaves in {elapsed:.2f} s = "
            f"{args.leaves / elapsed:,.0f} leaves/s (leaf hashing + append_leaves + "
            f"write batches); root {root.hex()}"
        )
        bench_proofs(db, args.leaves, root, args.proofs, args.seed)
    print(f"total time: {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
