"""Who reads a private act's body on this node, and where the body is (docs/PRIVACY.md).

Theory of operation
-------------------
A private act's header is committed on every node; its body only on its
parties' nodes, in the store (``Store.get_body``), with a note
(``Store.body_note``: kept, void, purged, wanted). Whatever a body holds is
read through ``readable_body``, one rule for the body itself
(``GET /v1/records/{id}/private``) and for the sealed details in it
(``GET /v1/records/{id}/sealed``, ``node/sealed_access.py``), so the two never
answer differently. After the token's role and state
(``node.tokens.check_body_reader``, before the record is looked up), in order:

1. this node's state is a party of the act, else 403 ``not_a_party``, logged
   as ``not_a_recipient``. A non-party holds only the header, so it gives this
   one answer for every private act and says nothing of what the body holds;
2. the body is here: 404 ``body_purged`` once its retention ended and it was
   erased, 404 ``body_not_held`` while it has not reached this node (it is
   fetched from another party). A void body (it broke a rule) is kept as
   evidence and is read like a kept one;
3. the token may read the act's case, which only the body names: 403
   ``case_not_allowed`` and the like, logged (``AccessLog.authorize``).

The caller logs its own outcome (``ok``, or its refusal of what it found in
the body) before it returns anything of the body.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ledger.errors import Forbidden, InvariantViolation, NotFound
from ledger.private import is_private
from ledger.records import Envelope
from node.access_log import AccessLog
from node.application import CommittedRecords
from node.tokens import TokenInfo


class PartyRecords(CommittedRecords, Protocol):
    """Committed records with the bodies this node keeps (``Application`` is one)."""

    def load_content(self, record_id: str) -> Envelope: ...

    def is_party(self, envelope: Envelope) -> bool: ...


def case_of(envelope: Envelope) -> str | None:
    """The act's case as this node sees it (a private act's is in its body)."""
    case_ref = envelope.content.get("case_ref")
    return case_ref if isinstance(case_ref, str) else None


def committed(records: PartyRecords, record_id: str) -> tuple[Envelope, Mapping[str, Any]]:
    """A committed record as the act rules read it, and its body note ({} if none)."""
    return records.load_content(record_id), records.store.body_note(record_id) or {}


def readable_body(
    records: PartyRecords,
    envelope: Envelope,
    note: Mapping[str, Any],
    *,
    token: TokenInfo,
    log: AccessLog,
    state: str,
) -> Envelope:
    """``envelope`` (a private act's) with its body, once ``token`` may read it here."""
    if not is_private(envelope.record):
        raise InvariantViolation(f"readable_body for {envelope.id}: not a private act")
    if not records.is_party(envelope):
        log.append(record_id=envelope.id, state=state, token=token, outcome="not_a_recipient")
        raise Forbidden(f"{state} is not a party of this act", field="id", code="not_a_party")
    if note.get("status") == "purged":
        raise NotFound(
            f"the body was erased at {note.get('at')} (retention ended)",
            field="id",
            code="body_purged",
        )
    if envelope.body is None and note.get("status") == "void":  # kept as evidence
        envelope = envelope.with_body(records.store.get_body(envelope.id))
    if envelope.body is None:
        raise NotFound("the body has not reached this node yet", field="id", code="body_not_held")
    log.authorize(token, record_id=envelope.id, state=state, case_ref=case_of(envelope))
    return envelope
