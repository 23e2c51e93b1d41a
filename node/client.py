"""Client-side helpers for the CLI: build, sign and submit records over HTTP."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path
from typing import Any

import httpx

from ledger.canonical import canonical_bytes
from ledger.keys import SigningKey
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


def sign_envelope(key: SigningKey, record: dict[str, Any]) -> dict[str, Any]:
    return {
        "record": record,
        "signer": key.public_hex,
        "signature": key.sign(canonical_bytes(record)).hex(),
    }


class NodeClient:
    """A small synchronous client of one node's HTTP API."""

    def __init__(self, url: str, token: str | None = None, timeout_s: float = 30.0) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self.http.close()

    def status(self) -> dict[str, Any]:
        return self._json(self.http.get("/v1/status"))

    def submit(self, envelope: dict[str, Any]) -> dict[str, Any]:
        return self._json(self.http.post("/v1/records", json=envelope))

    def record(self, record_id: str, wait_s: float = 0) -> dict[str, Any]:
        params = {"wait": wait_s} if wait_s else {}
        return self._json(
            self.http.get(f"/v1/records/{record_id}", params=params, timeout=wait_s + 10)
        )

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = {"error": {"code": "not_json", "message": response.text[:300]}}
        if response.status_code >= 400:
            error = body.get("error", {}) if isinstance(body, dict) else {}
            raise ClientFailure(
                response.status_code,
                str(error.get("code", "error")),
                str(error.get("message", response.text[:300])),
            )
        if not isinstance(body, dict):
            raise ClientFailure(response.status_code, "not_object", "reply is not an object")
        return body


class ClientFailure(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status, self.code, self.message = status, code, message
