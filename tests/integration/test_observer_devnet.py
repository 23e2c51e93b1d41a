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
import shutil
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
from node.authoring import complete_record, sign_envelope
from tests.opsnet import REPO
from tests.procnet import ProcNet

OBS, OBS2 = "CN-obs1", "CN-obs2"  # the observers' folders and ProcNet names
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


def _init_observer(net: ProcNet, name: str, slot: int) -> Path:
    folder = net.root / name
    folder.mkdir()
    key = folder / "node.key"
    api_port, p2p_port = net.base + slot, net.base + devnet.P2P_OFFSET + slot
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
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert 'role = "observer"' in out.read_text()
    net.urls[name] = f"http://127.0.0.1:{api_port}"
    return key


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


def _admit_over_http(net: ProcNet, key: Path) -> None:
    """The same vote as ``_admit``, signed here and posted to the API (no CLI start-ups)."""

    def commit(state: str, body: dict[str, object]) -> str:
        record = complete_record(
            {**body, "actor": {"state": state, "agency": "administration"}},
            chain_id=devnet.CHAIN_ID,
        )
        envelope = sign_envelope(load_signing_key(net.root / state / "admin.key"), record)
        reply = httpx.post(f"{net.urls[state]}/v1/records", json=envelope, timeout=10)
        assert reply.status_code == 202, reply.text
        record_id: str = reply.json()["id"]
        net.wait_committed(state, record_id)
        return record_id

    pubkey = load_signing_key(key).public_hex
    proposal = commit(
        "CN",
        {
            "type": "member_proposal",
            "action": "add_observer",
            "state": "CN",
            "node_pubkey": pubkey,
            "label": "CN court reader 2",
        },
    )
    for voter in VOTERS:
        commit(voter, {"type": "member_vote", "proposal": proposal, "vote": "yes"})


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


@pytest.fixture(scope="module")
def observers(net: ProcNet) -> list[str]:
    """Records committed, then CN's two observers made, admitted and started."""
    first = [net.submit(s) for s in ("CN", "FR")]
    for record_id in first:
        net.wait_committed("CN", record_id)
    _admit(net, _init_observer(net, OBS, 5))  # through the CLI, as an operator does
    _admit_over_http(net, _init_observer(net, OBS2, 6))
    net.start(OBS, OBS2)
    return first


def test_an_observer_made_by_the_cli_follows_and_verifies(
    net: ProcNet, observers: list[str]
) -> None:
    first = observers
    key = net.root / OBS / "node.key"
    height = net.height("CN")
    net.wait_height([OBS, OBS2], height, timeout_s=30)
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
                f"port = {net.base + 7}",
                "[p2p]",
                f"port = {net.base + devnet.P2P_OFFSET + 7}",
                "",
            ]
        )
    )
    ran = _comity("run", "--config", str(folder / "node.toml"), timeout_s=30)
    assert ran.returncode == 2, ran.stderr
    assert "cannot start" in ran.stderr and "validator's node key" in ran.stderr


def _haproxy_config(net: ProcNet, port: int) -> str:
    """docker/haproxy.cfg with its listener and servers moved to this host's loopback."""
    text = (REPO / "docker" / "haproxy.cfg").read_text()
    text = text.replace("bind :8000", f"bind 127.0.0.1:{port}")
    for name in (OBS, OBS2):
        observer_port = net.urls[name].rsplit(":", 1)[1]
        text = text.replace(f"comity-{name.lower()}:8000", f"127.0.0.1:{observer_port}")
    assert "comity-" not in text, text
    return text


def test_reads_through_haproxy_in_front_of_two_observers(
    net: ProcNet, observers: list[str], tmp_path: Path
) -> None:
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        pytest.skip("haproxy is not installed (scripts/test installs it)")
    port = net.base + 8
    assert devnet.port_free(port)
    config = tmp_path / "haproxy.cfg"
    config.write_text(_haproxy_config(net, port))
    checked = subprocess.run([haproxy, "-c", "-f", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    log = (tmp_path / "haproxy.log").open("wb")
    proxy = subprocess.Popen([haproxy, "-db", "-f", str(config)], stdout=log, stderr=log)
    lb = f"http://127.0.0.1:{port}"
    try:
        net.wait_height([OBS, OBS2], net.height("CN"), timeout_s=30)
        paths = [f"/v1/records/{r}" for r in observers] + [f"/v1/records/{observers[0]}/proof"]
        for _ in range(3):  # round robin: both observers answer, each as TH does
            for path in paths:
                want = httpx.get(net.urls["TH"] + path, timeout=10)
                got = httpx.get(lb + path, timeout=10)
                assert (got.status_code, got.content) == (200, want.content), path
        keys = {httpx.get(f"{lb}/v1/status", timeout=10).json()["node_pubkey"] for _ in range(4)}
        assert keys == {load_signing_key(net.root / n / "node.key").public_hex for n in (OBS, OBS2)}
        # One observer goes down: HAProxy takes it out and the reads go on.
        net.kill(OBS)
        time.sleep(3)  # fall 2 x inter 1s
        for _ in range(6):
            reply = httpx.get(lb + paths[0], timeout=10)
            assert reply.status_code == 200, reply.text
    finally:
        proxy.terminate()
        proxy.wait(10)
        log.close()
        if OBS not in net.procs:
            net.start(OBS)  # as the module's other tests expect it
