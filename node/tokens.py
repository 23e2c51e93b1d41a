"""API bearer tokens: ``DATA_DIR/tokens.json``, holding only SHA-256 hashes of secrets.

Theory of operation
-------------------
A token is ``cmt_<id>_<random>``; the node stores ``sha256(token)`` with the
token's id, role (``auditor`` | ``authority`` | ``investigator`` |
``operator``), label, creation time and revoked flag, never the secret, so a
leaked file grants nothing. The CLI (``comity token create|list|revoke``)
edits the file with the plain functions below while the node runs: every
write goes to a temp
file in the same directory (mode 0600) that is fsynced and renamed over the
old one, so a reader sees the old or the new file, never half of one, and an
``flock`` on a side file serialises concurrent editors. The node's
``TokenStore`` re-reads the file when its (mtime, size, inode) changes, so a
revocation takes effect on the next request.

A file that cannot be parsed is logged and treated as holding no valid
token (fail closed) until it is fixed.

Need to know (issue 17, finding L5)
-----------------------------------
A token is also bound to a state (``state``: the node's state when the CLI
made it) and may be bound to cases (``cases``: case refs; empty means every
case of that state). Reading a private body or sealed details goes through
``require_body_reader``, the one rule both the sealed endpoint and the body
endpoint apply:

- no valid token: 401 ``token_required``;
- role ``investigator`` or ``authority``: may read; role ``auditor``: only
  when bound to cases, so a general audit token reads the access log and the
  chain but no body; any other role: 403 ``role_not_allowed``;
- a token bound to another state: 403 ``state_not_allowed``;
- a token bound to cases, for a record outside them (or in no case): 403
  ``case_not_allowed``.

A token written before this rule has no ``state``: it counts as bound to the
state of the node whose file holds it, which is the only node that knows it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger.errors import ClientError, Forbidden, NotFound, Unauthorized

log = logging.getLogger("comity.node.tokens")

TOKENS_FILE = "tokens.json"
TOKEN_ROLES = ("auditor", "authority", "investigator", "operator")
#: Roles that may read private bodies and sealed details (an auditor only with cases).
BODY_READER_ROLES = ("auditor", "authority", "investigator")
TOKEN_PREFIX = "cmt_"
LABEL_CHARS_MAX = 200
TOKENS_MAX = 10_000
CASES_MAX = 100
CASE_REF_CHARS_MAX = 128  # as a record's case_ref (ledger/records.py)
STATE_RE = re.compile(r"[A-Z]{2}")


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: str
    role: str
    label: str
    created_at: str
    revoked: bool
    sha256: str
    state: str | None = None  # None: made before tokens named a state (see above)
    cases: tuple[str, ...] = ()  # empty: every case of the state

    def public(self) -> dict[str, Any]:
        """What ``list_tokens`` shows: everything but the hash."""
        return {
            "id": self.id,
            "role": self.role,
            "label": self.label,
            "created_at": self.created_at,
            "revoked": self.revoked,
            "state": self.state,
            "cases": list(self.cases),
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
        state, cases = row.get("state"), row.get("cases", [])
        if not isinstance(cases, list):
            raise ValueError(f"token {row['id']} has cases that are not a list")
        info = TokenInfo(
            id=str(row["id"]),
            role=str(row["role"]),
            label=str(row["label"]),
            created_at=str(row["created_at"]),
            revoked=bool(row["revoked"]),
            sha256=str(row["sha256"]),
            state=None if state is None else str(state),
            cases=tuple(str(c) for c in cases),
        )
        if info.role not in TOKEN_ROLES:
            raise ValueError(f"token {info.id} has unknown role {info.role!r}")
        _check_binding(info.state, info.cases, _file_error)
        out.append(info)
    return out


def _check_binding(
    state: str | None, cases: tuple[str, ...], error: Callable[[str, str], Exception]
) -> None:
    """``error(message, field)`` unless ``state`` is a state code (or None), ``cases`` refs."""
    if state is not None and not STATE_RE.fullmatch(state):
        raise error(f"state must be two capital letters, not {state!r}", "state")
    if len(cases) > CASES_MAX:
        raise error(f"a token is bound to at most {CASES_MAX} cases", "cases")
    for case in cases:
        if not 1 <= len(case) <= CASE_REF_CHARS_MAX:
            raise error(f"a case ref is 1-{CASE_REF_CHARS_MAX} characters", "cases")


def _file_error(message: str, field: str) -> Exception:
    return ValueError(f"{field}: {message}")


def _caller_error(message: str, field: str) -> Exception:
    return ClientError(message, field=field, code=f"bad_{field}")


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


def create_token(
    data_dir: str | Path,
    role: str,
    label: str,
    *,
    state: str | None = None,
    cases: Sequence[str] = (),
) -> tuple[str, str]:
    """Add a token; return ``(token_id, secret)``. The secret is shown once, never stored.

    ``state`` binds the token to a state (the CLI passes the node's), ``cases``
    to those case refs only (empty: every case of the state)."""
    if role not in TOKEN_ROLES:
        raise ClientError(
            f"role must be one of {', '.join(TOKEN_ROLES)}", field="role", code="bad_role"
        )
    if not 0 < len(label) <= LABEL_CHARS_MAX:
        raise ClientError(
            f"label must be 1-{LABEL_CHARS_MAX} characters", field="label", code="bad_label"
        )
    bound = tuple(dict.fromkeys(cases))
    _check_binding(state, bound, _caller_error)
    token_id = secrets.token_hex(8)
    secret = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with _locked(Path(data_dir)) as path:
        tokens = _read(path)
        if len(tokens) >= TOKENS_MAX:
            raise ClientError(
                f"tokens.json already holds {TOKENS_MAX} tokens", code="too_many_tokens"
            )
        tokens.append(
            TokenInfo(token_id, role, label, created, False, hash_token(secret), state, bound)
        )
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
        _write(path, [replace(t, revoked=True) if t.id == token_id else t for t in tokens])


# --- what the node uses ------------------------------------------------------------------


class TokenStore:
    """The node's view of tokens.json, re-read whenever the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._by_hash: dict[str, TokenInfo] = {}

    def authenticate(self, secret: str) -> TokenInfo | None:
        """The live (unrevoked) token ``secret`` names, or None."""
        return self._live(hash_token(secret))

    def current(self, token: TokenInfo) -> TokenInfo | None:
        """``token`` as the file holds it now: None once it is revoked or removed.

        For a holder of a long-lived authorisation (an event stream), so a
        revocation (or a new case binding) applies to it too."""
        return self._live(token.sha256)

    def _live(self, sha256: str) -> TokenInfo | None:
        self._refresh()
        info = self._by_hash.get(sha256)
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


# --- need to know: who may read a private body ---------------------------------------------


def check_body_reader(token: TokenInfo | None, *, state: str) -> TokenInfo:
    """The checks that need no record: a token, a reading role, this node's state.

    Call it before looking the record up, so a caller without the right learns
    nothing about which records exist; then ``require_body_reader`` with the
    record's case."""
    if token is None:
        raise Unauthorized(
            "reading private details needs a valid bearer token", code="token_required"
        )
    if token.role not in BODY_READER_ROLES:
        raise Forbidden(
            f"a token of role {token.role} reads no private details "
            f"(roles: {', '.join(BODY_READER_ROLES)})",
            field="token.role",
            code="role_not_allowed",
        )
    if token.role == "auditor" and not token.cases:
        raise Forbidden(
            "an auditor token reads private details only when bound to cases "
            "(comity token create --role auditor --case REF)",
            field="token.role",
            code="role_not_allowed",
        )
    if token.state is not None and token.state != state:
        raise Forbidden(
            f"this token is bound to {token.state}, not to {state}",
            field="token.state",
            code="state_not_allowed",
        )
    return token


def require_body_reader(token: TokenInfo | None, *, state: str, case_ref: str | None) -> TokenInfo:
    """``token`` if it may read a private body of ``state`` in case ``case_ref``, else raise.

    401 ``token_required``; 403 ``role_not_allowed``, ``state_not_allowed`` or
    ``case_not_allowed`` (a token bound to cases reads no record outside them,
    nor one in no case)."""
    info = check_body_reader(token, state=state)
    if info.cases and case_ref not in info.cases:
        raise Forbidden(
            "this token is not bound to the record's case",
            field="case_ref",
            code="case_not_allowed",
        )
    return info
