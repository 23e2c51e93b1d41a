"""A consortium whose nodes are hosts in Linux network namespaces the test creates.

Topology (all inside namespaces named ``cmt<tag>-*``; nothing touches the host's
own interfaces or addresses):

    cmt<tag>-n0 ─┐            ┌─ cmt<tag>-n2
                 ├─ brA ═ brB ┤               (brA, brB and the ═ link live in
    cmt<tag>-n1 ─┘            └─ cmt<tag>-n3    the namespace cmt<tag>-sw)

Node i serves P2P on 10.77.0.(i+1):9100 and its API on 127.0.0.1:8000 *inside
its own namespace*. The test reaches an API from a worker thread that entered
that namespace with setns(2) (per thread, so the rest of the process stays in
the host namespace). ``isolate(i)`` downs node i's switch port; ``split()``
downs the ═ link between the bridges (2/2); ``heal()`` brings all up again.
Needs root and iproute2; ``unavailable()`` says why not.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx

from api.cli import devnet
from node.config import dump_config
from tests.procnet import FAST

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
SUBNET = "10.77.0"
P2P_PORT, API_PORT = 9100, 8000


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


def unavailable() -> str | None:
    """Why namespaces cannot be used here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2 (the `ip` command) is not installed"
    probe = f"cmtprobe{os.getpid() % 100000}"
    try:
        _ip("netns", "add", probe)
        _ip("netns", "del", probe)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        return f"`ip netns add` fails here: {getattr(exc, 'stderr', b'')!r}"
    return None


def _enter(ns: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns({ns}) failed")
    finally:
        os.close(fd)


class NetnsNet:
    def __init__(self, root: Path, nodes: int = 4) -> None:
        assert nodes == 4, "the two-bridge topology is built for 2 + 2 nodes"
        self.root = root
        self.tag = f"{os.getpid() % 100000}"
        self.sw = f"cmt{self.tag}-sw"
        self.ns = [f"cmt{self.tag}-n{i}" for i in range(nodes)]
        self.rows = devnet.prepare(root, nodes, devnet.find_base_port(nodes, 23000), FAST)
        self.states = [r["state"] for r in self.rows]
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.pools = {
            s: ThreadPoolExecutor(1, initializer=_enter, initargs=(ns,))
            for s, ns in zip(self.states, self.ns, strict=True)
        }
        self._relocate()

    def _relocate(self) -> None:
        """Point genesis and configs at the namespace addresses (before any start)."""
        genesis_path = self.root / "genesis.json"
        genesis = json.loads(genesis_path.read_text())
        for i, member in enumerate(genesis["members"]):
            member["p2p_url"] = f"http://{SUBNET}.{i + 1}:{P2P_PORT}"
        genesis_path.write_text(json.dumps(genesis, indent=2) + "\n")
        for i, state in enumerate(self.states):
            import tomllib

            path = self.root / state / "node.toml"
            config = tomllib.loads(path.read_text())
            config["api"] = {"host": "127.0.0.1", "port": API_PORT}
            config["p2p"] = {"host": f"{SUBNET}.{i + 1}", "port": P2P_PORT}
            path.write_text(dump_config(config))

    # --- topology ---------------------------------------------------------------------

    def build(self) -> None:
        _ip("netns", "add", self.sw)
        for bridge in ("brA", "brB"):
            _ip("-n", self.sw, "link", "add", bridge, "type", "bridge")
            _ip("-n", self.sw, "link", "set", bridge, "up")
        _ip("-n", self.sw, "link", "add", "linkA", "type", "veth", "peer", "name", "linkB")
        _ip("-n", self.sw, "link", "set", "linkA", "master", "brA", "up")
        _ip("-n", self.sw, "link", "set", "linkB", "master", "brB", "up")
        for i, ns in enumerate(self.ns):
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip(
                "-n",
                self.sw,
                "link",
                "add",
                f"port{i}",
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                ns,
            )
            _ip("-n", self.sw, "link", "set", f"port{i}", "master", "brA" if i < 2 else "brB", "up")
            _ip("-n", ns, "addr", "add", f"{SUBNET}.{i + 1}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")

    def destroy(self) -> None:
        for ns in [*self.ns, self.sw]:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)
        for pool in self.pools.values():
            pool.shutdown(wait=False, cancel_futures=True)

    def isolate(self, index: int) -> None:
        _ip("-n", self.sw, "link", "set", f"port{index}", "down")

    def split(self) -> None:
        _ip("-n", self.sw, "link", "set", "linkA", "down")

    def heal(self) -> None:
        _ip("-n", self.sw, "link", "set", "linkA", "up")
        for i in range(len(self.ns)):
            _ip("-n", self.sw, "link", "set", f"port{i}", "up")

    # --- nodes ------------------------------------------------------------------------

    def start(self) -> None:
        for state, ns in zip(self.states, self.ns, strict=True):
            folder = self.root / state
            with (folder / "node.log").open("ab") as log:
                # --insecure: P2P listens on 10.77.0.x without TLS, but only inside
                # network namespaces this test creates and destroys.
                self.procs[state] = subprocess.Popen(
                    [
                        "ip",
                        "netns",
                        "exec",
                        ns,
                        sys.executable,
                        "-m",
                        "api.cli",
                        "run",
                        "--insecure",
                        "--config",
                        str(folder / "node.toml"),
                    ],
                    stdout=log,
                    stderr=log,
                )
        for state in self.states:
            self._wait_up(state)

    def _wait_up(self, state: str, timeout_s: float = 40) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.procs[state].poll() is not None:
                log = (self.root / state / "node.log").read_text(errors="replace")
                raise AssertionError(f"{state} exited: {log[-2000:]}")
            try:
                if self.call(state, lambda c: c.get("/healthz").status_code) == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{state} did not come up in its namespace")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.procs.clear()

    def call(self, state: str, fn: Callable[[httpx.Client], T]) -> T:
        """Run ``fn`` with an HTTP client whose sockets live in ``state``'s namespace."""

        def in_ns() -> T:
            with httpx.Client(base_url=f"http://127.0.0.1:{API_PORT}", timeout=5) as client:
                return fn(client)

        return self.pools[state].submit(in_ns).result(60)

    def height(self, state: str) -> int:
        return int(self.call(state, lambda c: c.get("/v1/status").json()["height"]))

    def submit(self, state: str, envelope: dict[str, Any]) -> str:
        reply = self.call(state, lambda c: c.post("/v1/records", json=envelope))
        assert reply.status_code == 202, reply.text
        record_id: str = reply.json()["id"]
        return record_id

    def status_of(self, state: str, record_id: str, wait_s: float = 0) -> str:
        def get(c: httpx.Client) -> str:
            reply = c.get(f"/v1/records/{record_id}", params={"wait": wait_s}, timeout=wait_s + 5)
            return str(reply.json().get("status"))

        return self.call(state, get)
