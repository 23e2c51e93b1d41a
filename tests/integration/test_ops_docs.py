"""docs/OPERATIONS.md, executed: every ``sh`` block, in order, as one bash script.

Paths under /etc/comity, /var/lib/comity and /var/backups/comity move to a
temporary directory and ports 8001/8101 to free ones; nothing else of the
text changes. ``comity`` is the CLI with the ops groups (tests/opsnet.py) and
``systemctl start|stop comity`` runs and stops the ``ExecStart`` line of
docker/comity.service, so the unit's command line is exercised too.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.opsnet import _CLI, REPO
from tests.ports import free_base

pytestmark = pytest.mark.slow

DOC = REPO / "docs" / "OPERATIONS.md"
UNIT = REPO / "docker" / "comity.service"


def doc_script() -> str:
    return "\n".join(re.findall(r"```sh\n(.*?)```", DOC.read_text(), flags=re.S))


def exec_start() -> str:
    match = re.search(r"^ExecStart=(.*)$", UNIT.read_text(), flags=re.M)
    assert match is not None
    return match.group(1)


PRELUDE = r"""
set -euo pipefail
comity() { "$PY" -c "$CLI" "$@"; }
systemctl() {
    case "$1" in
    start)
        __EXEC__ >>"$T/node.log" 2>&1 &
        echo $! >"$T/node.pid"
        for _ in $(seq 300); do
            "$PY" -c "import ssl, urllib.request as r; r.urlopen('https://127.0.0.1:__API__/healthz', context=ssl._create_unverified_context(), timeout=1)" 2>/dev/null && return 0
            sleep 0.1
        done
        echo "node did not start" >&2; cat "$T/node.log" >&2; return 1;;
    stop)
        if [ -f "$T/node.pid" ]; then
            kill -TERM "$(cat "$T/node.pid")" 2>/dev/null || true
            while kill -0 "$(cat "$T/node.pid")" 2>/dev/null; do sleep 0.1; done
            rm -f "$T/node.pid"
        fi;;
    esac
}
trap 'systemctl stop comity' EXIT
"""


def _localise(text: str, root: Path, api_port: int, p2p_port: int) -> str:
    for old, new in (
        ("/etc/comity", f"{root}/etc/comity"),
        ("/var/lib/comity", f"{root}/var/lib/comity"),
        ("/var/backups/comity", f"{root}/backups"),
        ("8001", str(api_port)),
        ("8101", str(p2p_port)),
    ):
        text = text.replace(old, new)
    return text


def test_every_command_in_operations_md_runs(tmp_path: Path) -> None:
    base = free_base(1, "ops_docs")
    api_port, p2p_port = base, base + 100
    # The unit's command itself (not the shell function), so $! is the node's pid.
    command = exec_start().replace("/opt/comity/bin/comity", '"$PY" -c "$CLI"')
    script = PRELUDE.replace("__EXEC__", command).replace("__API__", str(api_port))
    script = _localise(script + doc_script(), tmp_path, api_port, p2p_port)
    (tmp_path / "etc" / "comity").mkdir(parents=True)
    result = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={
            **os.environ,
            "PY": sys.executable,
            "CLI": _CLI,
            "T": str(tmp_path),
            "PYTHONPATH": str(REPO),
        },
    )
    log = (tmp_path / "node.log").read_text() if (tmp_path / "node.log").exists() else ""
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{log[-3000:]}"
    out = result.stdout
    assert "CN on chain comity-compose" in out  # comity status
    assert out.count("  peer ") == 3  # ... lists its peers
    assert out.count("store OK") == 3  # three checks passed
    assert "written to" in out and "restored CN" in out
    kept = list((tmp_path / "var" / "lib" / "comity").glob("ledger.before-restore-*"))
    assert len(kept) == 1


def test_the_doc_uses_only_commands_comity_has() -> None:
    from api.cli.main import main
    from api.cli.ops import compose, db, tls

    groups = {**main.commands, "tls": tls, "db": db, "compose": compose}
    lines = [line.strip() for line in doc_script().splitlines()]
    used = [
        shlex.split(line.split("comity ", 1)[1])[:2]
        for line in lines
        if re.match(r"^(\w+=\S+ |TOKEN=\$\()?comity ", line)
    ]
    assert len(used) >= 10
    for words in used:
        assert words[0] in groups, words
    unit_words = shlex.split(exec_start())
    assert unit_words[1:3] == ["run", "--config"]
