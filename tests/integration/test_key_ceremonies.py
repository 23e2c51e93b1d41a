"""docs/OPERATIONS.md §9, the encryption key and lost admin key ceremonies, executed.

The ``bash`` blocks of "Ceremony: rotating an encryption key" and "Ceremony:
recovering after a lost admin key" run in order as one script
(``tests/doc_ceremony.py``) on a 4-state devnet written by ``comity devnet
--no-run``'s ``prepare``, whose nodes ``systemctl start comity@STATE`` runs.
Ports 7000+i and 7100+i move to free ones and the offline medium to a
temporary directory; nothing else of the text changes. Then, with the nodes
still up: the lost admin keys are refused (``signer_revoked``), and the chain's
members show VN's new encryption key and TH back with its fresh node key.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.cli import devnet
from ledger.keys import load_signing_key
from tests.doc_ceremony import localise, run_script, section_blocks, unit_logs
from tests.ports import free_base
from tests.procnet import FAST

pytestmark = pytest.mark.slow

SECTIONS = (
    "### Ceremony: rotating an encryption key",
    "### Ceremony: recovering after a lost admin key",
)
STATES = ("CN", "FR", "TH", "VN")

#: comity@STATE is the node of devnet/STATE; all four start before the ceremonies.
UNITS = r"""
unit_config() { echo "devnet/${1#comity@}/node.toml"; }
unit_url() { jq -r --arg s "${1#comity@}" '.[] | select(.state == $s).api_url' devnet/nodes.json; }
for S in CN FR TH VN; do systemctl start "comity@$S"; done
"""

#: With the nodes up: what the lost keys can still do, and what the chain says.
EPILOGUE = r"""
echo "$OLD_ENC $NEW_ENC" >"$T/enc"
for S in FR TH; do
    comity keygen --out "$T/probe-$S.key" >/dev/null
    if comity enroll --node $N --admin-key "devnet/$S/admin.key" --state $S --role investigator --pubkey "$T/probe-$S.key" --agency probe >"$T/lost-$S.out" 2>&1; then
        echo "the lost admin key of $S still signs" >&2; exit 1
    fi
done
curl -sf $N/v1/members >"$T/members.json"
curl -sf $N/v1/validators >"$T/validators.json"
"""


def _script(tmp_path: Path, base: int) -> str:
    blocks = [block for title in SECTIONS for block in section_blocks(title)]
    assert len(blocks) == 3, "the encryption key, then (a) and (b) of the lost admin key"
    ports = [(f"127.0.0.1:{7000 + i}", f"127.0.0.1:{base + i}") for i in range(len(STATES))]
    ports += [(f"127.0.0.1:{7100 + i}", f"127.0.0.1:{base + 100 + i}") for i in range(4)]
    return UNITS + localise(
        "".join(blocks) + EPILOGUE,
        [*ports, ("/media/comity-offline", f"{tmp_path}/offline")],
    )


def test_the_key_ceremonies_in_operations_md_run(tmp_path: Path) -> None:
    base = free_base(len(STATES), "procnet")
    # Empty blocks every 300 ms: the removal's H+2 comes without more records.
    devnet.prepare(tmp_path / "devnet", len(STATES), base, {**FAST, "heartbeat_interval_ms": 300})
    result = run_script(_script(tmp_path, base), tmp_path, {}, timeout_s=300)
    assert result.returncode == 0, result.stdout + result.stderr + unit_logs(tmp_path)
    # The enc key: the new details opened by the new key only, both read by VN's node,
    # the old one by the old key's backup.
    assert result.stdout.count("user-7788") == 4, result.stdout
    assert "sealed_integrity" in result.stderr
    old_enc, new_enc = (tmp_path / "enc").read_text().split()
    members = {
        m["state"]: m for m in json.loads((tmp_path / "members.json").read_text())["members"]
    }
    assert members["VN"]["enc_pubkey"] == new_enc != old_enc
    # The lost admin keys: revoked, by the offline key (FR) and after re-admission (TH).
    for state in ("FR", "TH"):
        assert "signer_revoked" in (tmp_path / f"lost-{state}.out").read_text(), state
    fresh_node = load_signing_key(tmp_path / "devnet" / "TH" / "node-2.key").public_hex
    assert members["TH"]["validating"] is True
    assert members["TH"]["node_pubkey"] == fresh_node
    validators = json.loads((tmp_path / "validators.json").read_text())["validators"]
    assert {v["state"]: v["pubkey"] for v in validators}["TH"] == fresh_node
    # every --wait not captured by $(...): (a) 3, votes 6, the revocation, TH's act, ...
    assert result.stdout.count("committed at") == 13, result.stdout
