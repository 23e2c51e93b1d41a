#!/usr/bin/env python3
"""Per-record CPU cost of the ledger hot path: parse, canonicalise, hash, verify.

docs/DESIGN.md ("Performance budget") says signature checks bound the work. This
measures each step of accepting one envelope on one core, so that claim can
be checked on the machine at hand:

    parse_json(envelope body) -> canonical_bytes(record) -> sha256 id -> Ed25519 verify

Each step is timed per record with ``time.perf_counter_ns`` and the median
over all records is printed, in microseconds; "total" is the median of the
per-record sums. A separate tight loop gives Ed25519 verifications per second
on one core. Records are generated from a fixed seed (``--seed``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ledger.canonical import canonical_bytes, parse_json
from ledger.keys import SigningKey, verify
from ledger.records import parse_envelope_bytes, verify_signature

SIGNERS = 16  # distinct agency keys in the sample (verify-key objects are cached by key)
AGENCIES = [
    "Gendarmerie nationale",
    "Bundeskriminalamt",
    "Policía Nacional",
    "Guardia di Finanza",
    "Národní centrála proti organizovanému zločinu",
]
STATES = ["FR", "DE", "ES", "IT", "CZ", "NL", "PL"]


def make_envelopes(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    keys = [SigningKey(rng.randbytes(32)) for _ in range(SIGNERS)]
    bodies = []
    for i in range(count):
        record: dict[str, Any] = {
            "schema": "comity/1",
            "type": "evidence_submitted",
            "chain_id": "bench",
            "actor": {"state": rng.choice(STATES), "agency": rng.choice(AGENCIES)},
            "nonce": f"bench-{seed}-{i:08d}",
            "occurred_at": f"2026-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T12:00:00.000Z",
            "case_ref": f"{rng.choice(STATES)}-2026-{rng.randint(1, 99999):05d}",
            "territorial_states": rng.sample(STATES, rng.randint(1, 3)),
            "evidence": [
                {
                    "sha256": rng.randbytes(32).hex(),
                    "name": f"item-{j}.bin",
                    "bytes": rng.randint(1, 2**40),
                }
                for j in range(rng.randint(1, 3))
            ],
            "description": "Saisie d'un ordinateur portable, scellé n°" + str(rng.randint(1, 999)),
        }
        key = keys[i % SIGNERS]
        envelope = {
            "record": record,
            "signer": key.public_hex,
            "signature": key.sign(canonical_bytes(record)).hex(),
        }
        bodies.append(canonical_bytes(envelope))
    return bodies


def time_steps(bodies: list[bytes]) -> dict[str, list[int]]:
    clock = time.perf_counter_ns
    costs: dict[str, list[int]] = {name: [] for name in ("parse", "canon", "sha", "verify")}
    for body in bodies:
        t0 = clock()
        envelope = parse_json(body)
        t1 = clock()
        record_bytes = canonical_bytes(envelope["record"])
        t2 = clock()
        hashlib.sha256(record_bytes).hexdigest()
        t3 = clock()
        ok = verify(
            bytes.fromhex(envelope["signer"]), record_bytes, bytes.fromhex(envelope["signature"])
        )
        t4 = clock()
        assert ok, "benchmark envelope failed to verify"
        for name, cost in zip(costs, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            costs[name].append(cost)
    return costs


def time_pipeline(bodies: list[bytes]) -> list[int]:
    """The real entry point: parse_envelope_bytes (shape, id, leaf) + verify_signature."""
    clock = time.perf_counter_ns
    costs = []
    for body in bodies:
        t0 = clock()
        verify_signature(parse_envelope_bytes(body))
        costs.append(clock() - t0)
    return costs


def verifies_per_second(bodies: list[bytes], seconds: float) -> float:
    items = []
    for body in bodies[:1000]:
        envelope = parse_json(body)
        items.append(
            (
                bytes.fromhex(envelope["signer"]),
                canonical_bytes(envelope["record"]),
                bytes.fromhex(envelope["signature"]),
            )
        )
    done, start = 0, time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for public, message, signature in items:
            verify(public, message, signature)
        done += len(items)
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000, help="envelopes to time")
    parser.add_argument("--seed", type=int, default=1, help="seed for the generated records")
    parser.add_argument(
        "--verify-seconds", type=float, default=2.0, help="duration of the Ed25519 throughput loop"
    )
    args = parser.parse_args()

    bodies = make_envelopes(args.records, args.seed)
    sizes = sorted(len(b) for b in bodies)
    print(
        f"python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs; {args.records} envelopes, median body "
        f"{sizes[len(sizes) // 2]} bytes, {SIGNERS} signers, seed {args.seed}"
    )
    time_steps(bodies[:1000])  # warm-up: caches, allocator, CPU frequency
    costs = time_steps(bodies)
    totals = [sum(parts) for parts in zip(*costs.values(), strict=True)]
    labels = {
        "parse": "parse_json(envelope body)",
        "canon": "canonical_bytes(record)",
        "sha": "sha256 record id",
        "verify": "Ed25519 verify",
    }
    print(f"{'per-record median cost':<44} {'µs':>8}")
    for name, label in labels.items():
        print(f"  {label:<42} {statistics.median(costs[name]) / 1000:8.2f}")
    print(f"  {'total (median of per-record sums)':<42} {statistics.median(totals) / 1000:8.2f}")
    pipeline = time_pipeline(bodies)
    print(
        f"  {'parse_envelope_bytes + verify_signature':<42} "
        f"{statistics.median(pipeline) / 1000:8.2f}"
    )
    rate = verifies_per_second(bodies, args.verify_seconds)
    print(f"Ed25519 verifications/s on one core: {rate:,.0f}")


if __name__ == "__main__":
    main()
