"""``comity directory export`` and ``comity directory import`` (docs/DIRECTORY.md).

``export`` reads ``GET /v1/directory`` (or one state's entry) and writes the
import/export document: ``{"format": "comity-directory/1", "height": H,
"entries": [...]}``, each entry what a ``directory_entry`` record says.

``import F --state XX`` takes XX's entry from F, checks it against the record
type's rules locally (a bad field is named before anything is signed), signs
it with XX's admin key and submits it. It is idempotent: when XX's current
entry on the chain already says exactly this (the same content hash), nothing
is signed and the command says so and exits 0; the chain refuses a repeat too
(``directory_unchanged``), so two imports racing still commit one entry.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from api.cli.client import ClientFailure, NodeClient
from ledger.directory import content_hash, document, document_entry, parse_entry
from ledger.errors import ComityError
from ledger.keys import load_signing_key
from node.authoring import complete_record, sign_envelope

#: An import document is read whole: a bound on its size (TigerStyle).
DOCUMENT_BYTES_MAX = 4 * 1024 * 1024


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


@click.group()
def directory() -> None:
    """The consortium directory: export it, or import your state's entry."""


@directory.command("export")
@click.option("--node", "url", required=True, help="API URL of a node")
@click.option("--state", default=None, help="only this state's entry")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--token", default=None, help="bearer token for reads")
def export(url: str, state: str | None, out: Path | None, token: str | None) -> None:
    """Write the directory document (stdout, or --out)."""
    client = NodeClient(url, token)
    try:
        if state is None:
            view = client.get("/v1/directory")
            entries, height = [row["entry"] for row in view["entries"]], view["height"]
        else:
            one = client.get(f"/v1/directory/{state}")
            entries, height = [one["current"]["entry"]], one["height"]
    except ClientFailure as exc:
        _fail(str(exc))
    finally:
        client.close()
    text = json.dumps(document(entries, height), indent=2, ensure_ascii=False) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"{len(entries)} entries at height {height} written to {out}")


def _read_document(path: Path) -> Any:
    if path.stat().st_size > DOCUMENT_BYTES_MAX:
        _fail(f"{path} is larger than {DOCUMENT_BYTES_MAX} bytes")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        _fail(f"{path} is not a JSON document: {exc}")


def _current_hash(client: NodeClient, state: str) -> tuple[str, str] | None:
    """(content hash, record id) of ``state``'s current entry, or None if it has none."""
    try:
        view = client.get(f"/v1/directory/{state}")
    except ClientFailure as exc:
        if exc.status == 404 and exc.code == "no_directory_entry":
            return None
        raise
    current = view["current"]
    return content_hash(current["entry"]), current["record_id"]


@directory.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--node", "url", required=True, help="API URL of a node")
@click.option(
    "--admin-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="PKCS#8 PEM private key of an admin of --state",
)
@click.option("--state", required=True, help="the admin's state: its entry is imported")
@click.option("--wait", "wait_s", type=float, default=0, help="seconds to wait for the commit")
@click.option("--token", default=None, help="bearer token for reads")
def import_(
    path: Path, url: str, admin_key: Path, state: str, wait_s: float, token: str | None
) -> None:
    """Sign and submit --state's entry of the document PATH (idempotent)."""
    client = NodeClient(url, token)
    try:
        content = document_entry(_read_document(path), state)
        current = _current_hash(client, state)
        if current is not None and current[0] == content_hash(content):
            click.echo(f"unchanged: {state}'s current entry {current[1]} already says this")
            return
        body = {
            "type": "directory_entry",
            "actor": {"state": state, "agency": "administration"},
            **content,
        }
        record = complete_record(body, chain_id=client.status()["chain_id"])
        parse_entry(record)  # the record type's own rules, before anything is signed
        reply = client.submit(sign_envelope(load_signing_key(admin_key), record))
        click.echo(reply["id"])
        if wait_s > 0:
            view = client.record(reply["id"], wait_s)
            if view["status"] != "committed":
                _fail(f"not committed after {wait_s} s (status {view['status']})")
            click.echo(f"committed at height {view['height']}")
    except ComityError as exc:
        field = getattr(exc, "field", None)
        _fail(f"{exc}" + (f" (field {field})" if field else ""))
    except OSError as exc:
        _fail(str(exc))
    finally:
        client.close()
