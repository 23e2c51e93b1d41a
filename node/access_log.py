"""The local, hash-chained log of every read of sealed details.

Theory of operation
-------------------
docs/DOMAIN.md "Need to know": only designated people get access (004 §53) and
every read of protected details is logged. Each node keeps its own log in
``DATA_DIR/access-log.jsonl``, one JSON object per line, written as
``JCS(entry)`` + ``\\n``::

    {"seq": 0, "time": "...Z", "record_id": <64 hex>, "state": "TH",
     "token_id": "...", "role": "investigator", "outcome": "ok",
     "prev_hash": <64 hex>, "hash": <64 hex>}

``hash`` is SHA-256 of JCS of the entry without ``hash``; ``prev_hash`` is
the previous entry's ``hash`` (64 zeros for the first); ``seq`` counts from
0. ``verify_log`` recomputes the chain: an edited, inserted, removed or
reordered line breaks it at that line. Cutting lines off the END leaves a
valid shorter chain; to detect that, an auditor keeps the ``head`` (seq and
hash) reported by ``GET /v1/access-log`` and checks later that the chain
still passes through it.

An entry is written and fsynced BEFORE the plaintext is returned, so every
read that reached a caller is in the log. A crash mid-write leaves a last
line without ``\\n``: that read never returned, so ``AccessLog`` drops the
torn fragment on open (and logs a warning) instead of refusing to start.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger.canonical import canonical_bytes
from ledger.hashing import sha256_hex
from ledger.records import format_time

log = logging.getLogger("comity.access_log")

LOG_FILE = "access-log.jsonl"
ZERO_HASH = "0" * 64
TAIL_BYTES_MAX = 64 * 1024
PAGE_MAX = 1000
OUTCOMES = ("ok", "not_a_recipient", "integrity_failed")


def entry_hash(entry: dict[str, Any]) -> str:
    return sha256_hex(canonical_bytes({k: v for k, v in entry.items() if k != "hash"}))


@dataclass(frozen=True, slots=True)
class LogVerdict:
    ok: bool
    entries: int
    head_seq: int | None
    head_hash: str
    bad_line: int | None = None  # 1-based line number of the first bad entry
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "bad_line": self.bad_line,
            "reason": self.reason,
        }


def verify_log(path: Path) -> LogVerdict:
    """Recompute the whole chain of ``path``; report the first line that breaks it."""
    prev, seq = ZERO_HASH, -1
    try:
        lines = path.read_bytes().split(b"\n")
    except FileNotFoundError:
        return LogVerdict(True, 0, None, ZERO_HASH)
    if lines and lines[-1] == b"":
        lines.pop()
    for number, line in enumerate(lines, start=1):
        reason = _check_line(line, prev, seq + 1)
        if reason is not None:
            return LogVerdict(False, number - 1, seq if seq >= 0 else None, prev, number, reason)
        entry = json.loads(line)
        prev, seq = entry["hash"], entry["seq"]
    return LogVerdict(True, len(lines), seq if seq >= 0 else None, prev)


def _check_line(line: bytes, prev: str, seq: int) -> str | None:
    try:
        entry = json.loads(line)
    except ValueError:
        return "not JSON"
    if not isinstance(entry, dict):
        return "not a JSON object"
    if entry.get("seq") != seq:
        return f"seq is {entry.get('seq')!r}, expected {seq}"
    if entry.get("prev_hash") != prev:
        return "prev_hash does not match the previous entry's hash"
    if entry.get("hash") != entry_hash(entry):
        return "hash does not match the entry's contents"
    return None


class AccessLog:
    """Append-only, fsynced, hash-chained log file; safe to share between handlers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.head_seq, self.head_hash = self._load_head()

    def _load_head(self) -> tuple[int, str]:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return -1, ZERO_HASH
        with self.path.open("rb+") as handle:
            handle.seek(max(0, size - TAIL_BYTES_MAX))
            tail = handle.read()
            if tail and not tail.endswith(b"\n"):
                cut = tail.rfind(b"\n") + 1
                log.warning(
                    "access log %s: dropping a torn last line of %d bytes",
                    self.path,
                    len(tail) - cut,
                )
                handle.truncate(size - (len(tail) - cut))
                tail = tail[:cut]
        lines = [line for line in tail.split(b"\n") if line]
        if not lines:
            return -1, ZERO_HASH
        last = json.loads(lines[-1])
        return int(last["seq"]), str(last["hash"])

    def append(
        self, *, record_id: str, state: str, token_id: str, role: str, outcome: str
    ) -> dict[str, Any]:
        assert outcome in OUTCOMES, f"unknown access outcome {outcome!r}"
        with self._lock:
            entry: dict[str, Any] = {
                "seq": self.head_seq + 1,
                "time": format_time(datetime.now(UTC)),
                "record_id": record_id,
                "state": state,
                "token_id": token_id,
                "role": role,
                "outcome": outcome,
                "prev_hash": self.head_hash,
            }
            entry["hash"] = entry_hash(entry)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, canonical_bytes(entry) + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
            self.head_seq, self.head_hash = entry["seq"], entry["hash"]
            return entry

    def page(self, after_seq: int = -1, limit: int = 100) -> list[dict[str, Any]]:
        """Entries with seq > ``after_seq``, oldest first, at most ``limit``."""
        limit = max(1, min(limit, PAGE_MAX))
        out: list[dict[str, Any]] = []
        try:
            with self.path.open("rb") as handle:
                for line in handle:
                    entry = json.loads(line)
                    if entry["seq"] > after_seq:
                        out.append(entry)
                        if len(out) >= limit:
                            break
        except FileNotFoundError:
            return []
        return out

    def verify(self) -> LogVerdict:
        return verify_log(self.path)
