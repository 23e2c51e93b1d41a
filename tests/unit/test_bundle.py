"""Offline proof bundles (ledger/audit/bundle.py): a bundle verifies; every tampered field class fails.

The chain admits BR by vote (decided at 5, effective 7) and the subject
record is committed at 8, after the change, so its certificate is checked
against a set the bundle's governance records must justify.
"""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ledger.audit.bundle import render_report, verify_bundle
from ledger.audit.chain import AuditFailure
from ledger.audit_source import StoreSource, build_bundle
from tests.audit_chain import AuditChain

EVIDENCE = b"scan of the seized laptop"


@pytest.fixture(scope="module")
def made() -> tuple[AuditChain, dict[str, Any], str]:
    import hashlib

    chain = AuditChain()
    chain.grow(2)
    chain.add_member("BR", "Brazil")
    chain.grow(2)
    subject = chain.envelope(
        "FR", evidence=[{"sha256": hashlib.sha256(EVIDENCE).hexdigest(), "name": "laptop.img"}]
    )
    chain.commit([subject, chain.envelope("TH")])
    chain.grow(2)
    bundle = asyncio.run(
        build_bundle(
            StoreSource(chain.app.store, chain.genesis_json),
            [chain.record_id(subject)],
            latest=True,
        )
    )
    return chain, json.loads(json.dumps(bundle)), chain.record_id(subject)


def test_a_bundle_verifies_and_reports_who_recorded_what(made: Any, tmp_path: Path) -> None:
    chain, bundle, subject = made
    (tmp_path / "laptop.img").write_bytes(EVIDENCE)
    report = verify_bundle(bundle, [tmp_path / "laptop.img"])
    (record,) = report.records
    assert (record.id, record.height, record.committed_by) == (
        subject,
        8,
        ("BR", "CN", "FR", "TH", "VN"),
    )
    assert record.evidence_files == (str(tmp_path / "laptop.img"),)
    assert report.latest == (chain.app.height, chain.app.store.ledger_size)
    text = render_report(report)
    assert "preservation_request by France cybercrime unit (FR)" in text
    assert "add BR: validators from height 7" in text and "territory of TH" in text


def _edit(bundle: dict[str, Any], edit: Any) -> dict[str, Any]:
    copied = copy.deepcopy(bundle)
    edit(copied)
    return copied


def _subject_block(bundle: dict[str, Any]) -> dict[str, Any]:
    return next(
        b
        for b in bundle["blocks"]
        if any(e["envelope"]["record"]["nonce"] and e["leaf_index"] >= 0 for e in b["entries"])
        and b["header"]["height"] == 8
    )


def _flip(hex_text: str) -> str:
    return ("1" if hex_text[0] == "0" else "0") + hex_text[1:]


def _vote_blocks(bundle: dict[str, Any]) -> list[int]:
    return [
        i
        for i, b in enumerate(bundle["blocks"])
        if any(e["envelope"]["record"]["type"] == "member_vote" for e in b["entries"])
    ]


TAMPERS = {
    "record byte": (
        lambda b: _subject_block(b)["entries"][0]["envelope"]["record"].update(
            case_ref="CASE-FORGED"
        ),
        "bad_record_signature",
        "does not verify",
    ),
    "proof node": (
        lambda b: _subject_block(b)["entries"][0].update(
            audit_path=[
                _flip(h) if i == 0 else h
                for i, h in enumerate(_subject_block(b)["entries"][0]["audit_path"])
            ]
        ),
        "bad_inclusion_proof",
        "root mismatch",
    ),
    "truncated proof": (
        lambda b: _subject_block(b)["entries"][0]["audit_path"].pop(),
        "bad_inclusion_proof",
        "expected",
    ),
    "certificate signature": (
        lambda b: _subject_block(b)["commit"]["signatures"][1].update(signature="00" * 64),
        "bad_certificate",
        "bad precommit signature by",
    ),
    "validator key": (
        lambda b: b["genesis"]["members"][0].update(node_pubkey="ab" * 32),
        "bad_validators_hash",
        "incomplete or forged",
    ),
    "header field": (
        lambda b: _subject_block(b)["header"].update(time="2030-01-01T00:00:00Z"),
        "bad_certificate",
        "the block hash is",
    ),
    "truncated validator-set chain": (
        lambda b: b["blocks"].pop(_vote_blocks(b)[-1]),
        "bad_validators_hash",
        "incomplete or forged",
    ),
    "latest consistency": (
        lambda b: b["latest"]["consistency"][0].update(
            proof=[_flip(h) for h in b["latest"]["consistency"][0]["proof"]]
        ),
        "bad_consistency_proof",
        "to latest",
    ),
    "subject missing": (
        lambda b: b["records"].append("ee" * 32),
        "record_not_proven",
        "in no block",
    ),
}


@pytest.mark.parametrize("name", list(TAMPERS))
def test_each_tampered_field_class_is_detected(made: Any, name: str) -> None:
    _, bundle, _ = made
    edit, code, message = TAMPERS[name]
    with pytest.raises(AuditFailure) as info:
        verify_bundle(_edit(bundle, edit))
    assert info.value.code == code and message in info.value.detail, str(info.value)


def test_a_wrong_evidence_file_is_named(made: Any, tmp_path: Path) -> None:
    _, bundle, _ = made
    wrong = tmp_path / "other.img"
    wrong.write_bytes(EVIDENCE + b"!")
    with pytest.raises(AuditFailure) as info:
        verify_bundle(bundle, [wrong])
    assert info.value.code == "evidence_mismatch" and "other.img" in info.value.detail
