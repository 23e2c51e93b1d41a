"""API bearer tokens: ``DATA_DIR/tokens.json``, holding only SHA-256 hashes of secrets.

Theory of operation
-------------------
A token is ``cmt_<id>_<random>``; the node stores ``sha256(token)`` with the
token's id, role (``auditor`` | ``investigator`` | ``operator``), label,
creation time and revoked flag, never the secret, so a leaked file grants
nothing. The CLI (``comity token create|list|revoke``) edits the file with
the plain functions below while the node runs: every write goes to a temp
file in the same directory (mode 0600) that is fsynced and renamed over the
old one, so a reader sees the old or the new file, never half of one, and an
``flock`` on a side file serialises concurrent editors. The node's
``TokenStore`` re-reads the file when its (mtime, size, inode) changes, so a
revocation takes effect on the next request.

A file that cannot be parsed is logged and treated as holding no valid
token (fail closed) until it is fixed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger.errors import ClientError, NotFound

log = logging.getLogger("comity.node.tokens")

TOKENS_FILE = "tokens.json"
TOKEN_ROLES = ("auditor", "investigator", "operator")
TOKEN_PREFIX = "cmt_"
LABEL_CHARS_MAX = 200
TOKENS_MAX = 10_000


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: str
    role: str
    label: str
    created_at: str
    revoked: bool
    sha256: str

    def public(self) -> dict[str, Any]:
        """What ``list_tokens`` shows: everything but the hash."""
        return {
            "id": self.id,
            "role": self.role,
            "label": self.label,
            "created_at": self.created_at,
            "revoked": self.revoked,
        }


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def tokens_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / TOKENS_FILE


# --- the file ----------------------------------------------------------------------------


def _parse(raw: bytes) -> list[TokenInfo]:
    obj = json.loads(raw)
    if not isinstance(obj, dict) or not isinstance(obj.get("tokens"), list):
        raise ValueError("tokens.json must be an object with a 'tokens' list")
    out = []
    for row in obj["tokens"]:
        info = TokenInfo(
            id=str(row["id"]),
            role=str(row["role"]),
            label=str(row["label"]),
            created_at=str(row["created_at"]),
            revoked=bool(row["revoked"]),
            sha256=str(row["sha256"]),
        )
        if info.role not in TOKEN_ROLES:
            raise ValueError(f"token {info.id} has unknown role {info.role!r}")
        out.append(info)
    return out


def _read(path: Path) -> list[TokenInfo]:
    try:
        return _parse(path.read_bytes())
    except FileNotFoundError:
        return []


def _write(path: Path, tokens: list[TokenInfo]) -> None:
    """Atomically replace ``path``: temp file (0600) in the same dir, fsync, rename."""
    body = json.dumps({"tokens": [asdict(t) for t in tokens]}, indent=2).encode() + b"\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tokens.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def _locked(data_dir: Path) -> Iterator[Path]:
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / (TOKENS_FILE + ".lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield tokens_path(data_dir)
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


# --- what the CLI calls ------------------------------------------------------------------


def create_token(data_dir: str | Path, role: str, label: str) -> tuple[str, str]:
    """Add a token; return ``(token_id, secret)``. The secret is shown once, never stored."""
    if role not in TOKEN_ROLES:
        raise ClientError(
            f"role must be one of {', '.join(TOKEN_ROLES)}", field="role", code="bad_role"
        )
    if not 0 < len(label) <= LABEL_CHARS_MAX:
        raise ClientError(
            f"label must be 1-{LABEL_CHARS_MAX} characters", field="label", code="bad_label"
        )
    token_id = secrets.token_hex(8)
    secret = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with _locked(Path(data_dir)) as path:
        tokens = _read(path)
        if len(tokens) >= TOKENS_MAX:
            raise ClientError(
                f"tokens.json already holds {TOKENS_MAX} tokens", code="too_many_tokens"
            )
        tokens.append(TokenInfo(token_id, role, label, created, False, hash_token(secret)))
        _write(path, tokens)
    return token_id, secret


def list_tokens(data_dir: str | Path) -> list[dict[str, Any]]:
    return [t.public() for t in _read(tokens_path(data_dir))]


def revoke_token(data_dir: str | Path, token_id: str) -> None:
    """Mark a token revoked (kept in the file so its id stays on record)."""
    with _locked(Path(data_dir)) as path:
        tokens = _read(path)
        if not any(t.id == token_id for t in tokens):
            raise NotFound(
                f"no token with id {token_id!r}", field="token_id", code="token_not_found"
            )
        _write(
            path,
            [
                TokenInfo(t.id, t.role, t.label, t.created_at, True, t.sha256)
                if t.id == token_id
                else t
                for t in tokens
            ],
        )


# --- what the node uses ------------------------------------------------------------------


class TokenStore:
    """The node's view of tokens.json, re-read whenever the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._by_hash: dict[str, TokenInfo] = {}

    def authenticate(self, secret: str) -> TokenInfo | None:
        """The live (unrevoked) token ``secret`` names, or None."""
        self._refresh()
        info = self._by_hash.get(hash_token(secret))
        return None if info is None or info.revoked else info

    def _refresh(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._stamp, self._by_hash = None, {}
            return
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == self._stamp:
            return
        try:
            tokens = _read(self.path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("cannot read %s, refusing all tokens until fixed: %s", self.path, exc)
            tokens = []
        self._stamp = stamp
        self._by_hash = {t.sha256: t for t in tokens}
