"""A small HTTP client of one node's API, for the command line."""

from __future__ import annotations

from typing import Any

import httpx

from ledger.errors import RemoteError


class NodeClient:
    """A small synchronous client of one node's HTTP API."""

    def __init__(self, url: str, token: str | None = None, timeout_s: float = 30.0) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self.http.close()

    def status(self) -> dict[str, Any]:
        return self._json(self.http.get("/v1/status"))

    def members(self) -> dict[str, Any]:
        """``GET /v1/members``: every member the chain knows, with its current enc_pubkey."""
        return self._json(self.http.get("/v1/members"))

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        """GET ``path`` with query ``params``; the reply object or ``ClientFailure``."""
        return self._json(self.http.get(path, params=params))

    def text(self, path: str, **params: Any) -> str:
        """GET ``path`` for a text reply (e.g. ``format=csv``); ``ClientFailure`` on an error."""
        response = self.http.get(path, params=params)
        if response.status_code >= 400:
            self._json(response)  # raises with the error body's code
        return response.text

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


class ClientFailure(RemoteError):
    """The node answered with an error (``status``, its ``code``) or a reply not an object."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status, self.code, self.message = status, code, message
