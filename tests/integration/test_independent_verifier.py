"""End to end with third-party tools: sign with the openssl CLI, submit over HTTP, and
verify the proof, the header hash and the commit certificate with a verifier that
shares no code with Comity (tests/independent_verifier.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ledger.acts_templates import template
from tests import independent_verifier as iv
from tests.cluster import Cluster

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def _openssl(*args: str) -> bytes:
    return subprocess.run(["openssl", *args], check=True, capture_output=True).stdout


def _signed_envelope(tmp: Path, key_pem: bytes, chain_id: str) -> dict[str, Any]:
    key = tmp / "key.pem"
    key.write_bytes(key_pem)
    key.chmod(0o600)
    signer = _openssl("pkey", "-in", str(key), "-pubout", "-outform", "DER")[-32:].hex()
    # The act's own fields come from the catalogue's template (test set-up only;
    # the verification below uses nothing from Comity).
    record = template(
        "preservation_request",
        state="FR",
        agency="Gendarmerie nationale",
        case_ref="FR-2026-0001",
        territorial_states=("TH",),
    )
    record.update(
        {
            "chain_id": chain_id,
            "nonce": "openssl-0001",
            "visibility": "consortium",
            "evidence": [
                {
                    "sha256": iv.sha256_hex(b"scan of the seized laptop"),
                    "name": "laptop.img",
                    "size": 25,
                }
            ],
        }
    )
    (tmp / "record.json").write_bytes(iv.jcs(record))
    _openssl(
        "pkeyutl",
        "-sign",
        "-inkey",
        str(key),
        "-rawin",
        "-in",
        str(tmp / "record.json"),
        "-out",
        str(tmp / "record.sig"),
    )
    return {
        "record": record,
        "signer": signer,
        "signature": (tmp / "record.sig").read_bytes().hex(),
    }


async def _get(cluster: Cluster, path: str, **params: Any) -> Any:
    response = await cluster.api["TH"].get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_openssl_signed_record_is_proven_by_an_independent_verifier(
    cluster: Cluster, tmp_path: Path
) -> None:
    key_pem = cluster.member("FR").investigator.to_pem()
    envelope = _signed_envelope(tmp_path, key_pem, cluster.chain_id)
    record_id = iv.verify_envelope(envelope)
    response = await cluster.api["FR"].post(
        "/v1/records", content=iv.jcs(envelope), headers={"content-type": "application/json"}
    )
    assert response.status_code == 202, response.text
    assert response.json()["id"] == record_id
    view = await _get(cluster, f"/v1/records/{record_id}", wait=15)
    assert view["status"] == "committed"

    # Fetched from a different node than the one we submitted to.
    proof = await _get(cluster, f"/v1/records/{record_id}/proof")
    block = await _get(cluster, f"/v1/blocks/{proof['height']}")
    validators = await _get(cluster, "/v1/validators", height=proof["height"])
    header = block["header"]

    block_hash = iv.verify_block(
        header, block["commit"], cluster.chain_id, validators["validators"]
    )
    assert block_hash == block["hash"]
    assert record_id in block["record_ids"]
    assert (proof["root"], proof["tree_size"]) == (header["ledger_root"], header["ledger_size"])
    leaf = iv.leaf_hash(iv.jcs(view["envelope"]))
    path = [bytes.fromhex(h) for h in proof["audit_path"]]
    root = bytes.fromhex(header["ledger_root"])
    assert iv.verify_inclusion(leaf, proof["leaf_index"], proof["tree_size"], path, root)
    # Hostile: a flipped bit in the leaf or the root, or a wrong index, fails.
    for bad_leaf, bad_root, index in (
        (bytes([leaf[0] ^ 1]) + leaf[1:], root, 0),
        (leaf, bytes([root[0] ^ 1]) + root[1:], 0),
        (leaf, root, proof["tree_size"]),
    ):
        assert not iv.verify_inclusion(
            bad_leaf, proof["leaf_index"] + index, proof["tree_size"], path, bad_root
        )


async def test_independent_verifier_checks_the_whole_chain_and_refuses_tampering(
    cluster: Cluster,
) -> None:
    ids = []
    for state in cluster.states:
        response = await cluster.api[state].post("/v1/records", json=cluster.envelope(state))
        ids.append(response.json()["id"])
    for record_id in ids:
        assert (await _get(cluster, f"/v1/records/{record_id}", wait=15))["status"] == "committed"
    latest = await _get(cluster, "/v1/blocks/latest")
    status = await _get(cluster, "/v1/status")
    genesis_prev = None
    sizes = []
    for height in range(1, latest["header"]["height"] + 1):
        block = await _get(cluster, f"/v1/blocks/{height}")
        validators = (await _get(cluster, "/v1/validators", height=height))["validators"]
        block_hash = iv.verify_block(
            block["header"], block["commit"], status["chain_id"], validators
        )
        if genesis_prev is not None:
            assert block["header"]["prev_hash"] == genesis_prev
        genesis_prev = block_hash
        sizes.append((block["header"]["ledger_size"], block["header"]["ledger_root"]))
    (size1, root1), (size2, root2) = sizes[0], sizes[-1]
    consistency = await _get(cluster, "/v1/proofs/consistency", first=size1, second=size2)
    assert iv.verify_consistency(
        size1,
        size2,
        bytes.fromhex(root1),
        bytes.fromhex(root2),
        [bytes.fromhex(h) for h in consistency["proof"]],
    )

    block = await _get(cluster, "/v1/blocks/1")
    validators = (await _get(cluster, "/v1/validators", height=1))["validators"]
    forged = json.loads(json.dumps(block["commit"]))
    forged["signatures"] = forged["signatures"][:1]
    with pytest.raises(iv.VerifyError, match="need 3"):
        iv.verify_block(block["header"], forged, cluster.chain_id, validators)
    tampered = dict(block["header"], record_count=block["header"]["record_count"] + 1)
    with pytest.raises(iv.VerifyError, match="another block"):
        iv.verify_block(tampered, block["commit"], cluster.chain_id, validators)
    with pytest.raises(iv.VerifyError, match="subset"):
        iv.jcs({"x": 1.5})
