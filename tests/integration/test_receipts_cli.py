"""``comity receipt email|import`` against the in-process consortium (docs/CHANNELS.md).

The CLI's synchronous HTTP client is bridged into the cluster's event loop
(``Bridge``), so the commands run as an operator runs them, against CN's API,
without a node process.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from api.cli.client import NodeClient
from api.cli.main import main
from ledger.keys import save_signing_key
from ledger.keyspace import receipt_key
from tests.cluster import Cluster
from tests.integration.test_receipts_webhook import _request, cluster
from tests.unit.test_dkim_verify import _rsa, _sign

__all__ = ["cluster"]  # the fixture, shared with the webhook tests

RFC_BODY = b"Hi.\r\n\r\nWe lost the game. Are you hungry yet?\r\n\r\nJoe.\r\n"


class Bridge(httpx.BaseTransport):
    """A sync transport that sends each request through an async client on ``loop``."""

    def __init__(self, client: httpx.AsyncClient, loop: asyncio.AbstractEventLoop) -> None:
        self.client, self.loop = client, loop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        headers = {k: v for k, v in request.headers.items() if k not in ("host", "content-length")}

        async def send() -> httpx.Response:
            reply = await self.client.request(
                request.method, request.url.raw_path.decode(), headers=headers, content=body
            )
            await reply.aread()
            return reply

        reply = asyncio.run_coroutine_threadsafe(send(), self.loop).result(30)
        return httpx.Response(reply.status_code, headers=reply.headers, content=reply.content)


@pytest.fixture
def cli(cluster: Cluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    key_path = tmp_path / "cn-investigator.key"
    save_signing_key(key_path, cluster.member("CN").investigator)

    async def run(*args: str) -> Result:
        loop = asyncio.get_running_loop()

        def client(url: str, token: str | None = None, timeout_s: float = 30.0) -> NodeClient:
            made = NodeClient(url, token, timeout_s)
            made.http.close()
            headers = {"authorization": f"Bearer {token}"} if token else {}
            made.http = httpx.Client(
                base_url=url, headers=headers, transport=Bridge(cluster.api["CN"], loop)
            )
            return made

        monkeypatch.setattr("api.cli.receipts.NodeClient", client)
        argv = [*args, "--node", "http://cn.api", "--key", str(key_path)]
        return await asyncio.to_thread(CliRunner().invoke, main, argv)

    return run


def _csv(request_id: str) -> str:
    header = (
        "record_id,channel,external_id,document_sha256,sender_endpoint,recipient_endpoint,"
        "sent_at,delivery_evidence\n"
    )
    rows = [
        f"{request_id},i24_7,I247-2026-000{n},{f'{n}d' * 32},CN-NCB,TH-NCB,"
        f"2026-03-01T09:00:00Z,delivery:{f'{n}e' * 32}:2026-03-01T09:01:00Z"
        for n in (1, 2)
    ]
    rows.append(f"{request_id},carrier_pigeon,X-1,{'0d' * 32},a,b,2026-03-01T09:00:00Z,")
    return header + "\n".join(rows) + "\n"


async def test_import_files_each_row_once_and_reports_per_row(
    cluster: Cluster, cli: Any, tmp_path: Path
) -> None:
    request_id = await _request(cluster)
    export = tmp_path / "outbox.csv"
    export.write_text(_csv(request_id))
    first = await cli("receipt", "import", str(export), "--csv")
    lines = [json.loads(line) for line in first.output.splitlines()]
    assert first.exit_code == 1, first.output  # one bad row
    assert [line["status"] for line in lines] == ["anchored", "anchored", "error"]
    assert (lines[2]["code"], lines[2]["field"]) == ("invalid_receipt", "row[2].channel")
    ids = [line["id"] for line in lines[:2]]
    for record_id in ids:
        assert await cluster.nodes["CN"].wait_committed(record_id, 15)
    again = await cli("receipt", "import", str(export), "--csv")
    assert [json.loads(line)["status"] for line in again.output.splitlines()] == [
        "duplicate",
        "duplicate",
        "error",
    ]
    store = cluster.nodes["CN"].store
    assert [rid for _, rid in store.search("receipt_of", request_id)] == ids
    key = receipt_key("CN", "i24_7", "I247-2026-0001")
    assert [rid for _, rid in store.search("receipt", key)] == ids[:1]


async def test_email_dry_run_then_submit(cluster: Cluster, cli: Any, tmp_path: Path) -> None:
    request_id = await _request(cluster)
    bh = base64.b64encode(hashlib.sha256(RFC_BODY).digest()).decode()
    message = tmp_path / "request.eml"
    message.write_bytes(
        b"DKIM-Signature: v=1; a=rsa-sha256; c=simple/simple; d=example.com;\r\n"
        b" s=brisbane; h=from:to:subject; bh=" + bh.encode() + b"; b=AAAA\r\n"
        b"From: Joe SixPack <joe@football.example.com>\r\n"
        b"To: Suzie Q <suzie@shopping.example.net>\r\n"
        b"Subject: Is dinner ready?\r\n"
        b"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
        b"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n\r\n" + RFC_BODY
    )
    dry = await cli("receipt", "email", str(message), "--refs", request_id, "--dry-run")
    assert dry.exit_code == 0, dry.output
    record = json.loads(dry.output.split("\nDKIM")[0])
    assert record["external_id"] == "20030712040037.46341.5F8J@football.example.com"
    assert record["document_sha256"] == hashlib.sha256(message.read_bytes()).hexdigest()
    assert record["sent_at"] == "2003-07-12T04:00:37.000Z"
    assert record["dkim"]["body_hash"] == "verified"
    assert (record["counterpart_state"], record["visibility"]) == ("TH", "parties")
    assert len(cluster.nodes["CN"].mempool) == 0  # a dry run files nothing
    filed = await cli("receipt", "email", str(message), "--refs", request_id)
    assert filed.exit_code == 0, filed.output
    receipt_id, dkim = filed.output.splitlines()[:2]
    assert "body hash verified, signature not checked" in dkim
    assert await cluster.nodes["CN"].wait_committed(receipt_id, 15)
    twice = await cli("receipt", "email", str(message), "--refs", request_id)
    assert twice.exit_code == 2 and "duplicate_receipt" in twice.output


async def test_email_with_a_saved_dkim_key_files_a_verified_receipt(
    cluster: Cluster, cli: Any, tmp_path: Path
) -> None:
    """--dkim-key: the header signature checked offline, the verdict admitted and committed."""
    request_id = await _request(cluster)
    private, record = _rsa()
    message = tmp_path / "signed.eml"
    message.write_bytes(_sign(private, b"rsa-sha256"))
    key_file = tmp_path / "poc2026.txt"
    key_file.write_bytes(record)
    filed = await cli(
        "receipt", "email", str(message), "--refs", request_id, "--dkim-key", str(key_file)
    )
    assert filed.exit_code == 0, filed.output
    receipt_id, line = filed.output.splitlines()[:2]
    assert "signature verified (key from file)" in line
    assert await cluster.nodes["CN"].wait_committed(receipt_id, 15)
    tampered = tmp_path / "tampered.eml"
    tampered.write_bytes(message.read_bytes().replace(b"CN-2026-0042", b"CN-2026-0043"))
    dry = await cli(
        "receipt",
        "email",
        str(tampered),
        "--refs",
        request_id,
        "--dkim-key",
        str(key_file),
        "--dry-run",
    )
    assert dry.exit_code == 0, dry.output
    dkim_field = json.loads(dry.output)["dkim"]
    assert (dkim_field["verified"], dkim_field["reason"]) == ("failed", "bad_signature")
    both = await cli(
        "receipt",
        "email",
        str(message),
        "--refs",
        request_id,
        "--dkim",
        "body",
        "--dkim-key",
        str(key_file),
    )
    assert both.exit_code == 2 and "--dkim-key is for --dkim verify" in both.output


async def test_email_dkim_verify_looks_the_key_up_and_a_dead_dns_files_nothing(
    cluster: Cluster, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.cli import receipts
    from node.dkim_verify import DkimUnavailable, KeySource

    request_id = await _request(cluster)
    private, record = _rsa()
    message = tmp_path / "signed.eml"
    message.write_bytes(_sign(private, b"rsa-sha256"))
    monkeypatch.setattr(receipts, "dns_source", lambda: KeySource("dns", lambda _n: record))
    args = ("receipt", "email", str(message), "--refs", request_id, "--dkim", "verify")
    dry = await cli(*args, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.output)["dkim"]["key_source"] == "dns"

    def down(_name: str) -> bytes | None:
        raise DkimUnavailable("dns.exception.Timeout")

    monkeypatch.setattr(receipts, "dns_source", lambda: KeySource("dns", down))
    failed = await cli(*args)
    assert failed.exit_code == 2 and "nothing filed" in failed.output
    assert len(cluster.nodes["CN"].mempool) == 0
