"""scripts/venv.sh keeps a script's stdout its own: pip's chatter goes to stderr.

``scripts/bench --json > FILE`` once wrote pip's build warnings into FILE on the
first run after an install, ahead of the JSON. Here ``comity_venv`` runs in a
folder whose ``.venv/bin/python`` is a stand-in that prints to stdout as pip does.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

FAKE_PYTHON = """#!/bin/sh
if [ "$1" = "-m" ]; then  # python -m pip install ...
    echo "BuildBackendWarning: Editable installation."
    echo "to stderr" >&2
fi
exit 0
"""


def test_comity_venv_writes_nothing_to_stdout(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    for name, text in (
        (".venv/bin/python", FAKE_PYTHON),
        (".venv/bin/comity", "#!/bin/sh\n"),
        ("scripts/console-vendor", "#!/bin/sh\necho vendored\n"),
    ):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o755)
    done = subprocess.run(
        ["bash", "-c", f". {ROOT / 'scripts' / 'venv.sh'} && comity_venv ''"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert "BuildBackendWarning" in done.stderr  # pip's output is shown, on stderr
    assert done.stdout == ""
    assert list(tmp_path.glob(".venv/.installed-core-*"))  # the install was attempted
