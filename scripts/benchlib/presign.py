"""Pre-signed envelopes, made before any measurement and in parallel.

Signing is not what the benchmark measures, so it happens up front in a
process pool (one worker per core). Each state's records are signed by that
state's demo investigator (enrolled at genesis; it may only sign for its own
state) with nonces ``<tag><index>`` that are unique per signer for the run.

The bytes a worker returns for each record are ``JCS(record)`` and
``JCS(envelope)``. The latter is both a valid POST body and the record's
ledger leaf, so load files and pre-built blocks share one code path.
"""

from __future__ import annotations

import hashlib
import multiprocessing
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.pool import AsyncResult
from pathlib import Path

from ledger.canonical import canonical_bytes
from ledger.keys import SigningKey, load_signing_key
from ledger.records import SCHEMA, format_time, parse_time

RECORD_TYPE = "preservation_request"  # an investigator act with no extra type rule
RECORDS_PER_CASE = 10  # so a case_ref search returns a realistic page
JOB_RECORDS = 2000  # records per pool task: big enough to amortise IPC


@dataclass(frozen=True, slots=True)
class Signer:
    state: str
    agency: str
    seed_hex: str  # the investigator's seed, handed to pool workers
    public_hex: str


@dataclass(frozen=True, slots=True)
class SignJob:
    signer: Signer
    chain_id: str
    tag: str  # nonce prefix: one per purpose (load, probe, prebuild)
    start: int  # first index
    count: int
    occurred_at: str


@dataclass(frozen=True, slots=True)
class Signed:
    record_bytes: bytes  # JCS(record): what was signed, hashed for the id
    signature: str  # hex
    leaf: bytes  # JCS(envelope): the POST body and the ledger leaf
    id: str


def investigators(root: Path, states: Iterable[str]) -> list[Signer]:
    signers = []
    for state in states:
        key = load_signing_key(root / state / "investigator.key")
        signers.append(Signer(state, f"{state} cybercrime unit", key.seed().hex(), key.public_hex))
    return signers


def record_for(job: SignJob, index: int) -> dict[str, object]:
    """A preservation request (Budapest Art 29) as the act catalogue wants it.

    It carries the type's own fields (custodian, data categories, expiry,
    legal basis) so it passes the catalogue's schema, and realistic sizes
    (about 700 bytes of canonical JSON per envelope).
    """
    state = job.signer.state
    where = "FR" if state == "TH" else "TH"
    evidence = hashlib.sha256(f"{job.tag}:{state}:{index}".encode()).hexdigest()
    expires = format_time(parse_time(job.occurred_at, "occurred_at") + timedelta(days=30))
    return {
        "schema": SCHEMA,
        "type": RECORD_TYPE,
        "chain_id": job.chain_id,
        "actor": {"state": state, "agency": job.signer.agency},
        "nonce": f"{job.tag}{index:012d}",
        "occurred_at": job.occurred_at,
        "case_ref": case_ref(state, index),
        "territorial_states": [where],
        "evidence": [{"sha256": evidence}],
        "custodian": {"name": "Example Hosting Ltd", "kind": "service_provider", "state": where},
        "data_category": ["subscriber", "traffic"],
        "expires_at": expires,
        "channel": "24_7_network",
        "legal_basis": {"instrument": "Budapest Convention", "article": "Art 29"},
        "visibility": "consortium",  # a clear act, opted in (docs/PRIVACY.md)
    }


def case_ref(state: str, index: int) -> str:
    return f"{state}-BENCH-{index // RECORDS_PER_CASE:08d}"


def envelope_leaf(record_bytes: bytes, signature_hex: str, signer_hex: str) -> bytes:
    # JCS of {"record","signature","signer"}: keys in that (sorted) order and
    # the record already canonical; ledger.records.parse_envelope builds the
    # leaf the same way.
    return (
        b'{"record":'
        + record_bytes
        + b',"signature":"'
        + signature_hex.encode()
        + b'","signer":"'
        + signer_hex.encode()
        + b'"}'
    )


def sign_job(job: SignJob) -> list[Signed]:
    key = SigningKey(bytes.fromhex(job.signer.seed_hex))
    out = []
    for index in range(job.start, job.start + job.count):
        record_bytes = canonical_bytes(record_for(job, index))
        signature = key.sign(record_bytes).hex()
        out.append(
            Signed(
                record_bytes,
                signature,
                envelope_leaf(record_bytes, signature, key.public_hex),
                hashlib.sha256(record_bytes).hexdigest(),
            )
        )
    return out


def jobs_for(
    signer: Signer,
    chain_id: str,
    tag: str,
    count: int,
    occurred_at: str,
    job_records: int = JOB_RECORDS,
) -> list[SignJob]:
    return [
        SignJob(signer, chain_id, tag, start, min(job_records, count - start), occurred_at)
        for start in range(0, count, job_records)
    ]


def sign_all(jobs: list[SignJob], processes: int) -> Iterator[list[Signed]]:
    """Results of ``jobs`` in job order, signed by a pool of ``processes`` workers.

    At most ``2 * processes`` jobs are in flight: a consumer slower than the
    signers (the pre-build's store commits) must not make the pool buffer
    the whole run in memory.
    """
    if processes <= 1 or len(jobs) <= 1:
        yield from map(sign_job, jobs)
        return
    # fork: the bench process has no threads yet, and workers start at once.
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        pending: deque[AsyncResult[list[Signed]]] = deque()
        for job in jobs:
            pending.append(pool.apply_async(sign_job, (job,)))
            if len(pending) >= 2 * processes:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def write_bodies(
    signers: list[Signer],
    per_signer: int,
    batch: int,
    out_dir: Path,
    *,
    chain_id: str,
    tag: str,
    occurred_at: str,
    processes: int,
) -> dict[str, Path]:
    """One file per signer's state with one POST body per line; returns state -> path.

    ``batch`` 1 writes single envelopes (for POST /v1/records); more writes
    ``{"envelopes": [...]}`` bodies of that many (for POST /v1/records/batch).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    job_records = max(batch, JOB_RECORDS // batch * batch)  # whole batches per job
    jobs = [
        job
        for s in signers
        for job in jobs_for(s, chain_id, tag, per_signer, occurred_at, job_records)
    ]
    paths = {s.state: out_dir / f"{s.state}.bodies" for s in signers}
    handles = {state: path.open("wb") for state, path in paths.items()}
    try:
        for job, signed in zip(jobs, sign_all(jobs, processes), strict=True):
            leaves = [item.leaf for item in signed]
            handle = handles[job.signer.state]
            if batch == 1:
                handle.write(b"\n".join(leaves) + b"\n")
                continue
            for i in range(0, len(leaves), batch):
                handle.write(b'{"envelopes":[' + b",".join(leaves[i : i + batch]) + b"]}\n")
    finally:
        for handle in handles.values():
            handle.close()
    return paths


def read_lines(path: Path, start: int = 0, count: int | None = None) -> list[bytes]:
    with path.open("rb") as handle:
        lines = [line.rstrip(b"\n") for line in handle]
    return lines[start:] if count is None else lines[start : start + count]
