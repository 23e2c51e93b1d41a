"""Real node processes plus the faults the campaign injects into them, and a load client.

``FaultNet`` extends ``tests.procnet.ProcNet`` (4 nodes on 127.0.0.1) with
the process and disk faults: kill -9, SIGSTOP/SIGCONT, a corrupted consensus
WAL value, a truncated newest LevelDB log file. ``Load`` is a client thread
that submits records to live nodes and remembers every record a node said is
committed; it is bounded in records and time. Everything is loopback only.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from api.cli import devnet
from ledger.acts_templates import template
from ledger.canonical import canonical_bytes
from ledger.keys import SigningKey, load_signing_key
from ledger.store import Store
from node.clock import utcnow
from node.driver import WAL_NAME
from tests.procnet import ProcNet

REFUSAL_WAIT_S = 30


class FaultNet(ProcNet):
    """A ProcNet whose nodes can be paused, and whose disks can be damaged while down."""

    def __init__(self, root: Path, nodes: int = 4, consensus: dict[str, Any] | None = None):
        super().__init__(root, nodes, consensus)
        self.paused: set[str] = set()
        #: Extra ``comity run`` arguments and environment per state (a Byzantine node).
        self.run_args: dict[str, Callable[[], tuple[tuple[str, ...], dict[str, str]]]] = {}

    def start(
        self, *states: str, args: tuple[str, ...] = (), env: dict[str, str] | None = None
    ) -> None:
        for state in states or tuple(self.states):
            extra, extra_env = self.run_args[state]() if state in self.run_args else ((), {})
            super().start(state, args=(*args, *extra), env={**(env or {}), **extra_env})

    def ledger_dir(self, state: str) -> Path:
        return self.root / state / "data" / "ledger"

    def pause(self, state: str) -> None:
        self.procs[state].send_signal(signal.SIGSTOP)
        self.paused.add(state)

    def resume(self, state: str) -> None:
        self.procs[state].send_signal(signal.SIGCONT)
        self.paused.discard(state)

    def up(self) -> list[str]:
        return [s for s in self.states if s in self.procs and s not in self.paused]

    def try_start(self, state: str) -> tuple[bool, str]:
        """Start ``state``; (True, "") when it serves, (False, its last log) if it refused."""
        folder = self.root / state
        args, env = self.run_args[state]() if state in self.run_args else ((), {})
        with (folder / "node.log").open("ab") as log:
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
                env={**os.environ, **env},
            )
        try:
            self.wait_up(state, REFUSAL_WAIT_S)
        except AssertionError as exc:
            proc = self.procs.pop(state)
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            return False, str(exc)
        return True, ""

    def corrupt_wal(self, state: str, rng: random.Random) -> bytes | None:
        """Overwrite the (stopped) node's consensus WAL value; return the old value."""
        with Store.open_leveldb(self.ledger_dir(state)) as store:
            old = store.get_state(WAL_NAME)
            damaged = bytearray(old or b'{"height": 1}')
            cut = rng.randrange(1, max(2, len(damaged)))
            damaged = damaged[:cut] + bytes([rng.randrange(256)]) + b"\xff\x00garbage"
            store.put_state(WAL_NAME, bytes(damaged))
        return old

    def restore_wal(self, state: str, value: bytes | None) -> None:
        with Store.open_leveldb(self.ledger_dir(state)) as store:
            if value is None:
                store.delete_state(WAL_NAME)
            else:
                store.put_state(WAL_NAME, value)

    def truncate_newest_log(self, state: str, rng: random.Random) -> str:
        """Cut the tail off the newest LevelDB .log (else .ldb) file of a stopped node:
        the last writes were torn. Returns what was cut, for the summary."""
        folder = self.ledger_dir(state)
        files = [p for p in folder.iterdir() if p.suffix in (".log", ".ldb") and p.stat().st_size]
        logs = [p for p in files if p.suffix == ".log"] or files
        if not logs:
            return "nothing to truncate"
        newest = max(logs, key=lambda p: p.stat().st_mtime_ns)
        size = newest.stat().st_size
        keep = max(0, size - rng.randrange(1, min(size, 4096) + 1))
        os.truncate(newest, keep)
        return f"{newest.name} {size} -> {keep} bytes"


class EnvelopeMaker:
    """Signed preservation requests by each state's demo investigator, unique nonces."""

    def __init__(self, root: Path, states: list[str], seed: int) -> None:
        self.rng = random.Random(seed)
        self.keys: dict[str, SigningKey] = {
            s: load_signing_key(root / s / "investigator.key") for s in states
        }
        self.nonce = 0
        self.lock = threading.Lock()

    def envelope(self, state: str) -> dict[str, Any]:
        with self.lock:
            self.nonce += 1
            nonce = f"fault{os.getpid()}x{time.time_ns()}x{self.nonce:08d}"
            digest = self.rng.getrandbits(256).to_bytes(32, "big").hex()
        record = template(
            "preservation_request",
            state=state,
            case_ref="CASE-FAULT-1",
            territorial_states=("TH" if state != "TH" else "VN",),
            now=utcnow(),
        )
        record.update(
            chain_id=devnet.CHAIN_ID,
            nonce=nonce,
            evidence=[{"sha256": digest}],
            visibility="consortium",
        )
        key = self.keys[state]
        return {
            "record": record,
            "signer": key.public_hex,
            "signature": key.sign(canonical_bytes(record)).hex(),
        }


@dataclass
class LoadStats:
    submitted: int = 0
    refused: int = 0
    errors: int = 0
    acked: list[str] = field(default_factory=list)


class Load(threading.Thread):
    """Submits batches of records to live nodes; polls until a node says committed."""

    def __init__(
        self,
        net: FaultNet,
        seed: int,
        *,
        batch: int = 5,
        interval_s: float = 0.25,
        records_max: int = 200_000,
        seconds_max: float = 7200,
    ) -> None:
        super().__init__(name="load", daemon=True)
        self.net = net
        self.rng = random.Random(seed)
        self.batch = batch
        self.interval_s = interval_s
        self.records_max = records_max
        self.deadline = time.monotonic() + seconds_max
        self.stats = LoadStats()
        self.pending: dict[str, float] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.maker = EnvelopeMaker(net.root, net.states, seed)

    def envelope(self, state: str) -> dict[str, Any]:
        return self.maker.envelope(state)

    def run(self) -> None:
        with httpx.Client(timeout=3) as client:
            while not self.stopping.is_set() and time.monotonic() < self.deadline:
                if self.stats.submitted < self.records_max:
                    self._submit(client)
                self._poll(client, 10)
                self.stopping.wait(self.interval_s)

    def _live(self) -> list[str]:
        """Nodes to submit to: the live ones, never a Byzantine one (it may drop its
        clients' records, which is not the chain losing them)."""
        return [s for s in self.net.up() if s not in self.net.run_args]

    def _submit(self, client: httpx.Client) -> None:
        live = self._live()
        if not live:
            return
        state = self.rng.choice(live)
        body = {"envelopes": [self.envelope(state) for _ in range(self.batch)]}
        try:
            reply = client.post(f"{self.net.urls[state]}/v1/records/batch", json=body)
        except httpx.HTTPError:
            self.stats.errors += 1
            return
        if reply.status_code != 200:
            self.stats.refused += self.batch
            return
        now = time.monotonic()
        with self.lock:
            for result in reply.json()["results"]:
                if "id" in result:
                    self.pending[result["id"]] = now
                    self.stats.submitted += 1
                else:
                    self.stats.refused += 1

    def _poll(self, client: httpx.Client, count: int) -> None:
        live = self._live()
        with self.lock:
            oldest = sorted(self.pending, key=self.pending.__getitem__)[:count]
        for record_id in oldest:
            if not live:
                return
            state = self.rng.choice(live)
            try:
                reply = client.get(f"{self.net.urls[state]}/v1/records/{record_id}")
            except httpx.HTTPError:
                self.stats.errors += 1
                continue
            if reply.status_code == 200 and reply.json().get("status") == "committed":
                with self.lock:
                    self.pending.pop(record_id, None)
                    self.stats.acked.append(record_id)

    def stop(self) -> None:
        self.stopping.set()
        self.join(30)

    def sweep(self, seconds: float) -> None:
        """After the faults: poll every still-pending record until it commits or time's up."""
        deadline = time.monotonic() + seconds
        with httpx.Client(timeout=3) as client:
            while self.pending and time.monotonic() < deadline:
                self._poll(client, 200)
                if self.pending:
                    time.sleep(0.3)
