"""``comity init --observer`` with the node key in a SoftHSM2 token (api/cli/main.py).

An observer's node key may live in a token as a validator's does; a token key that
is a genesis validator's node key is refused, like a key file would be. The file
form runs on a devnet in tests/integration/test_observer_devnet.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from api.cli.main import main
from ledger.keys import SigningKey
from node.config import load_config
from tests import softhsm
from tests.unit.test_hsm_cli import token_args


@pytest.fixture(autouse=True)
def _softhsm() -> None:
    softhsm.require_softhsm()
    softhsm.process_conf()


def _genesis(tmp_path: Path, node_pubkey: str) -> Path:
    genesis = tmp_path / "genesis.json"
    CliRunner().invoke(main, ["genesis", "new", "--chain-id", "obs", "--out", str(genesis)])
    enc = X25519PrivateKey.generate().public_key().public_bytes_raw().hex()
    member = CliRunner().invoke(
        main,
        [
            *("genesis", "add-member", "--genesis", str(genesis), "--state", "CN"),
            *("--name", "China", "--node-pubkey", node_pubkey),
            *("--admin-pubkey", SigningKey.generate().public_hex, "--enc-pubkey", enc),
            *("--p2p-url", "http://127.0.0.1:8100"),
        ],
    )
    assert member.exit_code == 0, member.output
    return genesis


def test_init_observer_takes_a_token_key_and_refuses_a_validators(tmp_path: Path) -> None:
    pin = softhsm.write_pin(tmp_path / "pin", softhsm.PIN)
    token = softhsm.new_token()
    keys = {}
    for label in ("validator", "observer"):
        made = CliRunner().invoke(main, ["keygen", "--pkcs11", *token_args(token, pin, label)])
        assert made.exit_code == 0, made.output
        keys[label] = made.output.strip()
    genesis = _genesis(tmp_path, keys["validator"])
    out = tmp_path / "node.toml"
    common = ["init", "--observer", "--state", "CN", "--genesis", str(genesis)]
    common += ["--data-dir", str(tmp_path / "d"), "--out", str(out)]
    refused = CliRunner().invoke(main, [*common, *token_args(token, pin, "validator")])
    assert refused.exit_code == 2 and "validator's node key" in refused.output
    assert not out.exists()
    made = CliRunner().invoke(main, [*common, *token_args(token, pin, "observer")])
    assert made.exit_code == 0, made.output
    assert keys["observer"] in made.output  # the key to propose, and the command
    config = load_config(out)
    assert config.role == "observer" and config.node_key_path is None
    assert config.node_key_pkcs11 is not None and config.node_key_pkcs11.label == "observer"
    assert softhsm.PIN not in out.read_text()
