"""The three Byzantine attacks of the review, against a 4-node devnet of real processes.

Each test starts real ``comity run`` processes on 127.0.0.1, keeps a steady
load of records flowing, mounts one attack, and then requires:

- commits never stop for longer than the consensus timeouts allow
  (``GAP_MAX_S``: a few rounds of the FAST timeouts, far below the 20-48 s
  the same attacks stopped the chain for at b40cc0b);
- every record submitted to an honest node is committed;
- ``comity verify --genesis`` passes against every node afterwards.

The attacks: one investigator key posting two envelopes of one record to
different nodes (C1); a stand-in answering every P2P request at VN's address
with a huge height (C4); VN's real node binary, under ``--byzantine
dup-records``, proposing a block that holds one record twice (C2).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ledger.canonical import canonical_bytes
from ledger.keys import load_signing_key
from node.byzantine import ENV_FLAG, LIE_HEIGHT, sign_with_nonce
from tests.procnet import FAST, ProcNet

pytestmark = pytest.mark.slow

HONEST = ["CN", "FR", "TH"]
#: The longest pause between two commits that the consensus timeouts explain:
#: a Byzantine or silent proposer costs one round (propose 500 ms, prevote and
#: precommit 250 ms each, +250/+100/+100 per round); three such rounds in a row
#: plus the load's own spacing stay well below this.
GAP_MAX_S = 6.0
LOAD_S = 12.0


@pytest.fixture
def net(tmp_path: Path) -> Iterator[ProcNet]:
    network = ProcNet(tmp_path / "net", consensus=FAST)
    try:
        yield network
    finally:
        network.stop_all()


class Load:
    """Submit one record every 0.2 s round-robin to ``states``; note commit times."""

    def __init__(self, net: ProcNet, states: list[str]) -> None:
        self.net, self.states = net, states
        self.ids: list[tuple[str, str]] = []
        self.heights: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            state = self.states[i % len(self.states)]
            i += 1
            self.ids.append((state, self.net.submit(state)))
            self.heights.append((time.monotonic(), self.net.height(HONEST[0])))
            time.sleep(0.2)

    def longest_gap_s(self) -> float:
        """The longest time the watched height stood still while records waited."""
        gap, since, last = 0.0, self.heights[0][0], self.heights[0][1]
        for at, height in self.heights:
            if height != last:
                since, last = at, height
            gap = max(gap, at - since)
        return gap


def _verify_everywhere(net: ProcNet, absent: str | None = None) -> None:
    genesis = net.root / "genesis.json"
    for state in net.states:
        if state == absent:
            continue
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "api.cli",
                "verify",
                "--genesis",
                str(genesis),
                "--node",
                net.urls[state],
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"comity verify against {state}:\n{done.stdout}{done.stderr}"


def _all_committed(net: ProcNet, ids: list[tuple[str, str]]) -> None:
    for state, record_id in ids:
        net.wait_committed(state, record_id, timeout_s=30)


def test_one_key_posting_two_envelopes_of_one_record_to_different_nodes(net: ProcNet) -> None:
    net.start()
    key = load_signing_key(net.root / "CN" / "investigator.key")
    with Load(net, net.states) as load:
        time.sleep(2)
        for _ in range(5):  # the split, raced against gossip, five times
            env = net.envelope("CN")
            env2 = {**env, "signature": sign_with_nonce(key, canonical_bytes(env["record"])).hex()}
            targets = [("CN", env), ("FR", env), ("TH", env2), ("VN", env2)]
            with ThreadPoolExecutor(4) as pool:
                codes = list(
                    pool.map(
                        lambda t: (
                            httpx.post(
                                f"{net.urls[t[0]]}/v1/records", json=t[1], timeout=10
                            ).status_code
                        ),
                        targets,
                    )
                )
            assert all(code in (200, 202, 409) for code in codes), codes
            time.sleep(1.5)
        time.sleep(LOAD_S / 2)
    assert load.longest_gap_s() < GAP_MAX_S, load.longest_gap_s()
    _all_committed(net, load.ids)
    _verify_everywhere(net)


def _liar_app() -> Starlette:
    async def lie(request: Request) -> JSONResponse:
        await request.body()
        if request.url.path == "/p2p/v1/blocks":
            return JSONResponse({"height": LIE_HEIGHT, "blocks": []})
        return JSONResponse({"height": LIE_HEIGHT, "state": "VN"})

    return Starlette(routes=[Route("/{path:path}", lie, methods=["POST", "GET"])])


def test_a_stand_in_claiming_a_huge_height_at_a_members_address(net: ProcNet) -> None:
    port = int(net.nodes_json()[net.states.index("VN")]["p2p_url"].rsplit(":", 1)[1])
    server = uvicorn.Server(
        uvicorn.Config(_liar_app(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        net.start(*HONEST)
        with Load(net, HONEST) as load:
            time.sleep(LOAD_S)
        for state in HONEST:
            assert net.status(state)["syncing"] is False
    finally:
        server.should_exit = True
        thread.join(10)
    assert load.longest_gap_s() < GAP_MAX_S, load.longest_gap_s()
    _all_committed(net, load.ids)
    _verify_everywhere(net, absent="VN")


def test_a_member_proposing_a_duplicate_record_block(net: ProcNet) -> None:
    net.start(*HONEST)
    net.start(
        "VN",
        args=(
            "--byzantine",
            "dup-records",
            "--byzantine-signer",
            str(net.root / "VN" / "investigator.key"),
        ),
        env={ENV_FLAG: "1"},
    )
    with Load(net, HONEST) as load:
        time.sleep(LOAD_S)
    assert "BYZANTINE: proposing block" in net.log("VN"), "VN never had its turn"
    assert load.longest_gap_s() < GAP_MAX_S, load.longest_gap_s()
    _all_committed(net, load.ids)
    logs = "".join(net.log(s) for s in HONEST)
    assert "more than once" in logs, "no honest node saw (and refused) the duplicate"
    _verify_everywhere(net)
