"""``comity enroll`` / ``comity revoke`` against a real node process (one-state consortium)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from api.cli.main import main
from ledger.canonical import canonical_bytes
from ledger.keys import SigningKey, save_signing_key
from tests.procnet import ProcNet

pytestmark = pytest.mark.slow


def _submit_as(net: ProcNet, key: SigningKey) -> httpx.Response:
    envelope = net.envelope("CN")
    record = envelope["record"]
    envelope.update(signer=key.public_hex, signature=key.sign(canonical_bytes(record)).hex())
    return httpx.post(f"{net.urls['CN']}/v1/records", json=envelope, timeout=10)


def test_enroll_then_revoke_with_wait(tmp_path: Path) -> None:
    net = ProcNet(tmp_path / "net", nodes=1)
    net.start()
    runner = CliRunner()
    url, admin = net.urls["CN"], str(tmp_path / "net" / "CN" / "admin.key")
    key = SigningKey.generate()
    save_signing_key(tmp_path / "alice.key", key)
    try:
        enrolled = runner.invoke(
            main,
            [
                "enroll",
                "--node",
                url,
                "--admin-key",
                admin,
                "--state",
                "CN",
                "--role",
                "investigator",
                "--pubkey",
                str(tmp_path / "alice.key"),
                "--agency",
                "CN cybercrime unit",
                "--wait",
                "20",
            ],
        )
        assert enrolled.exit_code == 0, enrolled.output
        record_id = enrolled.output.splitlines()[0]
        assert len(record_id) == 64 and "committed at height" in enrolled.output
        before = _submit_as(net, key)
        assert before.status_code == 202, before.text
        net.wait_committed("CN", before.json()["id"])

        # Hostile: an investigator key as the "admin" key.
        hostile = runner.invoke(
            main,
            [
                "enroll",
                "--node",
                url,
                "--admin-key",
                str(tmp_path / "net" / "CN" / "investigator.key"),
                "--state",
                "CN",
                "--role",
                "auditor",
                "--pubkey",
                SigningKey.generate().public_hex,
                "--agency",
                "x",
                "--wait",
                "5",
            ],
        )
        assert hostile.exit_code == 2 and "role_not_allowed" in hostile.output

        revoked = runner.invoke(
            main,
            [
                "revoke",
                "--node",
                url,
                "--admin-key",
                admin,
                "--state",
                "CN",
                "--pubkey",
                key.public_hex,
                "--reason",
                "left",
                "--wait",
                "20",
            ],
        )
        assert revoked.exit_code == 0, revoked.output
        after = _submit_as(net, key)
        assert after.status_code == 403 and after.json()["error"]["code"] == "signer_revoked"
        # The record it signed before the revocation is still committed.
        assert httpx.get(f"{url}/v1/records/{before.json()['id']}").json()["status"] == "committed"
    finally:
        net.stop_all()
