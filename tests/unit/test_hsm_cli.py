"""``comity keygen --pkcs11``, ``pubkey`` and ``init`` with a key in a SoftHSM2 token
(api/cli/hsm.py); ``enroll`` and ``submit`` through a token run on a devnet in
tests/integration/test_hsm_devnet.py."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from api.cli.hsm import pkcs11_key, pkcs11_options
from api.cli.main import main
from ledger.keys import SigningKey, save_signing_key
from node.config import load_config
from tests import softhsm


@pytest.fixture(autouse=True)
def _softhsm() -> None:
    softhsm.require_softhsm()
    softhsm.process_conf()


def token_args(token: str, pin_file: Path, label: str = "member-admin") -> list[str]:
    return [
        "--pkcs11-module",
        str(softhsm.MODULE),
        "--pkcs11-token",
        token,
        "--pkcs11-label",
        label,
        "--pkcs11-pin-file",
        str(pin_file),
    ]


def test_keygen_in_the_token_then_pubkey_reads_it_back(tmp_path: Path) -> None:
    pin = softhsm.write_pin(tmp_path / "pin", softhsm.PIN)
    args = token_args(softhsm.new_token(), pin)
    made = CliRunner().invoke(main, ["keygen", "--pkcs11", *args])
    assert made.exit_code == 0, made.output
    public_hex = made.output.strip()
    assert len(public_hex) == 64 and bytes.fromhex(public_hex)
    assert list(tmp_path.iterdir()) == [pin]  # no key file written
    shown = CliRunner().invoke(main, ["pubkey", *args])
    assert (shown.exit_code, shown.output.strip()) == (0, public_hex)
    again = CliRunner().invoke(main, ["keygen", "--pkcs11", *args])
    assert again.exit_code == 2
    assert "exists already; choose another label" in again.output


def test_keygen_options_are_checked(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["keygen", "--pkcs11", "--pkcs11-label", "k"])
    assert result.exit_code == 2
    assert "the --pkcs11-* options are incomplete" in result.output
    assert "--pkcs11-module" in result.output
    pin = softhsm.write_pin(tmp_path / "pin", softhsm.PIN)
    both = CliRunner().invoke(
        main, ["keygen", "--pkcs11", "--out", str(tmp_path / "k"), *token_args("t", pin)]
    )
    assert both.exit_code == 2 and "a --pkcs11 key stays in its token" in both.output
    neither = CliRunner().invoke(main, ["keygen"])
    assert neither.exit_code == 2 and "give --out (a key file) or --pkcs11" in neither.output


def test_the_options_come_from_the_environment(tmp_path: Path) -> None:
    pin = softhsm.write_pin(tmp_path / "pin", softhsm.PIN)
    env = {
        "COMITY_PKCS11_MODULE": str(softhsm.MODULE),
        "COMITY_PKCS11_TOKEN": softhsm.new_token(),
        "COMITY_PKCS11_PIN_FILE": str(pin),
    }
    made = CliRunner(env=env).invoke(main, ["keygen", "--pkcs11", "--pkcs11-label", "inv-1"])
    assert made.exit_code == 0, made.output
    shown = CliRunner(env=env).invoke(main, ["pubkey", "--pkcs11-label", "inv-1"])
    assert shown.output.strip() == made.output.strip()


def test_a_key_file_and_a_token_key_are_exclusive(tmp_path: Path) -> None:
    key_file = tmp_path / "admin.key"
    save_signing_key(key_file, SigningKey.generate())
    pin = softhsm.write_pin(tmp_path / "pin", softhsm.PIN)
    result = CliRunner().invoke(main, ["pubkey", str(key_file), *token_args("t", pin)])
    assert result.exit_code == 2
    assert "give KEY_FILE or --pkcs11-label, not both" in result.output


def test_a_wrong_pin_fails_the_command_without_showing_it(tmp_path: Path) -> None:
    wrong = softhsm.write_pin(tmp_path / "pin", "not-the-pin-8080")
    result = CliRunner().invoke(main, ["pubkey", *token_args(softhsm.new_token(), wrong)])
    assert result.exit_code == 2
    assert "refused the PIN (CKR_PIN_INCORRECT)" in result.output
    assert "not-the-pin-8080" not in result.output


def test_init_writes_a_node_key_pkcs11_table(tmp_path: Path) -> None:
    pin = softhsm.write_pin(tmp_path / "pin", softhsm.PIN)
    args = token_args(softhsm.new_token(), pin, label="node")
    made = CliRunner().invoke(main, ["keygen", "--pkcs11", *args])
    assert made.exit_code == 0, made.output
    genesis = tmp_path / "genesis.json"
    CliRunner().invoke(main, ["genesis", "new", "--chain-id", "hsm", "--out", str(genesis)])
    enc = X25519PrivateKey.generate().public_key().public_bytes_raw().hex()
    member = CliRunner().invoke(
        main,
        [
            *("genesis", "add-member", "--genesis", str(genesis), "--state", "CN"),
            *("--name", "China", "--node-pubkey", made.output.strip()),
            *("--admin-pubkey", SigningKey.generate().public_hex, "--enc-pubkey", enc),
            *("--p2p-url", "http://127.0.0.1:8100"),
        ],
    )
    assert member.exit_code == 0, member.output
    assert json.loads(genesis.read_text())["members"][0]["node_pubkey"] == made.output.strip()
    out = tmp_path / "node.toml"
    result = CliRunner().invoke(
        main,
        [
            *("init", "--state", "CN", "--genesis", str(genesis)),
            *("--data-dir", str(tmp_path / "d"), "--out", str(out), *args),
        ],
    )
    assert result.exit_code == 0, result.output
    config = load_config(out)
    assert config.node_key_path is None
    assert config.node_key_pkcs11 is not None
    assert config.node_key_pkcs11.label == "node"
    assert config.node_key_pkcs11.pin_file == pin
    assert softhsm.PIN not in out.read_text()


def test_a_command_s_own_token_option_is_not_the_pkcs11_token() -> None:
    """``enroll --token`` is a bearer token; ``--pkcs11-token`` the HSM token's label."""

    @click.command()
    @click.option("--token", default=None)
    @click.option("--label", default=None)
    @pkcs11_options
    def probe(token: str | None, label: str | None) -> None:
        key = pkcs11_key()
        click.echo(f"{token} {label} {key.token} {key.label}")

    result = CliRunner().invoke(
        probe,
        [
            *("--token", "bearer-secret", "--label", "desk", "--pkcs11-token", "hsm"),
            *("--pkcs11-label", "k", "--pkcs11-module", "/m.so", "--pkcs11-pin-env", "P"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "bearer-secret desk hsm k"
