"""The console's verifier (api/console/static/js) against the Python code, under Node's test runner.

The browser must agree with the auditor byte for byte: this test writes cases
whose expected outcome the Python code decides (RFC 8785 bytes from
``ledger.canonical``, Ed25519 verdicts from PyNaCl, bundle verdicts and reasons
from ``ledger.audit.bundle.verify_bundle``, over a real chain with a validator-set
change by vote and every tampering class of tests/unit/test_bundle.py), then runs
``node --test tests/js`` on them; tests/js/merkle.test.mjs also feeds the JS the
published RFC 6962 vectors, hostile ones included, and tests/js/api.test.mjs the
console's API client (token header, error codes, hostile event streams). Skipped only when ``node`` is
missing, and under CI a skip fails the run.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from nacl.bindings import (
    crypto_core_ed25519_add,
    crypto_core_ed25519_scalar_add,
    crypto_core_ed25519_scalar_mul,
    crypto_core_ed25519_scalar_reduce,
    crypto_scalarmult_ed25519_base_noclamp,
)
from nacl.signing import SigningKey

from ledger.audit.bundle import CASE_FORMAT, verify_bundle
from ledger.audit.case import pin_of, verify_case_bundle
from ledger.audit.chain import AuditFailure, complete_genesis, genesis_hash, verify_signature
from ledger.audit.gov import REPLAYED_TYPES, ROLE_TYPES, TYPE_CLASSES
from ledger.audit_source import StoreSource, build_bundle
from ledger.canonical import canonical_bytes
from tests import console_case
from tests.audit_chain import AuditChain
from tests.integration.test_case_bundle import TAMPERING as CASE_TAMPERING
from tests.unit.console_gov_cases import scenarios as gov_scenarios
from tests.unit.test_bundle import EVIDENCE, TAMPERS, _edit, _subject_block
from tests.unit.test_case_bundle import test_a_malformed_case_section_is_refused as _case_shapes

ROOT = Path(__file__).resolve().parents[2]
NODE = shutil.which("node")
VENDOR = ROOT / "api" / "console" / "static" / "vendor" / "noble-ed25519.js"
pytestmark = pytest.mark.skipif(NODE is None, reason="node (20+) is not installed")

JCS_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    2**53 - 1,
    -(2**53 - 1),
    "",
    'a\u0000\u001f\u007f"\\/\b\t\n\f\r',
    "\u2028\u2029é€😀",
    [],
    {},
    {"b": 1, "a": [2, {"d": None, "c": False}]},
    # RFC 8785 §3.2.3: members sort by UTF-16 code units, so U+1F600 (D83D DE00) comes
    # before U+FB33, the reverse of code-point order; "\r" before "1" before "€".
    {"\ufb33": 1, "😀": 2, "€": 3, "1": 4, "\r": 5, "ö": 6, "A": 7, "": 8},
    {"nested": [[[[["deep"]]]]], "n": -0},
]
#: JSON texts Comity's subset refuses: a float, integers past 2^53 - 1, 33 levels, a lone surrogate.
JCS_REFUSED = ["1.5", "1e400", str(2**53), str(-(2**53)), "[" * 33 + "]" * 33, '"\\ud800"']


def _jcs_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = [
        {"json": json.dumps(v), "canonical": canonical_bytes(v).hex()} for v in JCS_VALUES
    ]
    return cases + [{"json": text, "canonical": None} for text in JCS_REFUSED]


def _ed25519_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for i, message in enumerate([b"", b"comity", bytes(range(256)) * 4]):
        key = SigningKey(bytes([i + 1]) * 32)
        pub = key.verify_key.encode().hex()
        sig = key.sign(message).signature.hex()
        other = SigningKey(bytes([i + 9]) * 32).verify_key.encode().hex()
        flipped = sig[:10] + ("1" if sig[10] == "0" else "0") + sig[11:]
        cases += [
            {"name": f"good {i}", "pubkey": pub, "message": message.hex(), "signature": sig},
            {"name": f"flipped {i}", "pubkey": pub, "message": message.hex(), "signature": flipped},
            {"name": f"other key {i}", "pubkey": other, "message": message.hex(), "signature": sig},
            {
                "name": f"message {i}",
                "pubkey": pub,
                "message": "ff" + message.hex(),
                "signature": sig,
            },
            {
                "name": f"upper hex {i}",
                "pubkey": pub.upper(),
                "message": message.hex(),
                "signature": sig,
            },
            {"name": f"short {i}", "pubkey": pub, "message": message.hex(), "signature": sig[:-2]},
        ]
    cases += _hostile_ed25519_cases()
    for case in cases:
        case["valid"] = verify_signature(
            case["pubkey"], bytes.fromhex(case["message"]), case["signature"]
        )
    return cases


#: RFC 8032 §5.1: the group order L, and encodings of points libsodium refuses as keys.
L = 2**252 + 27742317777372353535851937790883648493
SMALL_ORDER_KEYS = {
    "identity (order 1)": "01" + "00" * 31,
    "y = 0 (order 4)": "00" * 32,
    "y = p - 1 (order 2)": "ec" + "ff" * 30 + "7f",
    "y = p + 1, not canonical": "ee" + "ff" * 30 + "7f",
}

#: A point of order 8 (RFC 8032 §5.1: the torsion subgroup of edwards25519).
ORDER_8_POINT = bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")


def _torsion_signature(seed: bytes, message: bytes) -> bytes:
    """A signature whose R is rB + T, T of order 8, and S = r + k·a with k over that R.

    [S]B - [k]A = rB, so libsodium's cofactorless check (encode([S]B - [k]A) == R) refuses
    it, while a cofactored one ([8]R == [8]([S]B - [k]A), @noble/ed25519's verify) passes it.
    """
    pub = SigningKey(seed).verify_key.encode()
    clamped = bytearray(hashlib.sha512(seed).digest()[:32])  # RFC 8032 §5.1.5
    clamped[0] &= 248
    clamped[31] &= 127
    clamped[31] |= 64
    a = crypto_core_ed25519_scalar_reduce(bytes(clamped) + bytes(32))
    r = crypto_core_ed25519_scalar_reduce(hashlib.sha512(b"torsion nonce" + message).digest())
    big_r = crypto_core_ed25519_add(crypto_scalarmult_ed25519_base_noclamp(r), ORDER_8_POINT)
    k = crypto_core_ed25519_scalar_reduce(hashlib.sha512(big_r + pub + message).digest())
    return big_r + crypto_core_ed25519_scalar_add(r, crypto_core_ed25519_scalar_mul(k, a))


def _hostile_ed25519_cases() -> list[dict[str, Any]]:
    """Where WebCrypto alone is laxer than libsodium: small-order points, S not below L."""
    message = b"any message at all"
    identity_sig = "01" + "00" * 31 + "00" * 32  # R = identity, S = 0: holds for a small-order key
    cases = [
        {"name": f"key {name}", "pubkey": key, "message": message.hex(), "signature": identity_sig}
        for name, key in SMALL_ORDER_KEYS.items()
    ]
    key = SigningKey(b"\x07" * 32)
    sig = key.sign(message).signature
    s_plus_l = (int.from_bytes(sig[32:], "little") + L).to_bytes(32, "little")
    pub = key.verify_key.encode().hex()
    return [
        *cases,
        {
            "name": "S + L",
            "pubkey": pub,
            "message": message.hex(),
            "signature": (sig[:32] + s_plus_l).hex(),
        },
        {
            "name": "R of small order",
            "pubkey": pub,
            "message": message.hex(),
            "signature": ("01" + "00" * 31) + sig[32:].hex(),
        },
        {
            "name": "R with a torsion component",
            "pubkey": pub,
            "message": message.hex(),
            "signature": _torsion_signature(b"\x07" * 32, message).hex(),
        },
        {"name": "good 7", "pubkey": pub, "message": message.hex(), "signature": sig.hex()},
    ]


def _flip_text(text: str, needle: str) -> str:
    """One changed byte of the file, in the first hex digit after ``needle``."""
    at = text.index(needle) + len(needle)
    return text[:at] + ("1" if text[at] == "0" else "0") + text[at + 1 :]


def _python_verdict(text: str, pinned: str | None, evidence: list[dict[str, str]]) -> str:
    try:
        report = verify_bundle(json.loads(text), pinned_genesis_hash=pinned)
    except AuditFailure as failure:
        return failure.code
    digests = {e["sha256"] for r in report.records for e in r.record.get("evidence") or []}
    return "ok" if all(e["sha256"] in digests for e in evidence) else "evidence_mismatch"


def _genesis_case(bundle: dict[str, Any]) -> dict[str, Any]:
    """A devnet-style genesis file (defaults left out): the page completes it as the CLI does."""
    served = bundle["genesis"]
    consensus = {k: v for k, v in served["consensus"].items() if k != "proposal_expiry_blocks"}
    local = {**served, "consensus": consensus}
    completed, filled = complete_genesis(local, served)
    assert filled == ["proposal_expiry_blocks"]
    other = {**local, "chain_id": "another-chain"}
    return {
        "bundle": json.dumps(bundle),
        "file": json.dumps(local),
        "other_file": json.dumps(other),
        "expect_hash": genesis_hash(completed),
    }


@pytest.fixture(scope="module")
def bundle() -> dict[str, Any]:
    chain = AuditChain()
    chain.grow(2)
    chain.add_member("BR", "Brazil")
    chain.grow(2)
    digest = hashlib.sha256(EVIDENCE).hexdigest()
    subject = chain.envelope("FR", evidence=[{"sha256": digest, "name": "laptop.img"}])
    chain.commit([subject, chain.envelope("TH")])
    chain.grow(2)
    source = StoreSource(chain.app.store, chain.genesis_json)
    made = asyncio.run(build_bundle(source, [chain.record_id(subject)], latest=True))
    loaded: dict[str, Any] = json.loads(json.dumps(made))
    return loaded


def _bundle_cases(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    pinned = genesis_hash(bundle["genesis"])
    text = json.dumps(bundle)
    evidence = [{"name": "laptop.img", "sha256": hashlib.sha256(EVIDENCE).hexdigest()}]
    subject_sig = _subject_block(bundle)["entries"][0]["envelope"]["signature"]
    texts = {
        "as exported, pinned, with its evidence": (text, pinned, evidence),
        "as exported, not pinned": (text, None, []),
        "another genesis pinned": (text, "00" * 32, []),
        "a wrong evidence file": (text, pinned, [{"name": "x", "sha256": "11" * 32}]),
        "one flipped byte in the subject's signature": (
            _flip_text(text, f'"signature": "{subject_sig[:8]}'),
            pinned,
            [],
        ),
        "one flipped byte in the subject's nonce": (
            _flip_text(text, '"nonce": "'),
            pinned,
            [],
        ),
    }
    for name, (edit, _code, _message) in TAMPERS.items():
        texts[f"tampered: {name}"] = (json.dumps(_edit(copy.deepcopy(bundle), edit)), None, [])
    cases = []
    for name, (body, pin, files) in texts.items():
        case = {"name": name, "text": body, "pinned": pin, "evidence": files}
        case["expect"] = _python_verdict(body, pin, files)
        cases.append(case)
    return cases


#: test_case_bundle.py's malformed case sections, (tamper, code), from its parametrize mark.
CASE_SHAPES: list[tuple[Any, str]] = list(_case_shapes.pytestmark[0].args[1])


@pytest.fixture(scope="module")
def case_chain() -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    return asyncio.run(console_case.case_chain())


def _case_verdict(doc: Any, genesis: dict[str, Any]) -> str:
    """`comity case verify --genesis`'s verdict; a comity-bundle/1 file, which the page also
    takes, gets `comity bundle verify --genesis`'s."""
    if not isinstance(doc, dict) or doc.get("format") != CASE_FORMAT:
        return _python_verdict(json.dumps(doc), genesis_hash(genesis), [])
    try:
        verify_case_bundle(doc, pinned_genesis_hash=pin_of(genesis, doc))
    except AuditFailure as failure:
        return failure.code
    return "ok"


def _case_cases(made: tuple[dict[str, Any], dict[str, str], dict[str, Any]]) -> dict[str, Any]:
    doc, ids, genesis = made
    report = verify_case_bundle(doc, pinned_genesis_hash=genesis_hash(genesis))
    kinds = {r["reason"] for reasons in report.reasons.values() for r in reasons}
    assert kinds == {"case_record", "answer", "custody_event", "referenced"}, kinds
    docs: dict[str, Any] = {"as exported": doc}
    for name, tamper, _code in CASE_TAMPERING:
        docs[f"tampered: {name}"] = copy.deepcopy(doc)
        tamper(docs[f"tampered: {name}"], ids)
    for tamper, _code in CASE_SHAPES:
        docs[f"malformed: {tamper.__name__}"] = copy.deepcopy(doc)
        tamper(docs[f"malformed: {tamper.__name__}"])
    cases = [
        {"name": name, "text": json.dumps(d), "expect": _case_verdict(d, genesis)}
        for name, d in docs.items()
    ]
    return {
        "genesis": json.dumps(genesis),
        "reasons": {rid: list(rs) for rid, rs in report.reasons.items()},
        "cases": cases,
    }


def test_the_python_case_verdicts_are_what_the_tampering_should_give(
    case_chain: tuple[dict[str, Any], dict[str, str], dict[str, Any]],
) -> None:
    """Every tampering class of the Python tests gives its reason on this chain too, so the
    JS is held to each reason, not to a verdict that happens to agree."""
    verdicts = {c["name"]: c["expect"] for c in _case_cases(case_chain)["cases"]}
    assert verdicts["as exported"] == "ok"
    for name, _tamper, code in CASE_TAMPERING:
        assert verdicts[f"tampered: {name}"] == code, name
    for tamper, code in CASE_SHAPES:
        # An old-format file is a plain bundle to the page (comity bundle verify's verdict).
        want = "ok" if tamper.__name__ == "_old_format" else code
        assert verdicts[f"malformed: {tamper.__name__}"] == want, tamper.__name__


def test_the_python_verdicts_are_what_the_tampering_should_give(bundle: dict[str, Any]) -> None:
    """The cases are worth running: each tamper gives the reason docs/AUDIT.md names."""
    verdicts = {c["name"]: c["expect"] for c in _bundle_cases(bundle)}
    assert verdicts["as exported, pinned, with its evidence"] == "ok"
    assert verdicts["another genesis pinned"] == "genesis_mismatch"
    assert verdicts["a wrong evidence file"] == "evidence_mismatch"
    assert verdicts["one flipped byte in the subject's signature"] == "bad_record_signature"
    for name, (_edit_fn, code, _message) in TAMPERS.items():
        assert verdicts[f"tampered: {name}"] == code, name


def test_the_js_role_tables_are_the_python_auditors(tmp_path: Path) -> None:
    assert NODE is not None
    script = (
        "import('./api/console/static/js/gov.js').then((m) => console.log(JSON.stringify("
        "{roles: m.ROLE_TYPES, classes: m.TYPE_CLASSES, replayed: m.REPLAYED_TYPES})))"
    )
    out = subprocess.run(
        [NODE, "-e", script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    tables = json.loads(out.stdout)
    assert {k: frozenset(v) for k, v in tables["roles"].items()} == ROLE_TYPES
    assert {k: frozenset(v) for k, v in tables["classes"].items()} == TYPE_CLASSES
    assert tuple(tables["replayed"]) == REPLAYED_TYPES


def test_node_test_runner_agrees_with_the_python_code(
    bundle: dict[str, Any],
    case_chain: tuple[dict[str, Any], dict[str, str], dict[str, Any]],
    tmp_path: Path,
) -> None:
    assert NODE is not None
    cases = {
        "jcs": _jcs_cases(),
        "ed25519": _ed25519_cases(),
        "bundles": _bundle_cases(bundle),
        "genesis": _genesis_case(bundle),
        "gov": {"genesis": bundle["genesis"], "scenarios": gov_scenarios(bundle["genesis"])},
        "case": _case_cases(case_chain),
    }
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    env = {**os.environ, "COMITY_JS_CASES": str(tmp_path / "cases.json")}
    # Without the vendored @noble/ed25519 the fallback verifier's two tests skip (named).
    fallback_tests = 2 if VENDOR.exists() else 0
    if not VENDOR.exists():
        env["COMITY_JS_NO_VENDOR"] = "1"
    run = subprocess.run(
        [NODE, "--test", *sorted(str(p) for p in (ROOT / "tests" / "js").glob("*.test.mjs"))],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "# fail 0" in run.stdout, run.stdout[-2000:]
    assert f"# skipped {2 - fallback_tests}" in run.stdout, run.stdout[-2000:]
    assert f"# pass {16 + fallback_tests}" in run.stdout, run.stdout[-2000:]
