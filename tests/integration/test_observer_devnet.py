"""An observer node as an operator runs it: real processes and the ``comity`` CLI (issue 23).

Four validators (``tests/procnet.py``) and CN's own observer, made by ``comity
init --observer``, admitted by ``comity propose --action add_observer`` and
three ``comity vote``s, run by ``comity run``. The observer catches up, follows
(its SSE stream shows a record committed through a validator), answers reads as
the validators do, and ``comity verify`` passes against it; writes to it are
refused, and a config that gives it a validator's key stops it at start
(docs/OPERATIONS.md, "Observer nodes").
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.cli import devnet
from ledger.keys import load_signing_key
from tests.procnet import ProcNet

OBS = "CN-obs"  # the observer's folder and ProcNet name
VOTERS = ("CN", "FR", "TH")


def _comity(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=os.environ.copy(),
    )


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcNet]:
    network = ProcNet(tmp_path_factory.mktemp("observer-net"))
    network.start()
    try:
        yield network
    finally:
        network.stop_all()


def _init_observer(net: ProcNet, key: Path) -> Path:
    folder = net.root / OBS
    folder.mkdir(exist_ok=True)
    api_port, p2p_port = net.base + 5, net.base + devnet.P2P_OFFSET + 5
    assert devnet.port_free(api_port) and devnet.port_free(p2p_port)
    out = folder / "node.toml"
    done = _comity(
        "init",
        "--observer",
        "--state",
        "CN",
        "--genesis",
        str(net.root / "genesis.json"),
        "--node-key",
        str(key),
        "--enc-key",
        str(net.root / "CN" / "enc.key"),
        "--data-dir",
        str(folder / "data"),
        "--api",
        f"127.0.0.1:{api_port}",
        "--p2p",
        f"127.0.0.1:{p2p_port}",
        "--open-read",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert "add_observer" in done.stderr
    net.urls[OBS] = f"http://127.0.0.1:{api_port}"
    return out


def _admit(net: ProcNet, key: Path) -> None:
    url = net.urls["CN"]
    proposed = _comity(
        "propose",
        "--node",
        url,
        "--admin-key",
        str(net.root / "CN" / "admin.key"),
        "--state",
        "CN",
        "--action",
        "add_observer",
        "--member",
        "CN",
        "--node-pubkey",
        str(key),
        "--label",
        "CN court reader",
        "--wait",
        "30",
    )
    assert proposed.returncode == 0, proposed.stderr
    match = re.search(r"[0-9a-f]{64}", proposed.stdout)
    assert match is not None, proposed.stdout
    for voter in VOTERS:
        voted = _comity(
            "vote",
            "--node",
            net.urls[voter],
            "--admin-key",
            str(net.root / voter / "admin.key"),
            "--state",
            voter,
            "--proposal",
            match.group(0),
            "--vote",
            "yes",
            "--wait",
            "30",
        )
        assert voted.returncode == 0, voted.stderr


def _sse_record(url: str, wanted: str, timeout_s: float) -> dict[str, object]:
    """The ``record`` event of ``wanted`` on ``url``'s SSE stream."""
    deadline = time.monotonic() + timeout_s
    with httpx.stream("GET", f"{url}/v1/events", timeout=timeout_s) as stream:
        event = ""
        for line in stream.iter_lines():
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: ") and event == "record":
                data: dict[str, object] = json.loads(line[len("data: ") :])
                if data["id"] == wanted:
                    return data
            if time.monotonic() > deadline:
                break
    raise AssertionError(f"no record event for {wanted} within {timeout_s} s")


def test_an_observer_made_by_the_cli_follows_and_verifies(net: ProcNet) -> None:
    first = [net.submit(s) for s in ("CN", "FR")]
    for record_id in first:
        net.wait_committed("CN", record_id)
    key = net.root / OBS / "node.key"
    (net.root / OBS).mkdir(exist_ok=True)
    config = _init_observer(net, key)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert 'role = "observer"' in config.read_text()
    _admit(net, key)

    net.start(OBS)
    height = net.height("CN")
    net.wait_height([OBS], height, timeout_s=30)
    status = net.status(OBS)
    assert (status["role"], status["node_pubkey"]) == (
        "observer",
        load_signing_key(key).public_hex,
    )

    # It follows: a record committed through FR shows on the observer's SSE stream.
    late = net.submit("FR")
    event = _sse_record(net.urls[OBS], late, timeout_s=30)
    assert event["type"] == "preservation_request"

    # Reads equal a validator's, byte for byte.
    net.wait_height([OBS, "TH"], net.wait_committed("CN", late), timeout_s=30)
    for record_id in [*first, late]:
        for path in (f"/v1/records/{record_id}", f"/v1/records/{record_id}/proof"):
            want = httpx.get(net.urls["TH"] + path, timeout=10)
            got = httpx.get(net.urls[OBS] + path, timeout=10)
            assert (got.status_code, got.content) == (200, want.content), path

    # comity verify passes against the observer, trusting nothing it serves.
    verified = _comity(
        "verify", "--genesis", str(net.root / "genesis.json"), "--node", net.urls[OBS]
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("OK: blocks 1..")

    # It takes no records.
    refused = httpx.post(f"{net.urls[OBS]}/v1/records", json=net.envelope("CN"), timeout=10)
    error = refused.json()["error"]
    assert (refused.status_code, error["code"], error["field"]) == (
        403,
        "observer_read_only",
        "record",
    )


def test_an_observer_with_a_validators_key_is_refused(net: ProcNet) -> None:
    folder = net.root / "bad-obs"
    folder.mkdir()
    refused = _comity(
        "init",
        "--observer",
        "--state",
        "CN",
        "--genesis",
        str(net.root / "genesis.json"),
        "--node-key",
        str(net.root / "CN" / "node.key"),
        "--data-dir",
        str(folder / "data"),
        "--out",
        str(folder / "node.toml"),
    )
    assert refused.returncode == 2 and "validator's node key" in refused.stderr
    assert not (folder / "node.toml").exists()
    # A config written by hand with that key stops the node at start.
    (folder / "node.toml").write_text(
        "\n".join(
            [
                'state = "CN"',
                'role = "observer"',
                f'genesis_path = "{net.root / "genesis.json"}"',
                f'node_key_path = "{net.root / "CN" / "node.key"}"',
                f'data_dir = "{folder / "data"}"',
                "[api]",
                f"port = {net.base + 6}",
                "[p2p]",
                f"port = {net.base + devnet.P2P_OFFSET + 6}",
                "",
            ]
        )
    )
    ran = _comity("run", "--config", str(folder / "node.toml"), timeout_s=30)
    assert ran.returncode == 2, ran.stderr
    assert "cannot start" in ran.stderr and "validator's node key" in ran.stderr
