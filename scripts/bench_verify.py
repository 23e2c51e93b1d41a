"""Benchmark the auditor's chain verifier (ledger/audit/chain.py) on a large offline chain.

Builds, with the node's own serializer and Merkle code (not the verifier's),
a chain of ``--blocks`` blocks of ``--records`` signed records each (default
100 x 1000 = 100,000) under a 4-member genesis, with real commit
certificates; records are signed in a process pool. The blocks are then
serialised as the JSON pages ``GET /v1/blocks?envelopes=true`` serves and fed,
parsed, to ``ChainVerifier``; blocks/s and records/s are printed, as well as
the verifier's peak memory growth (tracemalloc is off while timing).

    .venv/bin/python scripts/bench_verify.py [--blocks 100] [--records 1000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.cli.bootstrap import DEMO_STATES, MemberKeys, build_genesis
from ledger import merkle
from ledger.audit.chain import ChainVerifier
from ledger.block import (
    BlockHeader,
    CommitCertificate,
    CommitSignature,
    validators_hash,
    vote_sign_bytes,
)
from ledger.canonical import canonical_bytes
from ledger.keys import SigningKey
from ledger.records import format_time
from node.genesis import Genesis

CHAIN_ID = "comity-bench"


def _sign_batch(args: tuple[bytes, str, int, int]) -> list[dict[str, Any]]:
    seed, state, first, count = args
    key = SigningKey(seed)
    out = []
    for n in range(first, first + count):
        record = {
            "schema": "comity/1",
            "type": "preservation_request",
            "chain_id": CHAIN_ID,
            "actor": {"state": state, "agency": f"{state} cybercrime unit"},
            "nonce": f"bench{n:012d}",
            "occurred_at": "2026-01-01T00:00:00Z",
            "case_ref": f"CASE-{n % 97}",
            "territorial_states": ["TH"],
            "evidence": [{"sha256": f"{n:064x}"}],
        }
        out.append(
            {
                "record": record,
                "signer": key.public_hex,
                "signature": key.sign(canonical_bytes(record)).hex(),
            }
        )
    return out


def build(blocks: int, per_block: int) -> tuple[dict[str, Any], list[bytes]]:
    members = [MemberKeys.generate(s, n) for s, n in DEMO_STATES[:4]]
    genesis = Genesis.model_validate(
        build_genesis(
            CHAIN_ID, members, {m.state: f"http://{m.state.lower()}.p2p" for m in members}
        )
    )
    seats = genesis.validators()
    node_keys = {m.node.public_hex: m.node for m in members}
    jobs = [
        (members[h % 4].investigator.seed(), members[h % 4].state, h * per_block, per_block)
        for h in range(blocks)
    ]
    with ProcessPoolExecutor() as pool:
        bodies = list(pool.map(_sign_batch, jobs))
    log, size, prev = merkle.MemoryHashStore(), 0, genesis.hash()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    pages: list[bytes] = []
    for height, envelopes in enumerate(bodies, start=1):
        leaves = [merkle.leaf_hash(canonical_bytes(e)) for e in envelopes]
        nodes, size, root = merkle.append_leaves(size, leaves, log)
        log.put_nodes(nodes)
        header = BlockHeader(
            CHAIN_ID,
            height,
            format_time(start + timedelta(seconds=height)),
            prev,
            seats[height % 4].state,
            len(envelopes),
            size,
            root.hex(),
            validators_hash(seats),
        )
        message = vote_sign_bytes("precommit", CHAIN_ID, height, 0, header.hash())
        cert = CommitCertificate(
            height,
            0,
            header.hash(),
            tuple(
                CommitSignature(s.pubkey, node_keys[s.pubkey].sign(message).hex()) for s in seats
            ),
        )
        block = {
            "hash": header.hash(),
            "header": header.to_json(),
            "commit": cert.to_json(),
            "record_ids": [],
            "envelopes": envelopes,
        }
        block.pop("record_ids")
        pages.append(json.dumps({"blocks": [block], "next_from": None}).encode())
        prev = header.hash()
    return genesis.to_json(), pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", type=int, default=100)
    parser.add_argument("--records", type=int, default=1000)
    args = parser.parse_args()
    t0 = time.perf_counter()
    genesis, pages = build(args.blocks, args.records)
    print(
        f"built {args.blocks} blocks x {args.records} records in "
        f"{time.perf_counter() - t0:.1f}s ({sum(map(len, pages)) / 1e6:.0f} MB of JSON)"
    )
    verifier = ChainVerifier(genesis)
    t0 = time.perf_counter()
    for page in pages:
        for block in json.loads(page)["blocks"]:
            verifier.feed(block)
    elapsed = time.perf_counter() - t0
    print(
        f"verified {verifier.height} blocks, {verifier.records} records in {elapsed:.1f}s: "
        f"{verifier.height / elapsed:.1f} blocks/s, {verifier.records / elapsed:.0f} records/s "
        f"(JSON parsing included; single process)"
    )
    print(f"log right edge: {len(verifier.log.edge)} hashes for {verifier.log.size} leaves")


if __name__ == "__main__":
    main()
