"""The signed access log (node/access_log.py): what an auditor can and cannot be fooled by.

Each entry is signed by the node key; ``verify_log`` checks the hash chain,
each signature against the keys the auditor expects, and that the chain
still passes through a head recorded earlier. Issue 17, finding L5.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ledger.canonical import canonical_bytes
from ledger.errors import Forbidden, Unauthorized
from ledger.keys import SigningKey, verify_hex
from node.access_log import (
    DOMAIN,
    AccessLog,
    LogVerdict,
    entry_hash,
    entry_sign_bytes,
    verify_lines,
    verify_log,
)
from node.tokens import TokenInfo

NODE = SigningKey.generate()
OTHER = SigningKey.generate()


def _token(role: str = "investigator", cases: tuple[str, ...] = ()) -> TokenInfo:
    return TokenInfo("tok1", role, "test", "2026-01-01T00:00:00Z", False, "0" * 64, "TH", cases)


def _log(path: Path, n: int, key: SigningKey = NODE) -> AccessLog:
    log = AccessLog(path, key)
    for i in range(n):
        log.append(record_id=f"{i:064x}", state="TH", token=_token(), outcome="ok")
    return log


def _entries(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write(path: Path, entries: list[dict[str, Any]]) -> None:
    path.write_bytes(b"".join(canonical_bytes(e) + b"\n" for e in entries))


def _verify(path: Path, **kwargs: Any) -> LogVerdict:
    return verify_log(path, [NODE.public_hex], **kwargs)


def _resign(entries: list[dict[str, Any]], start: int, key: SigningKey) -> list[dict[str, Any]]:
    """Rewrite ``entries[start:]`` as a valid chain signed by ``key`` (an attacker's rewrite)."""
    out = [dict(e) for e in entries[:start]]
    prev = out[-1]["hash"] if out else "0" * 64
    for entry in entries[start:]:
        body = {k: v for k, v in entry.items() if k not in ("hash", "signature")}
        body |= {"prev_hash": prev, "signer": key.public_hex, "token_id": "forged"}
        body["hash"] = entry_hash(body)
        body["signature"] = key.sign(entry_sign_bytes(body)).hex()
        out.append(body)
        prev = body["hash"]
    return out


def test_every_entry_is_signed_by_the_node_key(tmp_path: Path) -> None:
    path = tmp_path / "access-log.jsonl"
    _log(path, 3)
    for entry in _entries(path):
        assert (entry["signer"], entry["domain"]) == (NODE.public_hex, DOMAIN)
        assert verify_hex(NODE.public_hex, entry_sign_bytes(entry), entry["signature"])
        assert entry["hash"] == entry_hash(entry)
    verdict = _verify(path)
    assert (verdict.ok, verdict.entries, verdict.head_seq, verdict.unsigned_entries) == (
        True,
        3,
        2,
        0,
    )
    assert verdict.warning is None
    text = path.read_text()
    assert NODE.seed().hex() not in text and NODE.to_pem().decode() not in text


def test_an_edited_entry_fails_even_when_rehashed(tmp_path: Path) -> None:
    path = tmp_path / "access-log.jsonl"
    _log(path, 4)
    entries = _entries(path)
    entries[2]["role"] = "operator"
    _write(path, entries)
    assert (_verify(path).bad_line, _verify(path).reason) == (
        3,
        "hash does not match the entry's contents",
    )
    entries[2]["hash"] = entry_hash(entries[2])
    _write(path, entries)
    verdict = _verify(path)
    assert (verdict.ok, verdict.bad_line, verdict.entries) == (False, 3, 2)
    assert verdict.reason == "the signature does not verify under the signer's key"


def test_a_signature_from_another_entry_does_not_fit(tmp_path: Path) -> None:
    path = tmp_path / "access-log.jsonl"
    _log(path, 3)
    entries = _entries(path)
    entries[1]["signature"] = entries[0]["signature"]
    _write(path, entries)
    assert _verify(path).bad_line == 2


def test_the_wrong_expected_key_fails_at_the_first_entry(tmp_path: Path) -> None:
    path = tmp_path / "access-log.jsonl"
    _log(path, 2)
    verdict = verify_log(path, [OTHER.public_hex])
    assert (verdict.ok, verdict.bad_line) == (False, 1)
    assert verdict.reason == f"signed by {NODE.public_hex!r}, which is not an expected node key"
    assert verify_log(path, []).bad_line == 1  # no key expected: nothing verifies


def test_a_rewrite_resigned_by_another_key_fails(tmp_path: Path) -> None:
    path = tmp_path / "access-log.jsonl"
    _log(path, 5)
    original = _entries(path)
    _write(path, _resign(original, 2, OTHER))
    verdict = _verify(path)
    assert (verdict.ok, verdict.bad_line, verdict.head_seq) == (False, 3, 1)
    assert "not an expected node key" in (verdict.reason or "")
    _write(path, _resign(original, 0, OTHER))  # the whole log, consistently re-signed
    assert _verify(path).bad_line == 1
    assert verify_log(path, [OTHER.public_hex]).ok  # only the expected key tells them apart


def test_truncation_after_a_recorded_head_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "access-log.jsonl"
    log = _log(path, 5)
    head = (log.head_seq, log.head_hash)
    assert _verify(path, head=head).ok
    assert _verify(path, head=(2, _entries(path)[2]["hash"])).ok  # an older head is on it too
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:3]))
    assert _verify(path).ok  # a shorter chain is still a chain ...
    verdict = _verify(path, head=head)
    assert (verdict.ok, verdict.bad_line, verdict.entries) == (False, None, 3)
    assert verdict.reason == "the log no longer reaches the recorded head seq 4"


def test_a_truncated_log_grown_again_does_not_pass_the_old_head(tmp_path: Path) -> None:
    """Even with the node key, a rewrite after a head an auditor saw is caught by that head."""
    path = tmp_path / "access-log.jsonl"
    log = _log(path, 5)
    head = (log.head_seq, log.head_hash)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:3]))
    _log(path, 2)  # reopened on the cut file: seq 3 and 4 again, properly signed
    verdict = _verify(path, head=head)
    assert (verdict.ok, verdict.bad_line) == (False, 5)
    assert verdict.reason == "seq 4 is not the recorded head: the log was rewritten"


def _legacy(path: Path, n: int) -> None:
    """Entries as written before signing: no domain, signer or signature."""
    prev, out = "0" * 64, []
    for seq in range(n):
        entry: dict[str, Any] = {
            "seq": seq,
            "time": "2026-01-01T00:00:00Z",
            "record_id": f"{seq:064x}",
            "state": "TH",
            "token_id": "old",
            "role": "auditor",
            "outcome": "ok",
            "prev_hash": prev,
        }
        entry["hash"] = entry_hash(entry)
        out.append(entry)
        prev = entry["hash"]
    _write(path, out)


def test_an_unsigned_legacy_prefix_is_hash_checked_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "access-log.jsonl"
    _legacy(path, 2)
    _log(path, 2)  # the upgraded node continues the same chain, signed
    verdict = _verify(path)
    assert (verdict.ok, verdict.entries, verdict.unsigned_entries) == (True, 4, 2)
    assert verdict.warning is not None and "first 2 entries are unsigned" in verdict.warning
    assert verdict.to_json()["warning"] == verdict.warning
    refused = _verify(path, require_signed=True)
    assert (refused.ok, refused.bad_line) == (False, 1)
    assert refused.reason == "the entry is unsigned (a log written before entries were signed)"


def test_an_unsigned_entry_after_signed_ones_fails(tmp_path: Path) -> None:
    path = tmp_path / "access-log.jsonl"
    _log(path, 3)
    entries = _entries(path)
    stripped = {k: v for k, v in entries[2].items() if k not in ("domain", "signer", "signature")}
    stripped["hash"] = entry_hash(stripped)
    _write(path, [*entries[:2], stripped])
    verdict = _verify(path)
    assert (verdict.bad_line, verdict.reason) == (3, "an unsigned entry after signed ones")


def test_stripping_every_signature_does_not_pass_a_recorded_head(tmp_path: Path) -> None:
    path = tmp_path / "access-log.jsonl"
    log = _log(path, 3)
    head = (log.head_seq, log.head_hash)
    prev, out = "0" * 64, []
    for entry in _entries(path):
        bare = {k: v for k, v in entry.items() if k not in ("domain", "signer", "signature")}
        bare["prev_hash"] = prev
        bare["hash"] = prev = entry_hash(bare)
        out.append(bare)
    _write(path, out)
    assert _verify(path).unsigned_entries == 3  # alone it looks like a legacy log ...
    assert not _verify(path, head=head).ok  # ... but not one through the head seen
    assert not _verify(path, require_signed=True).ok


def test_verify_lines_checks_what_the_api_served(tmp_path: Path) -> None:
    path = tmp_path / "access-log.jsonl"
    log = _log(path, 3)
    served = [canonical_bytes(e) for e in log.page()]
    assert verify_lines(served, [NODE.public_hex], head=(2, log.head_hash)).ok
    assert verify_lines(served[1:], [NODE.public_hex]).bad_line == 1  # starts at seq 0


def test_a_new_entry_continues_after_reopen_and_rotation(tmp_path: Path) -> None:
    """After a node key rotation both keys are expected; the old entries stay valid."""
    path = tmp_path / "access-log.jsonl"
    _log(path, 2)
    rotated = _log(path, 1, key=OTHER)
    assert rotated.signer == OTHER.public_hex and rotated.head_seq == 2
    assert verify_log(path, [NODE.public_hex, OTHER.public_hex]).ok
    assert _verify(path).bad_line == 3
    assert rotated.verify().bad_line == 1  # the node alone knows only its current key
    assert rotated.verify([NODE.public_hex, OTHER.public_hex]).ok


def test_authorize_logs_a_refused_case_and_not_an_anonymous_call(tmp_path: Path) -> None:
    path = tmp_path / "access-log.jsonl"
    log = AccessLog(path, NODE)
    bound = _token(cases=("CASE-1",))
    assert log.authorize(bound, record_id="aa" * 32, state="TH", case_ref="CASE-1") is bound
    assert log.head_seq == -1  # allowed: the caller logs the read itself, with its outcome
    with pytest.raises(Forbidden) as refused:
        log.authorize(bound, record_id="bb" * 32, state="TH", case_ref="CASE-2")
    assert refused.value.code == "case_not_allowed"
    with pytest.raises(Unauthorized) as anonymous:
        log.authorize(None, record_id="cc" * 32, state="TH", case_ref="CASE-1")
    assert anonymous.value.code == "token_required"
    [entry] = log.page()
    assert (entry["record_id"], entry["token_id"], entry["outcome"]) == (
        "bb" * 32,
        "tok1",
        "case_not_allowed",
    )
    assert _verify(path).ok


def test_a_line_outside_canonical_json_is_a_bad_line_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "access-log.jsonl"
    _log(path, 2)
    entries = _entries(path)
    entries[1]["extra"] = 1.5  # a float: outside the subset entries are written in
    path.write_text("\n".join(json.dumps(e) for e in entries) + "\n")
    verdict = _verify(path)
    assert (verdict.ok, verdict.bad_line) == (False, 2)
    assert verdict.reason == "not canonical JSON (outside the subset entries are written in)"
    entries[1]["extra"], entries[1]["seq"] = 0, True  # a bool is not seq 1
    path.write_text("\n".join(json.dumps(e) for e in entries) + "\n")
    assert _verify(path).reason == "seq is True, expected 1"
