"""The signing hold a restore leaves on a store (finding B5).

Theory of operation
-------------------
A backup holds the consensus WAL of its moment. The node it came from may
have gone on signing votes at later heights; those signatures are lost with
the store the backup replaces. A node that resumed an older WAL, or none,
could sign a second, different vote for an (h, r) it had already signed,
which counts as a Byzantine fault. So ``comity db restore`` never installs
the WAL as live state (it keeps it aside under ``WAL_ASIDE_NAME`` for the
operator) and writes a *hold*: the highest height this node's key may have
signed at before the restore.

The driver asks ``may_sign(store, height)`` before it enters a height as a
validator. Heights at or below the hold are not voted on: the node catches
them up by block sync, which commits a height only with a certificate of
2f+1 precommits. Once the store has committed the held height, every height
the node can still enter lies above it, and the hold has no more effect. A
key can only have signed at h after its node committed h - 1, so a hold is
exact when it comes from the replaced store itself (its height + 1, or its
WAL's height if higher), or from the operator (``--signed-through``).

When the restore cannot know the bound (the old store is gone, or its WAL is
unreadable, and the operator gave none) the hold is open-ended: the node
signs nothing until the operator, having checked, releases it with
``comity db restore --release-hold`` (docs/OPERATIONS.md, section 6). A hold
value that cannot be read is treated as open-ended too: this file decides
whether a key may sign, so doubt means no.

State key ``restore_hold`` (node-local, never in a block)::

    {"signed_through": H | null, "backup_height": B, "restored_at": ISO-8601}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from ledger import keyspace as ks
from ledger.store import Store

HOLD_NAME: Final = "restore_hold"
WAL_NAME: Final = "consensus"  # node.driver.WAL_NAME
WAL_ASIDE_NAME: Final = "consensus-from-backup"
HOLD_BYTES_MAX: Final = 1024


@dataclass(frozen=True, slots=True)
class Hold:
    signed_through: int | None  # None: unknown, sign nothing until released
    backup_height: int
    restored_at: str

    def allows(self, height: int) -> bool:
        return self.signed_through is not None and height > self.signed_through


OPEN_ENDED: Final = Hold(None, 0, "")


def may_sign(store: Store, height: int) -> bool:
    """May this node's key sign consensus messages at ``height``? (False under a hold.)"""
    hold = read_hold(store)
    return hold is None or hold.allows(height)


def read_hold(store: Store) -> Hold | None:
    raw = store.get_state(HOLD_NAME)
    if raw is None:
        return None
    return _parse(raw)


def _parse(raw: bytes) -> Hold:
    if len(raw) > HOLD_BYTES_MAX:
        return OPEN_ENDED
    try:
        obj = json.loads(raw)
    except ValueError:
        return OPEN_ENDED
    if not isinstance(obj, dict) or set(obj) != {"signed_through", "backup_height", "restored_at"}:
        return OPEN_ENDED
    through, backup_height, at = obj["signed_through"], obj["backup_height"], obj["restored_at"]
    if through is not None and (type(through) is not int or through < 0):
        return OPEN_ENDED
    if type(backup_height) is not int or not isinstance(at, str):
        return OPEN_ENDED
    return Hold(through, backup_height, at)


def encode_hold(signed_through: int | None, backup_height: int) -> bytes:
    restored_at = datetime.now(UTC).isoformat(timespec="seconds")
    return json.dumps(
        {
            "signed_through": signed_through,
            "backup_height": backup_height,
            "restored_at": restored_at,
        },
        sort_keys=True,
    ).encode()


def hold_batch(
    store: Store, signed_through: int | None, backup_height: int
) -> list[tuple[bytes, bytes | None]]:
    """One write batch: place the hold, set the restored WAL aside, remove it as live state.

    One batch, so a crash can never leave the WAL removed without the hold.
    """
    wal = store.get_state(WAL_NAME)
    batch: list[tuple[bytes, bytes | None]] = [
        (ks.state_key(HOLD_NAME), encode_hold(signed_through, backup_height)),
        (ks.state_key(WAL_NAME), None),
    ]
    if wal is not None:
        batch.append((ks.state_key(WAL_ASIDE_NAME), wal))
    return batch


def release(store: Store) -> Hold | None:
    """Remove the hold (the operator checked); returns the hold that was there."""
    hold = read_hold(store)
    if hold is not None:
        store.delete_state(HOLD_NAME, sync=True)
    return hold


def wal_height(raw: bytes | None) -> int | None:
    """The height a stored consensus WAL is at, or None if there is none or it is unreadable."""
    if raw is None:
        return None
    try:
        obj = json.loads(raw)
    except ValueError:
        return None
    height = obj.get("height") if isinstance(obj, dict) else None
    return height if type(height) is int and height >= 0 else None
