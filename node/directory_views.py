"""Read-side views of the consortium directory (``GET /v1/directory``, docs/DIRECTORY.md).

The chain state holds each state's current entry parsed and its earlier ones
by record id and height (``node.govtypes.DirectoryState``); these views load
the records from the store, so what they serve is exactly what was signed,
with the height and commit time of the block that committed it. Every node
gives the same answer for the same height.
"""

from __future__ import annotations

from typing import Any, Protocol

from ledger.directory import content_of
from ledger.errors import ClientError, NotFound, StoreError
from ledger.records import Envelope, check_state_code
from ledger.store import Store
from node.govtypes import DirectoryRecord
from node.state import ChainState

HISTORY_MAX = 500


class Records(Protocol):
    @property
    def store(self) -> Store: ...

    @property
    def state(self) -> ChainState: ...

    def load_envelope(self, record_id: str) -> Envelope: ...


def _row(records: Records, committed: DirectoryRecord) -> dict[str, Any]:
    header = records.store.get_header(committed.height)
    if header is None:
        raise StoreError(f"no header at committed height {committed.height}")
    envelope = records.load_envelope(committed.record_id)
    return {
        "record_id": committed.record_id,
        "height": committed.height,
        "commit_time": header.time,
        "signer": envelope.signer,
        "entry": content_of(envelope.record),
    }


def directory_view(records: Records) -> dict[str, Any]:
    """Every state's current entry, by state."""
    state = records.state
    return {
        "height": state.height,
        "entries": [_row(records, d.current) for _, d in sorted(state.directory.items())],
    }


def state_view(records: Records, code: str, history_max: int = 100) -> dict[str, Any]:
    """One state's current entry and its earlier ones, newest first (at most ``history_max``)."""
    try:
        check_state_code(code, "state")
    except ClientError as exc:
        raise ClientError(exc.message, field="state", code="bad_query") from exc
    found = records.state.directory.get(code)
    if found is None:
        raise NotFound(
            f"{code} has no directory entry on this chain", field="state", code="no_directory_entry"
        )
    limit = max(1, min(history_max, HISTORY_MAX))
    older = list(reversed(found.history))
    return {
        "state": code,
        "height": records.state.height,
        "current": _row(records, found.current),
        "history": [_row(records, r) for r in older[:limit]],
        "history_total": len(older),
    }
