"""docs/OPERATIONS.md §9, the two HSM ceremonies, executed.

The ``bash`` blocks of "Ceremony: creating a member's keys in an HSM" and
"Ceremony: rotating a node key in an HSM" run in order as one script against
SoftHSM2: the token, the PIN file, the node and admin keys made in the token, a
one-state genesis, ``comity init`` naming the token key, the node started, an
investigator made in the token and enrolled through the admin's token, a record
signed; then a new node key made in the token, its rotation proposed, and the
node restarted with it, after which a record commits under the new key. Paths
under /etc/comity and /var/lib/comity move to a temporary directory and ports
8001/8101 to free ones; nothing else of the text changes; ``systemctl`` starts
and stops ``comity run`` (``tests/doc_ceremony.py``). Finally no file there is an Ed25519 private key.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import softhsm
from tests.doc_ceremony import localise, run_script, section_blocks, unit_logs
from tests.ports import free_base

pytestmark = pytest.mark.slow

SECTIONS = (
    "### Ceremony: creating a member's keys in an HSM",
    "### Ceremony: rotating a node key in an HSM",
)

#: The one unit of this host: the node of /etc/comity/node.toml.
UNITS = r"""
unit_config() { echo /etc/comity/node.toml; }
unit_url() { echo http://127.0.0.1:8001; }
"""

#: Run while the node is up: the public keys made in the token, and what the node says.
EPILOGUE = r"""
echo "$NODE_PUBKEY $ADMIN_PUBKEY $INVESTIGATOR_PUBKEY $NEW_NODE_PUBKEY" >"$T/pubkeys"
for what in validators blocks/latest; do
    "$PY" -c "import sys, urllib.request as r; print(r.urlopen(r.Request(sys.argv[1], headers={'Authorization': 'Bearer ' + sys.argv[2]}), timeout=5).read().decode())" "http://127.0.0.1:8001/v1/$what" "$READ_TOKEN" >"$T/${what%/*}.json"
done
"""


def ceremony_blocks() -> list[str]:
    blocks = [block for title in SECTIONS for block in section_blocks(title)]
    assert len(blocks) == 3, "creating (before and after the node starts), then rotating"
    return blocks


def test_the_hsm_ceremony_in_operations_md_runs(tmp_path: Path) -> None:
    softhsm.require_softhsm()
    base = free_base(1, "ops_docs")  # a one-node net from a doc, like test_ops_docs
    script = localise(
        UNITS + "".join(ceremony_blocks()) + EPILOGUE,
        (
            ("/etc/comity", f"{tmp_path}/etc/comity"),
            ("/var/lib/comity", f"{tmp_path}/var/lib/comity"),
            ("8001", str(base)),
            ("8101", str(base + 100)),
        ),
    )
    (tmp_path / "etc" / "comity").mkdir(parents=True)
    env = {
        "SOFTHSM2_CONF": str(softhsm.write_conf(tmp_path / "softhsm")),
        "HSM_PIN": "ceremony-user-pin",
        "HSM_SO_PIN": "ceremony-so-pin",
    }
    result = run_script(script, tmp_path, env)
    log = unit_logs(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr + log
    lines = result.stdout.splitlines()
    # enrol, act, the rotation's proposal, an act at H+1 by the old key, one by the new
    committed = [int(line.split()[3].rstrip(",")) for line in lines if "committed at" in line]
    assert len(committed) == 5, result.stdout
    rotated_at = committed[2]
    assert committed[3:] == [rotated_at + 1, rotated_at + 2]
    public_keys = (tmp_path / "pubkeys").read_text().split()
    old_key, new_key = public_keys[0], public_keys[3]
    assert len(set(public_keys)) == 4
    validators = json.loads((tmp_path / "validators.json").read_text())["validators"]
    assert [v["pubkey"] for v in validators] == [new_key]
    latest = json.loads((tmp_path / "blocks.json").read_text())
    assert latest["header"]["height"] == rotated_at + 2
    assert [s["validator"] for s in latest["commit"]["signatures"]] == [new_key]
    assert old_key != new_key
    leaks = softhsm.private_key_material([tmp_path / "etc", tmp_path / "var"], set(public_keys))
    assert leaks == []
    assert "ceremony-user-pin" not in log and "ceremony-user-pin" not in result.stderr
    assert (tmp_path / "etc" / "comity" / "hsm.pin").stat().st_mode & 0o777 == 0o600
