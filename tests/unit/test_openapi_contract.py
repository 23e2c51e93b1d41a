"""The OpenAPI document as configured: refs resolve, security follows open_read, 405s say Allow.

Built from a real ``create_app`` over an unstarted in-process node; no sockets.
The same document is fuzzed by schemathesis's CLI against a node process in
tests/integration/test_schemathesis_cli.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from tests.cluster import Cluster

SEALED_OR_OPERATOR = {
    ("get", "/v1/records/{record_id}/sealed"),
    ("get", "/v1/records/{record_id}/private"),
    ("get", "/v1/access-log"),
    ("get", "/v1/peers"),
    ("post", "/v1/admin/backup"),
}
PUBLIC = {("get", "/healthz"), ("get", "/readyz")}
WRITES = {("post", "/v1/records"), ("post", "/v1/records/batch")}
#: Authenticated by an HMAC signature header, not a bearer token (docs/CHANNELS.md).
HMAC_SIGNED = {("post", "/v1/receipts/webhook")}
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def _app(open_read: bool) -> FastAPI:
    node = next(iter(Cluster(1).nodes.values()))
    node.config = node.config.model_copy(update={"open_read": open_read})
    return create_app(node)


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method, path, operation


def _refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _resolve(doc: dict[str, Any], ref: str) -> object:
    assert ref.startswith("#/"), ref
    target: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(target, dict) and part in target, f"unresolvable $ref {ref}"
        target = target[part]
    return target


@pytest.mark.parametrize("open_read", [True, False])
def test_every_ref_resolves(open_read: bool) -> None:
    doc = _app(open_read).openapi()
    refs = set(_refs(doc))
    assert "#/components/schemas/BatchRequest" in refs and "#/components/schemas/Envelope" in refs
    for ref in refs:
        _resolve(doc, ref)
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def test_a_ref_that_does_not_resolve_is_caught() -> None:
    with pytest.raises(AssertionError, match="unresolvable"):
        _resolve({"components": {"schemas": {}}}, "#/components/schemas/BatchRequest")


@pytest.mark.parametrize("open_read", [True, False])
def test_security_and_401_follow_open_read(open_read: bool) -> None:
    doc = _app(open_read).openapi()
    seen = 0
    for method, path, operation in _operations(doc):
        key = (method, path)
        declared = bool(operation.get("security"))
        if key in SEALED_OR_OPERATOR:
            assert declared and {"401", "403"} <= set(operation["responses"]), key
        elif key in PUBLIC or key in WRITES:
            assert not declared and "401" not in operation["responses"], key
        elif key in HMAC_SIGNED:
            assert not declared and "401" in operation["responses"], key
            names = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
            assert "X-Comity-Signature" in names, key
        else:  # a read route
            seen += 1
            assert declared is not open_read, key
            assert ("401" in operation["responses"]) is not open_read, key
            if declared:
                assert operation["security"] == [{"HTTPBearer": []}], key
    assert seen >= 20


def test_every_error_status_has_the_error_body_and_parameters_their_constraints() -> None:
    doc = _app(False).openapi()
    for method, path, operation in _operations(doc):
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")) and not (path == "/readyz" and status == "503"):
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)
        if operation.get("parameters") or operation.get("requestBody"):
            assert "400" in operation["responses"], (method, path)
        for parameter in operation.get("parameters", []):
            if parameter["name"] in {"record_id", "sha256"}:
                assert parameter["schema"]["pattern"] == "^[0-9a-f]{64}$", (path, parameter)
    envelope = doc["components"]["schemas"]["Envelope"]
    assert envelope["required"] == ["record", "signer", "signature"]
    assert envelope["properties"]["signature"]["pattern"] == "^[0-9a-f]{128}$"
    batch = doc["components"]["schemas"]["BatchRequest"]["properties"]["envelopes"]
    assert batch["maxItems"] == 1000


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("TRACE", "/healthz", "GET"),
        ("DELETE", "/v1/records", "POST"),
        ("PUT", "/v1/records/" + "ab" * 32, "GET"),
        ("GET", "/v1/records/batch", "POST"),  # not a record id: the batch resource
        ("PATCH", "/v1/admin/backup", "POST"),
    ],
)
async def test_405_lists_the_allowed_methods(method: str, path: str, allow: str) -> None:
    transport = httpx.ASGITransport(app=_app(True))
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        reply = await client.request(method, path)
    assert reply.status_code == 405
    assert reply.headers["allow"] == allow
    assert reply.json() == {
        "error": {"code": "method_not_allowed", "message": "Method Not Allowed"}
    }
