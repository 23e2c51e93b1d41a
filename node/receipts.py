"""The receipt webhook: a national system or an e-CODEX connector reports what it sent.

Theory of operation
-------------------
docs/CHANNELS.md. A case-management system, or the back end of a Domibus /
e-CODEX connector, calls ``POST /v1/receipts/webhook`` on its own state's node
when a channel carried a request or answer. The call is authenticated by an
HMAC-SHA256 over ``timestamp + "." + body`` with a secret shared with the
node (a 0600 file named by ``[receipts] webhook_secret_path``), in the header
``X-Comity-Signature: t=<unix seconds>,v1=<64 hex>`` (``check_signature``):
within ``SIGNATURE_WINDOW_S`` of the node's clock, compared in constant time.

The node turns the call into an ``exchange_receipt`` (``build_receipt``),
signs it with its *integration* key (a key enrolled for the state with role
``integration``, which may sign receipts and nothing else) and admits it
like any client's record. The receipt is always private (``parties``): a
message id or an endpoint often names a mailbox, and the channel trail is as
need-to-know as the act. Its parties are this state, the counterpart state
(named by the call, or the one other state the act concerns) and the act's
own parties; it is kept as long as the act (its ``retain_until``), or for the
type's default when the act is in clear (``ledger/retention.py``).

Idempotency: the receipt's nonce is derived from its key (actor state,
channel, external id; ``receipt_nonce``), and before anything is built the
node looks for a receipt of that key, pending under its integration key or
committed under any key. The second call of the same message answers 200
with the first receipt's id and ``"duplicate": true``, so a replay inside the
signature window, or a connector's retry, anchors nothing twice.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, NoReturn

from pydantic import Field, ValidationError

from ledger.acts_fields import (
    DELIVERY_EVIDENCE_MAX,
    ChannelId,
    DeliveryEvidence,
    Hex32,
    ReceiptChannel,
    StateCode,
    Strict,
    Timestamp,
)
from ledger.canonical import parse_json
from ledger.errors import (
    Conflict,
    EncodingError,
    Forbidden,
    RecordInvalid,
    Unauthorized,
)
from ledger.keys import SigningKey, load_signing_key
from ledger.keyspace import receipt_key
from ledger.private import is_private, named_states
from ledger.records import SCHEMA, Envelope, format_time
from ledger.retention import default_retain_until
from ledger.store import Store
from node.admission import Submission, parse_submission
from node.application import Application
from node.authoring import private_submission, sign_envelope
from node.config import ConfigError, Receipts
from node.mempool import Mempool

SIGNATURE_HEADER: Final = "X-Comity-Signature"
#: A signed call is accepted this long before or after the node's clock (replay bound).
SIGNATURE_WINDOW_S: Final = 300
#: Bound on a webhook body: one receipt is far smaller.
WEBHOOK_BODY_MAX_BYTES: Final = 64 * 1024
SECRET_BYTES_MIN: Final = 32
SECRET_BYTES_MAX: Final = 4096
_FIELD = f"header.{SIGNATURE_HEADER}"
_PART = re.compile(r"^(t|v1)=([0-9a-f]{1,64})$")


# --- the shared secret and the signature ----------------------------------------------


def load_secret(path: Path) -> bytes:
    """The webhook secret; ``ConfigError`` unless the file is private to its owner."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read receipts.webhook_secret_path {path}: {exc}") from exc
    if mode & 0o077:
        raise ConfigError(
            f"receipts.webhook_secret_path {path} is readable or writable by group or others "
            f"(mode {mode & 0o777:o}); chmod 600 it"
        )
    if not SECRET_BYTES_MIN <= len(data) <= SECRET_BYTES_MAX:
        raise ConfigError(
            f"receipts.webhook_secret_path {path} must hold {SECRET_BYTES_MIN} to "
            f"{SECRET_BYTES_MAX} bytes (e.g. openssl rand -hex 32)"
        )
    return data


def signature_header(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``X-Comity-Signature`` value a caller sends for ``body`` at ``timestamp``."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def check_signature(secret: bytes, header: str | None, body: bytes, now_s: float) -> None:
    """Raise 401 unless ``header`` signs ``body`` with ``secret`` within the window.

    Several ``v1=`` parts may be given (a caller rotating its secret); one must match.
    """
    if not header:
        raise Unauthorized(
            f"{SIGNATURE_HEADER} is required", field=_FIELD, code="signature_required"
        )
    timestamp, macs = None, []
    for part in header.split(",")[:8]:
        match = _PART.match(part.strip())
        if match is None:
            _bad_header()
        name, value = match.groups()
        if name == "t" and len(value) <= 12 and value.isdigit():
            timestamp = int(value)
        elif name == "v1" and len(value) == 64:
            macs.append(value)
        else:
            _bad_header()
    if timestamp is None or not macs:
        _bad_header()
    if abs(now_s - timestamp) > SIGNATURE_WINDOW_S:
        raise Unauthorized(
            f"the signature's timestamp is more than {SIGNATURE_WINDOW_S} s from the node's clock",
            field=_FIELD,
            code="stale_signature",
        )
    wanted = signature_header(secret, timestamp, body).rsplit("=", 1)[1]
    if not any(hmac.compare_digest(wanted, mac) for mac in macs):
        raise Unauthorized(
            "the signature does not match the body", field=_FIELD, code="bad_signature"
        )


def _bad_header() -> NoReturn:
    raise Unauthorized(
        f"{SIGNATURE_HEADER} must be t=<unix seconds>,v1=<64 hex>",
        field=_FIELD,
        code="bad_signature_header",
    )


# --- the call's body --------------------------------------------------------------------


class WebhookReceipt(Strict):
    """The body of ``POST /v1/receipts/webhook`` (docs/CHANNELS.md)."""

    record_id: Hex32
    channel: ReceiptChannel
    external_id: ChannelId
    document_sha256: Hex32
    delivery_evidence: list[DeliveryEvidence] = Field(
        default_factory=list, max_length=DELIVERY_EVIDENCE_MAX
    )
    sender_endpoint: ChannelId
    recipient_endpoint: ChannelId
    sent_at: Timestamp
    #: The other state of the exchange; may be left out when the act concerns one other.
    counterpart_state: StateCode | None = None


def parse_webhook(body: bytes) -> WebhookReceipt:
    """The call's JSON as a ``WebhookReceipt``, or 400/422 naming the field."""
    try:
        obj = parse_json(body)
    except EncodingError as exc:
        raise EncodingError(str(exc), field="body", code="bad_json") from exc
    try:
        return WebhookReceipt.model_validate(obj)
    except ValidationError as exc:
        raise invalid_receipt(exc, "body") from exc


def invalid_receipt(exc: ValidationError, prefix: str) -> RecordInvalid:
    """422 ``invalid_receipt`` naming the first bad field below ``prefix``."""
    first = exc.errors()[0]
    field = prefix + "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"]
    )
    return RecordInvalid(f"{field}: {first['msg']}", field=field, code="invalid_receipt")


def receipt_nonce(key: str) -> str:
    """The nonce of the receipt of ``key``: the same message gives the same nonce."""
    return "rcpt-" + hashlib.sha256(key.encode()).hexdigest()[:48]


def counterpart_of(anchored: Envelope, state: str, field: str) -> str:
    """The one state other than ``state`` that ``anchored`` concerns, or 422 on ``field``."""
    concerned = {anchored.actor_state, *named_states(anchored.content)}
    if is_private(anchored.record):
        concerned.update(anchored.record["parties"])
    others = sorted(concerned - {state})
    if len(others) != 1:
        raise RecordInvalid(
            f"{field} is required: the record concerns {others or 'no other state'}",
            field=field,
            code="counterpart_required",
        )
    return others[0]


def build_receipt(
    receipt: WebhookReceipt | dict[str, Any],
    *,
    anchored: Envelope,
    case_ref: str,
    state: str,
    agency: str,
    chain_id: str,
    now: datetime,
    counterpart_field: str = "body.counterpart_state",
) -> dict[str, Any]:
    """The complete ``exchange_receipt`` of ``receipt`` for ``anchored``, private to the
    parties (``visibility: parties``) and still unsplit (``ledger.private.split``)."""
    fields = receipt.model_dump() if isinstance(receipt, WebhookReceipt) else dict(receipt)
    fields.pop("record_id", None)
    if fields.get("counterpart_state") is None:
        fields["counterpart_state"] = counterpart_of(anchored, state, counterpart_field)
    key = receipt_key(state, fields["channel"], fields["external_id"])
    return {
        "schema": SCHEMA,
        "type": "exchange_receipt",
        "chain_id": chain_id,
        "actor": {"state": state, "agency": agency},
        "nonce": receipt_nonce(key),
        "occurred_at": format_time(now),
        "case_ref": case_ref,
        "territorial_states": [state],
        "refs": [anchored.id],
        **fields,
        "visibility": "parties",
    }


# --- the desk: the node's side of the webhook --------------------------------------------


@dataclass
class ReceiptDesk:
    """Builds, signs and admits the receipts webhook calls report."""

    app: Application
    store: Store
    mempool: Mempool
    admit: Callable[[Envelope], Submission]
    key: SigningKey
    secret: bytes
    state: str
    agency: str

    @classmethod
    def from_config(
        cls,
        config: Receipts,
        *,
        app: Application,
        store: Store,
        mempool: Mempool,
        admit: Callable[[Envelope], Submission],
        state: str,
    ) -> ReceiptDesk:
        secret = load_secret(config.webhook_secret_path)
        try:
            key = load_signing_key(config.integration_key_path)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"receipts.integration_key_path: {exc}") from exc
        return cls(app, store, mempool, admit, key, secret, state, config.agency)

    def existing(self, key: str) -> Submission | None:
        """A receipt of ``key`` this node already holds: pending or committed."""
        pending = self.mempool.by_nonce(self.key.public_hex, receipt_nonce(key))
        if pending is not None:
            return Submission(pending, "pending")
        found = self.store.search("receipt", key, limit=1, sealed=True)
        return Submission(found[0][1], "committed") if found else None

    def anchor(self, receipt: WebhookReceipt, now: datetime) -> dict[str, Any]:
        """Anchor ``receipt`` once: ``{"id", "status", "duplicate"}``."""
        key = receipt_key(self.state, receipt.channel, receipt.external_id)
        earlier = self.existing(key)
        if earlier is not None:
            return {"id": earlier.id, "status": earlier.status, "duplicate": True}
        anchored = self._anchored(receipt.record_id)
        record = build_receipt(
            receipt,
            anchored=anchored,
            case_ref=str(anchored.content["case_ref"]),
            state=self.state,
            agency=self.agency,
            chain_id=self.app.chain_id,
            now=now,
        )
        result = self.admit(self._envelope(record, anchored))
        return {"id": result.id, "status": result.status, "duplicate": False}

    def _anchored(self, record_id: str) -> Envelope:
        if not self.store.has_record(record_id):
            if record_id in self.mempool:
                raise Conflict(
                    "body.record_id is not committed yet: call again once it is",
                    field="body.record_id",
                    code="ref_pending",
                )
            raise RecordInvalid(
                "body.record_id names no committed record",
                field="body.record_id",
                code="ref_not_found",
            )
        envelope = self.app.load_content(record_id)
        if is_private(envelope.record):
            if not self.app.is_party(envelope):
                raise Forbidden(
                    f"{self.state} is not a party of body.record_id",
                    field="body.record_id",
                    code="not_a_party",
                )
            if envelope.body is None:
                raise Conflict(
                    "this node does not hold the act's body yet: call again later",
                    field="body.record_id",
                    code="ref_body_missing",
                )
        return envelope

    def _envelope(self, record: dict[str, Any], anchored: Envelope) -> Envelope:
        limit = self.app.params.max_record_bytes
        if not self.app.state.need_to_know_active(self.app.height + 1):
            # A chain before its need-to-know height has no private acts: in clear, as
            # every act of that chain (docs/PRIVACY.md "Visibility").
            clear = {k: v for k, v in record.items() if k != "visibility"}
            return parse_submission(sign_envelope(self.key, clear), limit)
        retain_until = (
            str(anchored.record["retain_until"])
            if is_private(anchored.record)
            else default_retain_until(record)
        )
        submission = private_submission(
            self.key, record, retain_until=retain_until, ref_parties=self.app.ref_parties
        )
        return parse_submission(submission, limit)
