"""The receipt webhook's authentication and configuration (node/receipts.py, docs/CHANNELS.md).

The signature is HMAC-SHA256 (RFC 2104) over ``timestamp + "." + body``; a call
is accepted within 300 s of the node's clock, and the secret file must be the
owner's alone, or the node does not start.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from ledger.errors import ClientError, Unauthorized
from ledger.keys import SigningKey, save_signing_key
from node.config import ConfigError, load_config
from node.receipts import (
    SIGNATURE_WINDOW_S,
    check_signature,
    load_secret,
    parse_webhook,
    receipt_nonce,
    signature_header,
)

SECRET = b"0123456789abcdef0123456789abcdef"
BODY = b'{"record_id":"ab"}'
NOW = 1_772_355_600


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET, b"1772355600." + BODY, hashlib.sha256).hexdigest()
    assert signature_header(SECRET, NOW, BODY) == f"t={NOW},v1={expected}"
    check_signature(SECRET, f"t={NOW},v1={expected}", BODY, NOW + SIGNATURE_WINDOW_S)


@pytest.mark.parametrize(
    ("header", "now", "code"),
    [
        (None, NOW, "signature_required"),
        ("", NOW, "signature_required"),
        ("t=1772355600", NOW, "bad_signature_header"),
        ("v1=" + "0" * 64, NOW, "bad_signature_header"),
        ("t=1772355600,v1=XYZ", NOW, "bad_signature_header"),
        ("t=1772355600,v2=" + "0" * 64, NOW, "bad_signature_header"),
        ("t=1772355600,v1=" + "0" * 63, NOW, "bad_signature_header"),
        ("t=1772355600,v1=" + "0" * 64, NOW, "bad_signature"),
        ("GOOD", NOW + SIGNATURE_WINDOW_S + 1, "stale_signature"),
        ("GOOD", NOW - SIGNATURE_WINDOW_S - 1, "stale_signature"),
    ],
)
def test_a_missing_malformed_forged_or_stale_signature_is_401(
    header: str | None, now: int, code: str
) -> None:
    good = signature_header(SECRET, NOW, BODY)
    if header is not None:
        header = good if header == "GOOD" else header.replace("GOOD", good.rsplit("=", 1)[1])
    with pytest.raises(Unauthorized) as caught:
        check_signature(SECRET, header, BODY, now)
    assert (caught.value.code, caught.value.field, caught.value.status) == (
        code,
        "header.X-Comity-Signature",
        401,
    )


def test_one_of_several_v1_values_may_match_while_a_secret_rotates() -> None:
    good = signature_header(SECRET, NOW, BODY).rsplit("=", 1)[1]
    check_signature(SECRET, f"t={NOW},v1={'0' * 64},v1={good}", BODY, NOW)
    with pytest.raises(Unauthorized):
        check_signature(b"another secret of 32 bytes or more", f"t={NOW},v1={good}", BODY, NOW)


def test_the_same_message_gets_the_same_nonce() -> None:
    assert receipt_nonce("CN/e_codex/m-1") == receipt_nonce("CN/e_codex/m-1")
    assert receipt_nonce("CN/e_codex/m-1") != receipt_nonce("CN/eedes/m-1")
    assert len(receipt_nonce("x")) <= 64


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (b"not json", "bad_json", "body"),
        (b"[]", "invalid_receipt", "body"),
        (b'{"record_id": "ab"}', "invalid_receipt", "body.record_id"),
    ],
)
def test_a_bad_body_names_the_field(body: bytes, code: str, field: str) -> None:
    with pytest.raises(ClientError) as caught:
        parse_webhook(body)
    assert (caught.value.code, caught.value.field) == (code, field)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_secret_others_may_read_stops_the_node(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "webhook.secret"
    path.write_bytes(SECRET)
    path.chmod(mode)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_secret(path)


def test_a_short_secret_stops_the_node(tmp_path: Path) -> None:
    path = tmp_path / "webhook.secret"
    path.write_bytes(b"short")
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="32"):
        load_secret(path)
    path.write_bytes(SECRET + b"\n")
    assert load_secret(path) == SECRET


def _config(tmp_path: Path, secret_mode: int) -> Path:
    for name in ("genesis.json", "node.key"):
        (tmp_path / name).write_text("{}")
    secret = tmp_path / "webhook.secret"
    secret.write_bytes(SECRET)
    secret.chmod(secret_mode)
    save_signing_key(tmp_path / "integration.key", SigningKey.generate())
    config = tmp_path / "node.toml"
    config.write_text(
        'state = "CN"\ngenesis_path = "genesis.json"\nnode_key_path = "node.key"\n'
        'data_dir = "data"\n[api]\nport = 7000\n[p2p]\nport = 7100\n'
        '[receipts]\nwebhook_secret_path = "webhook.secret"\n'
        'integration_key_path = "integration.key"\nagency = "CN e-CODEX connector"\n'
    )
    return config


def test_the_config_names_the_receipts_files_and_refuses_an_open_secret(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, 0o600))
    assert config.receipts is not None
    assert config.receipts.webhook_secret_path == tmp_path / "webhook.secret"
    assert config.receipts.agency == "CN e-CODEX connector"
    (tmp_path / "webhook.secret").chmod(0o644)
    with pytest.raises(ConfigError, match=r"receipts\.webhook_secret_path"):
        load_config(tmp_path / "node.toml")
