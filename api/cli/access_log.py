"""``comity access-log verify``: check a node's signed access log without trusting the node.

The node's own ``GET /v1/access-log?verify=true`` is the node vouching for
itself. This command reads the entries (page by page from the API, or a copy
of ``access-log.jsonl``) and checks them here with ``node.access_log``: the
hash chain, every signature against the node keys given with
``--node-pubkey`` (take them from the chain's validator set; repeat the
option for keys the node used before a rotation), and with ``--head`` that
the chain still passes through a head recorded earlier. Without
``--node-pubkey`` it takes the key the node reports in ``/v1/status`` and
says so: that catches a rewrite by anyone without the node key, but not one
by the node itself.

Exit status: 0 when the log holds (warnings, such as an unsigned legacy
prefix, go to stderr); 1 when a check fails; 2 for usage errors and nodes or
files that cannot be read. docs/AUDIT.md "Access logs".
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import click
import httpx

from api.cli.client import ClientFailure, NodeClient
from ledger.canonical import canonical_bytes
from ledger.errors import ComityError
from ledger.keys import public_key_from_text
from node.access_log import PAGE_MAX, LogVerdict, verify_lines, verify_log

HEAD_RE = re.compile(r"(\d+):([0-9a-f]{64})")
PAGES_MAX = 1_000_000  # a bound on a node that never stops serving pages


def _exit(code: int, message: str) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


def _head(text: str | None) -> tuple[int, str] | None:
    if text is None:
        return None
    match = HEAD_RE.fullmatch(text)
    if match is None:
        _exit(2, "error: --head is SEQ:HASH, the seq and 64-hex hash GET /v1/access-log reported")
    return int(match[1]), match[2]


def served_lines(client: NodeClient) -> Iterator[bytes]:
    """The node's entries, oldest first, as canonical lines (fetched a page at a time)."""
    after = -1
    for _ in range(PAGES_MAX):
        body = client.get("/v1/access-log", after=after, limit=PAGE_MAX)
        entries = body.get("entries")
        if not isinstance(entries, list):
            raise ClientFailure(200, "bad_reply", "the access-log reply has no entries list")
        for entry in entries:
            yield _line(entry)
        if len(entries) < PAGE_MAX:
            return
        last = entries[-1]
        seq = last.get("seq") if isinstance(last, dict) else None
        if type(seq) is not int or seq <= after:
            raise ClientFailure(200, "bad_reply", "the access-log pages do not move forward")
        after = seq


def _line(entry: Any) -> bytes:
    try:
        return canonical_bytes(entry)
    except ComityError:
        return b"<an entry outside canonical JSON>"  # verify_lines reports it as not JSON


def _served_key(client: NodeClient) -> str:
    key = client.status().get("node_pubkey")
    if not isinstance(key, str):
        raise ClientFailure(200, "bad_reply", "/v1/status has no node_pubkey")
    click.echo(
        f"note: node key {key} taken from the node's own /v1/status; pass --node-pubkey "
        "with the key from the chain's validator set to trust no node for it",
        err=True,
    )
    return key


def _report(verdict: LogVerdict, keys: list[str]) -> None:
    if verdict.warning:
        click.echo(f"WARNING: {verdict.warning}", err=True)
    if not verdict.ok:
        where = f"line {verdict.bad_line}" if verdict.bad_line is not None else "end of log"
        _exit(1, f"FAIL at {where} (after {verdict.entries} good entries): {verdict.reason}")
    click.echo(
        f"OK: {verdict.entries} access-log entries verified against "
        f"{', '.join(k[:16] + '...' for k in keys)}; "
        f"head seq {verdict.head_seq} hash {verdict.head_hash}"
    )


@click.group("access-log")
def access_log() -> None:
    """A node's signed log of reads of private details."""


@access_log.command("verify")
@click.option("--node", "url", default=None, help="the node's API URL (reads GET /v1/access-log)")
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="a copy of the node's access-log.jsonl instead of --node",
)
@click.option(
    "--node-pubkey",
    "pubkeys",
    multiple=True,
    help="a node key (64 hex or PEM file contents) the entries may be signed by; repeatable",
)
@click.option("--head", default=None, help="SEQ:HASH of a head recorded earlier")
@click.option("--require-signed", is_flag=True, help="fail on unsigned (legacy) entries")
@click.option(
    "--token",
    envvar="COMITY_TOKEN",
    default=None,
    help="an auditor or operator token of that node (env COMITY_TOKEN)",
)
def verify_access_log(
    url: str | None,
    path: Path | None,
    pubkeys: tuple[str, ...],
    head: str | None,
    require_signed: bool,
    token: str | None,
) -> None:
    """Check the chain, each entry's node signature and (with --head) truncation."""
    if (url is None) == (path is None):
        _exit(2, "error: give exactly one of --node and --file")
    try:
        keys = [public_key_from_text(k) for k in pubkeys]
    except ComityError as exc:
        _exit(2, f"error: --node-pubkey: {exc}")
    recorded = _head(head)
    if path is not None:
        if not keys:
            _exit(2, "error: --file needs --node-pubkey (a file does not say whose it is)")
        _report(verify_log(path, keys, head=recorded, require_signed=require_signed), keys)
        return
    assert url is not None
    client = NodeClient(url, token)
    try:
        keys = keys or [_served_key(client)]
        verdict = verify_lines(
            served_lines(client), keys, head=recorded, require_signed=require_signed
        )
    except (ClientFailure, httpx.HTTPError, OSError) as exc:
        _exit(2, f"error: {url}: {exc}")
    finally:
        client.close()
    _report(verdict, keys)
