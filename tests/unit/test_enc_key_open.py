"""``comity enc-key open``: one record's sealed details opened offline with one key file.

docs/OPERATIONS.md §9 "Ceremony: rotating an encryption key" checks with it
that a record sealed after the rotation opens only with the new key, and that
the backup of the old key still opens what was sealed before. Only the given
key is tried, never its keyring, and every refusal exits 2 naming why.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from api.cli import enc_keys
from api.cli.enc_keys import enc_key, write_enc_key
from ledger.sealed import seal

DETAILS = {"account": "user-7788"}


def _key(path: Path) -> bytes:
    key = X25519PrivateKey.generate()
    write_enc_key(path, key)
    return key.public_key().public_bytes_raw()


def _open(key: Path, state: str, record: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        enc_key, ["open", "--enc-key", str(key), "--state", state, str(record)]
    )
    return result.exit_code, result.output


def _body(record: dict[str, object]) -> dict[str, object]:
    return {"act": record, "salt": "00" * 16}


WRAPS = {
    "record": lambda r: r,
    "envelope": lambda r: {"record": r, "signer": "00"},
    # A private act's details travel in its body (docs/PRIVACY.md): the body, the
    # submission that carries it beside the header, and GET /v1/records/{id}/private.
    "private body": _body,
    "private submission": lambda r: {"record": {"type": "private_act"}, "private": _body(r)},
    "private read": lambda r: {"id": "00", "status": "kept", "private": _body(r), "content": r},
}


@pytest.mark.parametrize("wrap", WRAPS.values(), ids=WRAPS.keys())
def test_the_key_sealed_to_opens_a_record_or_an_envelope(tmp_path: Path, wrap: object) -> None:
    public = _key(tmp_path / "enc.key")
    record = {"type": "preservation_request", "sealed": seal(DETAILS, {"VN": public})}
    (tmp_path / "r.json").write_text(json.dumps(wrap(record)))  # type: ignore[operator]
    code, out = _open(tmp_path / "enc.key", "VN", tmp_path / "r.json")
    assert code == 0, out
    assert json.loads(out) == DETAILS


def test_another_key_and_another_state_are_refused(tmp_path: Path) -> None:
    public = _key(tmp_path / "old.key")
    _key(tmp_path / "new.key")
    (tmp_path / "r.json").write_text(json.dumps({"sealed": seal(DETAILS, {"VN": public})}))
    code, out = _open(tmp_path / "new.key", "VN", tmp_path / "r.json")
    assert code == 2 and "sealed_integrity" in out and "user-7788" not in out
    code, out = _open(tmp_path / "old.key", "TH", tmp_path / "r.json")
    assert code == 2 and "not_a_recipient" in out


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"{not json", "not JSON"),
        (b'{"record": {"type": "x"}}', "no record with a sealed object"),
        (b'["sealed"]', "no record with a sealed object"),
        (b'{"sealed": "abc"}', "no record with a sealed object"),
    ],
)
def test_a_file_without_sealed_details_is_refused(
    tmp_path: Path, content: bytes, says: str
) -> None:
    _key(tmp_path / "enc.key")
    (tmp_path / "r.json").write_bytes(content)
    code, out = _open(tmp_path / "enc.key", "VN", tmp_path / "r.json")
    assert code == 2 and says in out


def test_an_oversized_file_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(enc_keys, "RECORD_FILE_BYTES_MAX", 10)
    _key(tmp_path / "enc.key")
    (tmp_path / "r.json").write_text(json.dumps({"sealed": {}}))
    code, out = _open(tmp_path / "enc.key", "VN", tmp_path / "r.json")
    assert code == 2 and "larger than 10 bytes" in out
