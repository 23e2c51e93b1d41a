"""docs/OPERATIONS.md §9, "Ceremony: creating a member's keys in an HSM", executed.

The section's two ``bash`` blocks run in order as one script against SoftHSM2:
the token, the PIN file, the node and admin keys made in the token, a one-state
genesis, ``comity init`` naming the token key; then a node is started from that
config, and the admin enrols an investigator made in the token, who signs a
record that commits. Paths under /etc/comity and /var/lib/comity move to a
temporary directory and ports 8001/8101 to free ones; nothing else of the text
changes. Finally no file there is an Ed25519 private key.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import softhsm
from tests.opsnet import REPO
from tests.ports import free_base

pytestmark = pytest.mark.slow

DOC = REPO / "docs" / "OPERATIONS.md"
SECTION = "### Ceremony: creating a member's keys in an HSM"

PRELUDE = r"""
set -euo pipefail
comity() { "$PY" -m api.cli "$@"; }
"""

START_NODE = r"""
"$PY" -m api.cli run --config /etc/comity/node.toml >>"$T/node.log" 2>&1 &
echo $! >"$T/node.pid"
trap 'kill -TERM "$(cat "$T/node.pid")" 2>/dev/null || true; wait' EXIT
for _ in $(seq 300); do
    "$PY" -c "import urllib.request as r; r.urlopen('http://127.0.0.1:8001/healthz', timeout=1)" 2>/dev/null && break
    sleep 0.1
done
"""

EPILOGUE = r"""
echo "$NODE_PUBKEY $ADMIN_PUBKEY $INVESTIGATOR_PUBKEY" >"$T/pubkeys"
"""


def ceremony_blocks() -> list[str]:
    text = DOC.read_text()
    section = text[text.index(SECTION) :]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 2, "the ceremony has two bash blocks: before and after the node starts"
    return blocks


def test_the_hsm_ceremony_in_operations_md_runs(tmp_path: Path) -> None:
    softhsm.require_softhsm()
    base = free_base(1, 38000, 40)
    before, after = ceremony_blocks()
    script = PRELUDE + before + START_NODE + after + EPILOGUE
    for old, new in (
        ("/etc/comity", f"{tmp_path}/etc/comity"),
        ("/var/lib/comity", f"{tmp_path}/var/lib/comity"),
        ("8001", str(base)),
        ("8101", str(base + 100)),
    ):
        script = script.replace(old, new)
    (tmp_path / "etc" / "comity").mkdir(parents=True)
    env = {
        **os.environ,
        "PY": sys.executable,
        "T": str(tmp_path),
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "SOFTHSM2_CONF": str(softhsm.write_conf(tmp_path / "softhsm")),
        "HSM_PIN": "ceremony-user-pin",
        "HSM_SO_PIN": "ceremony-so-pin",
    }
    result = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=180
    )
    log = (tmp_path / "node.log").read_text() if (tmp_path / "node.log").exists() else ""
    assert result.returncode == 0, result.stdout + result.stderr + log[-3000:]
    lines = result.stdout.splitlines()
    assert sum("committed at height" in line for line in lines) == 2, result.stdout  # enrol, act
    public_keys = set((tmp_path / "pubkeys").read_text().split())
    assert len(public_keys) == 3
    leaks = softhsm.private_key_material([tmp_path / "etc", tmp_path / "var"], public_keys)
    assert leaks == []
    assert "ceremony-user-pin" not in log and "ceremony-user-pin" not in result.stderr
    assert (tmp_path / "etc" / "comity" / "hsm.pin").stat().st_mode & 0o777 == 0o600
