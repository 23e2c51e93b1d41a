"""``comity case certificate``: the judge's certificate of a case, as PDF and HTML.

Reads the case from a node's views (``api.certificate.source``), pins it by the
SHA-256 of the case bundle when one is given (``--bundle``; only hashed for now),
and renders it in one of the certificate's languages (docs/AUDIT.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, NoReturn

import click
import httpx

from api.certificate.bundle_source import model_from_bundle
from api.certificate.render import LANGUAGES, render_html, render_pdf
from api.certificate.source import model_from_node
from api.cli.audit_client import HttpSource
from api.cli.client import ClientFailure, NodeClient
from ledger.audit.bundle import verify_bundle
from ledger.audit.certificate_model import CHECK_NAMES, CaseModel, Check
from ledger.audit.chain import complete_genesis, genesis_hash, loads
from ledger.audit.gov import AuditFailure
from ledger.audit_source import build_bundle
from ledger.canonical import canonical_bytes
from ledger.errors import ComityError

CASE_REF_CHARS_MAX = 128
BUNDLE_BYTES_MAX = 4 << 30  # a case bundle larger than 4 GiB is refused, not hashed
CHUNK_BYTES = 1 << 20


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def hash_bundle(path: Path) -> str:
    """Hex SHA-256 of the bundle file, read in chunks, at most BUNDLE_BYTES_MAX bytes."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            size += len(chunk)
            if size > BUNDLE_BYTES_MAX:
                _fail(f"{path} is over {BUNDLE_BYTES_MAX} bytes")
            digest.update(chunk)
    return digest.hexdigest()


def views_sha256(model: CaseModel) -> str:
    """Without a bundle, the certificate pins what it shows: SHA-256 of the model's JCS."""
    data = json.loads(json.dumps(asdict(replace(model, bundle_sha256=""))))
    return hashlib.sha256(canonical_bytes(data)).hexdigest()


def check_case_ref(case_ref: str) -> str:
    if not 1 <= len(case_ref) <= CASE_REF_CHARS_MAX or not case_ref.isprintable():
        _fail(f"--case must be 1-{CASE_REF_CHARS_MAX} printable characters")
    return case_ref


def _write(path: Path, data: bytes) -> None:
    """Write ``data`` whole: to a temporary file beside ``path``, then renamed over it."""
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def verify_records(
    url: str, token: str | None, model: CaseModel, genesis_path: Path
) -> tuple[Check, ...]:
    """Prove the timeline's records with a per-record bundle from the node, checked offline
    against ``genesis_path`` (docs/AUDIT.md, "Proof bundles"): every check, or the failure."""

    async def fetch() -> dict[str, Any]:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, timeout=60) as c:
            return await build_bundle(HttpSource(c), [e.record_id for e in model.timeline])

    doc = asyncio.run(fetch())
    try:
        served = doc.get("genesis")
        completed, _ = complete_genesis(
            loads(genesis_path.read_bytes()), served if isinstance(served, dict) else {}
        )
        report = verify_bundle(doc, pinned_genesis_hash=genesis_hash(completed))
    except AuditFailure as exc:
        detail = f"the records' proof bundle failed: {exc}"
        return tuple(Check(name, "failed", detail) for name in CHECK_NAMES)
    detail = (
        f"{len(report.records)} records, {report.blocks} blocks, from genesis {genesis_path.name}"
    )
    return tuple(Check(name, "passed", detail) for name in CHECK_NAMES)


@click.command("certificate")
@click.option(
    "--node",
    "url",
    default=None,
    help="API URL of a node of a party state (without it: --bundle and --genesis, offline)",
)
@click.option("--case", "case_ref", default=None, help="the case_ref (default: the bundle's)")
@click.option("--token", default=None, help="bearer token that may read the case's bodies")
@click.option(
    "--bundle",
    "bundle_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="the case bundle the certificate pins (hashed)",
)
@click.option(
    "--genesis",
    "genesis_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="your genesis file: prove the records against it (else every check is 'not run')",
)
@click.option("--lang", type=click.Choice(LANGUAGES), default="en", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path))
def certificate(
    url: str | None,
    case_ref: str | None,
    token: str | None,
    bundle_path: Path | None,
    genesis_path: Path | None,
    lang: str,
    out: Path,
    html_out: Path | None,
) -> None:
    """Write the judge's certificate of CASE as PDF (--out) and optionally HTML (--html).

    With --bundle and --genesis and no --node, everything comes from the bundle,
    proven offline against your genesis file (comity case export writes one)."""
    if url is None:
        if bundle_path is None or genesis_path is None:
            _fail("without --node, give --bundle and --genesis: the certificate is then offline")
        _offline(bundle_path, genesis_path, case_ref, lang, out, html_out)
        return
    if case_ref is None:
        _fail("--case is required with --node")
    case_ref = check_case_ref(case_ref)
    bundle_sha256 = hash_bundle(bundle_path) if bundle_path is not None else ""
    client = NodeClient(url, token)
    try:
        source = f"node {url}, " + (
            f"bundle {bundle_path.name}"
            if bundle_path
            else "no bundle given: the hash pins the content of this report"
        )
        model = model_from_node(client, case_ref, bundle_sha256, source=source)
    except ClientFailure as exc:
        _fail(f"{url}: {exc}")
    except (ComityError, OSError) as exc:
        _fail(str(exc))
    finally:
        client.close()
    if not model.timeline:
        _fail(f"case {case_ref!r} has no record this token may see on {url}")
    if genesis_path is not None:
        try:
            model = replace(model, checks=verify_records(url, token, model, genesis_path))
        except (ComityError, OSError, ValueError, httpx.HTTPError) as exc:
            _fail(f"cannot prove the records: {exc}")
    if not bundle_sha256:
        model = replace(model, bundle_sha256=views_sha256(model))
    _write(out, render_pdf(model, lang))
    if html_out is not None:
        _write(html_out, render_html(model, lang).encode())
    verdict = "verified" if model.verified else "NOT VERIFIED"
    click.echo(f"{out}: case {case_ref}, {len(model.timeline)} records, {verdict}")
    click.echo(f"bundle sha256 {model.bundle_sha256}")


def _offline(
    bundle_path: Path,
    genesis_path: Path,
    case_ref: str | None,
    lang: str,
    out: Path,
    html_out: Path | None,
) -> None:
    """The certificate of a verified case bundle: no node asked, every check proven."""
    try:
        model, _ = model_from_bundle(bundle_path, genesis_path)
    except AuditFailure as exc:
        _fail(f"FAIL the bundle does not verify under {genesis_path.name}: {exc}")
    except (ComityError, OSError, ValueError) as exc:
        _fail(str(exc))
    if case_ref is not None and check_case_ref(case_ref) != model.case_ref:
        _fail(f"the bundle is of case {model.case_ref!r}, not {case_ref!r}")
    _write(out, render_pdf(model, lang))
    if html_out is not None:
        _write(html_out, render_html(model, lang).encode())
    click.echo(f"{out}: case {model.case_ref}, {len(model.timeline)} records, verified")
    click.echo(f"bundle sha256 {model.bundle_sha256}")
