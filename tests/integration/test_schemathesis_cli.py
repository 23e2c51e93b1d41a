"""schemathesis's own CLI (`st run --checks all`, every phase) against a real node, both read modes.

The bounded twin of scripts/schemathesis: a one-node devnet process on
127.0.0.1 per read mode, a few examples per operation, and zero failures
required. The repo's schemathesis.toml (read from the working directory)
holds the one narrowing and says why (docs/API.md, "Contract").
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from node.tokens import create_token
from tests.procnet import ProcNet

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ST = Path(sys.executable).with_name("st")
EXAMPLES = os.environ.get("COMITY_ST_EXAMPLES", "4")


@pytest.fixture(params=[True, False], ids=["open_read", "closed_read"])
def node(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(API URL, an operator token) of a one-node devnet in the given read mode."""
    net = ProcNet(tmp_path / "net", nodes=1)
    folder = net.root / net.states[0]
    config = folder / "node.toml"
    text = re.sub(
        r"(?m)^open_read = .*$", f"open_read = {str(request.param).lower()}", config.read_text()
    )
    config.write_text(text + "\n[limits]\nlong_poll_max_s = 1\n")
    _, secret = create_token(folder / "data", "operator", "st")
    net.start()
    try:
        url = net.urls[net.states[0]]
        record_id = net.submit(net.states[0])  # real data to read, not only 404s
        for _ in range(20):  # long_poll_max_s = 1: each wait is at most a second
            reply = httpx.get(
                f"{url}/v1/records/{record_id}",
                params={"wait": 1},
                headers={"Authorization": f"Bearer {secret}"},
                timeout=10,
            )
            if reply.json()["status"] == "committed":
                break
        assert reply.json()["status"] == "committed", reply.text
        yield url, secret
    finally:
        net.stop_all()
        log = net.log(net.states[0])
        assert "Traceback" not in log, log[-4000:]


def test_st_run_checks_all_reports_no_failure(node: tuple[str, str]) -> None:
    url, token = node
    command = [
        str(ST),
        "--no-color",
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--exclude-path",
        "/v1/events",
        "--max-examples",
        EXAMPLES,
        "--seed",
        "1",
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--generation-database",
        "none",
        "-H",
        f"Authorization: Bearer {token}",
    ]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=150, check=False
    )
    output = done.stdout + done.stderr
    assert "Stateful" in output and "Test cases:" in output, output[-3000:]
    assert "FAILURES" not in output, output[-6000:]
