"""Helpers for the operations tests: the ``comity`` CLI with the ops groups, and the
compose consortium (``comity compose init``) run as real processes on 127.0.0.1.

The compose configs listen on 0.0.0.0:8000/8100 with data in /var/lib/comity
and reach peers at https://comity-<state>:8100. ``LoopbackNet`` runs exactly
those configs with the smallest override that lets four nodes share one host:
a loopback address and free ports per node, a temporary data dir, and
``[[peers]]`` entries pointing at the loopback ports (the certificates carry
127.0.0.1 among their names, as ``compose init`` writes them).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import httpx

from api.cli.ops import COMPOSE_CHAIN_ID, COMPOSE_STATES
from ledger.acts_templates import template
from ledger.canonical import canonical_bytes
from ledger.keys import load_signing_key
from node.clock import utcnow
from node.config import dump_config
from tests.ports import free_base

REPO = Path(__file__).resolve().parents[1]

# Until api/cli/main.py registers the ops groups, run the CLI with them added.
_CLI = (
    "from api.cli.main import main; from api.cli.ops import compose, db, tls; "
    "[main.add_command(g) for g in (tls, db, compose)]; main()"
)


def comity(
    *args: str, cwd: Path | None = None, check: bool = True, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-c", _CLI, *args],
        cwd=cwd or REPO,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"comity {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


class LoopbackNet:
    def __init__(self, net: Path, data_root: Path) -> None:
        self.net = net
        base = free_base(4, "opsnet")
        self.api_ports = {s: base + i for i, s in enumerate(COMPOSE_STATES)}
        self.p2p_ports = {s: base + 100 + i for i, s in enumerate(COMPOSE_STATES)}
        self.configs: dict[str, Path] = {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.nonce = 0
        self.tokens: dict[str, str] = {}
        self.data_root = data_root
        for state in COMPOSE_STATES:
            self.configs[state] = self._override(state, data_root / state)

    def _override(self, state: str, data_dir: Path) -> Path:
        raw: dict[str, Any] = tomllib.loads((self.net / state / "node.toml").read_text())
        raw["data_dir"] = str(data_dir)
        raw["api"] = {"host": "127.0.0.1", "port": self.api_ports[state]}
        raw["p2p"] = {"host": "127.0.0.1", "port": self.p2p_ports[state]}
        raw["peers"] = [
            {"state": s, "p2p_url": f"https://127.0.0.1:{self.p2p_ports[s]}"}
            for s in COMPOSE_STATES
            if s != state
        ]
        path = self.net / state / "loopback.toml"
        path.write_text(dump_config(raw))
        return path

    def api_url(self, state: str) -> str:
        return f"https://127.0.0.1:{self.api_ports[state]}"

    def client(self) -> httpx.Client:
        import ssl

        return httpx.Client(
            verify=ssl.create_default_context(cafile=str(self.net / "tls" / "ca.pem")), timeout=30
        )

    def start(self, *states: str) -> None:
        from node.tokens import create_token

        for state in states or COMPOSE_STATES:
            if state not in self.tokens:  # compose nodes are not open_read: reads need one
                (self.data_root / state).mkdir(parents=True, exist_ok=True)
                self.tokens[state] = create_token(self.data_root / state, "auditor", "tests")[1]
            log = (self.net / state / "node.log").open("ab")
            self.procs[state] = subprocess.Popen(
                [sys.executable, "-m", "api.cli", "run", "--config", str(self.configs[state])],
                stdout=log,
                stderr=log,
                cwd=REPO,
            )
            log.close()
        try:
            with self.client() as client:
                for state in states or COMPOSE_STATES:
                    self._wait_up(client, state)
        except BaseException:  # one node failed to come up: stop the others, leak none
            self.stop()
            raise

    def _wait_up(self, client: httpx.Client, state: str, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.procs[state].poll() is not None:
                raise AssertionError(f"{state} exited:\n{self.log(state)[-3000:]}")
            try:
                if client.get(f"{self.api_url(state)}/healthz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{state} did not come up:\n{self.log(state)[-3000:]}")

    def log(self, state: str) -> str:
        return (self.net / state / "node.log").read_text(errors="replace")

    def stop(self, *states: str) -> None:
        for state in states or list(self.procs):
            proc = self.procs.pop(state, None)
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(20)

    def auth(self, state: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.tokens[state]}"}

    def envelope(self, state: str) -> dict[str, Any]:
        self.nonce += 1
        record = template(
            "preservation_request",
            state=state,
            case_ref="CASE-OPS-1",
            territorial_states=("TH" if state != "TH" else "VN",),
            now=utcnow(),
        )
        record.update(
            chain_id=COMPOSE_CHAIN_ID,
            nonce=f"ops{os.getpid()}x{self.nonce:08d}",
            visibility="consortium",
            evidence=[{"sha256": f"{self.nonce:064x}"}],
        )
        key = load_signing_key(self.net / state / "investigator.key")
        return {
            "record": record,
            "signer": key.public_hex,
            "signature": key.sign(canonical_bytes(record)).hex(),
        }

    def submit_and_wait(self, client: httpx.Client, state: str) -> int:
        """Submit a record at ``state``; return its height once committed on every node."""
        reply = client.post(f"{self.api_url(state)}/v1/records", json=self.envelope(state))
        assert reply.status_code == 202, reply.text
        record_id = reply.json()["id"]
        heights = set()
        for other in self.procs:
            view = client.get(
                f"{self.api_url(other)}/v1/records/{record_id}",
                params={"wait": 30},
                headers=self.auth(other),
                timeout=40,
            ).json()
            assert view.get("status") == "committed", f"{other}: {view}"
            heights.add(view["height"])
        assert len(heights) == 1
        return int(heights.pop())
