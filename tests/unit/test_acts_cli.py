"""``comity act new TYPE`` and ``comity seal`` (api/cli/acts.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from api.cli.acts import act, seal
from api.cli.bootstrap import MemberKeys, build_genesis
from ledger.acts import MODELS, validate_act
from ledger.sealed import open_sealed, x25519_private_bytes
from node.authoring import complete_record


@pytest.mark.parametrize("type_", sorted(MODELS))
def test_template_completed_as_submit_does_is_valid(type_: str) -> None:
    result = CliRunner().invoke(act, ["new", type_, "--state", "CN", "--territorial-state", "TH"])
    assert result.exit_code == 0, result.output
    record = complete_record(json.loads(result.output), chain_id="comity-test")
    assert validate_act(record).type == type_


def test_unknown_type_is_refused() -> None:
    result = CliRunner().invoke(act, ["new", "wiretap"])
    assert result.exit_code == 2 and "wiretap" in result.output


def test_seal_to_genesis_members_opens_only_for_them(tmp_path: Path) -> None:
    members = [MemberKeys.generate(s, s) for s in ("CN", "TH", "VN")]
    genesis = tmp_path / "genesis.json"
    genesis.write_text(
        json.dumps(build_genesis("c", members, {m.state: "http://x" for m in members}))
    )
    details = tmp_path / "details.json"
    details.write_text(json.dumps({"phone": "+66 0000"}))
    record = tmp_path / "record.json"
    record.write_text(json.dumps({"type": "eio"}))
    runner = CliRunner()
    result = runner.invoke(
        seal, ["--to", "TH", "--to", "CN", "--genesis", str(genesis), str(details)]
    )
    assert result.exit_code == 0, result.output
    sealed = json.loads(result.output)
    assert sorted(sealed["recipients"]) == ["CN", "TH"]
    assert open_sealed(sealed, "TH", x25519_private_bytes(members[1].enc)) == {"phone": "+66 0000"}
    merged = runner.invoke(
        seal, ["--to", "VN", "--genesis", str(genesis), "--record", str(record), str(details)]
    )
    assert json.loads(merged.output)["sealed"]["recipients"].keys() == {"VN"}
    unknown = runner.invoke(seal, ["--to", "FR", "--genesis", str(genesis), str(details)])
    assert unknown.exit_code == 2 and "FR" in unknown.output
