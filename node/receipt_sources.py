"""What a channel left behind, turned into receipt fields: an e-mail, an outbox export.

Theory of operation
-------------------
Bytes in, receipt fields out; no I/O and no network (docs/CHANNELS.md).

``email_receipt(raw)`` reads an RFC 5322 message as sent or received by a
24/7 point of contact. The business document is the whole raw message, so
its SHA-256 is of the file's exact bytes; the Message-ID is the channel's
id. A DKIM-Signature (RFC 6376 §3.5) is read for its signing domain and
selector, and its body hash ``bh=`` is checked here: the body is
canonicalised as the signature's ``c=`` says (§3.4.3 simple, §3.4.4
relaxed), cut to ``l=`` octets when given, and hashed with the hash of
``a=``. The header signature ``b=`` needs the signer's key: given a
``KeySource`` (the DNS or a saved record, chosen by the caller, so this
module still does no I/O), ``node.dkim_verify`` checks it; without one the
receipt says ``signature: not_checked``, ``verified: body_hash_only``.

``outbox_rows(data, fmt)`` reads a national system's outbox export (CSV
with the documented columns, or a JSON array of webhook-shaped objects)
into ``WebhookReceipt`` rows, each checked on its own: a bad row is
reported with the field it names, the others go on.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import io
import re
from dataclasses import dataclass, replace
from datetime import UTC
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any, Final

from pydantic import ValidationError

from ledger.canonical import parse_json
from ledger.errors import ClientError, EncodingError, RecordInvalid, TooLarge
from ledger.records import format_time
from node.dkim_verify import DkimOutcome, KeySource, verify_signature
from node.receipts import WebhookReceipt, invalid_receipt

#: Bound on a message the hasher reads (a 24/7 request with attachments).
EMAIL_BYTES_MAX: Final = 64 * 1024 * 1024
OUTBOX_BYTES_MAX: Final = 16 * 1024 * 1024
OUTBOX_ROWS_MAX: Final = 10_000
DKIM_SIGNATURES_MAX: Final = 10
_HASHES: Final = {"rsa-sha256": "sha256", "rsa-sha1": "sha1", "ed25519-sha256": "sha256"}
_WSP = re.compile(rb"[ \t]+")


# --- e-mail -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DkimResult:
    """What was checked of one DKIM-Signature (``ledger.acts_fields.DkimCheck``)."""

    domain: str
    selector: str
    body_hash: str  # "verified" | "mismatch"
    signature: str = "not_checked"  # | "verified" | "failed"
    reason: str | None = None
    key_source: str | None = None
    key_sha256: str | None = None
    detail: str = ""  # the library's words for the terminal; never on the chain

    @property
    def verified(self) -> str:
        if self.body_hash != "verified" or self.signature == "failed":
            return "failed"
        return "signature" if self.signature == "verified" else "body_hash_only"

    def with_signature(self, source: KeySource, outcome: DkimOutcome) -> DkimResult:
        """This body-hash result with the header signature checked under ``source``'s key.
        Should the verifier find the body hash wrong where ours found it right (the two
        canonicalisations disagree), the body counts as mismatching: nothing is claimed
        that one of the two checks refutes."""
        if outcome.reason == "body_hash_mismatch":
            return replace(self, body_hash="mismatch", detail=outcome.detail)
        good = outcome.verified == "signature"
        return replace(
            self,
            signature="verified" if good else "failed",
            reason=outcome.reason,
            key_source=source.kind,
            key_sha256=outcome.key_sha256,
            detail=outcome.detail,
        )

    def to_json(self) -> dict[str, str]:
        fields = {
            "domain": self.domain,
            "selector": self.selector,
            "body_hash": self.body_hash,
            "signature": self.signature,
            "verified": self.verified,
            "reason": "body_hash_mismatch" if self.body_hash == "mismatch" else self.reason,
            "key_source": self.key_source,
            "key_sha256": self.key_sha256,
        }
        return {name: value for name, value in fields.items() if value is not None}


def split_message(raw: bytes) -> tuple[bytes, bytes]:
    """(header block, body) of a message: split at the first empty line."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        head, found, body = raw.partition(separator)
        if found:
            return head, body
    return raw, b""


def _crlf_lines(body: bytes) -> list[bytes]:
    """The body's lines without their ends; a bare LF ends a line as CRLF does."""
    lines = body.replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the body ended with a line end
    return lines


def canonical_body(body: bytes, method: str) -> bytes:
    """RFC 6376 §3.4.3 (``simple``) or §3.4.4 (``relaxed``) body canonicalisation."""
    lines = _crlf_lines(body)
    if method == "relaxed":
        lines = [_WSP.sub(b" ", line).rstrip(b" ") for line in lines]
    while lines and lines[-1] == b"":
        lines.pop()  # both ignore the empty lines at the end of the body
    if not lines:
        return b"\r\n" if method == "simple" else b""
    return b"\r\n".join(lines) + b"\r\n"


def dkim_tags(value: str) -> dict[str, str]:
    """The tag=value list of a DKIM-Signature (RFC 6376 §3.2), whitespace removed from
    the base64 values; ``ValueError`` on a malformed list or a repeated tag."""
    tags: dict[str, str] = {}
    for part in value.split(";"):
        name, equals, raw = part.partition("=")
        name = name.strip()
        if not name and not raw.strip():
            continue  # a trailing ";"
        if not equals or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name) or name in tags:
            raise ValueError(f"malformed DKIM-Signature tag {name!r}")
        text = raw.strip()
        tags[name] = re.sub(r"\s+", "", text) if name in ("b", "bh") else text
    return tags


def check_body_hash(tags: dict[str, str], body: bytes) -> DkimResult:
    """The ``bh=`` of ``tags`` against ``body``; ``ValueError`` if the tags are unusable."""
    for name in ("d", "s", "bh"):
        if not tags.get(name):
            raise ValueError(f"DKIM-Signature has no {name}= tag")
    hash_name = _HASHES.get(tags.get("a", ""))
    if hash_name is None:
        raise ValueError(f"DKIM-Signature a={tags.get('a')!r} is not a known algorithm")
    _, _, body_method = tags.get("c", "simple/simple").partition("/")
    body_method = body_method or "simple"
    if body_method not in ("simple", "relaxed"):
        raise ValueError(f"DKIM-Signature body canonicalisation {body_method!r} is unknown")
    canonical = canonical_body(body, body_method)
    if "l" in tags:
        if not tags["l"].isdigit() or len(tags["l"]) > 76:
            raise ValueError("DKIM-Signature l= is not a number")
        canonical = canonical[: int(tags["l"])]
    try:
        wanted = base64.b64decode(tags["bh"], validate=True)
    except binascii.Error as exc:
        raise ValueError("DKIM-Signature bh= is not base64") from exc
    digest = hashlib.new(hash_name, canonical).digest()
    return DkimResult(tags["d"], tags["s"], "verified" if digest == wanted else "mismatch")


def _address(value: str | None) -> str | None:
    found = [addr for _, addr in getaddresses([value or ""]) if addr]
    return found[0] if found else None


def email_receipt(raw: bytes, keys: KeySource | None = None) -> dict[str, Any]:
    """The receipt fields an e-mail gives (docs/CHANNELS.md "The e-mail hasher"):
    ``external_id``, ``document_sha256``, ``sent_at``, the endpoints and, with a
    DKIM-Signature, ``dkim``: its body hash checked, and with ``keys`` its header
    signature too (``node.dkim_verify``; ``DkimUnavailable`` when the DNS does not
    answer). ``RecordInvalid`` naming the header that is missing."""
    return read_email(raw, keys)[0]


def read_email(
    raw: bytes, keys: KeySource | None = None
) -> tuple[dict[str, Any], DkimResult | None]:
    """``email_receipt``'s fields and the DKIM check they hold (with the verifier's own
    words in ``detail``, for the operator; they never reach the chain)."""
    if len(raw) > EMAIL_BYTES_MAX:
        raise TooLarge(f"message is over {EMAIL_BYTES_MAX} bytes", field="file", code="too_large")
    head, body = split_message(raw)
    headers = BytesHeaderParser(policy=compat32).parsebytes(head + b"\r\n\r\n")
    message_id = str(headers.get("Message-ID") or "").strip().strip("<>").strip()
    if not message_id:
        raise RecordInvalid("the message has no Message-ID", field="Message-ID", code="no_header")
    fields: dict[str, Any] = {
        "channel": "email_24_7",
        "external_id": message_id,
        "document_sha256": hashlib.sha256(raw).hexdigest(),
        "sent_at": _date(headers.get("Date")),
        "sender_endpoint": _address(headers.get("From")),
        "recipient_endpoint": _address(headers.get("To")),
    }
    signatures = (headers.get_all("DKIM-Signature") or [])[:DKIM_SIGNATURES_MAX]
    if not signatures:
        return fields, None
    try:  # the first one is the outermost signer's (RFC 6376 §3.5 prepends)
        tags = dkim_tags(_unfold(str(signatures[0])))
        result = check_body_hash(tags, body)
    except ValueError as exc:
        raise RecordInvalid(str(exc), field="DKIM-Signature", code="bad_dkim") from exc
    if keys is not None and result.body_hash == "verified":
        result = result.with_signature(keys, verify_signature(raw, keys, tags["a"]))
    fields["dkim"] = result.to_json()
    return fields, result


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n[ \t]", " ", value)


def _date(value: object) -> str | None:
    if value is None:
        return None
    try:
        moment = parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        raise RecordInvalid(
            "the message's Date header is not an RFC 5322 date", field="Date", code="bad_date"
        ) from None
    if moment.tzinfo is None:  # "-0000": the time is UTC, the zone unknown (RFC 5322 §3.3)
        moment = moment.replace(tzinfo=UTC)
    return format_time(moment.astimezone(UTC))


# --- outbox exports -----------------------------------------------------------------

#: The CSV columns (docs/CHANNELS.md "The importer"); the last two may be left out.
CSV_COLUMNS: Final = (
    "record_id",
    "channel",
    "external_id",
    "document_sha256",
    "sender_endpoint",
    "recipient_endpoint",
    "sent_at",
    "counterpart_state",
    "delivery_evidence",
)
CSV_REQUIRED: Final = CSV_COLUMNS[:7]


def outbox_rows(data: bytes, fmt: str) -> list[WebhookReceipt | ClientError]:
    """Each row of an outbox export as a receipt, or the error naming its field."""
    if len(data) > OUTBOX_BYTES_MAX:
        raise TooLarge(f"file is over {OUTBOX_BYTES_MAX} bytes", field="file", code="too_large")
    objects = _json_rows(data) if fmt == "json" else _csv_rows(data)
    if len(objects) > OUTBOX_ROWS_MAX:
        raise TooLarge(
            f"file has {len(objects)} rows, over {OUTBOX_ROWS_MAX}", field="file", code="too_many"
        )
    return [_row(index, obj) for index, obj in enumerate(objects)]


def _json_rows(data: bytes) -> list[Any]:
    try:
        parsed = parse_json(data)
    except EncodingError as exc:
        raise EncodingError(f"file: {exc}", field="file", code="bad_json") from exc
    if not isinstance(parsed, list):
        raise RecordInvalid("file must hold a JSON array", field="file", code="not_an_array")
    return parsed


def _csv_rows(data: bytes) -> list[Any]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EncodingError("file is not UTF-8", field="file", code="bad_encoding") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    missing = [name for name in CSV_REQUIRED if name not in header]
    unknown = [name for name in header if name not in CSV_COLUMNS]
    if missing or unknown:
        raise RecordInvalid(
            f"file's header row lacks {missing} / has unknown columns {unknown}",
            field="file.header",
            code="bad_columns",
        )
    rows: list[Any] = []
    for row in reader:
        if len(rows) > OUTBOX_ROWS_MAX:
            break
        obj: dict[str, Any] = {k: v for k, v in row.items() if k is not None and v != ""}
        if None in row:
            obj["extra_cells"] = row[None]  # refused by the model: a row too long
        if "delivery_evidence" in obj:
            obj["delivery_evidence"] = _evidence_cell(str(obj["delivery_evidence"]))
        rows.append(obj)
    return rows


def _evidence_cell(cell: str) -> list[Any]:
    """``kind:sha256:at`` items separated by ``;``: malformed items stay as strings, so the
    model names the item."""
    items: list[Any] = []
    for item in cell.split(";"):
        kind, _, rest = item.strip().partition(":")
        sha256, _, at = rest.partition(":")
        items.append({"kind": kind, "sha256": sha256, "at": at} if at else item)
    return items


def _row(index: int, obj: Any) -> WebhookReceipt | ClientError:
    try:
        return WebhookReceipt.model_validate(obj)
    except ValidationError as exc:
        return invalid_receipt(exc, f"row[{index}]")
