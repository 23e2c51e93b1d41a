"""A consortium of real node processes on 127.0.0.1, as the benchmark runs it.

The devnet layout comes from ``api.cli.devnet.prepare`` with the DEFAULT
consensus parameters (no shortened timeouts: the figures must be those of a
real deployment). Each node is ``python -m api.cli run --config
DIR/<STATE>/node.toml`` in its own session, logging to DIR/<STATE>/node.log.
Only the processes started here are ever signalled, by their own pid.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from api.cli import devnet
from benchlib.procstat import CpuSample, cpu_seconds

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


class NodeFailed(RuntimeError):
    """A node process exited or never came up; the message holds its log tail."""


class Cluster:
    def __init__(self, root: Path, nodes: int) -> None:
        self.root = root
        # Its own region of port blocks, below the ephemeral ports, apart from the test
        # suite's (tests/ports.py) and dealt out by lane when a test worker runs it.
        self.base = devnet.find_lane_base_port(nodes, 26000, 24)
        self.rows = devnet.prepare(root, nodes, self.base, None)
        self.states = [row["state"] for row in self.rows]
        self.urls = {row["state"]: row["api_url"] for row in self.rows}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.http = httpx.Client(timeout=10)

    # --- processes --------------------------------------------------------------------

    def start(self, *states: str) -> None:
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
                    ],
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
        for state in states or tuple(self.states):
            self.wait_up(state)

    def wait_up(self, state: str, timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._check_alive(state)
            try:
                if self.http.get(f"{self.urls[state]}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise NodeFailed(
            f"node {state} did not come up in {timeout_s:.0f} s:\n{self.log_tail(state)}"
        )

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Until every node answers /readyz 200 (in touch with a quorum of peers)."""
        deadline = time.monotonic() + timeout_s
        pending = set(self.procs)
        while pending and time.monotonic() < deadline:
            for state in sorted(pending):
                self._check_alive(state)
                try:
                    reply = self.http.get(f"{self.urls[state]}/readyz", timeout=2)
                except httpx.HTTPError:
                    continue
                if reply.status_code == 200:
                    pending.discard(state)
            time.sleep(0.2)
        if pending:
            raise NodeFailed(f"nodes {sorted(pending)} not ready in {timeout_s:.0f} s")

    def _check_alive(self, state: str) -> None:
        proc = self.procs[state]
        if proc.poll() is not None:
            raise NodeFailed(f"node {state} exited with {proc.returncode}:\n{self.log_tail(state)}")

    def stop(self, state: str) -> None:
        proc = self.procs.pop(state)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self) -> None:
        for state in list(self.procs):
            self.stop(state)
        self.http.close()

    def wipe(self, state: str) -> None:
        shutil.rmtree(self.data_dir(state), ignore_errors=True)

    def data_dir(self, state: str) -> Path:
        return self.root / state / "data"

    def pid(self, state: str) -> int:
        return self.procs[state].pid

    def log_tail(self, state: str, chars: int = 3000) -> str:
        try:
            return (self.root / state / "node.log").read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    # --- observation ------------------------------------------------------------------

    def status(self, state: str) -> dict[str, Any]:
        # a saturated node may take seconds to answer; a missed sample would
        # end the run, a late one only stretches the window (timestamps are real)
        reply = self.http.get(f"{self.urls[state]}/v1/status", timeout=60)
        reply.raise_for_status()
        body: dict[str, Any] = reply.json()
        return body

    def cpu(self, state: str) -> CpuSample:
        return CpuSample(cpu_seconds(self.pid(state)), time.monotonic())
