"""``comity case export|verify``: one offline-verifiable bundle for a whole case.

``export`` asks a node for ``GET /v1/cases/{case_ref}/bundle`` (built by
``node/case_bundle.py``, as the caller's token may see the case), verifies it
before writing, and writes it atomically. ``verify`` checks a bundle with no
network under the reader's own genesis file (``ledger/audit/case.py``).
Exit status as for ``comity bundle``: 0 all holds, 1 a check failed (the
reason code is printed), 2 usage error, an unpinned genesis or a node that
cannot be read. docs/AUDIT.md "Whole-case bundles".
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import NoReturn
from urllib.parse import quote

import click
import httpx

from api.cli import audit, case_uco, certificate
from api.cli.audit_client import FetchError, get_json
from ledger.audit.bundle import UNPINNED
from ledger.audit.case import pin_of, render_case_report, verify_case_bundle
from ledger.audit.chain import is_hex, loads
from ledger.audit.gov import AuditFailure


def _exit(code: int, message: str) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


def _client(url: str, token: str | None) -> httpx.AsyncClient:
    return audit._client(url, token)


@click.group("case")
def case() -> None:
    """Whole-case bundles: every record, answer and custody event of a case, proven."""


@case.command("export")
@click.argument("case_ref")
@click.option("--node", "url", required=True, help="API URL of any node (not trusted)")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["bundle", "case-uco"]),
    default="bundle",
    show_default=True,
    help="bundle: the comity-case/1 proof bundle; case-uco: CASE/UCO JSON-LD (docs/CASE_UCO.md)",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="the file to write (required for a bundle; case-uco prints to stdout without it)",
)
@audit._TOKEN
def case_export(case_ref: str, url: str, fmt: str, out: Path | None, token: str | None) -> None:
    """Write ONE JSON file proving the whole case, checked before it is written
    (or, with --format case-uco, the case as CASE/UCO JSON-LD).

    Private acts' bodies are in it only for a token that may read them."""
    if fmt == "case-uco":
        case_uco.write_case_uco(case_ref, url, token, out)
        return
    if out is None:
        _exit(2, "error: --out is required for a bundle")

    async def fetch() -> object:
        async with _client(url, token) as client:
            return await get_json(client, f"/v1/cases/{quote(case_ref, safe='')}/bundle")

    try:
        doc = asyncio.run(fetch())
        report = verify_case_bundle(doc)  # never hand out a bundle that does not verify
    except FetchError as exc:
        _exit(2, f"error: {exc}")
    except AuditFailure as exc:
        _exit(1, f"FAIL the node's bundle does not verify: {exc}")
    _write_private(out, json.dumps(doc, ensure_ascii=False, indent=1) + "\n")
    private = len(doc.get("private") or {}) if isinstance(doc, dict) else 0
    click.echo(
        f"wrote {out}: case {report.case_ref}, {len(report.reasons)} record(s), "
        f"{report.bundle.blocks} block(s), {private} private bod(y/ies)"
    )


def _write_private(out: Path, text: str) -> None:
    """Write atomically, mode 0600: a bundle may hold private bodies (need to know)."""
    tmp = out.with_name(out.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    tmp.replace(out)


case.add_command(case_uco.import_)
case.add_command(certificate.certificate)


@case.command("verify")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--genesis",
    "genesis_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="your copy of the consortium's genesis file (required)",
)
@click.option(
    "--genesis-hash",
    "pinned_hash",
    default=None,
    help="the consortium's published genesis hash: checked against --genesis, never alone",
)
@click.option(
    "--evidence",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="an evidence file to match against the records' evidence sha256 (repeat)",
)
def case_verify(
    path: Path, genesis_path: Path | None, pinned_hash: str | None, evidence: tuple[Path, ...]
) -> None:
    """Verify a case bundle with no network; print the case, record by record.

    --genesis is required. A bundle's own genesis can be made up with its keys;
    and a hash alone gives a court no member list to read the certificates by,
    so --genesis-hash only cross-checks the file."""
    if genesis_path is None:
        why = "a hash alone is not enough" if pinned_hash is not None else "no genesis given"
        _exit(
            2,
            f"error: {UNPINNED} ({why}): pass --genesis FILE, your copy of the consortium's "
            "genesis from a source you trust (not from the bundle); --genesis-hash only "
            "cross-checks it",
        )
    if pinned_hash is not None and not is_hex(pinned_hash, 32):
        _exit(2, "error: --genesis-hash must be 64 lowercase hex")
    try:
        doc = loads(path.read_bytes())
        local = loads(genesis_path.read_bytes())
    except (OSError, ValueError) as exc:
        _exit(2, f"error: cannot read: {exc}")
    try:
        pin = pin_of(local, doc)
        if pinned_hash is not None and pinned_hash != pin:
            raise AuditFailure("genesis_mismatch", "--genesis and --genesis-hash disagree")
        report = verify_case_bundle(doc, evidence, pinned_genesis_hash=pin)
    except AuditFailure as exc:
        _exit(1, f"FAIL {exc}")
    click.echo(render_case_report(report))
