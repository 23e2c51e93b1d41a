"""``comity act new TYPE`` (api/cli/acts.py); ``comity seal`` is in test_enc_key_rotation.py."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from api.cli.acts import act
from ledger.acts import MODELS, validate_act
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


# comity seal: tests/unit/test_enc_key_rotation.py (keys from the chain state, not genesis).
