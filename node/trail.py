"""The channel trail of a record: the ``exchange_receipt``s that anchor it, in commit order.

``GET /v1/records/{id}`` shows it (docs/CHANNELS.md "The trail"). Receipts are
found by the store's ``receipt_of`` index, so the cost is the number of
receipts of this one record, bounded by ``TRAIL_RECEIPTS_MAX``. A private
receipt is indexed only under its body, so it appears only in a body reader's
view (``api/routers/private.party_view``, which logs each body it reads); a
header-only view never learns what channel carried a private act.
"""

from __future__ import annotations

from typing import Any, Final

from node.evidence import ChainView

TRAIL_RECEIPTS_MAX: Final = 100


def channel_trail(view: ChainView, record_id: str) -> dict[str, Any]:
    """``{"receipts": [...], "truncated": bool}`` for the committed ``record_id``."""
    receipts: list[dict[str, Any]] = []
    for _, envelope in view.scan("receipt_of", record_id, max_records=TRAIL_RECEIPTS_MAX):
        if envelope.type != "exchange_receipt":  # a body this view may not read
            continue
        content = envelope.content
        receipts.append(
            {
                "id": envelope.id,
                **view.position(envelope),
                "actor_state": envelope.actor_state,
                "channel": content["channel"],
                "external_id": content["external_id"],
                "document_sha256": content["document_sha256"],
                "sent_at": content["sent_at"],
                "evidence": [
                    {"kind": item["kind"], "at": item["at"]}
                    for item in content.get("delivery_evidence") or []
                ],
            }
        )
    return {"receipts": receipts, "truncated": view.truncated}
