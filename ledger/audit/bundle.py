"""Offline proof bundles: one JSON file that proves records were committed, with no network.

Theory of operation
-------------------
A bundle (``"format": "comity-bundle/1"``, field by field in docs/AUDIT.md)
holds the genesis document, the ids of its subject records, and a list of
certified blocks in height order. Each block gives its header, its commit
certificate and some of its envelopes (``entries``), each with its leaf index
and RFC 6962 inclusion proof against that header's ``ledger_root``. The
blocks are those holding a subject record and those holding any governance
record (``enroll_key``, ``revoke_key``, ``member_proposal``, ``member_vote``)
up to the highest height in the bundle. An optional ``latest`` checkpoint
(header and certificate) comes with a consistency proof from every block.

``verify_bundle`` walks the blocks in height order, exactly as the chain
verifier does for a whole chain, but knowing only these blocks: the
validator set of each height is replayed from genesis and the governance
records of the earlier blocks (``ledger.audit.gov``); each header's
``validators_hash`` must equal it (so a validator-set change left out of
the bundle is caught at the first certified header after it), each
certificate must be signed by a quorum of it, each entry must be included
under its header's root, be signed, and be authorised at that height.

A bundle proves nothing on its own: whoever writes one can make a genesis
and validator keys of their own and certify anything under them. Only a
genesis the reader pins (``pinned_genesis_hash``, from a source the reader
trusts) ties it to the real consortium; ``render_report`` says so when none
was pinned.

What a bundle cannot prove: that it holds *every* governance record. A left
out ``revoke_key`` (or ``enroll_key``) changes no validator set, so it is not
caught here; the certificate's quorum vouched that the node's full rules
held when the block was made. ``comity verify`` over the whole chain has no
such gap.

A subject that is a private act (docs/PRIVACY.md) is proven by its header. A
bundle exported by one of its parties with a body reader's token also carries
its private body under ``private`` (by record id): the body must hash to the
header's ``commitment`` (its salt is in it), and the report then shows the
act's content. So a bundle exported before the body was purged still proves the
content offline afterwards.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from ledger import merkle
from ledger.audit.chain import (
    AuditFailure,
    CheckedEnvelope,
    check_certificate,
    check_envelope,
    check_genesis,
    check_header_shape,
    genesis_hash,
    header_hash,
    is_hex,
    jcs,
    validators_hash,
)
from ledger.audit.gov import REPLAYED_TYPES, GovState, parse_utc
from ledger.errors import ProofError

FORMAT: Final = "comity-bundle/1"
#: A whole-case bundle (``ledger/audit/case.py``): this format plus a ``case`` section.
CASE_FORMAT: Final = "comity-case/1"
UNPINNED: Final = "genesis NOT pinned; this proves nothing"


@dataclass(frozen=True, slots=True)
class ProvenRecord:
    """A subject record and what the bundle proves about it."""

    id: str
    record: Mapping[str, Any]
    signer: str
    height: int
    leaf_index: int
    block_time: str
    committed_by: tuple[str, ...]  # states whose precommits certify the block
    evidence_files: tuple[str, ...] = ()  # local files whose SHA-256 matches its evidence


@dataclass
class BundleReport:
    chain_id: str
    genesis_hash: str
    records: list[ProvenRecord] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    blocks: int = 0
    latest: tuple[int, int] | None = None  # (height, ledger_size) of the newer checkpoint
    pinned: bool = False  # genesis_hash equals one the reader trusts


def _fail(code: str, detail: str, height: int | None = None) -> AuditFailure:
    return AuditFailure(code, detail, height=height)


def verify_bundle(
    bundle: Any, evidence: Sequence[Path] = (), *, pinned_genesis_hash: str | None = None
) -> BundleReport:
    """Check everything a bundle claims; raise AuditFailure at the first failure.

    ``pinned_genesis_hash`` is the consortium's genesis hash as the reader
    knows it; without it the report is marked unpinned (see the module doc).
    """
    if not isinstance(bundle, dict) or bundle.get("format") not in (FORMAT, CASE_FORMAT):
        raise _fail("bad_bundle", f"not a {FORMAT} (or {CASE_FORMAT}) document")
    for name in ("records", "blocks"):
        if not isinstance(bundle.get(name), list) or not bundle[name]:
            raise _fail("bad_bundle", f"bundle.{name} must be a non-empty list")
    if not all(isinstance(rid, str) for rid in bundle["records"]):
        raise _fail("bad_bundle", "bundle.records must be record ids")
    genesis = check_genesis(bundle.get("genesis"))
    report = BundleReport(genesis["chain_id"], genesis_hash(genesis))
    if pinned_genesis_hash is not None:
        if report.genesis_hash != pinned_genesis_hash:
            raise _fail(
                "genesis_mismatch",
                f"the bundle's genesis hashes to "
                f"{report.genesis_hash}, not the pinned {pinned_genesis_hash}",
            )
        report.pinned = True
    gov = GovState(genesis)
    subjects = set(bundle["records"])
    proven: dict[str, ProvenRecord] = {}
    sizes: dict[int, tuple[int, str]] = {}  # height -> (ledger_size, ledger_root)
    previous = 0
    for block in bundle["blocks"]:
        height, signed, checked, header = _verify_block(block, gov, report.chain_id, previous)
        previous = height
        sizes[height] = (header["ledger_size"], header["ledger_root"])
        for item, leaf_index in checked:
            if item.id in subjects:
                proven[item.id] = ProvenRecord(
                    item.id,
                    item.record,
                    item.signer,
                    height,
                    leaf_index,
                    header["time"],
                    tuple(signed),
                )
        changes_before = len(gov.changes)
        gov.apply_block(
            height, [(c.id, c.record) for c, _ in checked if c.record["type"] in REPLAYED_TYPES]
        )
        report.changes += [
            f"{c.action} {c.state}: validators from height {c.height} "
            f"(decided at {c.decided_at} by {len(c.record_ids)} record(s))"
            for c in gov.changes[changes_before:]
        ]
        report.blocks += 1
    missing = [rid for rid in bundle["records"] if rid not in proven]
    if missing:
        raise _fail("record_not_proven", f"records {missing} are in no block of the bundle")
    if bundle.get("latest") is not None:
        report.latest = _verify_latest(bundle["latest"], gov, report.chain_id, previous, sizes)
    bodies = bundle.get("private")
    if bodies is not None and (not isinstance(bodies, dict) or not set(bodies) <= subjects):
        raise _fail("bad_bundle", "bundle.private must map subject record ids to bodies")
    subjects_proven = [_with_body(proven[rid], bodies) for rid in bundle["records"]]
    report.records = _match_evidence(subjects_proven, evidence)
    return report


#: The header fields a private act's content takes back (``ledger/private.py``).
_CONTENT_FIELDS: Final = (
    "schema",
    "chain_id",
    "actor",
    "nonce",
    "occurred_at",
    "refs",
    "visibility",
    "parties",
    "retain_until",
)


def _with_body(record: ProvenRecord, bodies: Any) -> ProvenRecord:
    """A private subject with the body the bundle carries, checked against its commitment."""
    body = bodies.get(record.id) if isinstance(bodies, dict) else None
    if body is None:
        return record
    header = record.record
    if header.get("type") != "private_act":
        raise _fail("bad_bundle", f"a body is given for {record.id}, which is not a private act")
    if (
        not isinstance(body, dict)
        or set(body) != {"act", "salt"}
        or not isinstance(body["act"], dict)
    ):
        raise _fail("bad_bundle", f"the body of {record.id} is not {{act, salt}}")
    if hashlib.sha256(jcs(body)).hexdigest() != header.get("commitment"):
        raise _fail(
            "body_mismatch",
            f"the body given for {record.id} does not hash to its header's commitment",
            record.height,
        )
    content = dict(body["act"])
    content.update((k, header[k]) for k in _CONTENT_FIELDS if k in header)
    return replace(record, record=content)


def _verify_block(
    block: Any, gov: GovState, chain_id: str, previous: int
) -> tuple[int, list[str], list[tuple[CheckedEnvelope, int]], dict[str, Any]]:
    if not isinstance(block, dict) or not isinstance(block.get("entries"), list):
        raise _fail("bad_bundle", "a block is not {header, commit, entries}")
    header = block.get("header")
    check_header_shape(header, None)
    assert isinstance(header, dict)
    height = header["height"]
    if height <= previous:
        raise _fail(
            "blocks_out_of_order",
            f"blocks are not in increasing height order ({height} after {previous})",
            height,
        )
    if header["chain_id"] != chain_id:
        raise _fail("wrong_chain", f"header.chain_id is {header['chain_id']!r}", height)
    seats = _seats(gov, header, height)
    signed = check_certificate(block.get("commit"), chain_id, seats, header_hash(header), height)
    checked: list[tuple[CheckedEnvelope, int]] = []
    first_leaf = header["ledger_size"] - header["record_count"]
    block_time = parse_utc(header["time"])
    for entry in block["entries"]:
        item, leaf_index = _verify_entry(entry, header, chain_id, height)
        if not first_leaf <= leaf_index < header["ledger_size"] or (
            checked and leaf_index <= checked[-1][1]
        ):
            raise _fail(
                "bad_bundle",
                f"entry at leaf {leaf_index} is not a record of this block "
                f"in order (leaves {first_leaf}..{header['ledger_size'] - 1})",
                height,
            )
        refused = gov.authorise(height, block_time, item.signer, item.record)
        if refused is not None:
            raise _fail(refused[0], f"record {item.id}: {refused[1]}", height)
        checked.append((item, leaf_index))
    return height, signed, checked, header


def _seats(gov: GovState, header: Mapping[str, Any], height: int) -> Any:
    seats = gov.validators(height)
    if header["validators_hash"] != validators_hash(seats):
        raise _fail(
            "bad_validators_hash",
            "the certified header's validators_hash is not the "
            f"set {[s.state for s in seats]} derived from genesis and the bundle's "
            "governance records: the validator-set chain is incomplete or forged",
            height,
        )
    return seats


def _verify_entry(
    entry: Any, header: Mapping[str, Any], chain_id: str, height: int
) -> tuple[CheckedEnvelope, int]:
    if (
        not isinstance(entry, dict)
        or type(entry.get("leaf_index")) is not int
        or not isinstance(entry.get("audit_path"), list)
        or not all(is_hex(h, 32) for h in entry["audit_path"])
    ):
        raise _fail(
            "bad_bundle", "an entry is not {envelope, leaf_index, audit_path (hex)}", height
        )
    item = check_envelope(entry.get("envelope"), chain_id, height)
    try:
        merkle.verify_inclusion(
            merkle.leaf_hash(item.leaf),
            entry["leaf_index"],
            header["ledger_size"],
            [bytes.fromhex(h) for h in entry["audit_path"]],
            bytes.fromhex(header["ledger_root"]),
        )
    except ProofError as exc:
        raise _fail(
            "bad_inclusion_proof", f"record {item.id} at leaf {entry['leaf_index']}: {exc}", height
        ) from exc
    return item, entry["leaf_index"]


def _verify_latest(
    latest: Any, gov: GovState, chain_id: str, previous: int, sizes: Mapping[int, tuple[int, str]]
) -> tuple[int, int]:
    if not isinstance(latest, dict) or not isinstance(latest.get("consistency"), list):
        raise _fail("bad_bundle", "latest is not {header, commit, consistency}")
    header = latest.get("header")
    check_header_shape(header, None)
    assert isinstance(header, dict)
    height = header["height"]
    if height < previous or header["chain_id"] != chain_id:
        raise _fail(
            "bad_latest",
            f"latest checkpoint {height} is older than the blocks or of another chain",
            height,
        )
    check_certificate(
        latest.get("commit"), chain_id, _seats(gov, header, height), header_hash(header), height
    )
    proofs = {p.get("height"): p.get("proof") for p in latest["consistency"] if isinstance(p, dict)}
    for block_height, (size, root) in sizes.items():
        proof = proofs.get(block_height)
        if not isinstance(proof, list) or not all(is_hex(h, 32) for h in proof):
            raise _fail(
                "bad_consistency_proof",
                f"no consistency proof from block {block_height} to the latest checkpoint",
                height,
            )
        try:
            merkle.verify_consistency(
                size,
                header["ledger_size"],
                bytes.fromhex(root),
                bytes.fromhex(header["ledger_root"]),
                [bytes.fromhex(h) for h in proof],
            )
        except ProofError as exc:
            raise _fail(
                "bad_consistency_proof",
                f"block {block_height} (size {size}) to latest "
                f"(size {header['ledger_size']}): {exc}",
                height,
            ) from exc
    return height, header["ledger_size"]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _match_evidence(records: list[ProvenRecord], files: Sequence[Path]) -> list[ProvenRecord]:
    """Attach each evidence file to the records whose ``evidence[].sha256`` it matches."""
    matched: dict[str, list[str]] = {r.id: [] for r in records}
    for path in files:
        digest = sha256_file(path)
        hits = [
            r.id
            for r in records
            if any(
                isinstance(e, dict) and e.get("sha256") == digest
                for e in r.record.get("evidence") or []
            )
        ]
        if not hits:
            raise _fail(
                "evidence_mismatch",
                f"{path}: SHA-256 {digest} is the evidence of no record in the bundle",
            )
        for rid in hits:
            matched[rid].append(str(path))
    return [
        ProvenRecord(
            r.id,
            r.record,
            r.signer,
            r.height,
            r.leaf_index,
            r.block_time,
            r.committed_by,
            tuple(matched[r.id]),
        )
        for r in records
    ]


def render_report(report: BundleReport) -> str:
    """A human-readable account of what the bundle proves."""
    lines = [
        f"chain {report.chain_id}, genesis {report.genesis_hash}",
        f"{report.blocks} certified block(s) checked",
    ]
    lines += [f"validator-set change: {c}" for c in report.changes]
    for r in report.records:
        actor = r.record.get("actor", {})
        lines += [
            f"record {r.id}",
            f"  {r.record.get('type')} by {actor.get('agency')} ({actor.get('state')}), "
            f"signer {r.signer[:16]}…, occurred {r.record.get('occurred_at')}",
            f"  case {r.record.get('case_ref') or '-'}, territory of "
            f"{', '.join(r.record.get('territorial_states') or []) or '-'}",
            f"  committed at height {r.height} (leaf {r.leaf_index}) at {r.block_time}, "
            f"certified by {', '.join(r.committed_by)}",
        ]
        if "parties" in r.record:
            lines.append(
                f"  private act of {', '.join(r.record['parties'])}: "
                + (
                    "only its header is in this bundle"
                    if r.record.get("type") == "private_act"
                    else "its body matches the signed commitment"
                )
            )
        lines += [
            f"  evidence {e.get('sha256')}" + (f" {e['name']}" if e.get("name") else "")
            for e in r.record.get("evidence") or []
            if isinstance(e, dict)
        ]
        lines += [f"  evidence file {f} matches" for f in r.evidence_files]
    if report.latest is not None:
        lines.append(
            f"newer checkpoint: height {report.latest[0]}, ledger size "
            f"{report.latest[1]}, consistent with every block above"
        )
    if report.pinned:
        lines.append("OK: every signature, proof and certificate holds, under the pinned genesis")
    else:
        lines.append(f"{UNPINNED}: the proofs hold only under the bundle's own genesis")
    return "\n".join(lines)
