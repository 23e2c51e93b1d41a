"""``comity receipt email|import``: receipts from an e-mail or an outbox export (docs/CHANNELS.md).

Both read what a channel left behind (``node/receipt_sources.py``), look the
anchored record up on the node, build the ``exchange_receipt`` the webhook
would (``node.receipts.build_receipt``: private to the parties, its nonce
derived from the message), check it against the catalogue, and sign it with
the caller's key (an investigator, authority or integration key of the
state). ``--dry-run`` prints the receipt instead of signing it.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from api.cli.client import ClientFailure, NodeClient
from ledger.acts import validate_act
from ledger.acts_fields import ReceiptChannel
from ledger.errors import ClientError, ComityError
from ledger.keys import SigningKey, load_signing_key
from ledger.private import is_private
from ledger.records import Envelope, format_time, parse_envelope
from ledger.retention import default_retain_until
from node import clock
from node.authoring import hash_file, private_submission, sign_envelope
from node.dkim_verify import (
    KEY_RECORD_BYTES_MAX,
    DkimUnavailable,
    KeySource,
    dns_source,
    file_source,
)
from node.receipt_sources import (
    EMAIL_BYTES_MAX,
    OUTBOX_BYTES_MAX,
    DkimResult,
    outbox_rows,
    read_email,
)
from node.receipts import WebhookReceipt, build_receipt

CHANNELS = list(ReceiptChannel.__args__)  # type: ignore[attr-defined]
EVIDENCE_KINDS = ("submission", "relay", "delivery", "retrieval", "acceptance", "rejection")
#: Refusals that mean "this message is anchored already" (docs/CHANNELS.md "Idempotency").
DUPLICATE_CODES = frozenset({"duplicate_receipt", "duplicate_nonce"})


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


class Filer:
    """Looks anchored records up on one node and files receipts there."""

    def __init__(self, client: NodeClient, key: SigningKey | None, state: str | None) -> None:
        self.client, self.key = client, key
        status = client.status()
        self.chain_id, self.state = str(status["chain_id"]), state or str(status["state"])
        #: A chain before its need-to-know height takes acts in clear only.
        self.private = bool(status.get("need_to_know", True))
        self._anchored: dict[str, tuple[Envelope, str | None]] = {}

    def anchored(self, record_id: str) -> tuple[Envelope, str | None]:
        """The committed record and its case_ref (a private act's from its body, read with
        the caller's token; None when the token may not read it)."""
        if record_id not in self._anchored:
            view = self.client.record(record_id)
            if view["status"] != "committed":
                raise ClientFailure(409, "ref_pending", f"{record_id} is not committed yet")
            envelope = parse_envelope(view["envelope"])
            case_ref = envelope.content.get("case_ref")
            if is_private(envelope.record):
                try:
                    content = self.client.get(f"/v1/records/{record_id}/private")["content"]
                    case_ref = content.get("case_ref")
                except ClientFailure:
                    case_ref = None
            self._anchored[record_id] = (envelope, case_ref if isinstance(case_ref, str) else None)
        return self._anchored[record_id]

    def record(
        self, fields: dict[str, Any], record_id: str, agency: str, case_ref: str | None
    ) -> dict[str, Any]:
        """The checked receipt of ``fields`` for ``record_id``."""
        anchored, found = self.anchored(record_id)
        if (case_ref or found) is None:
            raise ClientFailure(
                422, "case_ref_unknown", "the record is private: give --case-ref or a --token"
            )
        record = build_receipt(
            fields,
            anchored=anchored,
            case_ref=str(case_ref or found),
            state=self.state,
            agency=agency,
            chain_id=self.chain_id,
            now=clock.utcnow(),
            counterpart_field="counterpart_state",
        )
        validate_act(record)
        return record

    def file(self, record: dict[str, Any]) -> str:
        """Sign ``record`` as a private act and submit it; its id."""
        if self.key is None:
            raise ClientFailure(400, "no_key", "--key is required unless --dry-run")
        anchored, _ = self.anchored(str(record["refs"][0]))
        if not self.private:
            clear = {k: v for k, v in record.items() if k != "visibility"}
            return str(self.client.submit(sign_envelope(self.key, clear))["id"])
        retain_until = (
            str(anchored.record["retain_until"])
            if is_private(anchored.record)
            else default_retain_until(record)
        )
        submission = private_submission(
            self.key,
            record,
            retain_until=retain_until,
            ref_parties=lambda ref: self.client.record(ref)["envelope"]["record"].get(
                "parties", []
            ),
        )
        return str(self.client.submit(submission)["id"])


def _common(command: Any) -> Any:
    for option in reversed(
        (
            click.option("--node", "url", required=True, help="API URL of your state's node"),
            click.option(
                "--key", "key_path", type=click.Path(exists=True, path_type=Path), default=None
            ),
            click.option("--token", default=None, help="bearer token (reads a private act)"),
            click.option("--state", default=None, help="actor state (default: the node's)"),
            click.option("--agency", default="24/7 point of contact", show_default=True),
            click.option("--dry-run", is_flag=True, help="print the receipt, submit nothing"),
        )
    ):
        command = option(command)
    return command


def _filer(url: str, key_path: Path | None, token: str | None, state: str | None) -> Filer:
    key = load_signing_key(key_path) if key_path is not None else None
    return Filer(NodeClient(url, token), key, state)


@click.group()
def receipt() -> None:
    """Anchor what a channel carried: exchange_receipts (docs/CHANNELS.md)."""


@receipt.command("email")
@_common
@click.argument("message", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--refs", "ref", required=True, help="id of the request or answer it carried")
@click.option("--channel", type=click.Choice(CHANNELS), default="email_24_7", show_default=True)
@click.option("--case-ref", default=None, help="the record's case (when it is private)")
@click.option("--counterpart-state", default=None, help="default: the record's other state")
@click.option("--sent-at", default=None, help="RFC 3339 UTC (default: the Date header)")
@click.option(
    "--delivery-evidence",
    "evidence",
    multiple=True,
    help="KIND=FILE: hash an evidence file (e.g. a delivery status notification)",
)
@click.option(
    "--dkim",
    "dkim_mode",
    type=click.Choice(["body", "verify"]),
    default=None,
    help="body: check the DKIM body hash only (the default); verify: also the header "
    "signature, with the selector's key from DNS (or --dkim-key)",
)
@click.option(
    "--dkim-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="the selector's TXT record saved to a file (offline --dkim verify)",
)
def email(
    url: str,
    key_path: Path | None,
    token: str | None,
    state: str | None,
    agency: str,
    dry_run: bool,
    message: Path,
    ref: str,
    channel: str,
    case_ref: str | None,
    counterpart_state: str | None,
    sent_at: str | None,
    evidence: tuple[str, ...],
    dkim_mode: str | None,
    dkim_key: Path | None,
) -> None:
    """Hash an RFC 5322 MESSAGE (Message-ID, SHA-256 of the raw bytes, DKIM body hash,
    with --dkim verify or --dkim-key the DKIM signature) and file its receipt; print the
    receipt's id and what DKIM check was made."""
    if message.stat().st_size > EMAIL_BYTES_MAX:
        _fail(f"{message} is over {EMAIL_BYTES_MAX} bytes")
    keys = _key_source(dkim_mode, dkim_key) if channel == "email_24_7" else None
    try:
        fields, checked = read_email(message.read_bytes(), keys)
        fields["channel"] = channel
        if channel != "email_24_7":
            fields.pop("dkim", None)
        fields["sent_at"] = sent_at or fields["sent_at"]
        fields["delivery_evidence"] = [_evidence_file(item) for item in evidence]
        if counterpart_state:
            fields["counterpart_state"] = counterpart_state
        missing = [k for k in ("sent_at", "sender_endpoint", "recipient_endpoint") if not fields[k]]
        if missing:
            _fail(f"the message gives no {missing[0]} (Date, From, To headers)")
        filer = _filer(url, key_path, token, state)
        record = filer.record(fields, ref, agency, case_ref)
        if dry_run:
            click.echo(json.dumps(record, indent=2, sort_keys=True))
            return
        click.echo(filer.file(record))
    except DkimUnavailable as exc:
        _fail(f"DKIM key lookup failed ({exc}): nothing filed; retry, or give --dkim-key")
    except (ClientFailure, ComityError) as exc:
        _fail(str(exc))
    click.echo(_dkim_line(checked if fields.get("dkim") else None))


def _key_source(mode: str | None, key_file: Path | None) -> KeySource | None:
    """Where the DKIM key comes from: none (``--dkim body``), DNS or a saved record."""
    if key_file is not None:
        if mode == "body":
            _fail("--dkim-key is for --dkim verify, not --dkim body")
        if key_file.stat().st_size > KEY_RECORD_BYTES_MAX:
            _fail(f"--dkim-key {key_file} is over {KEY_RECORD_BYTES_MAX} bytes")
        try:
            return file_source(key_file.read_bytes())
        except ValueError as exc:
            _fail(f"--dkim-key {key_file}: {exc}")
    return dns_source() if mode == "verify" else None


def _dkim_line(dkim: DkimResult | None) -> str:
    if dkim is None:
        return "DKIM: none"
    head = f"DKIM d={dkim.domain} s={dkim.selector}: body hash {dkim.body_hash}, "
    if dkim.verified == "signature":
        return head + f"signature verified (key from {dkim.key_source})"
    if dkim.verified == "failed":
        reason = "body_hash_mismatch" if dkim.body_hash == "mismatch" else dkim.reason
        return head + f"FAILED: {reason}" + (f" ({dkim.detail})" if dkim.detail else "")
    return head + "signature not checked (--dkim body)"


def _evidence_file(item: str) -> dict[str, str]:
    kind, _, name = item.partition("=")
    path = Path(name)
    if kind not in EVIDENCE_KINDS or not path.is_file():
        _fail(f"--delivery-evidence {item!r}: KIND=FILE with KIND one of {EVIDENCE_KINDS}")
    at = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    return {"kind": kind, "sha256": hash_file(path)["sha256"], "at": format_time(at)}


@receipt.command("import")
@_common
@click.argument("export", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--csv", "fmt", flag_value="csv", help="a CSV file with the documented columns")
@click.option("--json", "fmt", flag_value="json", help="a JSON array of webhook-shaped objects")
@click.option("--case-ref", default=None, help="the case of every row (private records)")
def import_(
    url: str,
    key_path: Path | None,
    token: str | None,
    state: str | None,
    agency: str,
    dry_run: bool,
    export: Path,
    fmt: str | None,
    case_ref: str | None,
) -> None:
    """File one receipt per row of a national system's outbox EXPORT; print one JSON line
    per row (anchored, duplicate or error). Exit 1 if a row failed."""
    if fmt is None:
        _fail("give --csv or --json")
    if export.stat().st_size > OUTBOX_BYTES_MAX:
        _fail(f"{export} is over {OUTBOX_BYTES_MAX} bytes")
    try:
        rows = outbox_rows(export.read_bytes(), str(fmt))
        filer = _filer(url, key_path, token, state)
    except (ClientFailure, ComityError) as exc:
        _fail(str(exc))
        return
    failed = 0
    for index, row in enumerate(rows):
        result = _import_row(filer, index, row, agency, case_ref, dry_run)
        failed += result["status"] == "error"
        click.echo(json.dumps(result, sort_keys=True))
    sys.exit(1 if failed else 0)


def _import_row(
    filer: Filer,
    index: int,
    row: WebhookReceipt | ClientError,
    agency: str,
    case_ref: str | None,
    dry_run: bool,
) -> dict[str, Any]:
    if isinstance(row, ClientError):
        return {"row": index, "status": "error", "code": row.code, "field": row.field}
    try:
        record = filer.record(row.model_dump(), row.record_id, agency, case_ref)
        if dry_run:
            return {"row": index, "status": "checked", "receipt": record}
        return {"row": index, "status": "anchored", "id": filer.file(record)}
    except ClientFailure as exc:
        if exc.code in DUPLICATE_CODES:
            return {"row": index, "status": "duplicate", "message": exc.message}
        return {"row": index, "status": "error", "code": exc.code, "message": exc.message}
    except ClientError as exc:
        return {"row": index, "status": "error", "code": exc.code, "field": exc.field}
