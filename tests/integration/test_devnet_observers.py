"""``comity devnet --observers`` as a user runs it (issue 23; docs/OPERATIONS.md, "Observer nodes").

The command starts four validators, has each state's admin propose its own observer
(``add_observer``), has three of the four states vote yes, and starts the four
observers once admitted. Then CN's investigator files ``example-act.json`` (a private
act by default) with ``comity submit``, and each observer is checked against the
validators over HTTP: an own observer answers every read byte for byte as its own
state's validator does (it syncs from it, certificates included), the block without
its certificate is the same everywhere, ``comity verify`` passes against it, its key
never signs a certificate, and CN's observer opens the private body with its own
console token while FR's is refused. SIGTERM to ``comity devnet`` stops all eight.
The genesis is made first with short consensus timeouts (what ``--no-run`` writes);
``comity devnet`` reuses it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from api.cli import devnet
from api.cli.main import main
from tests.ports import free_base
from tests.procnet import FAST

pytestmark = pytest.mark.slow

STATES = ("CN", "FR", "TH", "VN")


def _wait(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _height(url: str) -> int:
    try:
        return int(httpx.get(f"{url}/v1/status", timeout=5).json()["height"])
    except (httpx.HTTPError, KeyError, ValueError):
        return -1


def _caught_up(url: str, height: int) -> bool:
    return _height(url) >= height


def _comity(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def _leftover_pids(root: Path) -> list[int]:
    """Node processes whose command line names a config under ``root``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if str(root).encode() in cmdline and b"node.toml" in cmdline:
                found.append(int(entry.name))
    return found


def _stop(proc: subprocess.Popen[bytes], root: Path) -> list[int]:
    """SIGTERM to ``comity devnet``; the node processes it left running (then killed)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    left = _leftover_pids(root)
    for pid in left:  # a failed test must not leave nodes behind
        os.kill(pid, signal.SIGKILL)
    return left


def test_devnet_observers_follow_and_serve_their_validators_reads(tmp_path: Path) -> None:
    root = tmp_path / "devnet"
    base = free_base(2 * len(STATES), "procnet")  # validators, then observers (devnet.py)
    rows = devnet.prepare(root, len(STATES), base, FAST)
    out = (tmp_path / "devnet.out").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "devnet", "--dir", str(root), "--observers"],
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    left: list[int] = []
    try:

        def printed() -> str:
            return (tmp_path / "devnet.out").read_text()

        _wait(
            lambda: "observers admitted and started" in printed() or proc.poll() is not None,
            devnet.ADMIT_TIMEOUT_S,
            "the observers' admission",
        )
        assert proc.poll() is None, printed()
        observers = json.loads((root / "observers.json").read_text())
        assert [(o["state"], o["name"]) for o in observers] == [(s, f"{s}-obs") for s in STATES]
        assert [o["api_url"] for o in observers] == [
            f"http://127.0.0.1:{base + len(STATES) + i}" for i in range(len(STATES))
        ]
        for o in observers:  # the hint names each observer's console, signed in
            assert devnet.console_url(root, o) in printed()
        validators = {row["state"]: row["api_url"] for row in rows}
        by_state = {o["state"]: o["api_url"] for o in observers}

        act_id = _comity(
            "submit",
            "--node",
            validators["CN"],
            "--key",
            str(root / "CN" / "investigator.key"),
            "--wait",
            "20",
            str(root / "example-act.json"),
        ).split()[0]
        height = max(_height(url) for url in validators.values())
        for url in [*validators.values(), *by_state.values()]:
            _wait(partial(_caught_up, url, height), 30, f"{url} at height {height}")

        # The observer set, as the chain admitted it: all four, each its state's own.
        listed = httpx.get(f"{by_state['TH']}/v1/observers").json()["observers"]
        assert sorted(
            (o["state"], o["node_pubkey"], o["admitted"], o["party"]) for o in listed
        ) == [(o["state"], o["node_pubkey"], True, True) for o in observers]

        case_ref = json.loads((root / "example-act.json").read_text())["case_ref"]
        found = httpx.get(f"{validators['CN']}/v1/search?actor_state=CN").json()
        assert act_id in [r["id"] for r in found["results"]], found
        same_everywhere = [
            f"/v1/records/{act_id}",
            f"/v1/records/{act_id}/proof",
            f"/v1/proofs/consistency?first=1&second={height}",
            "/v1/validators",
            "/v1/members",
            "/v1/observers",
            "/v1/search?actor_state=CN",
        ]
        blocks = [f"/v1/blocks/{h}?envelopes=true" for h in range(1, height + 1)]
        observer_keys = {o["node_pubkey"] for o in observers}
        for path in same_everywhere + blocks:
            answers = {}
            for state, url in validators.items():
                reply = httpx.get(f"{url}{path}")
                assert reply.status_code == 200, (state, path, reply.text)
                answers[state] = reply.content
            if path in same_everywhere:
                assert len(set(answers.values())) == 1, path
            for state, url in by_state.items():
                got = httpx.get(f"{url}{path}")
                assert (got.status_code, got.content) == (200, answers[state]), (state, path)
                if path in blocks:
                    block = got.json()
                    signers = {s["validator"] for s in block["commit"]["signatures"]}
                    assert signers and not signers & observer_keys, (state, path)
                    del block["commit"]
                    for answer in answers.values():
                        whole = json.loads(answer)
                        del whole["commit"]
                        assert block == whole, (state, path)

        for url in by_state.values():  # what an auditor runs against a node it does not trust
            result = CliRunner().invoke(
                main, ["verify", "--genesis", str(root / "genesis.json"), "--node", url]
            )
            assert result.exit_code == 0, (url, result.output)

        # CN's observer is a party node for CN's act; FR's is not (headers only).
        def private(state: str) -> httpx.Response:
            token = (root / f"{state}-obs" / devnet.CONSOLE_TOKEN).read_text().strip()
            return httpx.get(
                f"{by_state[state]}/v1/records/{act_id}/private",
                headers={"authorization": f"Bearer {token}"},
            )

        _wait(lambda: private("CN").status_code == 200, 15, "CN's observer to fetch the body")
        assert private("CN").json()["content"]["case_ref"] == case_ref
        refused = private("FR")
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, "not_a_party")
    finally:
        left = _stop(proc, root)
        out.close()
    assert proc.returncode == 0, (tmp_path / "devnet.out").read_text()
    assert left == []
    ports = [base + i for i in range(2 * len(STATES))]
    ports += [base + devnet.P2P_OFFSET + i for i in range(2 * len(STATES))]
    assert all(devnet.port_free(p) for p in ports)
