"""docs/PROTOCOL.md cannot rot: its shell walk-through and Python verifiers run here.

* The shell example (§11) runs for real with openssl and jq; the envelope it
  builds must parse and verify in Comity, and its verification half must
  refuse a tampered envelope.
* The Python proof verifiers (§12) are executed from the document and checked
  against the RFC 6962 vectors of transparency-dev/merkle (commit
  417fb0c314750d94e53942e9f92e79b6d35915db, Apache-2.0, shipped in
  /work/shared/vectors/rfc6962) and against a recursive implementation of
  RFC 6962 §2.1 written here.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ledger.block import HEADER_FIELDS, BlockHeader, vote_sign_bytes
from ledger.canonical import canonical_bytes, parse_json
from ledger.records import REQUIRED_FIELDS, parse_envelope_bytes, verify_signature

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "PROTOCOL.md").read_text(encoding="utf-8")
VECTOR_DIRS = [ROOT / "tests" / "vectors" / "rfc6962", Path("/work/shared/vectors/rfc6962")]
TOOLS = ("openssl", "jq", "xxd")
MISSING = [tool for tool in TOOLS if shutil.which(tool) is None]
needs_tools = pytest.mark.skipif(
    bool(MISSING),
    reason=f"the PROTOCOL.md walk-through needs {', '.join(MISSING)} on PATH "
    "(e.g. apt-get install -y jq openssl xxd)",
)


def _section(name: str) -> str:
    match = re.search(rf"<!-- {name}:begin -->(.*?)<!-- {name}:end -->", DOC, re.S)
    assert match, f"docs/PROTOCOL.md lost its {name} markers"
    return match.group(1)


def _blocks(name: str, language: str) -> list[str]:
    blocks = re.findall(rf"```{language}\n(.*?)```", _section(name), re.S)
    assert blocks, f"no {language} blocks in the {name} section"
    return blocks


# --- §11 shell walk-through ------------------------------------------------------------------


def _run_sh(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", "-c", "set -eu\n" + script],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@needs_tools
def test_walkthrough_produces_an_envelope_comity_accepts(tmp_path: Path) -> None:
    build, check = _blocks("walkthrough", "sh")
    done = _run_sh(build + check, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Signature Verified Successfully" in done.stdout
    body = (tmp_path / "envelope.json").read_bytes()
    envelope = parse_envelope_bytes(body)
    verify_signature(envelope)
    assert envelope.leaf == body  # the printf-assembled envelope is already JCS
    assert envelope.record_bytes == (tmp_path / "record.json").read_bytes()
    assert envelope.id == (tmp_path / "id.hex").read_text().strip()
    assert done.stdout.strip().endswith(f"record {envelope.id} verified")
    leaf_hash = hashlib.sha256(b"\x00" + body).hexdigest()
    assert (tmp_path / "leaf_hash.hex").read_text().strip() == leaf_hash
    record = envelope.record
    assert (
        record["evidence"][0]["sha256"]
        == hashlib.sha256((tmp_path / "evidence.bin").read_bytes()).hexdigest()
    )
    assert envelope.signer == (tmp_path / "signer.hex").read_text().strip()


@needs_tools
def test_walkthrough_verification_refuses_a_tampered_envelope(tmp_path: Path) -> None:
    build, check = _blocks("walkthrough", "sh")
    assert _run_sh(build, tmp_path).returncode == 0
    envelope = json.loads((tmp_path / "envelope.json").read_bytes())
    envelope["record"]["case_ref"] = "FR-2026-0002"
    (tmp_path / "envelope.json").write_bytes(canonical_bytes(envelope))
    done = _run_sh(check, tmp_path)
    assert done.returncode != 0
    assert "Signature Verified Successfully" not in done.stdout


def test_doc_sorting_example_is_what_comity_writes() -> None:
    # RFC 8785 §3.2.3 example as printed in PROTOCOL.md §2.
    line = next(ln for ln in DOC.splitlines() if ln.startswith('{"\\r":"Carriage Return"'))
    printed = line.replace("<U+0080>", "\u0080").encode()
    assert canonical_bytes(parse_json(printed)) == printed


def test_doc_lists_every_header_and_record_field() -> None:
    for name in HEADER_FIELDS:
        assert f"| `{name}` |" in DOC
    for name in REQUIRED_FIELDS:
        assert f"| `{name}` | yes |" in DOC
    header_line = next(ln for ln in DOC.splitlines() if ln.startswith('{"chain_id":"c"'))
    keys = re.findall(r'"([a-z_]+)":', header_line)
    assert keys == sorted(HEADER_FIELDS)
    header = BlockHeader(
        "c", 1, "2026-11-22T06:10:10.123Z", "00" * 32, "FR", 2, 2, "11" * 32, "22" * 32
    )
    assert re.sub("…", "", header_line) == re.sub(
        "[0-9a-f]{64}", "", canonical_bytes(header.to_json()).decode()
    )


def test_doc_precommit_template_matches_sign_bytes() -> None:
    template = next(
        ln.strip() for ln in DOC.splitlines() if ln.strip().startswith('= {"block_hash":')
    )
    real = vote_sign_bytes("precommit", "C", 7, 0, "ab" * 32).decode()
    assert template == "= " + real.replace("ab" * 32, "<64 hex>").replace('"C"', '"<C>"').replace(
        ":7,", ":<H>,"
    ).replace(":0,", ":<R>,")


# --- §12 Python verifiers ---------------------------------------------------------------------


def _doc_verifiers() -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(compile("\n".join(_blocks("verifier", "python")), "PROTOCOL.md", "exec"), namespace)
    return namespace


VERIFIERS = _doc_verifiers()
verify_inclusion: Callable[..., bool] = VERIFIERS["verify_inclusion"]
verify_consistency: Callable[..., bool] = VERIFIERS["verify_consistency"]
leaf_hash: Callable[[bytes], bytes] = VERIFIERS["leaf_hash"]


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 Merkle Tree Hash, naively recursive (reference for tests only)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = _split(len(leaves))
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(m, D[n])."""
    if len(leaves) <= 1:
        return []
    k = _split(len(leaves))
    if m < k:
        return [*_path(m, leaves[:k]), _mth(leaves[k:])]
    return [*_path(m - k, leaves[k:]), _mth(leaves[:k])]


def _subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    """RFC 6962 §2.1.2 SUBPROOF(m, D[n], b)."""
    n = len(leaves)
    if m == n:
        return [] if whole else [_mth(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], whole), _mth(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), _mth(leaves[:k])]


LEAVES = [canonical_bytes({"record": {"i": i}, "signature": "", "signer": ""}) for i in range(33)]


def _hostile(proof: list[bytes]) -> list[list[bytes]]:
    """A flipped bit in each element, a truncated proof, trailing and preceding garbage."""
    out = [[*proof[:i], bytes([p[0] ^ 1]) + p[1:], *proof[i + 1 :]] for i, p in enumerate(proof)]
    out += [proof[:-1]] if proof else []
    out += [[*proof, b"\x00" * 32], [b"\x00" * 32, *proof]]
    return out


def test_doc_inclusion_verifier_against_rfc6962_definitions() -> None:
    for n in range(1, len(LEAVES) + 1):
        root = _mth(LEAVES[:n])
        for m in range(n):
            proof = _path(m, LEAVES[:n])
            assert verify_inclusion(leaf_hash(LEAVES[m]), m, n, proof, root), (m, n)
            assert not verify_inclusion(leaf_hash(LEAVES[m]), m, n, proof, root[:31])
            assert not verify_inclusion(leaf_hash(LEAVES[m] + b" "), m, n, proof, root)
            for bad in _hostile(proof):
                assert not verify_inclusion(leaf_hash(LEAVES[m]), m, n, bad, root), (m, n)
        assert not verify_inclusion(leaf_hash(LEAVES[0]), n, n, [], root)


def test_doc_consistency_verifier_against_rfc6962_definitions() -> None:
    for n in range(1, len(LEAVES) + 1):
        root2 = _mth(LEAVES[:n])
        for m in range(1, n + 1):
            root1 = _mth(LEAVES[:m])
            proof = _subproof(m, LEAVES[:n], True)
            assert verify_consistency(m, n, root1, root2, proof), (m, n)
            if m < n:
                assert not verify_consistency(m, n, root2, root1, proof)
                assert not verify_consistency(m, n, root1, root2, [])
            for bad in _hostile(proof) if proof else []:
                assert not verify_consistency(m, n, root1, root2, bad), (m, n)


def _vector_files(kind: str) -> list[Path]:
    for base in VECTOR_DIRS:
        if (base / kind).is_dir():
            return sorted((base / kind).rglob("*.json"))
    return []


def test_the_published_vectors_are_shipped() -> None:
    """tests/vectors/rfc6962 is in the repository: the two tests below never run empty."""
    assert len(_vector_files("inclusion")) > 10 and len(_vector_files("consistency")) > 10


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


@pytest.mark.parametrize(
    "path", _vector_files("inclusion"), ids=lambda p: f"{p.parent.name}/{p.stem}"
)
def test_doc_inclusion_verifier_on_published_vectors(path: Path) -> None:
    v = json.loads(path.read_text())
    proof = [_b64(p) for p in v["proof"] or []]
    ok = verify_inclusion(_b64(v["leafHash"]), v["leafIdx"], v["treeSize"], proof, _b64(v["root"]))
    assert ok is (not v["wantErr"]), v["desc"]


@pytest.mark.parametrize(
    "path", _vector_files("consistency"), ids=lambda p: f"{p.parent.name}/{p.stem}"
)
def test_doc_consistency_verifier_on_published_vectors(path: Path) -> None:
    v = json.loads(path.read_text())
    proof = [_b64(p) for p in v["proof"] or []]
    ok = verify_consistency(v["size1"], v["size2"], _b64(v["root1"]), _b64(v["root2"]), proof)
    assert ok is (not v["wantErr"]), v["desc"]
