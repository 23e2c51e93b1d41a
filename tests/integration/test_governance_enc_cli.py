"""The enc key ceremony and ``comity set-param`` with the CLI, against a real node process.

docs/GOVERNANCE.md "Rotating the encryption key", step by step on a one-state
devnet (its node reads ``enc_key_path = enc.key``, so its keyring is
``enc.keyring``): seal to the chain's key, rotate, restart, propose, seal
again, and read both; then "Consortium parameters" with ``comity set-param``
and ``comity vote`` on a chain whose genesis leaves the parameter out.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from api.cli.main import main
from node.tokens import create_token
from tests.procnet import FAST, ProcNet

pytestmark = pytest.mark.slow
DETAILS = {"account": "user-7788"}


def _comity(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def _seal_and_submit(folder: Path, url: str, tag: str) -> str:
    act = folder.parent / f"{tag}-act.json"
    act.write_text(
        _comity("act", "new", "preservation_request", "--state", "CN", "--territorial-state", "TH")
    )
    details = folder.parent / "details.json"
    details.write_text(json.dumps(DETAILS))
    sealed = folder.parent / f"{tag}-sealed.json"
    sealed.write_text(
        _comity("seal", "--to", "CN", "--node", url, "--record", str(act), str(details))
    )
    out = _comity(
        "submit", "--node", url, "--key", str(folder / "investigator.key"), str(sealed),
        "--wait", "20",
    )  # fmt: skip
    return out.splitlines()[0]


def test_rotate_the_enc_key_then_set_a_parameter_with_the_cli(tmp_path: Path) -> None:
    net = ProcNet(tmp_path / "net", nodes=1, consensus={**FAST, "need_to_know_from_height": None})
    folder = tmp_path / "net" / "CN"
    net.start()
    url = net.urls["CN"]
    admin = ["--node", url, "--admin-key", str(folder / "admin.key"), "--state", "CN"]
    try:
        before = _seal_and_submit(folder, url, "before")
        # 1. New key and keyring beside the old key; 3. swap the files in, restart.
        new_pub = _comity(
            "enc-key", "rotate", "--enc-key", str(folder / "enc.key"),
            "--out", str(folder / "enc-2.key"),
        ).strip()  # fmt: skip
        (folder / "enc.key").rename(folder / "enc-1.key")
        (folder / "enc-2.key").rename(folder / "enc.key")
        (folder / "enc-2.keyring").rename(folder / "enc.keyring")
        net.kill("CN", signal.SIGTERM)
        net.start("CN")
        # 4. The admin's proposal, decided at once.
        _comity(
            "propose", *admin, "--action", "rotate_enc_key", "--member", "CN",
            "--enc-pubkey", str(folder / "enc.key"), "--wait", "20",
        )  # fmt: skip
        members = httpx.get(f"{url}/v1/members", timeout=10).json()["members"]
        assert members[0]["enc_pubkey"] == new_pub
        after = _seal_and_submit(folder, url, "after")
        _, secret = create_token(folder / "data", "investigator", "CN investigator")
        for record_id in (before, after):
            reply = httpx.get(
                f"{url}/v1/records/{record_id}/sealed",
                headers={"authorization": f"Bearer {secret}"},
                timeout=10,
            )
            assert reply.status_code == 200, reply.text
            assert reply.json()["details"] == DETAILS

        # A parameter: proposed, then passed by the only member's vote.
        height = net.height("CN")
        proposed = _comity(
            "set-param", *admin, "--name", "need_to_know_from_height",
            "--value", str(height + 30), "--wait", "20",
        )  # fmt: skip
        proposal = proposed.splitlines()[0]
        _comity("vote", *admin, "--proposal", proposal, "--vote", "yes", "--wait", "20")
        rows = httpx.get(f"{url}/v1/proposals", params={"status": "passed"}, timeout=10).json()
        [row] = [p for p in rows["proposals"] if p["id"] == proposal]
        assert row["record"]["value"] == height + 30
        assert row["state"] == "param:need_to_know_from_height"
        again = CliRunner().invoke(
            main,
            ["set-param", *admin, "--name", "need_to_know_from_height", "--value", "3"],
        )
        assert again.exit_code == 2 and "height_too_early" in again.output
    finally:
        net.stop_all()
