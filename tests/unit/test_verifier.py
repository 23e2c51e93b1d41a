"""Signature checks in worker processes (node/verifier.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ledger.keys import SigningKey
from node.verifier import (
    ProcessVerifier,
    VerifierUnavailable,
    answer_request,
    encode_request,
    verify_triples,
)

KEY = SigningKey.generate()
OTHER = SigningKey.generate()


def _triple(message: bytes, key: SigningKey = KEY) -> tuple[bytes, bytes, bytes]:
    return bytes.fromhex(key.public_hex), message, key.sign(message)


def test_verify_triples_accepts_only_valid_signatures() -> None:
    good = _triple(b"record bytes")
    public, message, signature = good
    tampered_sig = signature[:10] + bytes([signature[10] ^ 1]) + signature[11:]
    items = [
        good,
        (public, message + b"!", signature),  # tampered message
        (public, message, tampered_sig),  # tampered signature
        (bytes.fromhex(OTHER.public_hex), message, signature),  # another key
        (public[:31], message, signature),  # short key
        (public, message, signature[:63]),  # short signature
        (b"\x00" * 32, message, signature),  # not a curve point's key
    ]
    assert verify_triples(items) == [True, False, False, False, False, False, False]


def test_process_verifier_checks_in_child_processes() -> None:
    verifier = ProcessVerifier(2)
    try:
        pids = verifier.pids()
        assert len(pids) == 2 and os.getpid() not in pids
        items = [_triple(f"m{i}".encode()) for i in range(50)]
        items[7] = (items[7][0], b"forged", items[7][2])

        async def check() -> tuple[list[bool], list[bool], list[bool]]:
            return await asyncio.gather(
                verifier.verify(items), verifier.verify(items[:3]), verifier.verify([])
            )

        many, few, none = asyncio.run(check())
        assert many == [i != 7 for i in range(50)]
        assert few == [True, True, True] and none == []
    finally:
        verifier.close()
    for pid in pids:  # terminated and reaped
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(RuntimeError):
        asyncio.run(verifier.verify(items[:1]))


_ORPHAN_CHECK = """
import os, sys, time
from node.verifier import ProcessVerifier
verifier = ProcessVerifier(2)
print(" ".join(str(p) for p in verifier.pids()), flush=True)
time.sleep(60)
"""


def test_workers_die_with_a_killed_node(tmp_path: Path) -> None:
    # A node killed with SIGKILL cannot stop its workers: the kernel must (prctl).
    script = tmp_path / "node_like.py"
    script.write_text(_ORPHAN_CHECK)
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert proc.stdout is not None
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) == 2
        for pid in pids:
            os.kill(pid, 0)  # alive while the parent lives
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10
        alive = set(pids)
        while alive and time.monotonic() < deadline:
            for pid in list(alive):
                try:
                    os.kill(pid, 0)
                    with open(f"/proc/{pid}/stat") as stat:  # a zombie counts as gone
                        if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                            alive.discard(pid)
                except (ProcessLookupError, FileNotFoundError):
                    alive.discard(pid)
            time.sleep(0.05)
        assert not alive, f"workers {sorted(alive)} outlived their killed parent"
    finally:
        proc.kill()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_request_frame_round_trip_skips_malformed_triples() -> None:
    good = _triple(b"a")
    public, message, signature = good
    items = [
        good,
        (public[:31], message, signature),
        _triple(b""),
        (public, b"b", signature),
        (public, message, signature + b"x"),
    ]
    frame, sent = encode_request(items)
    assert sent == [0, 2, 3]  # short key and long signature never leave the node
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    assert answer_request(frame[4:]) == bytes([1, 1, 0])
    with pytest.raises(ValueError):
        answer_request(frame[4:-1])  # a cut frame is an error, not a False


def test_a_dead_worker_fails_its_requests_and_leaves_the_others_working() -> None:
    verifier = ProcessVerifier(2)
    items = [_triple(f"m{i}".encode()) for i in range(20)]
    try:
        first, second = verifier.pids()
        os.kill(first, signal.SIGTERM)  # what a process-group SIGTERM does to it
        os.waitpid(first, 0)

        async def check() -> list[list[bool] | BaseException]:
            return await asyncio.gather(
                *(verifier.verify(items) for _ in range(4)), return_exceptions=True
            )

        outcomes = asyncio.run(check())
        # The dead worker's request fails with VerifierUnavailable; every other
        # answer is complete and right.
        assert sum(isinstance(o, VerifierUnavailable) for o in outcomes) <= 1
        assert [o for o in outcomes if not isinstance(o, BaseException)] == [[True] * 20] * sum(
            not isinstance(o, BaseException) for o in outcomes
        )
        assert verifier.available
        os.kill(second, signal.SIGKILL)
        os.waitpid(second, 0)
        with pytest.raises(VerifierUnavailable):
            asyncio.run(check_all(verifier, items))
        assert not verifier.available
    finally:
        verifier.close()


async def check_all(
    verifier: ProcessVerifier, items: list[tuple[bytes, bytes, bytes]]
) -> list[bool]:
    first = await verifier.verify(items)  # may still find the dead worker idle
    second = await verifier.verify(items)
    return first + second


def test_a_cancelled_caller_does_not_cut_a_frame() -> None:
    # One worker, so the next request uses the same socket as the cancelled one.
    verifier = ProcessVerifier(1)
    big = [_triple(f"big{i}".encode() * 50) for i in range(2000)]
    small = [_triple(b"x"), (_triple(b"y")[0], b"z", _triple(b"y")[2])]
    try:

        async def check() -> list[bool]:
            task = asyncio.ensure_future(verifier.verify(big))
            await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return await verifier.verify(small)

        assert asyncio.run(check()) == [True, False]
    finally:
        verifier.close()


_GROUP_SIGTERM = """
import asyncio, signal, sys
from node.verifier import ProcessVerifier
verifier = ProcessVerifier(2)
def stop(*_):
    verifier.close()
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print(" ".join(str(p) for p in verifier.pids()), flush=True)
async def busy():
    from ledger.keys import SigningKey
    key = SigningKey.generate()
    items = [(bytes.fromhex(key.public_hex), b"m", key.sign(b"m"))] * 500
    while True:
        try:
            await verifier.verify(items)
        except RuntimeError:
            await asyncio.sleep(0.01)
asyncio.run(busy())
"""


def test_process_group_sigterm_stops_node_and_workers_promptly(tmp_path: Path) -> None:
    # systemd, docker stop and the devnet signal the node's whole process group,
    # workers included, while they are busy. Nothing may be left waiting on a lock
    # a dead worker held: the node must exit at once, not when SIGKILL comes.
    script = tmp_path / "node_like.py"
    script.write_text(_GROUP_SIGTERM)
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) == 2
        time.sleep(0.5)  # let it get busy
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(8) == 0, "the node did not exit cleanly after a group SIGTERM"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
