"""A validator whose node key is in a token signs its votes and proposals off the event loop.

docs/OPERATIONS.md "The configuration": a token may sit across a network, so a C_Sign can
take tens of milliseconds. node/driver.py runs each engine call (which may sign) on the
token's signing thread (``node.hsm.off_loop``) while the event loop goes on serving the
API, the peers and the other nodes. This test makes CN's SoftHSM2 key slow (every C_Sign
sleeps ``SIGN_S`` on the thread that calls it), commits records on a four-node in-process
consortium and checks, for every vote and proposal CN signed, that it was signed on the
token's thread and that the event loop ran while the token was signing. The control
shows the check can fail: with the driver's engine calls run inline, CN's consensus
signatures are made on the loop's thread and the loop stands still during each.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ledger.canonical import parse_json
from node import driver as driver_module
from node import hsm
from node.hsm import Pkcs11Key, generate_keypair
from tests import softhsm
from tests.cluster import Cluster

SIGN_S = 0.08  # a C_Sign across a network: far longer than a loop tick
TICK_S = 0.005
CONSENSUS_TYPES = {"prevote", "precommit", "proposal"}


@dataclass(frozen=True)
class Signed:
    kind: str  # prevote, precommit, proposal or "other" (P2P requests and replies)
    thread: str
    started: float
    ended: float


@pytest.fixture(autouse=True)
def _softhsm() -> None:
    softhsm.require_softhsm()
    softhsm.process_conf()


def _kind(message: bytes) -> str:
    try:
        obj = parse_json(message)
    except Exception:  # P2P sign bytes are not all JSON objects
        return "other"
    if isinstance(obj, dict) and obj.get("type") in CONSENSUS_TYPES and "chain_id" in obj:
        return str(obj["type"])
    return "other"


@contextlib.asynccontextmanager
async def _slow_token_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Cluster, list[Signed], list[float]]]:
    pin = softhsm.write_pin(tmp_path / "cn.pin", softhsm.PIN)
    key = Pkcs11Key(module=softhsm.MODULE, token=softhsm.new_token(), label="node", pin_file=pin)
    token_key = generate_keypair(key)
    signed: list[Signed] = []
    real_sign: Callable[[Any, bytes], bytes] = hsm.Pkcs11Signer.sign

    def slow_sign(self: Any, message: bytes) -> bytes:
        started = time.monotonic()
        time.sleep(SIGN_S)
        signature = real_sign(self, message)
        signed.append(
            Signed(_kind(message), threading.current_thread().name, started, time.monotonic())
        )
        return signature

    monkeypatch.setattr(hsm.Pkcs11Signer, "sign", slow_sign)
    ticks: list[float] = []

    async def tick() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(TICK_S)

    cluster = Cluster(node_keys={"CN": token_key})
    await cluster.start()
    ticker = asyncio.create_task(tick())
    try:
        yield cluster, signed, ticks
    finally:
        ticker.cancel()
        await cluster.stop()
        hsm.close_all()


def _ran_during(ticks: list[float], sign: Signed) -> bool:
    return any(sign.started < t < sign.ended for t in ticks)


async def test_votes_and_proposals_are_signed_on_the_tokens_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _slow_token_cluster(tmp_path, monkeypatch) as (cluster, signed, ticks):
        await cluster.commit_rounds(3)
    consensus = [s for s in signed if s.kind != "other"]
    kinds = {s.kind for s in consensus}
    assert {"prevote", "precommit"} <= kinds, kinds
    # CN proposes in its turn: in three heights of four validators that may not happen,
    # but every vote it cast was signed on the token's thread while the loop ran.
    loop_thread = threading.main_thread().name
    assert all(s.thread.startswith("comity-pkcs11") for s in consensus), {
        (s.kind, s.thread) for s in consensus
    }
    assert all(s.thread != loop_thread for s in consensus)
    stalled = [s for s in consensus if not _ran_during(ticks, s)]
    assert stalled == [], f"the event loop stood still during {len(stalled)} of {len(consensus)}"


async def test_control_inline_engine_calls_sign_on_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def inline(key: object, work: Callable[..., Any], *args: Any) -> Any:
        return work(*args)

    monkeypatch.setattr(driver_module, "off_loop", inline)
    async with _slow_token_cluster(tmp_path, monkeypatch) as (cluster, signed, ticks):
        await cluster.commit_rounds(2)
    consensus = [s for s in signed if s.kind != "other"]
    assert consensus, "CN signed no vote"
    assert all(not s.thread.startswith("comity-pkcs11") for s in consensus)
    assert not any(_ran_during(ticks, s) for s in consensus)


async def test_a_token_that_fails_to_sign_a_vote_stops_the_driver_loudly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_sign = hsm.Pkcs11Signer.sign
    async with _slow_token_cluster(tmp_path, monkeypatch) as (cluster, _signed, _ticks):
        await cluster.commit_rounds(1)
        ready = await cluster.api["CN"].get("/readyz")
        assert ready.status_code == 200, ready.text

        def gone(self: Any, message: bytes) -> bytes:
            # Votes only: in this in-process consortium a P2P handler's exception would
            # surface in the calling node's task (a real server answers 500 instead).
            if _kind(message) == "other":
                return real_sign(self, message)
            raise hsm.HsmError("the token of node (test) failed to sign: DeviceRemoved")

        monkeypatch.setattr(hsm.Pkcs11Signer, "sign", gone)
        posted = await cluster.api["TH"].post("/v1/records", json=cluster.envelope("TH"))
        assert posted.status_code in (200, 202), posted.text  # a height for CN to vote in
        for _ in range(100):
            ready = await cluster.api["CN"].get("/readyz")
            if ready.status_code == 503:
                break
            await asyncio.sleep(0.05)
        assert ready.status_code == 503
        assert "DeviceRemoved" in str(ready.json()["failed"])
        other = await cluster.api["TH"].get("/readyz")
        assert other.status_code == 200, other.text  # the others go on without CN's votes
