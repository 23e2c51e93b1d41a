"""Bearer tokens: the tokens.json functions the CLI calls, and access control on the API."""

from __future__ import annotations

import json
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from ledger.errors import ClientError, NotFound
from node.tokens import TokenStore, create_token, list_tokens, revoke_token, tokens_path
from tests.cluster import Cluster

READS = (
    "/v1/status",
    "/v1/blocks",
    "/v1/validators",
    "/v1/search?type=eio",
    f"/v1/records/{'ab' * 32}",
    "/v1/proofs/consistency?first=1&second=1",
)


def test_tokens_file_holds_hashes_only_with_mode_0600(tmp_path: Path) -> None:
    token_id, secret = create_token(tmp_path, "auditor", "EU audit office")
    raw = tokens_path(tmp_path).read_text()
    assert secret not in raw and secret.startswith(f"cmt_{token_id}_")
    assert stat.S_IMODE(tokens_path(tmp_path).stat().st_mode) == 0o600
    rows = list_tokens(tmp_path)
    assert rows == [
        {
            "id": token_id,
            "role": "auditor",
            "label": "EU audit office",
            "created_at": rows[0]["created_at"],
            "revoked": False,
            "state": None,  # made without a state: bound to this node's (node/tokens.py)
            "cases": [],
        }
    ]
    assert "sha256" in json.loads(raw)["tokens"][0]
    assert not list(tmp_path.glob(".tokens.*.tmp"))  # the temp file was renamed away


def test_revoke_and_bad_arguments(tmp_path: Path) -> None:
    token_id, secret = create_token(tmp_path, "operator", "ops")
    store = TokenStore(tokens_path(tmp_path))
    info = store.authenticate(secret)
    assert info is not None and info.role == "operator"
    assert store.authenticate(secret + "x") is None
    revoke_token(tmp_path, token_id)
    assert store.authenticate(secret) is None  # reloaded because the file changed
    assert list_tokens(tmp_path)[0]["revoked"] is True
    with pytest.raises(NotFound):
        revoke_token(tmp_path, "nope")
    with pytest.raises(ClientError, match="role"):
        create_token(tmp_path, "admin", "x")
    with pytest.raises(ClientError, match="label"):
        create_token(tmp_path, "auditor", "")


def test_unreadable_file_fails_closed(tmp_path: Path) -> None:
    _, secret = create_token(tmp_path, "auditor", "a")
    tokens_path(tmp_path).write_text("{not json")
    assert TokenStore(tokens_path(tmp_path)).authenticate(secret) is None


@pytest_asyncio.fixture
async def closed(tmp_path: Path) -> AsyncIterator[tuple[Cluster, Path]]:
    """A cluster whose FR node has ``open_read = false`` and a real data dir."""
    cluster = Cluster(4)
    node = cluster.nodes["FR"]
    data_dir = tmp_path / "FR"
    node.config = node.config.model_copy(update={"open_read": False, "data_dir": data_dir})
    await cluster.start()
    try:
        yield cluster, data_dir
    finally:
        await cluster.stop()


async def test_closed_reads_need_a_token(closed: tuple[Cluster, Path]) -> None:
    cluster, data_dir = closed
    api = cluster.api["FR"]
    for path in READS:
        response = await api.get(path)
        assert response.status_code == 401, path
        assert response.json() == {
            "error": {"code": "unauthorized", "message": "a valid bearer token is required"}
        }
        assert response.headers["www-authenticate"] == "Bearer"
        wrong = await api.get(path, headers={"Authorization": "Bearer cmt_guess"})
        assert wrong.status_code == 401 and wrong.json() == response.json()
    _, auditor = create_token(data_dir, "auditor", "auditor")
    headers = {"Authorization": f"Bearer {auditor}"}
    assert (await api.get("/v1/status", headers=headers)).status_code == 200
    missing = await api.get(f"/v1/records/{'ab' * 32}", headers=headers)
    assert missing.status_code == 404  # authenticated: now the real answer
    for open_path in ("/healthz", "/readyz", "/openapi.json"):
        assert (await api.get(open_path)).status_code in (200, 503), open_path


async def test_writes_are_authorised_by_signature_not_token(closed: tuple[Cluster, Path]) -> None:
    cluster, _ = closed
    response = await cluster.api["FR"].post("/v1/records", json=cluster.envelope("FR"))
    assert response.status_code == 202, response.text


async def test_operator_endpoint_and_revocation(closed: tuple[Cluster, Path]) -> None:
    cluster, data_dir = closed
    api = cluster.api["FR"]
    auditor_id, auditor = create_token(data_dir, "auditor", "auditor")
    _, operator = create_token(data_dir, "operator", "ops")
    as_auditor = {"Authorization": f"Bearer {auditor}"}
    denied = await api.get("/v1/peers", headers=as_auditor)
    assert denied.status_code == 403
    assert denied.json() == {
        "error": {"code": "forbidden", "message": "this endpoint needs an operator token"}
    }
    peers = await api.get("/v1/peers", headers={"Authorization": f"Bearer {operator}"})
    assert peers.status_code == 200
    assert {p["state"] for p in peers.json()["peers"]} == {"CN", "TH", "VN"}
    revoke_token(data_dir, auditor_id)  # as the CLI would, while the node runs
    revoked = await api.get("/v1/status", headers=as_auditor)
    assert (revoked.status_code, revoked.json()["error"]["code"]) == (401, "unauthorized")


async def test_open_read_still_guards_operator_endpoints(cluster: Cluster) -> None:
    assert (await cluster.api["TH"].get("/v1/status")).status_code == 200
    response = await cluster.api["TH"].get("/v1/peers")
    assert (response.status_code, response.json()["error"]["code"]) == (401, "unauthorized")
