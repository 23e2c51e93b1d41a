"""Signing in the browser (api/console/static/js/keys.js, sign.js) against the Python code.

The console must sign what ``comity submit`` signs, byte for byte: this test writes
cases whose expected bytes the Python code makes (``ledger.keys`` PEM files and
PyNaCl signatures, ``node.authoring`` envelopes, ``ledger.private.split`` headers,
bodies, commitments and parties, ``ledger.retention`` defaults), and hostile key
files with the reason each must be refused for, then runs
``node --test tests/js/signing`` on them, once with WebCrypto's Ed25519 and once
forced onto the ``@noble/ed25519`` fallback (scripts/console-vendor). Skipped only
when ``node`` is missing; under CI a skip fails the run.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519

from ledger.acts_templates import template
from ledger.canonical import canonical_bytes
from ledger.keys import SigningKey
from ledger.private import ACT_TYPES, split
from ledger.records import format_time
from ledger.retention import RETENTION_DAYS, default_retain_until
from node.authoring import complete_record, sign_envelope
from tests.nodetest import needs_node, run_node_tests, vendor_present

ROOT = Path(__file__).resolve().parents[2]
pytestmark = needs_node
NOW = datetime(2026, 12, 4, 3, 53, 55, 359_871, tzinfo=UTC)
CHAIN = "comity-devnet"
ED25519_OID = bytes.fromhex("06032b6570")


def _pem(der: bytes, label: str = "PRIVATE KEY") -> str:
    body = base64.b64encode(der).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


def _tlv(tag: int, content: bytes) -> bytes:
    assert len(content) < 128
    return bytes([tag, len(content)]) + content


def _pkcs8(
    seed: bytes,
    *,
    version: int = 0,
    oid: bytes = ED25519_OID,
    public: bytes | None = None,
    attributes: bytes | None = None,
) -> bytes:
    """RFC 8410 OneAsymmetricKey, built field by field so each can be made wrong."""
    fields = _tlv(0x02, bytes([version])) + _tlv(0x30, oid) + _tlv(0x04, _tlv(0x04, seed))
    if attributes is not None:
        fields += _tlv(0xA0, attributes)
    if public is not None:
        fields += _tlv(0x81, b"\x00" + public)
    return _tlv(0x30, fields)


def _key_cases() -> dict[str, Any]:
    keys = [SigningKey(bytes([i + 1]) * 32) for i in range(3)] + [SigningKey.generate()]
    messages = [b"", b"comity", canonical_bytes({"type": "preservation_request", "n": 1})]
    good = []
    for key in keys:
        good.append(
            {
                "pem": key.to_pem().decode(),
                "public": key.public_hex,
                "signatures": [
                    {"message": m.hex(), "signature": key.sign(m).hex()} for m in messages
                ],
            }
        )
    seed, public = keys[0].seed(), bytes.fromhex(keys[0].public_hex)
    other = bytes.fromhex(keys[1].public_hex)
    v1 = _pkcs8(seed)
    assert v1 == serialization.load_pem_private_key(
        keys[0].to_pem(), None
    ).private_bytes(  # the form ledger/keys.py writes
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    x_pem = (
        x25519.X25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    long_length = bytes([0x30, 0x81, len(v1) - 2]) + v1[2:]  # 0x81 for a length < 128
    accepted = [
        {"name": "v2 with its public key", "pem": _pem(_pkcs8(seed, version=1, public=public))},
        {
            "name": "v2 with attributes and its public key",
            "pem": _pem(_pkcs8(seed, version=1, attributes=b"", public=public)),
        },
        {"name": "v2 without the public key", "pem": _pem(_pkcs8(seed, version=1))},
        {"name": "CRLF line ends", "pem": _pem(v1).replace("\n", "\r\n")},
    ]
    refused = [
        ("not a PEM file", "hello", "not_pem"),
        ("empty", "", "not_pem"),
        ("a public key", keys[0].public_pem().decode(), "not_private_key"),
        (
            "an encrypted key",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "encrypted_key",
        ),
        ("two keys in one file", _pem(v1) + _pem(v1), "not_pem"),
        ("text after the block", _pem(v1) + "trailing words\n", "not_pem"),
        ("not base64", _pem(v1).replace("MC4C", "MC*C"), "bad_base64"),
        ("a byte after the key", _pem(v1 + b"\x00"), "trailing_data"),
        ("a non-minimal length", _pem(long_length), "bad_der"),
        ("truncated", _pem(v1[:20]), "bad_der"),
        ("version 3", _pem(_pkcs8(seed, version=2)), "bad_version"),
        ("a public key in a v1 key", _pem(_pkcs8(seed, public=public)), "bad_version"),
        ("X25519 (OID 1.3.101.110)", x_pem, "not_ed25519"),
        ("Ed448's OID", _pem(_pkcs8(seed, oid=bytes.fromhex("06032b6571"))), "not_ed25519"),
        ("P-256", ec_pem, "not_ed25519"),
        ("a 31-byte seed", _pem(_pkcs8(seed[:31])), "bad_seed"),
        ("a 33-byte seed", _pem(_pkcs8(seed + b"\x00")), "bad_seed"),
        (
            "a public key that is not the seed's",
            _pem(_pkcs8(seed, version=1, public=other)),
            "public_key_mismatch",
        ),
        ("a short public key", _pem(_pkcs8(seed, version=1, public=public[:31])), "bad_public_key"),
        ("a 20 KiB file", "-----BEGIN PRIVATE KEY-----\n" + "A" * 20_000, "not_pem"),
    ]
    return {
        "good": good,
        "accepted": [{**a, "public": keys[0].public_hex} for a in accepted],
        "refused": [{"name": n, "pem": p, "code": c} for n, p, c in refused],
    }


def _records() -> list[dict[str, Any]]:
    preservation = template("preservation_request", state="CN", territorial_states=("TH",), now=NOW)
    answer = template("sovereignty_response", state="TH", territorial_states=("TH",), now=NOW)
    answer.update(refs=["ab" * 32], response="objected", reason="bad", ground="territoriality")
    jit = template("jit_agreement", state="FR", territorial_states=("DE", "NL"), now=NOW)
    jit["refs"] = ["cd" * 32, "ef" * 32]
    mla = template("mla_request", state="JP", territorial_states=("BR",), now=NOW)
    mla["note_\u00e9\U0001f600"] = {"deep": [{"executing_state": "AR", "x_states": ["ZA"]}]}
    return [preservation, answer, jit, mla]


REF_PARTIES = {"ab" * 32: ["CN", "TH"], "cd" * 32: ["DE", "FR", "IT"], "ef" * 32: []}


def _sign_cases() -> list[dict[str, Any]]:
    key = SigningKey(bytes([7]) * 32)
    out = []
    for i, record in enumerate(_records()):
        nonce = f"{i:032x}"
        completed = complete_record({**record, "nonce": nonce}, chain_id=CHAIN)
        salt = f"{i + 1:032x}"
        retain = default_retain_until(completed)
        header, body = split(
            completed, retain_until=retain, ref_parties=lambda r: REF_PARTIES[r], salt=salt
        )
        consortium = {**completed, "visibility": "consortium"}
        out.append(
            {
                "record": record,
                "nonce": nonce,
                "salt": salt,
                "completed": canonical_bytes(completed).hex(),
                "retain_until": retain,
                "header": canonical_bytes(header).hex(),
                "body": canonical_bytes(body).hex(),
                "parties": header["parties"],
                "commitment": header["commitment"],
                "private": canonical_bytes({**sign_envelope(key, header), "private": body}).hex(),
                "consortium": canonical_bytes(sign_envelope(key, consortium)).hex(),
            }
        )
    return out


def _time_cases() -> list[dict[str, str]]:
    moments = [
        NOW,
        NOW.replace(microsecond=0),
        datetime(2027, 1, 1, tzinfo=UTC) - timedelta(0, 0, 1),
    ]
    return [{"iso": m.isoformat(), "formatted": format_time(m)} for m in moments]


def _run(tmp_path: Path, backend: str) -> str:
    cases = {
        "keys": _key_cases(),
        "sign": _sign_cases(),
        "ref_parties": REF_PARTIES,
        "chain_id": CHAIN,
        "seed7_public": SigningKey(bytes([7]) * 32).public_hex,
        "now": format_time(NOW),
        "times": _time_cases(),
        "retention": dict(RETENTION_DAYS),
        "act_types": sorted(ACT_TYPES),
        "backend": backend,
    }
    tests = (ROOT / "tests" / "js" / "signing").glob("*.test.mjs")
    return run_node_tests(tests, cases, tmp_path, "COMITY_SIGN_CASES", passes=11)


def test_the_browser_signs_what_the_cli_signs_with_webcrypto(tmp_path: Path) -> None:
    _run(tmp_path, "webcrypto")


def test_the_noble_fallback_signs_the_same_bytes(tmp_path: Path) -> None:
    if not vendor_present():
        pytest.skip("scripts/console-vendor has not installed @noble/ed25519 (needs npm)")
    _run(tmp_path, "noble")


def test_the_console_never_ships_the_fallback_in_git() -> None:
    ignored = (ROOT / ".gitignore").read_text().split()
    assert "api/console/static/vendor/" in ignored
    assert {"node_modules/", "api/console/node_modules/"} & set(ignored)
    package = json.loads((ROOT / "api" / "console" / "package.json").read_text())
    version = package["dependencies"]["@noble/ed25519"]
    assert version[0].isdigit(), "pinned to one version"
