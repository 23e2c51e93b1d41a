"""``comity access-log verify`` and ``comity token create --case`` (api/cli; issue 17, L5).

The node is a mock transport serving a real signed log, so what is checked is
the command's own reading of the pages, not the node's opinion of its log.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from api.cli import access_log as cli
from api.cli.client import NodeClient
from api.cli.main import main
from ledger.keys import SigningKey
from node.access_log import AccessLog, entry_hash
from node.tokens import TokenInfo, list_tokens

NODE = SigningKey.generate()
OTHER = SigningKey.generate()
TOKEN = TokenInfo("tok1", "investigator", "t", "2026-01-01T00:00:00Z", False, "0" * 64, "TH")


def _log(path: Path, n: int) -> AccessLog:
    log = AccessLog(path, NODE)
    for i in range(n):
        log.append(record_id=f"{i:064x}", state="TH", token=TOKEN, outcome="ok")
    return log


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AccessLog:
    """A node serving ``tmp_path/access-log.jsonl`` two entries a page, to a bearer token."""
    log = _log(tmp_path / "access-log.jsonl", 5)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != "Bearer cmt_x":
            return httpx.Response(401, json={"error": {"code": "unauthorized", "message": "-"}})
        if request.url.path == "/v1/status":
            return httpx.Response(200, json={"state": "TH", "node_pubkey": NODE.public_hex})
        after, limit = int(request.url.params["after"]), int(request.url.params["limit"])
        return httpx.Response(200, json={"entries": log.page(after, limit)})

    def client(url: str, token: str | None) -> NodeClient:
        made = NodeClient(url, token)
        made.http = httpx.Client(
            transport=httpx.MockTransport(handler), base_url=url, headers=made.http.headers
        )
        return made

    monkeypatch.setattr(cli, "NodeClient", client)
    monkeypatch.setattr(cli, "PAGE_MAX", 2)  # five entries: three pages
    return log


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, ["access-log", "verify", *args])


def test_verify_pages_through_the_served_log(served: AccessLog) -> None:
    result = _run("--node", "http://th", "--token", "cmt_x", "--node-pubkey", NODE.public_hex)
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"OK: 5 access-log entries verified against {NODE.public_hex[:16]}...; "
        f"head seq 4 hash {served.head_hash}\n"
    )


def test_without_a_key_it_says_whose_word_it_took(served: AccessLog) -> None:
    result = _run("--node", "http://th", "--token", "cmt_x")
    assert result.exit_code == 0, result.output
    assert f"node key {NODE.public_hex} taken from the node's own /v1/status" in result.stderr


def test_a_log_signed_by_an_unexpected_key_fails(served: AccessLog) -> None:
    result = _run("--node", "http://th", "--token", "cmt_x", "--node-pubkey", OTHER.public_hex)
    assert result.exit_code == 1
    assert "FAIL at line 1 (after 0 good entries): signed by" in result.stderr


def test_a_head_the_log_no_longer_reaches_fails(served: AccessLog, tmp_path: Path) -> None:
    head = f"{served.head_seq}:{served.head_hash}"
    path = tmp_path / "access-log.jsonl"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:3]))
    result = _run("--node", "http://th", "--token", "cmt_x", "--head", head)
    assert result.exit_code == 1
    assert "FAIL at end of log (after 3 good entries): the log no longer reaches" in result.stderr


def test_usage_errors_and_an_unreadable_node_exit_2(served: AccessLog, tmp_path: Path) -> None:
    assert _run().exit_code == 2
    assert _run("--node", "http://th", "--head", "4:xyz").exit_code == 2
    file_only = _run("--file", str(tmp_path / "access-log.jsonl"))
    assert file_only.exit_code == 2 and "--file needs --node-pubkey" in file_only.stderr
    no_token = _run("--node", "http://th", "--node-pubkey", NODE.public_hex)
    assert no_token.exit_code == 2 and "HTTP 401 unauthorized" in no_token.stderr


def test_a_copied_file_verifies_offline_and_warns_of_a_legacy_prefix(tmp_path: Path) -> None:
    path = tmp_path / "copy.jsonl"
    legacy: dict[str, Any] = {"seq": 0, "prev_hash": "0" * 64, "record_id": "ab" * 32}
    legacy["hash"] = entry_hash(legacy)
    path.write_text(json.dumps(legacy) + "\n")
    _log(path, 2)
    result = _run("--file", str(path), "--node-pubkey", NODE.public_hex)
    assert result.exit_code == 0, result.output
    assert "WARNING: the first 1 entries are unsigned" in result.stderr
    assert "OK: 3 access-log entries" in result.stdout
    strict = _run("--file", str(path), "--node-pubkey", NODE.public_hex, "--require-signed")
    assert strict.exit_code == 1 and "FAIL at line 1" in strict.stderr


def test_token_create_binds_the_node_state_and_cases(tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    (tmp_path / "g.json").write_text("{}")  # must exist; token create never reads them
    (tmp_path / "k.pem").write_text("")
    config.write_text(
        'state = "TH"\ngenesis_path = "g.json"\nnode_key_path = "k.pem"\ndata_dir = "data"\n'
        "[api]\nport = 8001\n[p2p]\nport = 9001\n"
    )
    args = ["token", "create", "--config", str(config), "--role", "auditor"]
    result = CliRunner().invoke(main, [*args, "--case", "TH-1", "--case", "TH-2"])
    assert result.exit_code == 0, result.output
    assert "(auditor, TH, cases TH-1, TH-2)" in result.stderr
    assert result.stdout.startswith("cmt_")
    [row] = list_tokens(tmp_path / "data")
    assert (row["role"], row["state"], row["cases"]) == ("auditor", "TH", ["TH-1", "TH-2"])
    bad = CliRunner().invoke(main, [*args, "--case", "x" * 129])
    assert bad.exit_code == 2 and "case ref is 1-128 characters" in bad.stderr
