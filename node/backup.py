"""Backup, restore and offline check of a node's store.

Theory of operation
-------------------
A running node holds LevelDB's lock, so a backup of a live node is taken
*by* the node: ``POST /v1/admin/backup`` (operator token) opens a LevelDB
snapshot and streams every key of it. Every block is one atomic write batch,
so any snapshot is a consistent chain: a whole number of blocks with their
indexes, Merkle nodes and meta counters. The CLI writes the stream into a
fresh LevelDB at ``OUT/ledger`` and a ``OUT/manifest.json``. A stopped node
is backed up the same way without HTTP (``encode_stream`` over the store
opened directly). The stream never names a path on the node's disk: the
backup lands wherever the operator's CLI runs.

Stream (``application/octet-stream``)::

    MAGIC
    frame*      u32 key_len ‖ u32 value_len ‖ key ‖ value     (key_len > 0, key order)
    trailer     u32 0 ‖ u32 json_len ‖ JSON manifest

The manifest holds what the snapshot says (height, ledger_size, the ledger
root of the last header, genesis hash), the number of keys and a SHA-256
over every frame, so a truncated or altered stream or backup is detected.

``check_store`` replays the chain into a scratch store: for each height the
certificate is checked against the validators of that height, then the block
(hash link, every record signature and rule, the header's Merkle root and
size) with ``Application.validate_block``, then committed. Finally every key
of the scratch store must equal the key on disk, and vice versa, except the
node-local consensus WAL: so a lost or extra index entry, locator or Merkle
node is reported as well as a bad block.

``restore`` installs a verified backup but never its consensus WAL as live
state: the node may have signed past the backup, so the restored store gets
a signing hold instead (node/signing_hold.py, finding B5).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger import keyspace as ks
from ledger.block import BlockHeader, verify_certificate
from ledger.canonical import parse_json
from ledger.errors import ComityError, StoreError
from ledger.kv import KV, Batch, LevelDBKV, MemoryKV
from ledger.private import is_private
from ledger.records import Envelope, parse_envelope
from ledger.store import Store
from node import signing_hold as hold
from node.application import Application, Block
from node.genesis import Genesis
from node.rules import build_registry

MAGIC = b"COMITY-BACKUP/1\n"
FRAME = struct.Struct(">II")
CHUNK_BYTES = 1024 * 1024
BATCH_KEYS_MAX = 2000
FRAME_BYTES_MAX = 64 * 1024 * 1024
PROBLEMS_MAX = 50


class BackupError(ComityError):
    """A backup cannot be taken, read or restored."""


# --- the stream --------------------------------------------------------------------------


def snapshot_items(kv: KV) -> Iterator[tuple[bytes, bytes]]:
    if isinstance(kv, LevelDBKV | MemoryKV):
        return kv.snapshot_items()
    raise BackupError(f"the store at {kv.location} cannot take snapshots")


def encode_stream(items: Iterable[tuple[bytes, bytes]], extra: dict[str, Any]) -> Iterator[bytes]:
    """Frames of ``items`` in chunks of about ``CHUNK_BYTES``, then the manifest."""
    digest, keys = hashlib.sha256(), 0
    meta: dict[bytes, bytes] = {}
    headers: dict[int, bytes] = {}
    chunk = bytearray(MAGIC)
    for key, value in items:
        frame = FRAME.pack(len(key), len(value)) + key + value
        digest.update(frame)
        keys += 1
        chunk += frame
        if key.startswith(ks.META):
            meta[key] = value
        elif key.startswith(ks.BLOCK) and len(key) == 9:
            headers = {ks.read_u64(key[1:]): value}  # key order: the last one is the top
        if len(chunk) >= CHUNK_BYTES:
            yield bytes(chunk)
            chunk = bytearray()
    manifest = {
        **extra,
        **_summary(meta, headers),
        "keys": keys,
        "sha256": digest.hexdigest(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    trailer = json.dumps(manifest, sort_keys=True).encode()
    chunk += FRAME.pack(0, len(trailer)) + trailer
    yield bytes(chunk)


def _summary(meta: dict[bytes, bytes], headers: dict[int, bytes]) -> dict[str, Any]:
    height = ks.read_u64(meta[ks.META_HEIGHT]) if ks.META_HEIGHT in meta else 0
    size = ks.read_u64(meta[ks.META_LEDGER_SIZE]) if ks.META_LEDGER_SIZE in meta else 0
    genesis = meta.get(ks.META_GENESIS)
    root = None
    if height and height in headers:
        root = BlockHeader.from_json(parse_json(headers[height])).ledger_root
    return {
        "height": height,
        "ledger_size": size,
        "ledger_root": root,
        "genesis_hash": genesis.hex() if genesis is not None else None,
    }


def _decode(chunks: Iterable[bytes]) -> Iterator[tuple[bytes, bytes] | dict[str, Any]]:
    """Pairs, then the manifest dict; raises BackupError on a malformed stream."""
    buffer = bytearray()
    magic_seen = False
    for chunk in chunks:
        buffer += chunk
        if not magic_seen:
            if len(buffer) < len(MAGIC):
                continue
            if bytes(buffer[: len(MAGIC)]) != MAGIC:
                raise BackupError("not a Comity backup stream (bad magic)")
            del buffer[: len(MAGIC)]
            magic_seen = True
        while len(buffer) >= FRAME.size:
            key_len, value_len = FRAME.unpack_from(buffer)
            if key_len + value_len > FRAME_BYTES_MAX:
                raise BackupError(f"frame of {key_len + value_len} bytes is over the limit")
            end = FRAME.size + key_len + value_len
            if len(buffer) < end:
                break
            frame = bytes(buffer[:end])
            del buffer[:end]
            if key_len == 0:
                if buffer:
                    raise BackupError("bytes after the backup trailer")
                yield dict(json.loads(frame[FRAME.size :]))
                return
            yield frame[FRAME.size : FRAME.size + key_len], frame[FRAME.size + key_len :]
    raise BackupError("backup stream ended before its trailer (truncated)")


def write_backup(chunks: Iterable[bytes], out: Path) -> dict[str, Any]:
    """Write a stream to ``out/ledger`` + ``out/manifest.json``; checks count and digest."""
    if out.exists() and any(out.iterdir()):
        raise BackupError(f"{out} exists and is not empty")
    partial = out / "ledger.partial"
    kv = LevelDBKV.open(partial)
    digest, keys, batch = hashlib.sha256(), 0, list[tuple[bytes, bytes | None]]()
    manifest: dict[str, Any] | None = None
    try:
        for item in _decode(chunks):
            if isinstance(item, dict):
                manifest = item
                break
            key, value = item
            digest.update(FRAME.pack(len(key), len(value)) + key + value)
            keys += 1
            batch.append((key, value))
            if len(batch) >= BATCH_KEYS_MAX:
                kv.write(batch, sync=False)
                batch = []
        kv.write(batch, sync=True)
    finally:
        kv.close()
    assert manifest is not None  # _decode ends with the manifest or raises
    if keys != manifest.get("keys") or digest.hexdigest() != manifest.get("sha256"):
        raise BackupError(
            f"backup stream damaged: {keys} keys / {digest.hexdigest()} "
            f"received, trailer says {manifest.get('keys')} / "
            f"{manifest.get('sha256')}"
        )
    partial.rename(out / "ledger")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def offline_backup(data_dir: Path, out: Path, extra: dict[str, Any]) -> dict[str, Any]:
    """Back up a stopped node's store (opening it fails while the node runs)."""
    source = data_dir / "ledger"
    if not source.is_dir():
        raise BackupError(f"no store at {source}")
    with Store.open_leveldb(source) as store:
        return write_backup(encode_stream(snapshot_items(store.kv), extra), out)


# --- check -------------------------------------------------------------------------------


class _NoSyncKV:
    """A scratch LevelDB for replays: nothing in it needs to survive a crash."""

    def __init__(self, inner: LevelDBKV) -> None:
        self.inner = inner
        self.location = inner.location
        self.get = inner.get
        self.iterate = inner.iterate

    def write(self, batch: Batch, *, sync: bool) -> None:
        del sync
        self.inner.write(batch, sync=False)

    def compact(self) -> None:
        self.inner.compact()

    def close(self) -> None:
        self.inner.close()


def check_store(store: Store, genesis: Genesis) -> list[str]:
    """Replay ``store`` from genesis into a scratch store; return the problems found."""
    problems: list[str] = []
    if store.genesis_hash not in (None, genesis.hash()):
        return [f"store was made for genesis {store.genesis_hash}, not {genesis.hash()}"]
    with tempfile.TemporaryDirectory(prefix="comity-check-") as scratch_dir:
        scratch = Store(_NoSyncKV(LevelDBKV.open(Path(scratch_dir) / "ledger")))
        try:
            app = Application(genesis, scratch, build_registry())
            for height in range(1, store.height + 1):
                problem = _replay_block(store, app, height)
                if problem is not None:
                    return [*problems, problem]
            problems.extend(_compare(store.kv, scratch.kv))
        finally:
            scratch.close()
    return problems


def _replay_block(store: Store, app: Application, height: int) -> str | None:
    try:
        header, certificate = store.get_header(height), store.get_certificate(height)
        if header is None or certificate is None:
            return f"height {height}: header or certificate missing"
        envelopes = []
        for record_id in store.get_block_record_ids(height):
            data = store.get_envelope_bytes(record_id)
            if data is None:
                return f"height {height}: envelope {record_id} missing"
            envelope = parse_envelope(
                parse_json(data), max_record_bytes=app.params.max_record_bytes
            )
            if envelope.id != record_id:
                return f"height {height}: envelope stored under {record_id} has id {envelope.id}"
            envelopes.append(_with_kept_body(store, envelope))
        block = Block(header, tuple(envelopes))
        verify_certificate(
            certificate, app.chain_id, app.state.validators(height), block.hash, height
        )
        app.validate_block(block, now=None)
        app.commit(block, certificate)
    except ComityError as exc:
        return f"height {height}: {type(exc).__name__}: {exc}"
    return None


def _compare(disk: KV, rebuilt: KV) -> list[str]:
    """Every key the replay wrote must be on disk with the same value, and no other."""
    problems: list[str] = []
    ours = _without_local(disk.iterate())
    theirs = _without_local(rebuilt.iterate())
    a, b = next(ours, None), next(theirs, None)
    while (a is not None or b is not None) and len(problems) < PROBLEMS_MAX:
        if b is None or (a is not None and a[0] < b[0]):
            assert a is not None
            problems.append(f"key {_show(a[0])} is on disk but no block implies it")
            a = next(ours, None)
        elif a is None or b[0] < a[0]:
            problems.append(f"key {_show(b[0])} is missing on disk")
            b = next(theirs, None)
        else:
            if a[1] != b[1]:
                problems.append(f"key {_show(a[0])} holds a different value than the blocks imply")
            a, b = next(ours, None), next(theirs, None)
    return problems


def _with_kept_body(store: Store, envelope: Envelope) -> Envelope:
    """A private act with the body this (party's) store keeps as valid: its index
    entries are part of what the blocks imply here (docs/PRIVACY.md)."""
    if not is_private(envelope.record) or store.body_note(envelope.id) != {"status": "kept"}:
        return envelope
    return envelope.with_body(store.get_body(envelope.id))


#: Keys no block implies: the node's own state, and what it holds of private bodies
#: (a party's copy, its notes, the bodies it still wants), which differ by node.
_LOCAL_PREFIXES = (ks.STATE, ks.BODY, ks.BODY_NOTE, ks.BODY_WANTED)


def _without_local(items: Iterator[tuple[bytes, bytes]]) -> Iterator[tuple[bytes, bytes]]:
    return (item for item in items if not item[0].startswith(_LOCAL_PREFIXES))


def _show(key: bytes) -> str:
    return f"{key[:1].decode('latin-1')!r}+{key[1:].hex()[:48]}"


# --- verify and restore ------------------------------------------------------------------


def verify_backup(backup: Path, genesis: Genesis) -> tuple[dict[str, Any], list[str]]:
    """The manifest and the problems of ``backup``: digest, genesis, then a full check."""
    try:
        manifest = json.loads((backup / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{backup}/manifest.json unreadable: {exc}") from exc
    if not (backup / "ledger").is_dir():
        raise BackupError(f"{backup}/ledger is missing")
    if manifest.get("genesis_hash") not in (None, genesis.hash()):
        return manifest, [
            f"backup is of genesis {manifest['genesis_hash']}, this node's is {genesis.hash()}"
        ]
    with Store.open_leveldb(backup / "ledger") as store:
        digest, keys = hashlib.sha256(), 0
        for key, value in store.kv.iterate():
            digest.update(FRAME.pack(len(key), len(value)) + key + value)
            keys += 1
        if keys != manifest.get("keys") or digest.hexdigest() != manifest.get("sha256"):
            return manifest, [
                f"backup content differs from its manifest ({keys} keys, "
                f"sha256 {digest.hexdigest()})"
            ]
        if store.height != manifest.get("height"):
            return manifest, [f"backup height {store.height} != manifest {manifest['height']}"]
        return manifest, check_store(store, genesis)


def restore(
    backup: Path,
    data_dir: Path,
    genesis: Genesis,
    *,
    force: bool,
    signed_through: int | None = None,
) -> dict[str, Any]:
    """Verify ``backup``, then install it as ``data_dir/ledger`` (the node must be stopped).

    With ``force`` an existing store is kept aside as ``ledger.before-restore-<time>``,
    never deleted: restoring the wrong backup must be undoable. The restored store
    gets a signing hold and no live consensus WAL (node/signing_hold.py): the key
    may have signed past the backup. ``signed_through`` is the operator's bound on
    the heights it signed at; the returned manifest says which hold was placed.
    """
    manifest, problems = verify_backup(backup, genesis)
    if problems:
        raise BackupError("backup failed verification: " + "; ".join(problems[:5]))
    target = data_dir / "ledger"
    replaced: int | None = None
    if target.exists() and any(target.iterdir()):
        if not force:
            raise BackupError(
                f"{target} holds a store; stop the node and pass --force "
                "to replace it (the old one is kept aside)"
            )
        replaced = _signed_through_of(target)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        target.rename(data_dir / f"ledger.before-restore-{stamp}")
    data_dir.mkdir(parents=True, exist_ok=True)
    staging = data_dir / "ledger.restoring"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(backup / "ledger", staging)
    (staging / "LOCK").unlink(missing_ok=True)
    staging.rename(target)
    with Store.open_leveldb(target) as store:
        if store.height != manifest["height"]:
            raise BackupError(
                f"restored store is at height {store.height}, expected {manifest['height']}"
            )
        bound = _hold_bound(store, replaced, signed_through)
        store.kv.write(hold.hold_batch(store, bound, store.height), sync=True)
    return {**manifest, "signed_through": bound}


def _signed_through_of(target: Path) -> int | None:
    """The highest height the store at ``target`` may have signed at (None: unknown)."""
    try:  # fails while a node holds the lock: never swap a store under a live node
        with Store.open_leveldb(target) as old:
            height, raw = old.height, old.get_state(hold.WAL_NAME)
    except StoreError as exc:
        raise BackupError(f"{target} is in use or unreadable: {exc}") from exc
    if raw is None:
        return height + 1
    wal = hold.wal_height(raw)
    return None if wal is None else max(height + 1, wal)


def _hold_bound(store: Store, replaced: int | None, operator: int | None) -> int | None:
    """Signed-through height for the hold: what the replaced store or the operator knows.

    Without either, nobody knows how far the key got after the backup: None, an
    open-ended hold the operator releases after checking.
    """
    if replaced is None and operator is None:
        return None
    known = [store.height + 1, *(h for h in (replaced, operator) if h is not None)]
    restored_wal = hold.wal_height(store.get_state(hold.WAL_NAME))
    if restored_wal is not None:
        known.append(restored_wal)
    return max(known)
