"""``comity verify``, ``comity bundle export|verify`` and ``comity watch``: auditing, trusting no node.

Exit status: 0 when everything holds; 1 when a check fails (the first failing
height and the reason are printed) or the watcher raised an alarm; 2 for
usage errors and nodes that cannot be read. docs/AUDIT.md walks through each.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn

import click
import httpx

from api.cli.audit_client import (
    Alarm,
    FetchError,
    HttpSource,
    Progress,
    Watcher,
    node_genesis,
    served_height,
    trusted_from_json,
    trusted_to_json,
    verify_chain,
)
from ledger.audit.bundle import UNPINNED, render_report, verify_bundle
from ledger.audit.chain import (
    ChainVerifier,
    check_genesis,
    complete_genesis,
    genesis_hash,
    is_hex,
    jcs,
    loads,
)
from ledger.audit.gov import AuditFailure
from ledger.audit_source import build_bundle

_TOKEN = click.option(
    "--token",
    envvar="COMITY_TOKEN",
    default=None,
    help="bearer token for nodes without open_read (env COMITY_TOKEN)",
)


def _err(message: str) -> None:
    click.echo(message, err=True)


def _exit(code: int, message: str) -> NoReturn:
    _err(message)
    sys.exit(code)


def _client(url: str, token: str | None) -> httpx.AsyncClient:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, timeout=60.0)


def _read_json(path: Path) -> Any:
    try:
        return loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        _exit(2, f"error: cannot read {path}: {exc}")


def _run(coro: Awaitable[int]) -> None:
    async def main() -> int:
        return await coro

    try:
        code = asyncio.run(main())
    except FetchError as exc:
        _exit(2, f"error: {exc}")
    except AuditFailure as exc:
        _exit(1, f"FAIL {exc}")
    sys.exit(code)


async def _genesis_for(client: httpx.AsyncClient, path: Path) -> dict[str, Any]:
    """The local genesis file, completed with defaults from the node only if it lacks them."""
    local = _read_json(path)
    if not isinstance(local, dict):
        _exit(2, f"error: {path} is not a JSON object")
    try:
        return check_genesis(local)
    except AuditFailure as exc:
        if exc.code != "incomplete_genesis":
            raise
    completed, filled = await node_genesis(client, local)
    _err(
        f"note: {path} leaves out {', '.join(filled) or 'enrollments'}; taken from the node's "
        "GET /v1/genesis (every other field must equal the local file, and block 1 must link "
        "to the hash of the result)"
    )
    return check_genesis(completed)


# --- comity verify ------------------------------------------------------------------------------


@click.command("verify")
@click.option(
    "--genesis",
    "genesis_path",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="the consortium's genesis file",
)
@click.option("--node", "url", required=True, help="API URL of any node (not trusted)")
@click.option(
    "--from",
    "from_height",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="check record signatures from this height (earlier blocks are still "
    "replayed: links, certificates, ledger, governance)",
)
@click.option(
    "--to",
    "to_height",
    type=click.IntRange(1),
    default=None,
    help="stop at this height (default: the node's latest)",
)
@click.option(
    "--min-height",
    "min_height",
    type=click.IntRange(1),
    default=None,
    help="fail unless the node serves at least this height: a node can hide its "
    "newest blocks (take it from another node or your last run)",
)
@_TOKEN
def verify(
    genesis_path: Path,
    url: str,
    from_height: int,
    to_height: int | None,
    min_height: int | None,
    token: str | None,
) -> None:
    """Check a node's whole chain from genesis: links, certificates, signatures, ledger."""
    _run(_verify(genesis_path, url, from_height, to_height, token, min_height))


def _check_head(height: int, claimed: int | None, min_height: int | None) -> None:
    """A served prefix is only as good as its head: refuse one below what is known."""
    if claimed is not None and height < claimed:
        raise AuditFailure(
            "head_too_low",
            f"the node served blocks up to {height}, below its own latest height {claimed}",
            height=height + 1,
        )
    if min_height is not None and height < min_height:
        raise AuditFailure(
            "head_too_low",
            f"the node served blocks up to {height}, below --min-height {min_height}",
            height=height + 1,
        )


async def _verify(
    genesis_path: Path,
    url: str,
    from_height: int,
    to_height: int | None,
    token: str | None,
    min_height: int | None = None,
) -> int:
    async with _client(url, token) as client:
        genesis = await _genesis_for(client, genesis_path)
        verifier = ChainVerifier(genesis, signatures_from=from_height)
        claimed = await served_height(client) if to_height is None else None
        progress = Progress(_err, to_height or claimed)
        try:
            checkpoint = await verify_chain(
                client, verifier, to_height=to_height, progress=progress
            )
            _check_head(checkpoint.height, claimed, min_height)
        except AuditFailure as exc:
            progress.update(verifier, force=True)
            click.echo(f"FAIL at height {exc.height}: {exc.code}: {exc.detail}")
            click.echo(f"(blocks 1..{verifier.height} verified before it)")
            return 1
    progress.update(verifier, force=True)
    elapsed, bps, rps = progress.rates(verifier, 1)
    click.echo(
        f"OK: blocks 1..{checkpoint.height} of chain {verifier.chain_id} verified from "
        f"genesis {verifier.genesis_hash}"
    )
    click.echo(
        f"  {verifier.records} records; ledger size {checkpoint.ledger_size}, root "
        f"{checkpoint.ledger_root}; tip {checkpoint.hash}"
    )
    for change in verifier.gov.changes:
        click.echo(
            f"  validator set change: {change.action} {change.state} from height "
            f"{change.height} (decided at {change.decided_at})"
        )
    seats = verifier.gov.validators(checkpoint.height + 1)
    click.echo(f"  validators now: {', '.join(s.state for s in seats)}")
    click.echo(f"  {elapsed:.1f}s: {bps:.1f} blocks/s, {rps:.0f} records/s")
    return 0


# --- comity bundle export | verify ----------------------------------------------------------------


@click.group("bundle")
def bundle() -> None:
    """Offline proof bundles of records."""


@bundle.command("export")
@click.option("--node", "url", required=True, help="API URL of any node")
@click.option("--record", "record_ids", multiple=True, required=True, help="record id (repeat)")
@click.option(
    "--checkpoint-latest", is_flag=True, help="add the latest checkpoint with consistency proofs"
)
@click.option("--out", type=click.Path(path_type=Path), required=True)
@_TOKEN
def bundle_export(
    url: str, record_ids: tuple[str, ...], checkpoint_latest: bool, out: Path, token: str | None
) -> None:
    """Write ONE JSON file proving the records, checked before it is written."""

    async def export() -> int:
        async with _client(url, token) as client:
            doc = await build_bundle(HttpSource(client), list(record_ids), latest=checkpoint_latest)
            if token is not None:
                await _add_bodies(client, doc)
        report = verify_bundle(doc)  # never hand out a bundle that does not verify
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        tmp.replace(out)
        click.echo(f"wrote {out}: {len(report.records)} record(s), {report.blocks} block(s)")
        return 0

    _run(export())


async def _add_bodies(client: httpx.AsyncClient, doc: dict[str, Any]) -> None:
    """The private bodies of the bundle's private subjects that this node (a party) shows
    this token: then the bundle proves their content offline, even after a purge."""
    bodies = {}
    for block in doc["blocks"]:
        for entry in block["entries"]:
            record = entry["envelope"]["record"]
            record_id = hashlib.sha256(jcs(record)).hexdigest()
            if record.get("type") != "private_act" or record_id not in doc["records"]:
                continue
            reply = await client.get(f"/v1/records/{record_id}/private")
            if reply.status_code == 200:
                bodies[record_id] = reply.json()["private"]
            else:
                click.echo(f"no body for {record_id}: HTTP {reply.status_code}", err=True)
    if bodies:
        doc["private"] = bodies


@bundle.command("verify")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--evidence",
    "evidence",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="an evidence file to match against the records' evidence sha256 (repeat)",
)
@click.option(
    "--genesis",
    "genesis_path",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="your genesis file: the bundle's must match it",
)
@click.option(
    "--genesis-hash",
    "pinned_hash",
    default=None,
    help="the consortium's genesis hash (64 hex), from a source you trust",
)
def bundle_verify(
    path: Path, evidence: tuple[Path, ...], genesis_path: Path | None, pinned_hash: str | None
) -> None:
    """Verify a bundle with no network; print who recorded what, when and where.

    One of --genesis or --genesis-hash is required: a bundle's own genesis can
    be made up with its keys, so without a pin it proves nothing.
    """
    doc = _read_json(path)
    if genesis_path is None and pinned_hash is None:
        _exit(
            2,
            f"error: {UNPINNED}: pass --genesis FILE or --genesis-hash HEX (the "
            "consortium's, from a source you trust, not from the bundle)",
        )
    if pinned_hash is not None and not is_hex(pinned_hash, 32):
        _exit(2, "error: --genesis-hash must be 64 lowercase hex")
    try:
        pins = [pinned_hash] if pinned_hash is not None else []
        if genesis_path is not None:
            served = doc.get("genesis") if isinstance(doc, dict) else None
            completed, _ = complete_genesis(
                _read_json(genesis_path), served if isinstance(served, dict) else {}
            )
            pins.append(genesis_hash(completed))
        if len(set(pins)) > 1:
            raise AuditFailure("genesis_mismatch", "--genesis and --genesis-hash disagree")
        report = verify_bundle(doc, evidence, pinned_genesis_hash=pins[0])
    except AuditFailure as exc:
        _exit(1, f"FAIL {exc}")
    click.echo(render_report(report))


# --- comity watch -------------------------------------------------------------------------------


@click.command("watch")
@click.option(
    "--genesis", "genesis_path", type=click.Path(exists=True, path_type=Path), required=True
)
@click.option("--node", "urls", multiple=True, required=True, help="API URL (repeat)")
@click.option(
    "--interval",
    "interval_s",
    type=click.FloatRange(0.1),
    default=10.0,
    show_default=True,
    help="seconds between polls",
)
@click.option("--once", is_flag=True, help="poll once; exit 1 on an alarm")
@click.option("--webhook", default=None, help="POST each poll's alarms as JSON to this URL")
@click.option(
    "--state-file",
    type=click.Path(path_type=Path),
    default=None,
    help="remember each node's last trusted checkpoint across runs",
)
@_TOKEN
def watch(
    genesis_path: Path,
    urls: tuple[str, ...],
    interval_s: float,
    once: bool,
    webhook: str | None,
    state_file: Path | None,
    token: str | None,
) -> None:
    """Watch nodes for forks: every checkpoint must extend what was seen before."""
    clients = {url.rstrip("/"): _client(url, token) for url in urls}
    _run(
        run_watch(
            genesis_path,
            clients,
            interval_s=interval_s,
            once=once,
            webhook=webhook,
            state_file=state_file,
        )
    )


async def run_watch(
    genesis_path: Path,
    clients: dict[str, httpx.AsyncClient],
    *,
    interval_s: float,
    once: bool,
    webhook: str | None,
    state_file: Path | None,
    post: Callable[[str, dict[str, Any]], Awaitable[None]] | None = None,
) -> int:
    """The watch loop; returns the exit status with ``once`` (never returns otherwise)."""
    first = next(iter(clients.values()))
    genesis = await _genesis_for(first, genesis_path)
    trusted = {}
    if state_file is not None and state_file.exists():
        saved = _read_json(state_file)
        if isinstance(saved, dict) and saved.get("genesis_hash") == genesis_hash(genesis):
            trusted = trusted_from_json(saved.get("nodes"))
    watcher = Watcher(genesis, clients, trusted, log=_err)
    try:
        while True:
            alarms = await watcher.poll()
            for alarm in alarms:
                _err(alarm.line())
            if alarms and webhook is not None:
                await (post or _post_webhook)(webhook, _payload(alarms))
            if state_file is not None:
                _save_state(state_file, genesis, watcher)
            _err(
                f"{time.strftime('%H:%M:%S')} verified to height {watcher.verifier.height}; "
                f"{len(alarms)} alarm(s); {len(watcher.unreachable)} node(s) unreachable"
            )
            if once:
                return 1 if alarms else 2 if watcher.unreachable else 0
            await asyncio.sleep(interval_s)
    finally:
        for client in clients.values():
            await client.aclose()


def _payload(alarms: list[Alarm]) -> dict[str, Any]:
    return {"source": "comity watch", "alarms": [a.to_json() for a in alarms]}


async def _post_webhook(url: str, payload: dict[str, Any]) -> None:
    try:
        async with httpx.AsyncClient(timeout=10.0) as client:
            (await client.post(url, json=payload)).raise_for_status()
    except httpx.HTTPError as exc:
        _err(f"warning: webhook {url} failed: {exc}")


def _save_state(path: Path, genesis: dict[str, Any], watcher: Watcher) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(
        json.dumps(
            {"genesis_hash": genesis_hash(genesis), "nodes": trusted_to_json(watcher.trusted)},
            indent=1,
        )
    )
    os.replace(tmp, path)
