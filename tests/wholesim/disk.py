"""The simulated disk: an in-memory KV that survives a node's crash, with loss modes.

``SimDisk`` is the ``ledger.kv.KV`` a simulated node's ``Store`` runs over.
It outlives the node: a crash drops the ``Node`` object, a restart builds a
new one over the same disk, as a process restart reopens its data directory.

What a crash loses depends on ``mode``:

* ``"durable"``: nothing; every write was fsynced (or the OS survived);
* ``"fsync_loss"``: the power failed, so every batch written with
  ``sync=False`` since the last ``sync=True`` batch is gone (``ledger.kv``'s
  contract: only a synced batch is on stable storage);
* ``"lying"``: a disk that acknowledges fsync and loses the write anyway
  (the last ``lose_last`` batches, synced or not). This breaks the contract
  on purpose: the negative control of "persist, then send".
"""

from __future__ import annotations

from collections.abc import Iterator

from ledger.kv import Batch, MemoryKV
from ledger.store import Store
from node import backup as backup_module
from node import signing_hold

DISK_MODES = ("durable", "fsync_loss")


class SimDisk:
    def __init__(self, mode: str = "durable", lose_last: int = 3) -> None:
        self.location = "<sim>"
        self.mode = mode
        self.lose_last = lose_last
        self._kv = MemoryKV()
        #: Undo entries for batches a crash may lose: (key, value before) lists.
        self._volatile: list[list[tuple[bytes, bytes | None]]] = []
        self.writes = 0
        self.lost_batches = 0

    def get(self, key: bytes) -> bytes | None:
        return self._kv.get(key)

    def iterate(
        self,
        *,
        prefix: bytes | None = None,
        start: bytes | None = None,
        stop: bytes | None = None,
        reverse: bool = False,
        limit: int | None = None,
    ) -> Iterator[tuple[bytes, bytes]]:
        return self._kv.iterate(prefix=prefix, start=start, stop=stop, reverse=reverse, limit=limit)

    def write(self, batch: Batch, *, sync: bool) -> None:
        undo = [(key, self._kv.get(key)) for key, _ in batch]
        self._kv.write(batch, sync=sync)
        self.writes += 1
        if self.mode == "fsync_loss":
            self._volatile = [] if sync else [*self._volatile, undo]
        elif self.mode == "lying":
            self._volatile = ([*self._volatile, undo])[-self.lose_last :]

    def crash(self) -> None:
        """Power loss: undo what this mode says never reached the platter."""
        for undo in reversed(self._volatile):
            self._kv.write([(key, old) for key, old in reversed(undo)], sync=True)
            self.lost_batches += 1
        self._volatile = []

    def backup(self) -> list[tuple[bytes, bytes]]:
        """An online backup's contents: every pair as of now (``comity db backup``)."""
        return list(backup_module.snapshot_items(self._kv))

    def restore(self, items: list[tuple[bytes, bytes]]) -> int | None:
        """Replace the contents with an older backup, as ``comity db restore --force``
        does (node/backup.py ``restore``): the bound the replaced store knows (its
        height + 1, or its WAL's height if higher; unknown if the WAL is unreadable),
        then the hold and the restored WAL set aside, in one synced batch. Returns the
        hold's signed-through height."""
        old = Store(self)
        raw = old.get_state(signing_hold.WAL_NAME)
        wal = signing_hold.wal_height(raw)
        replaced = (
            old.height + 1 if raw is None else (None if wal is None else max(old.height + 1, wal))
        )
        self._kv = MemoryKV()
        self._kv.write(items, sync=True)
        self._volatile = []
        store = Store(self)
        bound = backup_module._hold_bound(store, replaced, None)
        self._kv.write(signing_hold.hold_batch(store, bound, store.height), sync=True)
        return bound

    def compact(self) -> None:
        """Memory only: a deleted pair is gone at once."""

    def close(self) -> None:
        """Contents stay: a restarted node reopens this disk."""
