"""A consortium of real node processes on 127.0.0.1, for multi-process tests.

Keys, genesis and configs come from ``api.cli.devnet.prepare`` (what ``comity
devnet --no-run`` writes); each node runs as ``python -m api.cli run``.
Timeouts are short so tests move fast; everything is loopback only.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from api.cli import devnet
from ledger.acts_templates import template
from ledger.canonical import canonical_bytes
from ledger.keys import load_signing_key
from node.clock import utcnow
from tests.ports import free_base

FAST = {
    "propose_timeout_ms": 500,
    "propose_timeout_delta_ms": 250,
    "prevote_timeout_ms": 250,
    "prevote_timeout_delta_ms": 100,
    "precommit_timeout_ms": 250,
    "precommit_timeout_delta_ms": 100,
    "heartbeat_interval_ms": 3_600_000,
}


class ProcNet:
    def __init__(self, root: Path, nodes: int = 4, consensus: dict[str, Any] | None = None):
        self.root = root
        self.base = free_base(nodes, "procnet")
        self.rows = devnet.prepare(root, nodes, self.base, consensus or FAST)
        self.states = [row["state"] for row in self.rows]
        self.urls = {row["state"]: row["api_url"] for row in self.rows}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.nonce = 0

    def start(
        self, *states: str, args: tuple[str, ...] = (), env: dict[str, str] | None = None
    ) -> None:
        """Start ``states`` (default: all), each with the extra ``comity run`` ``args``."""
        for state in states or tuple(self.states):
            folder = self.root / state
            with (folder / "node.log").open("ab") as log:  # the child keeps its own fd
                self.procs[state] = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "api.cli",
                        "run",
                        "--config",
                        str(folder / "node.toml"),
                        *args,
                    ],
                    stdout=log,
                    stderr=log,
                    env={**os.environ, **(env or {})},
                )
        try:
            for state in states or tuple(self.states):
                self.wait_up(state)
        except BaseException:  # one node failed to come up: stop the ones just started
            for state in states or tuple(self.states):
                if state in self.procs and self.procs[state].poll() is None:
                    self.kill(state)
            raise

    def wait_up(self, state: str, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            proc = self.procs[state]
            if proc.poll() is not None:
                raise AssertionError(
                    f"node {state} exited with {proc.returncode}:\n{self.log(state)[-3000:]}"
                )
            try:
                if httpx.get(f"{self.urls[state]}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"node {state} did not come up")

    def kill(self, state: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(state)
        proc.send_signal(sig)
        proc.wait(15)

    def stop_all(self) -> None:
        for state in list(self.procs):
            self.kill(state, signal.SIGTERM)

    def wipe(self, state: str) -> None:
        shutil.rmtree(self.root / state / "data")

    def log(self, state: str) -> str:
        return (self.root / state / "node.log").read_text(errors="replace")

    def envelope(self, state: str) -> dict[str, Any]:
        self.nonce += 1
        record = template(
            "preservation_request",
            state=state,
            case_ref="CASE-P-1",
            territorial_states=("TH" if state != "TH" else "VN",),
            now=utcnow(),
        )
        record.update(
            chain_id=devnet.CHAIN_ID,
            nonce=f"proc{os.getpid()}x{self.nonce:08d}",
            visibility="consortium",
            evidence=[{"sha256": f"{self.nonce:064x}"}],
        )
        key = load_signing_key(self.root / state / "investigator.key")
        return {
            "record": record,
            "signer": key.public_hex,
            "signature": key.sign(canonical_bytes(record)).hex(),
        }

    def submit(self, state: str) -> str:
        response = httpx.post(
            f"{self.urls[state]}/v1/records", json=self.envelope(state), timeout=10
        )
        assert response.status_code == 202, response.text
        record_id: str = response.json()["id"]
        return record_id

    def status(self, state: str) -> dict[str, Any]:
        reply: dict[str, Any] = httpx.get(f"{self.urls[state]}/v1/status", timeout=5).json()
        return reply

    def height(self, state: str) -> int:
        return int(self.status(state)["height"])

    def wait_committed(self, state: str, record_id: str, timeout_s: float = 30) -> int:
        response = httpx.get(
            f"{self.urls[state]}/v1/records/{record_id}",
            params={"wait": timeout_s},
            timeout=timeout_s + 5,
        )
        body = response.json()
        assert body.get("status") == "committed", f"{state}: {record_id} is {body}"
        height: int = body["height"]
        return height

    def wait_height(self, states: list[str], height: int, timeout_s: float = 60) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout_s:
            if all(self.height(s) >= height for s in states):
                return time.monotonic() - start
            time.sleep(0.1)
        raise AssertionError(
            f"{states} did not reach height {height}: {[(s, self.height(s)) for s in states]}"
        )

    def nodes_json(self) -> list[dict[str, str]]:
        rows: list[dict[str, str]] = json.loads((self.root / "nodes.json").read_text())
        return rows
