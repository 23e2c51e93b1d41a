"""Load generators and the latency probe, each in a process of its own.

* ``Wrk``: one wrk process per node for closed-loop saturation load
  (single-record or batch POSTs of pre-signed bodies; see post_bodies.lua).
* ``rate_sender``: a Python process that POSTs batch bodies to one node on an
  open-loop schedule (request k is due at start + k/rate, whatever happened
  to request k-1), for load at a fixed fraction of capacity.
* ``probe``: POSTs one record at a time at fixed intervals, to node k mod N,
  and long-polls ``GET /v1/records/{id}?wait=`` on the SAME node; the latency
  is POST start -> the GET returning ``committed``. Probes are few (10/s by
  default) so they measure the system rather than themselves.

Every child writes its result as JSON to a file the harness reads; timestamps
are ``time.monotonic()``, which is one system-wide clock on Linux, so the
harness can keep only the probes that started inside its measurement window.
"""

from __future__ import annotations

import asyncio
import json
import math
import multiprocessing
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from benchlib.presign import read_lines

LUA = Path(__file__).with_name("post_bodies.lua")
JSON_HEADERS = {"Content-Type": "application/json"}
CTX = multiprocessing.get_context("fork")


class Wrk:
    """One wrk process POSTing the bodies of one file to one node."""

    def __init__(
        self,
        url: str,
        bodies: Path,
        *,
        threads: int,
        connections: int,
        duration_s: float,
        batch: bool,
        log_path: Path,
        path: str | None = None,
    ) -> None:
        """``path``: where to POST (default: Comity's ``/v1/records[/batch]``)."""
        target = url + (path or ("/v1/records/batch" if batch else "/v1/records"))
        cmd = [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{math.ceil(duration_s)}s",
            "--timeout",
            "60s",
            "-s",
            str(LUA),
            target,
            "--",
            str(bodies),
            str(threads),
        ]
        if batch:
            cmd.append("batch")
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def finish(self, timeout_s: float) -> dict[str, Any]:
        """Stop wrk now (SIGINT: it stops its threads and still reports) and parse it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()
        text = self.log_path.read_text(errors="replace")
        for line in text.splitlines():
            if line.startswith("BENCHJSON "):
                result: dict[str, Any] = json.loads(line[len("BENCHJSON ") :])
                return result
        raise RuntimeError(f"wrk printed no result (exit {self.proc.returncode}):\n{text[-2000:]}")


# --- open-loop rate sender -------------------------------------------------------------

SENDER_THREADS = 8  # requests in flight per sender: a slow reply must not delay the next


@dataclass
class _SendStats:
    statuses: Counter[int]
    item_errors: int = 0
    lag_max_s: float = 0.0
    sent: int = 0


def _send_slice(
    url: str,
    bodies: list[bytes],
    first: int,
    step: int,
    requests_per_s: float,
    start_at: float,
    stop_at: float,
    stats: _SendStats,
) -> None:
    with httpx.Client(timeout=60) as client:
        for k in range(first, len(bodies), step):
            due = start_at + k / requests_per_s
            if due >= stop_at:
                return
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            else:
                stats.lag_max_s = max(stats.lag_max_s, now - due)
            try:
                reply = client.post(url, content=bodies[k], headers=JSON_HEADERS)
                stats.statuses[reply.status_code] += 1
                stats.item_errors += reply.content.count(b'"error"')
            except httpx.HTTPError:
                stats.statuses[0] += 1
            stats.sent += 1


def rate_sender(
    url: str,
    bodies_path: str,
    requests_per_s: float,
    start_at: float,
    stop_at: float,
    out_path: str,
) -> None:
    """POST the lines of ``bodies_path`` to ``url`` at ``requests_per_s`` until ``stop_at``.

    Request k is due at start_at + k / requests_per_s. Thread t of
    SENDER_THREADS sends the requests k = t mod SENDER_THREADS, so up to that
    many are in flight and the offered rate holds while the node answers
    within SENDER_THREADS / requests_per_s seconds; ``lag_max_s`` says by
    how much a request was late when it did not.
    """
    bodies = read_lines(Path(bodies_path))
    stats = [_SendStats(Counter()) for _ in range(SENDER_THREADS)]
    threads = [
        threading.Thread(
            target=_send_slice,
            args=(url, bodies, t, SENDER_THREADS, requests_per_s, start_at, stop_at, stats[t]),
        )
        for t in range(SENDER_THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses: Counter[int] = Counter()
    for part in stats:
        statuses.update(part.statuses)
    sent = sum(part.sent for part in stats)
    Path(out_path).write_text(
        json.dumps(
            {
                "sent": sent,
                "statuses": {str(code): n for code, n in statuses.items()},
                "item_errors": sum(part.item_errors for part in stats),
                "lag_max_s": round(max(part.lag_max_s for part in stats), 3),
                "exhausted": sent >= len(bodies),
            }
        )
    )


def start_rate_sender(
    url: str, bodies: Path, requests_per_s: float, start_at: float, stop_at: float, out_path: Path
) -> multiprocessing.process.BaseProcess:
    proc = CTX.Process(
        target=rate_sender,
        name="bench-rate",
        args=(
            url + "/v1/records/batch",
            str(bodies),
            requests_per_s,
            start_at,
            stop_at,
            str(out_path),
        ),
    )
    proc.start()
    return proc


# --- latency probe ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    url: str  # the node's API base URL: POST and long-poll both go here
    body: bytes
    id: str


def probe(
    targets: list[ProbeTarget],
    interval_s: float,
    start_at: float,
    stop_at: float,
    wait_s: float,
    out_path: str,
) -> None:
    results = asyncio.run(_probe(targets, interval_s, start_at, stop_at, wait_s))
    Path(out_path).write_text(json.dumps(results))


async def _probe(
    targets: list[ProbeTarget], interval_s: float, start_at: float, stop_at: float, wait_s: float
) -> list[dict[str, Any]]:
    limits = httpx.Limits(max_connections=2000, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=wait_s + 15, limits=limits) as client:
        tasks = []
        for k, target in enumerate(targets):
            due = start_at + k * interval_s
            if due >= stop_at:
                break
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            tasks.append(asyncio.create_task(_probe_one(client, target, wait_s)))
        return list(await asyncio.gather(*tasks))


async def _probe_one(
    client: httpx.AsyncClient, target: ProbeTarget, wait_s: float
) -> dict[str, Any]:
    started = time.monotonic()
    row: dict[str, Any] = {"t": started, "url": target.url, "ms": None, "error": None}
    try:
        posted = await client.post(
            f"{target.url}/v1/records", content=target.body, headers=JSON_HEADERS
        )
        if posted.status_code not in (200, 202):
            row["error"] = f"POST {posted.status_code}"
            return row
        row["post_ms"] = (time.monotonic() - started) * 1000
        reply = await client.get(f"{target.url}/v1/records/{target.id}", params={"wait": wait_s})
        if reply.status_code == 200 and reply.json().get("status") == "committed":
            row["ms"] = (time.monotonic() - started) * 1000
        else:
            row["error"] = (
                "not committed" if reply.status_code == 200 else f"GET {reply.status_code}"
            )
    except httpx.HTTPError as exc:
        row["error"] = type(exc).__name__
    return row


def start_probe(
    targets: list[ProbeTarget],
    interval_s: float,
    start_at: float,
    stop_at: float,
    wait_s: float,
    out_path: Path,
) -> multiprocessing.process.BaseProcess:
    proc = CTX.Process(
        target=probe,
        name="bench-probe",
        args=(targets, interval_s, start_at, stop_at, wait_s, str(out_path)),
    )
    proc.start()
    return proc
