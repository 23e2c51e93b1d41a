"""Authoring records: fill the common fields, hash evidence files, sign envelopes.

Used by the CLI (``comity submit``, ``comity act new``) and by the node itself
when it writes a misbehaviour record under its own key.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ledger.canonical import canonical_bytes
from ledger.keys import KeySigner
from ledger.private import split
from ledger.records import SCHEMA, format_time
from node import clock


def hash_file(path: Path) -> dict[str, Any]:
    """SHA-256 and size of an evidence file, read in chunks (evidence can be large)."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return {"sha256": digest.hexdigest(), "size": size, "name": path.name}


def new_nonce() -> str:
    return secrets.token_hex(16)


def complete_record(record: dict[str, Any], *, chain_id: str) -> dict[str, Any]:
    """Fill the common fields a template may leave out (schema, chain, nonce, time)."""
    out = dict(record)
    out.setdefault("schema", SCHEMA)
    out.setdefault("chain_id", chain_id)
    out.setdefault("nonce", new_nonce())
    out.setdefault("occurred_at", format_time(clock.utcnow()))
    return out


def sign_envelope(key: KeySigner, record: dict[str, Any]) -> dict[str, Any]:
    return {
        "record": record,
        "signer": key.public_hex,
        "signature": key.sign(canonical_bytes(record)).hex(),
    }


def private_submission(
    key: KeySigner,
    record: dict[str, Any],
    *,
    retain_until: str,
    ref_parties: Callable[[str], Iterable[str]],
) -> dict[str, Any]:
    """A complete clear act as a private act's submission: the signed header and, in
    ``private``, its body (docs/PRIVACY.md). ``ref_parties`` gives each referenced
    record's parties (a node's ``GET /v1/records/{id}`` shows them in the header)."""
    header, body = split(record, retain_until=retain_until, ref_parties=ref_parties)
    return {**sign_envelope(key, header), "private": body}
