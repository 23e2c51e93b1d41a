#!/usr/bin/env python3
"""Per-record CPU cost of each stage of a node's write path, in one process.

``scripts/bench`` measures a consortium end to end; this script says where a
node's CPU goes for each record, stage by stage, so a change can be judged
before the (slow, noisy) end-to-end run. Two nodes of one 4-member genesis,
each over its own LevelDB store (fsync on), take the same records:

- ``ingress``: a 100-envelope batch body as the API receives it: parse,
  verify the signatures, admission checks, into the mempool (node A);
- ``gossip``: the same envelopes as a peer receives them (node B);
- ``build``: node A builds a block from its mempool;
- ``validate``: node B validates that block;
- ``commit``: node A stores it (one fsynced write batch) with a certificate.

``--profile`` prints the top functions of a cProfile run of all stages.

    .venv/bin/python scripts/bench_pipeline.py --records 5000 [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path

import orjson
from benchlib.presign import Signer, SignJob, sign_job

from api.cli.bootstrap import DEMO_STATES, MemberKeys, build_genesis
from ledger.block import CommitCertificate, CommitSignature, vote_sign_bytes
from ledger.canonical import parse_json
from ledger.records import format_time, parse_envelope, verify_signature
from ledger.store import Store
from node.application import Block
from node.clock import utcnow
from node.config import Listen, NodeConfig
from node.genesis import Genesis
from node.runtime import Node

BATCH = 100
BLOCK = 1000


def make_node(genesis: Genesis, member: MemberKeys, data: Path) -> Node:
    config = NodeConfig(
        state=member.state,
        genesis_path=Path("genesis.json"),
        node_key_path=Path("node.key"),
        data_dir=data,
        api=Listen(port=1),
        p2p=Listen(port=2),
        open_read=True,
    )
    return Node(
        config,
        genesis=genesis,
        key=member.node,
        store=Store.open_leveldb(data / "store"),
        enc_key=member.enc,
    )


def run(records: int, profile: bool) -> None:
    members = [MemberKeys.generate(s, n) for s, n in DEMO_STATES[:4]]
    chain_id = "comity-pipeline"
    urls = {m.state: f"http://{m.state.lower()}.p2p" for m in members}
    genesis = Genesis.model_validate(build_genesis(chain_id, members, urls, {}))
    keys = {m.node.public_hex: m.node for m in members}
    signer = members[0]
    job = SignJob(
        Signer(
            signer.state,
            f"{signer.state} cybercrime unit",
            signer.investigator.seed().hex(),
            signer.investigator.public_hex,
        ),
        chain_id,
        "pipe",
        0,
        records,
        format_time(utcnow()),
    )
    leaves = [s.leaf for s in sign_job(job)]
    bodies = [
        b'{"envelopes":[' + b",".join(leaves[i : i + BATCH]) + b"]}"
        for i in range(0, len(leaves), BATCH)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        node_a = make_node(genesis, members[0], Path(tmp) / "a")
        node_b = make_node(genesis, members[1], Path(tmp) / "b")
        max_bytes = node_a.app.params.max_record_bytes
        timings: dict[str, list[float]] = {
            k: [] for k in ("ingress", "gossip", "build", "validate", "commit")
        }

        def timed(stage: str, count: int, call: Callable[[], None]) -> None:
            # CPU time of this process, not wall time: on a shared machine the wall
            # clock also counts the moments another process had the core.
            started = time.process_time()
            call()
            timings[stage].append((time.process_time() - started) / count * 1e6)

        def ingress(body: bytes) -> None:
            obj = parse_json(body)
            envelopes = [
                parse_envelope(item, max_record_bytes=max_bytes) for item in obj["envelopes"]
            ]
            for envelope in envelopes:
                verify_signature(envelope)
                node_a.app.signatures.remember(envelope)
            for envelope in envelopes:
                node_a.admission.admit(envelope)

        def gossip(body: bytes) -> None:
            items = orjson.loads(body)["envelopes"]
            envelopes = [parse_envelope(item, max_record_bytes=max_bytes) for item in items]
            for envelope in envelopes:
                verify_signature(envelope)
                node_b.app.signatures.remember(envelope)
            for envelope in envelopes:
                node_b.admission.accept_gossip(envelope)

        clock = utcnow()

        def one_block() -> None:
            nonlocal clock
            clock += timedelta(seconds=1)
            app = node_a.app
            height = app.height + 1
            proposer = app.state.validators(height)[0].state
            holder: list[tuple[Block, list[str]]] = []
            candidates = node_a.mempool.reap(BLOCK * 2, app.params.max_block_bytes * 2)
            timed(
                "build", BLOCK, lambda: holder.append(app.build_block(proposer, candidates, clock))
            )
            block, _ = holder[0]
            timed("validate", BLOCK, lambda: node_b.app.validate_block(block, now=None))
            header = block.header
            message = vote_sign_bytes("precommit", chain_id, height, 0, header.hash())
            certificate = CommitCertificate(
                height,
                0,
                header.hash(),
                tuple(
                    CommitSignature(v.pubkey, keys[v.pubkey].sign(message).hex())
                    for v in app.state.validators(height)
                ),
            )

            def commit() -> None:
                app.commit(block, certificate)
                node_a.mempool.remove(e.id for e in block.envelopes)

            timed("commit", BLOCK, commit)
            node_b.app.commit(block, certificate)
            node_b.mempool.remove(e.id for e in block.envelopes)

        profiler = cProfile.Profile() if profile else None
        if profiler is not None:
            profiler.enable()
        for start in range(0, len(bodies), BLOCK // BATCH):
            for body in bodies[start : start + BLOCK // BATCH]:
                timed("ingress", BATCH, partial(ingress, body))
                timed("gossip", BATCH, partial(gossip, body))
            one_block()
        if profiler is not None:
            profiler.disable()
        assert node_a.app.height == node_b.app.height == len(leaves) // BLOCK, "blocks missing"
        node_a.store.close()
        node_b.store.close()
    print(f"{records} records, batches of {BATCH}, blocks of {BLOCK}; CPU µs per record (median):")
    total = 0.0
    for stage, values in timings.items():
        median = statistics.median(values)
        total += median
        print(f"  {stage:<9} {median:8.1f}")
    print(
        f"  {'all':<9} {total:8.1f}   (one node does ingress or gossip, then build or "
        "validate, then commit)"
    )
    if profiler is not None:
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000, help="a multiple of 1000")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    run(args.records, args.profile)


if __name__ == "__main__":
    main()
