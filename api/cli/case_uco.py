"""``comity case export --format case-uco`` and ``comity case import --format case-uco``
(registered on the ``comity case`` group of ``api/cli/case.py``).

``export_case_uco(client, case_ref)`` reads the case from one node's HTTP
views and maps it with ``ledger/case_uco.py``: the case's pages
(``GET /v1/cases/{ref}``), each record's act view and inclusion proof, a
private act's content (``GET /v1/records/{id}/private``, which needs a
body-reader token; without it the act is exported as its header says) and
the custody chains of every hash a custody event of the case names
(``GET /v1/evidence/{sha256}``). Every fetch is bounded.

``import`` reads a CASE/UCO file a forensic tool wrote (at most
``DOCUMENT_BYTES_MAX``) and prints the ``evidence`` list of a new act
(``ledger/case_uco_import.py``); it signs and submits nothing.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Final, NoReturn, Protocol

import click

from api.cli.client import ClientFailure, NodeClient
from ledger.case_uco import ActView, CustodyChain, case_graph, dumps
from ledger.case_uco_import import evidence_items
from ledger.errors import ClientError, TooLarge
from ledger.hashing import is_hex

#: A case is exported whole or not at all: bounds on what one export reads.
CASE_RECORDS_MAX: Final = 10_000
CASE_HASHES_MAX: Final = 10_000
PAGE: Final = 500
DOCUMENT_BYTES_MAX: Final = 16 * 1024 * 1024
FORMATS: Final = ("case-uco",)


class Reader(Protocol):
    """What the export needs of a node client (``NodeClient`` is one)."""

    def get(self, path: str, **params: Any) -> dict[str, Any]: ...


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


CASE_REF_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}")


def _bad_reply(message: str) -> ClientFailure:
    return ClientFailure(502, "bad_reply", f"the node's reply is not as documented: {message}")


def check_case_ref(case_ref: str) -> str:
    """``case_ref`` as ``ledger/acts_fields.CaseRef`` allows it, and no ``..`` segment
    (it is put in a URL path)."""
    if not CASE_REF_RE.fullmatch(case_ref) or ".." in case_ref.split("/"):
        raise ClientError(
            "case_ref must be 1-128 of A-Z a-z 0-9 . _ : / - (no .. segment)",
            field="case_ref",
            code="bad_case_ref",
        )
    return case_ref


def _entries(client: Reader, case_ref: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": PAGE, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/v1/cases/{case_ref}", **params)
        entries += page["entries"]
        if len(entries) > CASE_RECORDS_MAX:
            raise TooLarge(
                f"case {case_ref} has more than {CASE_RECORDS_MAX} records",
                field="case_ref",
                code="case_too_large",
            )
        after = page.get("next_cursor")
        if after is None:
            return entries
        if not page["entries"] or after == cursor:  # a node that never ends the case
            raise _bad_reply(f"page cursor {after!r} does not advance")
        cursor = str(after)


def _content(client: Reader, record_id: str, record: dict[str, Any]) -> Any:
    """The act as the caller may read it; None for a private act's unreadable body."""
    if record.get("type") != "private_act":
        return record
    try:
        return client.get(f"/v1/records/{record_id}/private")["content"]
    except ClientFailure as exc:
        if exc.status in (401, 403, 404):
            return None
        raise


def _act(client: Reader, entry: dict[str, Any]) -> ActView:
    record_id = str(entry["id"])
    if not is_hex(record_id, 32):
        raise _bad_reply(f"record id {record_id!r} is not 64 hex")
    view = client.get(f"/v1/acts/{record_id}")
    header = view["envelope"]["record"]
    return ActView(
        id=record_id,
        height=int(view["height"]),
        leaf_index=int(view["leaf_index"]),
        commit_time=str(view["commit_time"]),
        header=header,
        content=_content(client, record_id, header),
        proof=client.get(f"/v1/records/{record_id}/proof"),
    )


def _custody_hashes(acts: list[ActView]) -> list[str]:
    hashes = sorted(
        {
            str(item["sha256"])
            for act in acts
            if act.content is not None and act.content.get("type") == "custody_event"
            for item in act.content.get("evidence") or []
        }
    )
    bad = next((h for h in hashes if not is_hex(h, 32)), None)
    if bad is not None:
        raise _bad_reply(f"evidence hash {bad!r} is not 64 hex")
    if len(hashes) > CASE_HASHES_MAX:
        raise TooLarge(
            f"more than {CASE_HASHES_MAX} custody hashes", field="case_ref", code="case_too_large"
        )
    return hashes


def _chains(client: Reader, sha256: str) -> list[CustodyChain]:
    view = client.get(f"/v1/evidence/{sha256}")
    return [
        CustodyChain(
            sha256=sha256,
            ref=str(chain["ref"]),
            event_ids=tuple(str(e["id"]) for e in chain["events"]),
            status=chain.get("status"),
            holder=chain.get("holder"),
        )
        for chain in view["custody_chains"]
    ]


def export_case_uco(client: Reader, case_ref: str) -> dict[str, Any]:
    """The CASE/UCO JSON-LD document of ``case_ref`` as ``client``'s node shows it.

    ``ClientFailure`` when the node refuses a read or replies outside its documented
    shapes (``bad_reply``); ``TooLarge`` over the export's bounds."""
    check_case_ref(case_ref)
    try:
        acts = [_act(client, entry) for entry in _entries(client, case_ref)]
        chains = [c for sha in _custody_hashes(acts) for c in _chains(client, sha)]
        return case_graph(case_ref, acts, chains)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _bad_reply(repr(exc)) from exc


def write_case_uco(case_ref: str, url: str, token: str | None, out: Path | None) -> None:
    """``comity case export --format case-uco``: CASE_REF as CASE/UCO JSON-LD (stdout, or
    ``out``). The command is ``api/cli/case.py``'s, which also writes the proof bundle."""
    client = NodeClient(url, token)
    try:
        text = dumps(export_case_uco(client, case_ref))
    except (ClientFailure, ClientError) as exc:
        _fail(str(exc))
    finally:
        client.close()
    if out is None:
        click.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    click.echo(f"case {case_ref} written to {out}", err=True)


def read_document(path: Path) -> Any:
    """The JSON of ``path``, at most ``DOCUMENT_BYTES_MAX`` bytes; ``ClientError`` if not."""
    with path.open("rb") as handle:
        data = handle.read(DOCUMENT_BYTES_MAX + 1)
    if len(data) > DOCUMENT_BYTES_MAX:
        raise ClientError(
            f"{path} is larger than {DOCUMENT_BYTES_MAX} bytes", field="$", code="too_large"
        )
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ClientError(f"{path} is not JSON: {exc}", field="$", code="not_json") from exc


@click.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "format_", type=click.Choice(FORMATS), required=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def import_(path: Path, format_: str, out: Path | None) -> None:
    """Print the evidence items of a CASE/UCO file (a JSON list for an act's ``evidence``)."""
    del format_
    try:
        items, warnings = evidence_items(read_document(path))
    except ClientError as exc:
        _fail(f"{exc.code}: {exc.message}")
    except OSError as exc:
        _fail(str(exc))
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    text = json.dumps(items, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    click.echo(f"{len(items)} evidence items written to {out}", err=True)
