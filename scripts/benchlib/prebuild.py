"""Build a long valid chain offline, straight into a node's LevelDB store.

Used for the read-path and catch-up scenarios, where driving 10^5..10^6
records through consensus first would take longer than the measurement.
The chain is the one the devnet's nodes would accept: block 1's prev_hash is
the real genesis hash (the store is pinned to it), ``validators_hash`` is
that of the genesis validators, records are signed by each state's enrolled
demo investigator, and each commit certificate holds precommits signed by
every devnet node key. A node that block-syncs this chain (catch-up) runs
every check on it, so a mistake here shows up as a rejected block, not as a
flattering figure.

Signing runs in a process pool and overlaps with the parent, which builds
headers and commits one block per fsynced write batch as results arrive.
"""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import orjson

from benchlib.presign import Signed, SignJob, case_ref, investigators, sign_all
from ledger import merkle
from ledger.block import (
    BlockHeader,
    CommitCertificate,
    CommitSignature,
    Validator,
    validators_hash,
    vote_sign_bytes,
)
from ledger.keys import SigningKey, load_signing_key
from ledger.records import Envelope, format_time, parse_time
from ledger.store import Store
from node.genesis import Genesis, load_genesis

TAG = "X"  # nonce prefix of pre-built records (load uses L, probes P)


@dataclass
class Prebuilt:
    records: int = 0
    blocks: int = 0
    seconds: float = 0.0
    sample_ids: list[str] = field(default_factory=list)  # random committed record ids
    sample_cases: list[str] = field(default_factory=list)  # case_refs of those records


def _envelope(signed: Signed, signer_hex: str) -> Envelope:
    # The records were made by sign_job from canonical bytes, so the parent
    # skips parse_envelope's re-canonicalisation: its single core is the
    # bottleneck of the build. The id and leaf are the ones parse_envelope
    # would compute (same JCS bytes).
    return Envelope(
        orjson.loads(signed.record_bytes),
        signer_hex,
        signed.signature,
        signed.id,
        signed.record_bytes,
        signed.leaf,
    )


def _certificate(header: BlockHeader, keys: Sequence[SigningKey]) -> CommitCertificate:
    block_hash = header.hash()
    message = vote_sign_bytes("precommit", header.chain_id, header.height, 0, block_hash)
    return CommitCertificate(
        header.height,
        0,
        block_hash,
        tuple(CommitSignature(k.public_hex, k.sign(message).hex()) for k in keys),
    )


class _Chain:
    """The next header of the chain being built, from the store's log."""

    def __init__(self, genesis: Genesis, store: Store) -> None:
        self.genesis = genesis
        self.store = store
        self.validators: tuple[Validator, ...] = genesis.validators()
        self.validators_hash = validators_hash(self.validators)
        self.prev_hash = genesis.hash()
        self.start_time = parse_time(genesis.genesis_time, "genesis_time")

    def header(self, envelopes: Sequence[Envelope]) -> BlockHeader:
        height = self.store.height + 1
        leaf_hashes = [merkle.leaf_hash(e.leaf) for e in envelopes]
        _, size, root = merkle.append_leaves(self.store.ledger_size, leaf_hashes, self.store)
        header = BlockHeader(
            chain_id=self.genesis.chain_id,
            height=height,
            # strictly increasing, 1 ms apart, all before the nodes start
            time=format_time(self.start_time + timedelta(milliseconds=height)),
            prev_hash=self.prev_hash,
            proposer=self.validators[height % len(self.validators)].state,
            record_count=len(envelopes),
            ledger_size=size,
            ledger_root=root.hex(),
            validators_hash=self.validators_hash,
        )
        self.prev_hash = header.hash()
        return header


def prebuild(
    root: Path,
    store_path: Path,
    records: int,
    block_records: int,
    *,
    processes: int,
    sample: int = 0,
    seed: int = 1,
) -> Prebuilt:
    """Commit ``records`` records in blocks of ``block_records`` into a fresh store."""
    started = time.monotonic()
    genesis = load_genesis(root / "genesis.json")
    states = [m.state for m in genesis.members]
    signers = investigators(root, states)
    node_keys = [load_signing_key(root / v.state / "node.key") for v in genesis.validators()]
    jobs, next_index = [], dict.fromkeys(states, 0)
    for number, start in enumerate(range(0, records, block_records)):
        signer = signers[number % len(signers)]  # blocks rotate over the states' signers
        count = min(block_records, records - start)
        jobs.append(
            SignJob(
                signer, genesis.chain_id, TAG, next_index[signer.state], count, genesis.genesis_time
            )
        )
        next_index[signer.state] += count
    picks = set(random.Random(seed).sample(range(records), min(sample, records)))
    result = Prebuilt()
    store_path.parent.mkdir(parents=True, exist_ok=True)
    with Store.open_leveldb(store_path) as store:
        store.check_genesis(genesis.hash())
        chain = _Chain(genesis, store)
        for job, signed in zip(jobs, sign_all(jobs, processes), strict=True):
            envelopes = [_envelope(s, job.signer.public_hex) for s in signed]
            header = chain.header(envelopes)
            store.commit_block(header, envelopes, _certificate(header, node_keys))
            for offset, item in enumerate(signed):
                if result.records + offset in picks:
                    result.sample_ids.append(item.id)
                    result.sample_cases.append(case_ref(job.signer.state, job.start + offset))
            result.records += len(envelopes)
            result.blocks += 1
    result.seconds = time.monotonic() - started
    return result


def copy_store(source: Path, targets: Sequence[Path]) -> None:
    """Give other nodes the same (closed) store: LevelDB files copy as they are."""
    for target in targets:
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target)
