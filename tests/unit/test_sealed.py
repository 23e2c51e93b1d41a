"""Sealed details (ledger/sealed.py) and the hash-chained access log (node/access_log.py).

docs/DOMAIN.md "Safeguards": restricted details are encrypted to some states;
every read of protected details is logged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nacl.public
import nacl.secret
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ledger.acts import validate_act
from ledger.canonical import canonical_bytes, parse_json
from ledger.hashing import sha256_hex
from ledger.keys import SigningKey
from ledger.sealed import (
    NotARecipient,
    SealedIntegrityError,
    open_sealed,
    seal,
    x25519_private_bytes,
)
from node.access_log import AccessLog, verify_log
from node.tokens import TokenInfo
from tests.unit.test_acts import make

DETAILS: dict[str, Any] = {
    "suspect_alias": "subject A",
    "accounts": ["acct-1", "acct-2"],
    "amount": 120000,
}
KEYS = {state: X25519PrivateKey.generate() for state in ("TH", "CN", "VN")}
NODE_KEY = SigningKey.generate()


def _pub(state: str) -> bytes:
    return KEYS[state].public_key().public_bytes_raw()


def _sealed(*states: str) -> dict[str, Any]:
    return seal(DETAILS, {s: _pub(s) for s in states})


def _open(sealed: dict[str, Any], state: str) -> dict[str, Any]:
    return open_sealed(sealed, state, x25519_private_bytes(KEYS[state]))


def test_cryptography_and_nacl_agree_on_x25519_keys() -> None:
    raw = x25519_private_bytes(KEYS["TH"])
    assert nacl.public.PrivateKey(raw).public_key.encode() == _pub("TH")


def test_round_trip_for_every_recipient_and_sizes_match_the_format() -> None:
    sealed = _sealed("TH", "CN")
    assert _open(sealed, "TH") == DETAILS == _open(sealed, "CN")
    assert all(len(entry) == 160 for entry in sealed["recipients"].values())
    assert len(sealed["nonce"]) == 48
    assert DETAILS["suspect_alias"] not in json.dumps(sealed)  # only ciphertext on chain
    validate_act(make("eio", sealed=sealed))  # fits the catalogue model


def test_third_party_can_decrypt_from_the_documented_format() -> None:
    """docs/ACTS.md byte format, re-implemented with raw NaCl calls only."""
    sealed = _sealed("VN")
    key = nacl.public.SealedBox(nacl.public.PrivateKey(x25519_private_bytes(KEYS["VN"]))).decrypt(
        bytes.fromhex(sealed["recipients"]["VN"])
    )
    plaintext = nacl.secret.SecretBox(key).decrypt(
        bytes.fromhex(sealed["ciphertext"]), bytes.fromhex(sealed["nonce"])
    )
    assert sha256_hex(plaintext) == sealed["plaintext_sha256"]
    wrapper = parse_json(plaintext)
    assert wrapper["details"] == DETAILS and len(wrapper["salt"]) == 32
    assert canonical_bytes(wrapper) == plaintext


def test_same_details_seal_to_different_hashes() -> None:
    """The salt: plaintext_sha256 cannot confirm a guessed plaintext."""
    assert _sealed("TH")["plaintext_sha256"] != _sealed("TH")["plaintext_sha256"]
    assert _sealed("TH")["plaintext_sha256"] != sha256_hex(canonical_bytes(DETAILS))


def test_non_recipient_cannot_decrypt() -> None:
    sealed = _sealed("TH", "CN")
    with pytest.raises(NotARecipient) as caught:
        _open(sealed, "VN")
    assert caught.value.code == "not_a_recipient" and caught.value.status == 403
    # VN's key against TH's entry opens nothing either.
    with pytest.raises(SealedIntegrityError):
        open_sealed(sealed, "TH", x25519_private_bytes(KEYS["VN"]))


def _flip(hex_text: str, index: int = 0) -> str:
    data = bytearray(bytes.fromhex(hex_text))
    data[index] ^= 0x01
    return data.hex()


TAMPER = [
    ("ciphertext", lambda s: {**s, "ciphertext": _flip(s["ciphertext"], 20)}),
    ("tag", lambda s: {**s, "ciphertext": _flip(s["ciphertext"], 0)}),
    ("nonce", lambda s: {**s, "nonce": _flip(s["nonce"])}),
    ("recipient entry", lambda s: {**s, "recipients": {"TH": _flip(s["recipients"]["TH"], 40)}}),
    ("plaintext hash", lambda s: {**s, "plaintext_sha256": "00" * 32}),
    ("truncated ciphertext", lambda s: {**s, "ciphertext": s["ciphertext"][:30]}),
    ("not hex", lambda s: {**s, "ciphertext": "zz" + s["ciphertext"][2:]}),
]


@pytest.mark.parametrize(("what", "tamper"), TAMPER, ids=[t[0] for t in TAMPER])
def test_tampering_is_detected(what: str, tamper: Any) -> None:
    with pytest.raises(SealedIntegrityError):
        _open(tamper(_sealed("TH")), "TH")


def test_ciphertext_swapped_from_another_sealing_is_detected() -> None:
    """A different (valid) box under a key the recipient got fails the hash pin."""
    first, second = _sealed("TH"), _sealed("TH")
    with pytest.raises(SealedIntegrityError):
        _open({**first, "ciphertext": second["ciphertext"], "nonce": second["nonce"]}, "TH")


# --- access log --------------------------------------------------------------------------


def _token(token_id: str, role: str) -> TokenInfo:
    return TokenInfo(token_id, role, "test", "2026-01-01T00:00:00Z", False, "0" * 64, "TH")


def _log_with(path: Path, n: int) -> AccessLog:
    log = AccessLog(path, NODE_KEY)
    for i in range(n):
        log.append(
            record_id=f"{i:064x}", state="TH", token=_token(f"tok{i}", "investigator"), outcome="ok"
        )
    return log


def verify(path: Path) -> Any:
    return verify_log(path, [NODE_KEY.public_hex])


def test_access_log_chain_verifies_and_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "access-log.jsonl"
    log = _log_with(path, 3)
    reopened = AccessLog(path, NODE_KEY)
    assert (
        (reopened.head_seq, reopened.head_hash)
        == (log.head_seq, log.head_hash)
        == (2, log.head_hash)
    )
    reopened.append(
        record_id="ff" * 32, state="TH", token=_token("t", "auditor"), outcome="not_a_recipient"
    )
    verdict = verify(path)
    assert (verdict.ok, verdict.entries, verdict.head_seq) == (True, 4, 3)
    assert [e["seq"] for e in reopened.page(after_seq=1)] == [2, 3]


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _edit(lines: list[str], index: int, **changes: Any) -> list[str]:
    entry = json.loads(lines[index])
    entry.update(changes)
    return [*lines[:index], json.dumps(entry), *lines[index + 1 :]]


TAMPERED_LOGS = [
    ("edited field", lambda ls: _edit(ls, 1, role="operator"), 2),
    ("edited and rehashed", lambda ls: _edit(ls, 1, role="operator", hash="0" * 64), 2),
    ("deleted line", lambda ls: [ls[0], *ls[2:]], 2),
    ("reordered", lambda ls: [ls[0], ls[2], ls[1], *ls[3:]], 2),
    ("inserted copy", lambda ls: [ls[0], ls[0], *ls[1:]], 2),
    ("garbage line", lambda ls: [*ls[:3], "{not json", *ls[3:]], 4),
]


@pytest.mark.parametrize(
    ("what", "tamper", "bad_line"), TAMPERED_LOGS, ids=[t[0] for t in TAMPERED_LOGS]
)
def test_access_log_tampering_is_detected(
    tmp_path: Path, what: str, tamper: Any, bad_line: int
) -> None:
    path = tmp_path / "access-log.jsonl"
    _log_with(path, 5)
    path.write_text("\n".join(tamper(_lines(path))) + "\n")
    verdict = verify(path)
    assert not verdict.ok and verdict.bad_line == bad_line, verdict


def test_rehashing_a_forged_entry_fails_its_signature(tmp_path: Path) -> None:
    """Rehashed, the forged entry keeps its chain link but not the node's signature
    (unsigned, the next line's prev_hash would break it instead: test_access_log.py)."""
    from node.access_log import entry_hash

    path = tmp_path / "access-log.jsonl"
    _log_with(path, 4)
    lines = _lines(path)
    forged = json.loads(lines[1]) | {"token_id": "someone-else"}
    forged["hash"] = entry_hash(forged)
    path.write_text("\n".join([lines[0], json.dumps(forged), *lines[2:]]) + "\n")
    verdict = verify(path)
    assert (verdict.bad_line, verdict.reason) == (
        2,
        "the signature does not verify under the signer's key",
    )


def test_torn_last_line_is_dropped_on_open(tmp_path: Path) -> None:
    path = tmp_path / "access-log.jsonl"
    log = _log_with(path, 2)
    with path.open("ab") as handle:
        handle.write(b'{"seq": 2, "ti')
    reopened = AccessLog(path, NODE_KEY)
    assert (reopened.head_seq, reopened.head_hash) == (1, log.head_hash)
    assert verify(path).ok
