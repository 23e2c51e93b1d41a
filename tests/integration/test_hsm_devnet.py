"""A devnet whose four node keys and CN's admin key live in SoftHSM2 (issue 23, part 2).

Every node signs its votes, proposals, P2P requests and replies through its own
token; CN's admin enrols an investigator whose key was made in a third token, and
that investigator's records commit on every node. Then the devnet's directories
(configs, data, logs) are scanned for private key material: no Ed25519 private
key, PEM or hex seed, exists outside the tokens (the one private key file left
is each state's X25519 encryption key, which PKCS#11 signing does not cover).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.cli.main import main
from ledger.acts_templates import template
from ledger.keys import SigningKey
from node.config import dump_config
from node.hsm import Pkcs11Key, generate_keypair
from tests import softhsm
from tests.procnet import ProcNet

pytestmark = pytest.mark.slow


def token_key(root: Path, name: str) -> Pkcs11Key:
    pin_file = softhsm.write_pin(root / f"{name}.pin", softhsm.PIN)
    return Pkcs11Key(
        module=softhsm.MODULE, token=softhsm.new_token(), label=name, pin_file=pin_file
    )


def token_args(key: Pkcs11Key) -> list[str]:
    assert key.token is not None and key.pin_file is not None
    return [
        *("--pkcs11-module", str(key.module), "--pkcs11-token", key.token),
        *("--pkcs11-label", key.label, "--pkcs11-pin-file", str(key.pin_file)),
    ]


def move_keys_into_tokens(net: ProcNet, root: Path, admins: list[Pkcs11Key]) -> dict[str, str]:
    """Node keys of every state and CN's admin key in tokens; every other demo signing
    key deleted, and the genesis rewritten to name the token keys. Returns the
    public keys that live in tokens, by name; CN's admin key goes into ``admins``."""
    genesis_path = net.root / "genesis.json"
    genesis = json.loads(genesis_path.read_text())
    in_tokens: dict[str, str] = {}
    for member in genesis["members"]:
        state = member["state"]
        node_key = token_key(root, f"{state}-node")
        member["node_pubkey"] = in_tokens[f"{state} node"] = generate_keypair(node_key).public_hex
        if state == "CN":
            admin = token_key(root, "CN-admin")
            member["admin_pubkeys"] = [generate_keypair(admin).public_hex]
            in_tokens["CN admin"] = member["admin_pubkeys"][0]
            admins.append(admin)
        else:  # an admin key that never touches the disk: this test does not use it
            member["admin_pubkeys"] = [SigningKey.generate().public_hex]
        folder = net.root / state
        for name in ("node", "admin", "investigator", "authority", "integration"):
            (folder / f"{name}.key").unlink(missing_ok=True)
        config = tomllib.loads((folder / "node.toml").read_text())
        del config["node_key_path"]
        config.pop("receipts", None)  # the webhook's key was a demo file
        config["node_key_pkcs11"] = {
            k: str(v) for k, v in node_key.model_dump(exclude_none=True).items()
        }
        (folder / "node.toml").write_text(dump_config(config))
    genesis["enrollments"] = []
    genesis_path.write_text(json.dumps(genesis, indent=2) + "\n")
    return in_tokens


def test_a_devnet_signing_in_softhsm2_enrols_and_commits(tmp_path: Path) -> None:
    softhsm.require_softhsm()
    conf = softhsm.process_conf()
    net = ProcNet(tmp_path / "net", nodes=4)
    admins: list[Pkcs11Key] = []
    in_tokens = move_keys_into_tokens(net, tmp_path, admins)
    investigator = token_key(tmp_path, "CN-investigator")
    in_tokens["CN investigator"] = generate_keypair(investigator).public_hex
    net.start(env={"SOFTHSM2_CONF": str(conf)})
    try:
        cn = net.urls["CN"]
        node_keys = {in_tokens[f"{s} node"] for s in net.states}
        validators = httpx.get(f"{cn}/v1/validators", timeout=5).json()["validators"]
        assert {v["pubkey"] for v in validators} == node_keys
        runner = CliRunner()
        enrolled = runner.invoke(
            main,
            [
                *("enroll", "--node", cn, "--state", "CN", *token_args(admins[0])),
                *("--role", "investigator", "--pubkey", in_tokens["CN investigator"]),
                *("--agency", "CN cybercrime unit", "--wait", "20"),
            ],
        )
        assert enrolled.exit_code == 0, enrolled.output + net.log("CN")[-2000:]
        assert "committed at height" in enrolled.output
        record_ids = []
        for n in range(2):
            record = template(
                "preservation_request",
                state="CN",
                case_ref=f"CASE-HSM-{n}",
                territorial_states=("TH",),
            )
            path = tmp_path / f"act-{n}.json"
            path.write_text(json.dumps(record))
            submitted = runner.invoke(
                main,
                [
                    *("submit", "--node", cn, *token_args(investigator)),
                    *("--visibility", "consortium", "--wait", "20", str(path)),
                ],
            )
            assert submitted.exit_code == 0, submitted.output
            record_ids.append(submitted.output.splitlines()[0])
        for record_id in record_ids:
            heights = {net.wait_committed(state, record_id) for state in net.states}
            assert len(heights) == 1  # one chain
            view = httpx.get(f"{cn}/v1/records/{record_id}", timeout=5).json()
            assert view["envelope"]["signer"] == in_tokens["CN investigator"]
        # The commit certificate: precommits signed in the tokens, checked by every node.
        block = httpx.get(f"{cn}/v1/blocks/{heights.pop()}", timeout=5).json()
        signers = {s["validator"] for s in block["commit"]["signatures"]}
        assert len(signers) >= 3 and signers <= node_keys
    finally:
        net.stop_all()
    leaks = softhsm.private_key_material([net.root], set(in_tokens.values()))
    assert leaks == []
    # The scan can fail: a node key written as PEM is found.
    planted = Ed25519PrivateKey.generate()
    (net.root / "CN" / "planted.key").write_bytes(
        planted.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    seed = SigningKey.generate()
    (net.root / "TH" / "data" / "seed.txt").write_text(seed.seed().hex())
    leaks = softhsm.private_key_material([net.root], {seed.public_hex})
    assert len(leaks) == 2 and "Ed25519PrivateKey PEM private key" in leaks[0]
    shutil.rmtree(net.root)


def test_a_node_whose_pin_file_others_can_read_does_not_start(tmp_path: Path) -> None:
    softhsm.require_softhsm()
    net = ProcNet(tmp_path / "net", nodes=1)
    pin = "readable-pin-5150"
    key = Pkcs11Key(
        module=softhsm.MODULE,
        token="comity-cn",
        label="cn-node",
        pin_file=softhsm.write_pin(tmp_path / "hsm.pin", pin, 0o644),
    )
    folder = net.root / "CN"
    config = tomllib.loads((folder / "node.toml").read_text())
    del config["node_key_path"]
    config["node_key_pkcs11"] = {k: str(v) for k, v in key.model_dump(exclude_none=True).items()}
    (folder / "node.toml").write_text(dump_config(config))
    result = subprocess.run(
        [sys.executable, "-m", "api.cli", "run", "--config", str(folder / "node.toml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "node CN cannot start: the PIN file" in result.stderr
    assert "chmod 600 it" in result.stderr and pin not in result.stderr + result.stdout
