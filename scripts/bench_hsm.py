"""Benchmark signing through a PKCS#11 token (SoftHSM2) against PyNaCl, and count what
a node signs per height.

1. Signatures/s of one Ed25519 key: PyNaCl (libsodium) in memory; the same kind
   of key made in a SoftHSM2 token, signed through ``node.hsm.Pkcs11Signer``
   (``CKM_EDDSA``, one session behind a lock) from one thread; and through the
   node's signing thread (``node.hsm.off_loop``, one executor hop per signature,
   as the P2P client and server sign). The message is a precommit's sign bytes.
2. Signatures per height of each node of an in-process 4-node cluster committing
   ``--heights`` heights of one record per state (tests/cluster.py, the node's own
   code over an in-memory transport), split into votes and proposals, P2P requests,
   P2P replies and others, with in-memory keys that count their calls.

From the two, the script prints what a height costs each node in token time.
The token lives in a temporary directory (SOFTHSM2_CONF), deleted at the end.

    .venv/bin/python scripts/bench_hsm.py [--signatures 5000] [--heights 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger.block import vote_sign_bytes
from ledger.keys import SigningKey
from node.wire import REPLY_DOMAIN, REQUEST_DOMAIN

MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
PIN = "bench-pin-1234"


class CountingKey(SigningKey):
    """A node key that counts what it signs, by kind."""

    __slots__ = ("counts",)

    def __init__(self, seed: bytes) -> None:
        super().__init__(seed)
        self.counts: Counter[str] = Counter()

    def sign(self, message: bytes) -> bytes:
        self.counts[_kind(message)] += 1
        return super().sign(message)


def _kind(message: bytes) -> str:
    try:
        fields = json.loads(message)
    except ValueError:
        return "other"
    if not isinstance(fields, dict):
        return "other"
    if fields.get("domain") == REQUEST_DOMAIN:
        return "p2p_request"
    if fields.get("domain") == REPLY_DOMAIN:
        return "p2p_reply"
    if fields.get("type") in ("prevote", "precommit", "proposal"):
        return "consensus"
    return "other"


def rate(sign: object, message: bytes, count: int) -> float:
    assert callable(sign)
    started = time.perf_counter()
    for _ in range(count):
        sign(message)
    return count / (time.perf_counter() - started)


async def rate_off_loop(signer: object, message: bytes, count: int) -> float:
    from node.hsm import off_loop

    sign = signer.sign  # type: ignore[attr-defined]
    started = time.perf_counter()
    for _ in range(count):
        await off_loop(signer, sign, message)
    return count / (time.perf_counter() - started)


def token_rates(message: bytes, count: int) -> tuple[float, float]:
    root = Path(tempfile.mkdtemp(prefix="comity-bench-hsm-"))
    try:
        (root / "tokens").mkdir()
        conf = root / "softhsm2.conf"
        conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\n")
        os.environ["SOFTHSM2_CONF"] = str(conf)
        subprocess.run(
            [
                *("softhsm2-util", "--init-token", "--free", "--label", "bench"),
                *("--pin", PIN, "--so-pin", PIN),
            ],
            check=True,
            capture_output=True,
        )
        pin_file = root / "pin"
        pin_file.write_text(PIN)
        pin_file.chmod(0o600)
        from node.hsm import Pkcs11Key, close_all, generate_keypair

        key = Pkcs11Key(module=MODULE, token="bench", label="node", pin_file=pin_file)
        signer = generate_keypair(key)
        rate(signer.sign, message, min(200, count))  # warm-up
        direct = rate(signer.sign, message, count)
        hopped = asyncio.run(rate_off_loop(signer, message, count))
        close_all()
        return direct, hopped
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def per_height(heights: int) -> tuple[dict[str, float], int]:
    from tests.cluster import Cluster

    cluster = Cluster(size=4)
    keys: list[CountingKey] = []
    for i, member in enumerate(cluster.members):
        counting = CountingKey(member.node.seed())
        keys.append(counting)
        cluster.members[i] = replace(member, node=counting)
        cluster.nodes[member.state] = cluster._make_node(cluster.members[i])
    await cluster.start()
    try:
        await cluster.commit_rounds(heights)
        height = max(node.app.height for node in cluster.nodes.values())
    finally:
        await cluster.stop()
    total: Counter[str] = Counter()
    for key in keys:
        total.update(key.counts)
    per_node_height = {kind: n / len(keys) / height for kind, n in sorted(total.items())}
    return per_node_height, height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--signatures", type=int, default=5000)
    parser.add_argument("--heights", type=int, default=20)
    args = parser.parse_args()
    message = vote_sign_bytes("precommit", "comity-devnet", 123456, 0, "ab" * 32)
    pynacl = rate(SigningKey.generate().sign, message, args.signatures)
    direct, hopped = token_rates(message, args.signatures)
    print(f"message: a precommit's sign bytes, {len(message)} bytes")
    print(f"{'signer':<46} {'signatures/s':>12} {'µs each':>9}")
    for name, value in (
        ("PyNaCl (in memory)", pynacl),
        ("SoftHSM2 CKM_EDDSA, direct", direct),
        ("SoftHSM2 CKM_EDDSA, via the signing thread", hopped),
    ):
        print(f"{name:<46} {value:>12,.0f} {1e6 / value:>9.1f}")
    counts, height = asyncio.run(per_height(args.heights))
    total = sum(counts.values())
    print(f"\nsignatures per node per height (4 nodes, {height} heights, 1 record/state/height):")
    for kind, n in counts.items():
        print(f"  {kind:<12} {n:6.1f}")
    print(f"  {'total':<12} {total:6.1f}")
    print(
        f"token time per node per height: {total / direct * 1000:.2f} ms "
        f"(PyNaCl: {total / pynacl * 1000:.2f} ms)"
    )


if __name__ == "__main__":
    main()
