"""Run the ``bash`` blocks of a ceremony in docs/OPERATIONS.md as one script.

The ceremonies of §9 are written as the commands an operator types, and the
tests run exactly those commands: ``section_blocks`` takes the ``bash`` blocks
of one ``###`` section (up to the next heading of its level or above),
``localise`` moves paths and ports to a test's own, and ``run_script`` runs
them after ``PRELUDE``, which supplies what the doc assumes of the host:
``comity`` (this checkout's CLI) and ``systemctl start|stop|restart UNIT``,
which runs ``comity run --config CONFIG`` for the unit and waits for its
``/healthz``. The caller's ``UNITS`` shell function maps a unit to its config
file and API URL (``unit_config UNIT`` and ``unit_url UNIT``); each unit logs
to ``$T/UNIT.log``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.opsnet import REPO

OPERATIONS = REPO / "docs" / "OPERATIONS.md"

PRELUDE = r"""
set -euo pipefail
comity() { "$PY" -m api.cli "$@"; }
systemctl() {
    local unit="$2"
    case "$1" in
    start)
        "$PY" -m api.cli run --config "$(unit_config "$unit")" >>"$T/$unit.log" 2>&1 &
        echo $! >"$T/$unit.pid"
        for _ in $(seq 300); do
            "$PY" -c "import sys, urllib.request as r; r.urlopen(sys.argv[1] + '/healthz', timeout=1)" "$(unit_url "$unit")" 2>/dev/null && return 0
            sleep 0.1
        done
        echo "$unit did not start" >&2; return 1;;
    stop)
        if [ -f "$T/$unit.pid" ]; then
            kill -TERM "$(cat "$T/$unit.pid")" 2>/dev/null || true
            while kill -0 "$(cat "$T/$unit.pid")" 2>/dev/null; do sleep 0.1; done
            rm -f "$T/$unit.pid"
        fi;;
    restart) systemctl stop "$unit"; systemctl start "$unit";;
    esac
}
stop_all_units() {
    for pid in "$T"/*.pid; do [ -f "$pid" ] && systemctl stop "$(basename "$pid" .pid)"; done
    return 0
}
trap stop_all_units EXIT
"""


def section_blocks(title: str, doc: Path = OPERATIONS) -> list[str]:
    """The ``bash`` blocks of section ``title`` (up to the next heading of its level or
    above, outside code: a ``#`` comment in a block is no heading), in order."""
    level = len(title.split(" ", 1)[0])
    lines = doc.read_text().splitlines(keepends=True)
    start = lines.index(title + "\n") + 1
    end, fenced = len(lines), False
    for number, line in enumerate(lines[start:], start):
        fenced = fenced != line.startswith("```")
        if not fenced and re.match(rf"#{{1,{level}}} ", line):
            end = number
            break
    return re.findall(r"```bash\n(.*?)```", "".join(lines[start:end]), flags=re.S)


def localise(script: str, replacements: Sequence[tuple[str, str]]) -> str:
    for old, new in replacements:
        script = script.replace(old, new)
    return script


def run_script(
    script: str, tmp_path: Path, env: Mapping[str, str], timeout_s: float = 180
) -> subprocess.CompletedProcess[str]:
    """``PRELUDE`` then ``script`` under bash in ``tmp_path``, with $PY, $T and this checkout."""
    return subprocess.run(
        ["bash", "-c", PRELUDE + script],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=tmp_path,
        env={
            **os.environ,
            "PY": sys.executable,
            "T": str(tmp_path),
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            **env,
        },
    )


def unit_logs(tmp_path: Path) -> str:
    """The tail of every unit's log, for a failure message."""
    return "\n".join(
        f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(tmp_path.glob("*.log"))
    )
