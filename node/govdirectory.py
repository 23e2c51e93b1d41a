"""The state rules of a ``directory_entry`` record (a governance type, docs/DIRECTORY.md).

A member's own admin key signs its entry (the role table, ``ledger/roles.py``)
and ``record.state`` must be the signer's state: no state writes another's
directory. Each committed entry replaces the state's previous one as the
current entry, and the previous ones stay in its history (by record id and
height, ``node.govtypes.DirectoryState``). An entry whose content equals the
current one is refused (``directory_unchanged``), so importing the same
directory twice commits it once. A block holds at most one entry per state
(conflict key ``directory:<state>``): entries are judged against the state
before the block, like every governance record.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ledger.directory import content_hash, parse_entry
from ledger.errors import Conflict, Forbidden
from ledger.records import Envelope
from node.govtypes import DirectoryRecord, DirectoryState
from node.state import ChainState


def check_directory(state: ChainState, envelope: Envelope, at_time: datetime) -> None:
    record = envelope.record
    if record["state"] != envelope.actor_state:
        raise Forbidden(
            f"record.state is {record['state']}, but the signer is {envelope.actor_state}'s: "
            "a member writes only its own directory entry",
            field="record.state",
            code="wrong_state",
        )
    current = state.directory.get(record["state"])
    if current is not None and current.current.content_hash == content_hash(record):
        raise Conflict(
            f"{record['state']}'s current directory entry ({current.current.record_id}) "
            "already says exactly this",
            field="record",
            code="directory_unchanged",
        )


def directory_conflict(state: ChainState, record: Mapping[str, Any]) -> str:
    return f"directory:{record['state']}"


def apply_directory(state: ChainState, height: int, envelope: Envelope) -> ChainState:
    record = envelope.record
    committed = DirectoryRecord(envelope.id, height, content_hash(record))
    before = state.directory.get(record["state"])
    history = () if before is None else (*before.history, before.current)
    return state.with_directory(
        record["state"], DirectoryState(parse_entry(record), committed, history)
    )
