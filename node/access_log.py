"""The local, hash-chained and node-signed log of every read of private details.

Theory of operation
-------------------
docs/DOMAIN.md "Need to know": only designated people get access (004 §53) and
every read of protected details is logged. Each node keeps its own log in
``DATA_DIR/access-log.jsonl``, one JSON object per line, written as
``JCS(entry)`` + ``\\n``::

    {"seq": 0, "time": "...Z", "record_id": <64 hex>, "state": "TH",
     "token_id": "...", "role": "investigator", "outcome": "ok",
     "prev_hash": <64 hex>, "domain": "comity-access-log-v1",
     "signer": <node pubkey, 64 hex>, "hash": <64 hex>, "signature": <128 hex>}

``hash`` is SHA-256 of JCS of the entry without ``hash`` and ``signature``;
``prev_hash`` is the previous entry's ``hash`` (64 zeros for the first);
``seq`` counts from 0. ``signature`` is the node key's Ed25519 signature of
JCS of the entry without ``signature`` (so it covers ``hash`` and ``signer``;
``domain`` keeps it from meaning anything else the node key signs).

``verify_log`` recomputes the chain and checks every signature against the
node keys the caller expects (an auditor takes them from the chain's validator
set, not from the node). An edited, inserted, removed or reordered line breaks
the chain at that line; someone with write access but not the node key
cannot re-sign a rewrite, and a rewrite signed by another key names a signer
that is not expected. Cutting lines off the END leaves a valid shorter chain:
an auditor keeps the ``head`` (seq and hash) reported by
``GET /v1/access-log`` and passes it as ``head``, which fails unless the
chain still passes through it. (The node key itself can rewrite its own log
after the last head an auditor saw; nothing local can stop that.)

Logs written before entries were signed: their unsigned entries are accepted
only as a prefix, before the first signed entry (which covers them through
``prev_hash``); for those only the hash chain is checked, and the verdict
says how many there were (``unsigned_entries``, ``warning``).
``require_signed`` refuses them instead. An unsigned entry after a signed one
always fails.

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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.canonical import canonical_bytes
from ledger.errors import EncodingError, Forbidden, InvariantViolation
from ledger.hashing import sha256_hex
from ledger.keys import KeySigner, verify_hex
from ledger.records import format_time
from node import clock
from node.tokens import TokenInfo, require_body_reader

log = logging.getLogger("comity.access_log")

LOG_FILE = "access-log.jsonl"
DOMAIN = "comity-access-log-v1"
ZERO_HASH = "0" * 64
TAIL_BYTES_MAX = 64 * 1024
PAGE_MAX = 1000
OUTCOMES = (
    "ok",
    "not_a_recipient",
    "integrity_failed",
    "role_not_allowed",
    "state_not_allowed",
    "case_not_allowed",
)


def entry_hash(entry: dict[str, Any]) -> str:
    """SHA-256 of JCS of ``entry`` without ``hash`` and ``signature``."""
    body = {k: v for k, v in entry.items() if k not in ("hash", "signature")}
    return sha256_hex(canonical_bytes(body))


def entry_sign_bytes(entry: dict[str, Any]) -> bytes:
    """What the node key signs: JCS of ``entry`` without ``signature``."""
    return canonical_bytes({k: v for k, v in entry.items() if k != "signature"})


@dataclass(frozen=True, slots=True)
class LogVerdict:
    ok: bool
    entries: int
    head_seq: int | None
    head_hash: str
    bad_line: int | None = None  # 1-based line number of the first bad entry
    reason: str | None = None
    unsigned_entries: int = 0  # the legacy prefix whose hash chain alone was checked

    @property
    def warning(self) -> str | None:
        if not self.unsigned_entries:
            return None
        return (
            f"the first {self.unsigned_entries} entries are unsigned (written before "
            "entries were signed): only their hash chain was checked"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "bad_line": self.bad_line,
            "reason": self.reason,
            "unsigned_entries": self.unsigned_entries,
            "warning": self.warning,
        }


def verify_log(
    path: Path,
    node_pubkeys: Iterable[str],
    *,
    head: tuple[int, str] | None = None,
    require_signed: bool = False,
) -> LogVerdict:
    """Check the chain and signatures of ``path`` (see ``verify_lines``)."""
    try:
        with path.open("rb") as handle:
            return verify_lines(
                _lines(handle), node_pubkeys, head=head, require_signed=require_signed
            )
    except FileNotFoundError:
        return verify_lines([], node_pubkeys, head=head, require_signed=require_signed)


def _lines(handle: Iterable[bytes]) -> Iterator[bytes]:
    for line in handle:
        yield line[:-1] if line.endswith(b"\n") else line


def verify_lines(
    lines: Iterable[bytes],
    node_pubkeys: Iterable[str],
    *,
    head: tuple[int, str] | None = None,
    require_signed: bool = False,
) -> LogVerdict:
    """Check a log's lines: the chain, each signature by one of ``node_pubkeys``, and that
    the chain passes through ``head`` (a ``(seq, hash)`` an auditor recorded earlier).

    The verdict names the first bad line; a missing ``head`` fails with no line."""
    check = _Checker(frozenset(node_pubkeys), require_signed)
    for number, line in enumerate(lines, start=1):
        reason = check.feed(line, head)
        if reason is not None:
            return check.verdict(number, reason)
    if head is not None and not check.head_seen:
        return check.verdict(None, f"the log no longer reaches the recorded head seq {head[0]}")
    return check.verdict(None, None)


class _Checker:
    """The state of one pass over a log: the last good entry and what was seen."""

    def __init__(self, keys: frozenset[str], require_signed: bool) -> None:
        self.keys, self.require_signed = keys, require_signed
        self.prev, self.seq, self.unsigned, self.signed = ZERO_HASH, -1, 0, False
        self.head_seen = False

    def feed(self, line: bytes, head: tuple[int, str] | None) -> str | None:
        try:
            entry = json.loads(line)
        except ValueError:
            return "not JSON"
        if not isinstance(entry, dict):
            return "not a JSON object"
        try:
            reason = _chain_reason(entry, self.prev, self.seq + 1) or self._signature_reason(entry)
        except EncodingError:
            return "not canonical JSON (outside the subset entries are written in)"
        if reason is None and head is not None and entry["seq"] == head[0]:
            if entry["hash"] != head[1]:
                return f"seq {head[0]} is not the recorded head: the log was rewritten"
            self.head_seen = True
        if reason is None:
            self.prev, self.seq = entry["hash"], entry["seq"]
        return reason

    def _signature_reason(self, entry: dict[str, Any]) -> str | None:
        if "signature" not in entry and "signer" not in entry:
            if self.signed:
                return "an unsigned entry after signed ones"
            if self.require_signed:
                return "the entry is unsigned (a log written before entries were signed)"
            self.unsigned += 1
            return None
        self.signed = True
        signer, signature = entry.get("signer"), entry.get("signature")
        if entry.get("domain") != DOMAIN:
            return f"domain is {entry.get('domain')!r}, expected {DOMAIN!r}"
        if not isinstance(signer, str) or signer not in self.keys:
            return f"signed by {signer!r}, which is not an expected node key"
        if not isinstance(signature, str) or not verify_hex(
            signer, entry_sign_bytes(entry), signature
        ):
            return "the signature does not verify under the signer's key"
        return None

    def verdict(self, bad_line: int | None, reason: str | None) -> LogVerdict:
        good = self.seq + 1
        head_seq = self.seq if self.seq >= 0 else None
        return LogVerdict(
            reason is None, good, head_seq, self.prev, bad_line, reason, self.unsigned
        )


def _chain_reason(entry: dict[str, Any], prev: str, seq: int) -> str | None:
    if type(entry.get("seq")) is not int or entry["seq"] != seq:
        return f"seq is {entry.get('seq')!r}, expected {seq}"
    if entry.get("prev_hash") != prev:
        return "prev_hash does not match the previous entry's hash"
    if entry.get("hash") != entry_hash(entry):
        return "hash does not match the entry's contents"
    return None


def open_access_log(data_dir: Path, key: KeySigner) -> AccessLog:
    """The access log of the node whose data directory is ``data_dir``, signed by ``key``."""
    return AccessLog(data_dir / LOG_FILE, key)


class AccessLog:
    """Append-only, fsynced, hash-chained, signed log file; safe to share between handlers."""

    def __init__(self, path: Path, key: KeySigner) -> None:
        self.path = path
        self._key = key
        self._lock = threading.Lock()
        self.head_seq, self.head_hash = self._load_head()

    @property
    def signer(self) -> str:
        """The public key (hex) that signs new entries: the node key."""
        return self._key.public_hex

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

    def authorize(
        self, token: TokenInfo | None, *, record_id: str, state: str, case_ref: str | None
    ) -> TokenInfo:
        """``require_body_reader`` for one record, with a refusal of a known token logged.

        The call a body or sealed read makes once it knows the record's case:
        a 403 (role, state or case) is appended with its code as the outcome
        before it is raised; a 401 names nobody and is not logged."""
        try:
            return require_body_reader(token, state=state, case_ref=case_ref)
        except Forbidden as exc:
            if token is not None:
                self.append(record_id=record_id, state=state, token=token, outcome=exc.code)
            raise

    def append(
        self, *, record_id: str, state: str, token: TokenInfo, outcome: str
    ) -> dict[str, Any]:
        """Sign, append and fsync one entry; return it (``seq``, ``hash`` for the reply)."""
        if outcome not in OUTCOMES:
            raise InvariantViolation(f"unknown access outcome {outcome!r}")
        with self._lock:
            entry = self._entry(record_id, state, token, outcome)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, canonical_bytes(entry) + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
            self.head_seq, self.head_hash = entry["seq"], entry["hash"]
            return entry

    def _entry(self, record_id: str, state: str, token: TokenInfo, outcome: str) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "seq": self.head_seq + 1,
            "time": format_time(clock.utcnow()),
            "record_id": record_id,
            "state": state,
            "token_id": token.id,
            "role": token.role,
            "outcome": outcome,
            "prev_hash": self.head_hash,
            "domain": DOMAIN,
            "signer": self._key.public_hex,
        }
        entry["hash"] = entry_hash(entry)
        entry["signature"] = self._key.sign(entry_sign_bytes(entry)).hex()
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

    def verify(self, node_pubkeys: Iterable[str] | None = None) -> LogVerdict:
        """The node's own check: signatures by ``node_pubkeys`` (default: its current key)."""
        keys = [self._key.public_hex] if node_pubkeys is None else node_pubkeys
        return verify_log(self.path, keys)
