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
from node.verifier import ProcessVerifier, verify_triples

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
        (public, message + b"!", signature),                    # tampered message
        (public, message, tampered_sig),                         # tampered signature
        (bytes.fromhex(OTHER.public_hex), message, signature),   # another key
        (public[:31], message, signature),                       # short key
        (public, message, signature[:63]),                       # short signature
        (b"\x00" * 32, message, signature),                      # not a curve point's key
    ]
    assert verify_triples(items) == [True, False, False, False, False, False, False]


def test_process_verifier_checks_in_child_processes() -> None:
    verifier = ProcessVerifier(2)
    try:
        pids = verifier.pids()
        assert len(pids) == 2 and os.getpid() not in pids
        items = [_triple(f"m{i}".encode()) for i in range(50)]
        items[7] = (items[7][0], b"forged", items[7][2])

        async def check() -> list[list[bool]]:
            return await asyncio.gather(verifier.verify(items), verifier.verify(items[:3]),
                                        verifier.verify([]))
        many, few, none = asyncio.run(check())
        assert many == [i != 7 for i in range(50)]
        assert few == [True, True, True] and none == []
    finally:
        verifier.close()
    for pid in pids:   # terminated and reaped
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
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    try:
        assert proc.stdout is not None
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) == 2
        for pid in pids:
            os.kill(pid, 0)   # alive while the parent lives
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10
        alive = set(pids)
        while alive and time.monotonic() < deadline:
            for pid in list(alive):
                try:
                    os.kill(pid, 0)
                    with open(f"/proc/{pid}/stat") as stat:   # a zombie counts as gone
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
