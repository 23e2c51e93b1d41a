"""SHA-256 and lowercase-hex helpers shared by every hashed structure."""

from __future__ import annotations

import hashlib
import re

from ledger.errors import EncodingError

_HEX_RE = re.compile(r"[0-9a-f]*")


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_hex(text: object, n_bytes: int) -> bool:
    """True if ``text`` is lowercase hex encoding exactly ``n_bytes`` bytes."""
    return (
        isinstance(text, str) and len(text) == 2 * n_bytes and _HEX_RE.fullmatch(text) is not None
    )


def parse_hex(text: object, n_bytes: int, field: str) -> bytes:
    """Decode lowercase hex of exactly ``n_bytes`` bytes, or raise naming ``field``."""
    if not isinstance(text, str) or not is_hex(text, n_bytes):
        raise EncodingError(
            f"{field} must be {2 * n_bytes} lowercase hex characters", field=field, code="bad_hex"
        )
    return bytes.fromhex(text)
