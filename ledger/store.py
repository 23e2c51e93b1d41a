"""The node's store: blocks, envelopes, indexes, the Merkle log and local state.

Theory of operation
-------------------
``Store`` is written once over the ordered key-value seam of ``ledger/kv.py``
(``MemoryKV`` for tests and simulations, ``LevelDBKV`` in production); the key
layout is the table in ``ledger/keyspace.py``.

A block is committed by ``commit_block`` in two phases. First everything is
checked without writing: the header follows the stored chain (height, prev
hash, record count, ledger size), no record id or (signer, nonce) is reused,
and the Merkle append of the block's leaves gives exactly the header's
``ledger_root``. Then the header, certificate, envelopes, locators, leaf order,
nonces, Merkle nodes, every index entry, the caller's ``g`` keys and the meta
counters go to disk in ONE write batch with ``sync=True``. A crash therefore
leaves the whole block or none of it, and a rejected block leaves no trace.

On open the store checks what a torn or tampered disk would break first: the
meta height names the last stored header, the Merkle root recomputed from
stored nodes at ``ledger_size`` equals that header's ``ledger_root``, and the
header's hash maps back to its height. Any disagreement raises ``StoreError``
and the node refuses to start, rather than serving proofs that do not hold.
These checks cost O(log n) reads; they cannot see a flipped node off the
right edge of the tree, which only a full rebuild would.

Node-local state (``s`` keys: the consensus WAL) is written by ``put_state``,
with ``sync=True`` by default because the engine persists before it sends.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger import keyspace as ks
from ledger import merkle
from ledger.block import BlockHeader, CommitCertificate
from ledger.canonical import canonical_bytes, parse_json
from ledger.errors import (
    ChainError,
    ClientError,
    EncodingError,
    InvariantViolation,
    NotFound,
    StoreError,
)
from ledger.hashing import parse_hex
from ledger.kv import KV, LevelDBKV, MemoryKV
from ledger.merkle import Appended
from ledger.records import Envelope

SCHEMA_VERSION = 1
SEARCH_LIMIT_MAX = 1000
BLOCKS_LIMIT_MAX = 1000
INDEX_VALUE_BYTES_MAX = 1024
STATE_NAME_BYTES_MAX = 256
ID_BYTES = 32


@dataclass(frozen=True, slots=True)
class StoredBlock:
    header: BlockHeader
    certificate: CommitCertificate
    record_ids: tuple[str, ...]


def _split_ids(blob: bytes) -> list[str]:
    return [blob[i : i + ID_BYTES].hex() for i in range(0, len(blob), ID_BYTES)]


class Store:
    """One store over any KV; also the ``merkle.HashReader`` of the ledger log."""

    def __init__(self, kv: KV) -> None:
        self.kv = kv
        self._height, self._ledger_size = self._load_meta()
        if self._height > 0:
            self._check_last_block()

    # --- opening and closing ---------------------------------------------------

    @classmethod
    def open_memory(cls) -> Store:
        return cls(MemoryKV())

    @classmethod
    def open_leveldb(cls, path: str | Path) -> Store:
        kv = LevelDBKV.open(path)
        try:
            return cls(kv)
        except BaseException:
            kv.close()
            raise

    def close(self) -> None:
        self.kv.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _corrupt(self, detail: str) -> StoreError:
        return StoreError(
            f"store at {self.kv.location} is inconsistent: {detail}; "
            "restore from backup or wipe and resync"
        )

    def _load_meta(self) -> tuple[int, int]:
        schema = self.kv.get(ks.META_SCHEMA)
        if schema is None:
            if next(self.kv.iterate(limit=1), None) is not None:
                raise StoreError(
                    f"store at {self.kv.location} has data but no schema "
                    "version: it is not a Comity store"
                )
            self.kv.write(
                [
                    (ks.META_SCHEMA, ks.u64(SCHEMA_VERSION)),
                    (ks.META_HEIGHT, ks.u64(0)),
                    (ks.META_LEDGER_SIZE, ks.u64(0)),
                ],
                sync=True,
            )
            return 0, 0
        if schema != ks.u64(SCHEMA_VERSION):
            raise StoreError(
                f"store at {self.kv.location} has schema version "
                f"{int.from_bytes(schema, 'big')}, this node reads "
                f"{SCHEMA_VERSION}"
            )
        return self._meta_int(ks.META_HEIGHT), self._meta_int(ks.META_LEDGER_SIZE)

    def _meta_int(self, key: bytes) -> int:
        raw = self.kv.get(key)
        if raw is None or len(raw) != 8:
            raise self._corrupt(f"meta {key[1:].decode()} is missing or malformed")
        return ks.read_u64(raw)

    def _check_last_block(self) -> None:
        height = self._height
        header = self.get_header(height)
        if header is None:
            raise self._corrupt(f"meta height is {height} but block {height} is missing")
        last = next(self.kv.iterate(prefix=ks.BLOCK, reverse=True, limit=1))[0]
        if ks.read_u64(last[1:]) != height:
            raise self._corrupt(
                f"meta height is {height} but block {ks.read_u64(last[1:])} is stored"
            )
        if header.ledger_size != self._ledger_size:
            raise self._corrupt(
                f"block {height} ledger_size {header.ledger_size} != log size {self._ledger_size}"
            )
        try:
            log_root = merkle.root(self._ledger_size, self).hex()
        except StoreError as exc:
            raise self._corrupt(f"cannot recompute the log root: {exc}") from exc
        if log_root != header.ledger_root:
            raise self._corrupt(
                f"block {height} ledger_root {header.ledger_root} != log root {log_root}"
            )
        if self.height_of_block(header.hash()) != height:
            raise self._corrupt(
                f"block {height} hash {header.hash()} does not map back to its height"
            )

    # --- meta --------------------------------------------------------------------

    @property
    def height(self) -> int:
        """Last committed height; 0 before the first block."""
        return self._height

    @property
    def ledger_size(self) -> int:
        """Number of envelopes in the ledger log."""
        return self._ledger_size

    @property
    def genesis_hash(self) -> str | None:
        raw = self.kv.get(ks.META_GENESIS)
        return None if raw is None else raw.hex()

    def set_genesis_hash(self, genesis_hash: str) -> None:
        """Pin the store to a genesis; it can be set once and never changed."""
        current = self.genesis_hash
        if current == genesis_hash:
            return
        if current is not None:
            raise self._genesis_mismatch(genesis_hash, current)
        self.kv.write([(ks.META_GENESIS, parse_hex(genesis_hash, 32, "genesis_hash"))], sync=True)

    def check_genesis(self, genesis_hash: str) -> None:
        """Refuse a store made for another chain; pin a fresh store to ``genesis_hash``."""
        current = self.genesis_hash
        if current is None:
            self.set_genesis_hash(genesis_hash)
        elif current != genesis_hash:
            raise self._genesis_mismatch(genesis_hash, current)

    def _genesis_mismatch(self, wanted: str, current: str) -> StoreError:
        return StoreError(
            f"store at {self.kv.location} belongs to genesis {current}, "
            f"not {wanted}: point the node at its own data dir, or wipe "
            "this one and resync"
        )

    # --- committing --------------------------------------------------------------

    def commit_block(
        self,
        header: BlockHeader,
        envelopes: Sequence[Envelope],
        certificate: CommitCertificate,
        extra: Mapping[bytes, bytes | None] | None = None,
        *,
        checked: Appended | None = None,
        notes: Mapping[str, tuple[str, dict[str, Any] | None]] | None = None,
    ) -> None:
        """Check, then write the block and everything derived from it in one sync batch.

        Raises ChainError if the block does not follow the stored chain or log
        and InvariantViolation on caller misuse; in both cases nothing is written.

        ``checked`` comes from a caller that has, against this store as it is
        now, checked that no record or (signer, nonce) of the block is stored,
        and appended its leaves to the log (the node's block validation does
        both): the store then does not repeat those lookups. It still checks
        that no record id or (signer, nonce) repeats within the block, and the
        root ``checked`` gives must still match the header.

        An envelope that carries a private body (``Envelope.body``, a party's copy)
        has the body stored beside it and is indexed by its content; ``notes``
        says, by record id, what became of the bodies this node should hold but
        does not keep as valid: ``("void", body)``, it broke a rule (kept as
        evidence, not indexed); ``("wanted", None)``, not here yet.
        """
        self._check_links(header, envelopes, certificate)
        _check_unique(envelopes)  # cheap, in memory: never skipped (finding C2)
        if checked is None:
            self._check_fresh_records(envelopes)
            leaf_hashes = [merkle.leaf_hash(envelope.leaf) for envelope in envelopes]
            checked = merkle.append_leaves(self._ledger_size, leaf_hashes, self)
        nodes, new_size, new_root = checked
        if new_size != header.ledger_size or new_root.hex() != header.ledger_root:
            raise ChainError(
                f"block {header.height} claims ledger_root {header.ledger_root} "
                f"at size {header.ledger_size}, appending its records gives "
                f"{new_root.hex()} at size {new_size}",
                height=header.height,
                field="header.ledger_root",
                expected=(new_root.hex(), new_size),
                actual=(header.ledger_root, header.ledger_size),
            )
        batch = self._block_batch(header, envelopes, certificate)
        batch.extend((ks.node_key(level, index), value) for (level, index), value in nodes.items())
        batch.extend(self._extra_batch(extra or {}))
        batch.extend(_body_batch(envelopes, notes or {}))
        batch.append((ks.META_HEIGHT, ks.u64(header.height)))
        batch.append((ks.META_LEDGER_SIZE, ks.u64(new_size)))
        self.kv.write(batch, sync=True)
        self._height, self._ledger_size = header.height, new_size

    def _check_links(
        self, header: BlockHeader, envelopes: Sequence[Envelope], certificate: CommitCertificate
    ) -> None:
        if header.height != self._height + 1:
            raise ChainError(
                f"block height {header.height} does not follow stored height {self._height}",
                height=header.height,
                field="header.height",
                expected=self._height + 1,
                actual=header.height,
            )
        if header.record_count != len(envelopes):
            raise ChainError(
                f"block {header.height} record_count {header.record_count} "
                f"!= {len(envelopes)} envelopes",
                height=header.height,
                field="header.record_count",
                expected=len(envelopes),
                actual=header.record_count,
            )
        if header.ledger_size != self._ledger_size + len(envelopes):
            raise ChainError(
                f"block {header.height} ledger_size {header.ledger_size} != "
                f"{self._ledger_size} + {len(envelopes)} envelopes",
                height=header.height,
                field="header.ledger_size",
                expected=self._ledger_size + len(envelopes),
                actual=header.ledger_size,
            )
        previous = self.get_header(self._height)
        expected_prev = previous.hash() if previous is not None else self.genesis_hash
        if expected_prev is not None and header.prev_hash != expected_prev:
            raise ChainError(
                f"block {header.height} prev_hash {header.prev_hash} != {expected_prev}",
                height=header.height,
                field="header.prev_hash",
                expected=expected_prev,
                actual=header.prev_hash,
            )
        if certificate.height != header.height or certificate.block_hash != header.hash():
            raise InvariantViolation(
                f"certificate for height {certificate.height} block {certificate.block_hash} "
                f"passed with block {header.height} {header.hash()}"
            )

    def _check_fresh_records(self, envelopes: Sequence[Envelope]) -> None:
        """No record of the block is stored, nor its (signer, nonce) used."""
        for envelope in envelopes:
            nonce = ks.nonce_key(bytes.fromhex(envelope.signer), str(envelope.record["nonce"]))
            if self.has_record(envelope.id):
                raise ChainError(
                    f"record {envelope.id} is already in the ledger",
                    field="envelopes.id",
                    actual=envelope.id,
                )
            if self.kv.get(nonce) is not None:
                raise ChainError(
                    f"record {envelope.id} reuses nonce "
                    f"{envelope.record['nonce']!r} of signer {envelope.signer}",
                    field="record.nonce",
                    actual=envelope.record["nonce"],
                )

    def _block_batch(
        self, header: BlockHeader, envelopes: Sequence[Envelope], certificate: CommitCertificate
    ) -> list[tuple[bytes, bytes | None]]:
        height = header.height
        record_ids = [bytes.fromhex(envelope.id) for envelope in envelopes]
        batch: list[tuple[bytes, bytes | None]] = [
            (ks.block_key(height), canonical_bytes(header.to_json())),
            (ks.cert_key(height), canonical_bytes(certificate.to_json())),
            (ks.block_hash_key(bytes.fromhex(header.hash())), ks.u64(height)),
            (ks.block_records_key(height), b"".join(record_ids)),
        ]
        height_key = ks.u64(height)
        signers: dict[str, bytes] = {}
        index_prefixes = ks.index_prefixes
        for offset, (envelope, record_id) in enumerate(zip(envelopes, record_ids, strict=True)):
            leaf_index = self._ledger_size + offset
            leaf_key = ks.u64(leaf_index)
            signer = signers.get(envelope.signer)
            if signer is None:
                signer = signers[envelope.signer] = bytes.fromhex(envelope.signer)
            batch += [
                (ks.envelope_key(record_id), envelope.leaf),
                (ks.locator_key(record_id), height_key + leaf_key),
                (ks.LEAF + leaf_key, record_id),
                (ks.nonce_key(signer, str(envelope.record["nonce"])), record_id),
            ]
            # Same keys as ks.index_key(name, value, leaf_index), built once per record.
            batch += [(prefix + leaf_key, record_id) for prefix in index_prefixes(envelope)]
        return batch

    @staticmethod
    def _extra_batch(extra: Mapping[bytes, bytes | None]) -> list[tuple[bytes, bytes | None]]:
        for key in extra:
            if not key.startswith(ks.CALLER) or len(key) < 2:
                raise InvariantViolation(
                    f"extra key {key!r:.60} must start with b'g' and name something after it"
                )
        return list(extra.items())

    def set_certificate(self, height: int, certificate: CommitCertificate) -> None:
        """Replace a stored certificate, e.g. with one holding late precommits."""
        header = self.get_header(height)
        if header is None:
            raise NotFound(f"no block at height {height}", field="height")
        if certificate.height != height or certificate.block_hash != header.hash():
            raise InvariantViolation(
                f"certificate for {certificate.height}/"
                f"{certificate.block_hash} is not for block {height}"
            )
        self.kv.write([(ks.cert_key(height), canonical_bytes(certificate.to_json()))], sync=True)

    # --- reading blocks and records ----------------------------------------------

    def _json(self, key: bytes, what: str) -> Any | None:
        raw = self.kv.get(key)
        return None if raw is None else self._parse(raw, what)

    def _parse(self, raw: bytes, what: str) -> Any:
        try:
            return parse_json(raw)
        except EncodingError as exc:
            raise self._corrupt(f"{what} is unreadable: {exc}") from exc

    def get_header(self, height: int) -> BlockHeader | None:
        if not 1 <= height <= self._height:
            return None
        obj = self._json(ks.block_key(height), f"header {height}")
        return None if obj is None else BlockHeader.from_json(obj)

    def get_certificate(self, height: int) -> CommitCertificate | None:
        if not 1 <= height <= self._height:
            return None
        obj = self._json(ks.cert_key(height), f"certificate {height}")
        return None if obj is None else CommitCertificate.from_json(obj)

    def get_block_record_ids(self, height: int) -> list[str]:
        """Record ids of block ``height`` in leaf order; NotFound if there is no such block."""
        raw = self.kv.get(ks.block_records_key(height)) if 1 <= height <= self._height else None
        if raw is None:
            raise NotFound(f"no block at height {height}", field="height")
        if len(raw) % ID_BYTES:
            raise self._corrupt(f"record id list of block {height} has {len(raw)} bytes")
        return _split_ids(raw)

    def iter_blocks(self, from_height: int = 1, limit: int = 100) -> Iterator[StoredBlock]:
        """Up to ``limit`` (at most BLOCKS_LIMIT_MAX) stored blocks from ``from_height`` on."""
        limit = max(0, min(limit, BLOCKS_LIMIT_MAX))
        for key, raw in self.kv.iterate(
            prefix=ks.BLOCK, start=ks.block_key(max(from_height, 1)), limit=limit
        ):
            height = ks.read_u64(key[1:])
            certificate = self.get_certificate(height)
            if certificate is None:
                raise self._corrupt(f"block {height} has no certificate")
            header = BlockHeader.from_json(self._parse(raw, f"header {height}"))
            yield StoredBlock(header, certificate, tuple(self.get_block_record_ids(height)))

    def height_of_block(self, block_hash: str) -> int | None:
        raw = self.kv.get(ks.block_hash_key(parse_hex(block_hash, 32, "block_hash")))
        return None if raw is None else ks.read_u64(raw)

    def get_envelope_bytes(self, record_id: str) -> bytes | None:
        """The envelope's canonical bytes, which are also its ledger leaf."""
        return self.kv.get(ks.envelope_key(parse_hex(record_id, 32, "record_id")))

    def has_record(self, record_id: str) -> bool:
        return self.get_envelope_bytes(record_id) is not None

    def locate(self, record_id: str) -> tuple[int, int] | None:
        """(height, leaf_index) of a committed record."""
        raw = self.kv.get(ks.locator_key(parse_hex(record_id, 32, "record_id")))
        return None if raw is None else (ks.read_u64(raw[:8]), ks.read_u64(raw[8:]))

    def record_id_at(self, leaf_index: int) -> str | None:
        if not 0 <= leaf_index < self._ledger_size:
            return None
        raw = self.kv.get(ks.leaf_key(leaf_index))
        return None if raw is None else raw.hex()

    def nonce_used(self, signer_hex: str, nonce: str) -> bool:
        signer = parse_hex(signer_hex, 32, "signer")
        return self.kv.get(ks.nonce_key(signer, nonce)) is not None

    # --- private bodies ----------------------------------------------------------

    def get_body(self, record_id: str) -> dict[str, Any] | None:
        """The private body this node keeps for ``record_id`` (a valid one or a void one)."""
        raw = self.kv.get(ks.body_key(parse_hex(record_id, 32, "record_id")))
        return None if raw is None else self._parse(raw, f"body of {record_id}")

    def body_note(self, record_id: str) -> dict[str, Any] | None:
        raw = self.kv.get(ks.body_note_key(parse_hex(record_id, 32, "record_id")))
        return None if raw is None else self._parse(raw, f"body note of {record_id}")

    def body_notes(self, status: str, *, limit: int = 1000) -> list[str]:
        """Record ids whose body note has ``status`` (wanted, void, purged, or kept).
        ``wanted`` has its own index; the others scan every note."""
        if status == "wanted":
            return [key[1:].hex() for key, _ in self.kv.iterate(prefix=ks.BODY_WANTED, limit=limit)]
        out = []
        for key, raw in self.kv.iterate(prefix=ks.BODY_NOTE):
            if self._parse(raw, "body note").get("status") == status:
                out.append(key[1:].hex())
                if len(out) >= limit:
                    break
        return out

    def put_body(self, envelope: Envelope, *, valid: bool) -> None:
        """A body that arrived after its header committed: stored (and indexed by its
        content if ``valid``) in one sync batch; the note says which."""
        located = self.locate(envelope.id)
        if located is None or envelope.body is None:
            raise InvariantViolation(f"put_body for {envelope.id}: not committed or no body")
        record_id = bytes.fromhex(envelope.id)
        batch: list[tuple[bytes, bytes | None]] = [
            (ks.body_key(record_id), canonical_bytes(envelope.body)),
            (ks.body_note_key(record_id), _note("kept" if valid else "void")),
            (ks.BODY_WANTED + record_id, None),
        ]
        if valid:
            leaf_key = ks.u64(located[1])
            public = set(ks.index_prefixes(envelope.with_body(None)))
            batch += [
                (prefix + leaf_key, record_id)
                for prefix in ks.index_prefixes(envelope)
                if prefix not in public
            ]
        self.kv.write(batch, sync=True)

    def purge_body(self, envelope: Envelope, purged_by: str, at: str) -> None:
        """Erase a private body and every index entry derived from it, then compact,
        so that no copy is left in the store's files. The header and its proof stay."""
        located = self.locate(envelope.id)
        if located is None or envelope.body is None:
            raise InvariantViolation(f"purge_body for {envelope.id}: not committed or no body")
        record_id = bytes.fromhex(envelope.id)
        leaf_key = ks.u64(located[1])
        public = set(ks.index_prefixes(envelope.with_body(None)))
        batch: list[tuple[bytes, bytes | None]] = [
            (prefix + leaf_key, None)
            for prefix in ks.index_prefixes(envelope)
            if prefix not in public
        ]
        batch += [
            (ks.body_key(record_id), None),
            (ks.body_note_key(record_id), _note("purged", by=purged_by, at=at)),
        ]
        self.kv.write(batch, sync=True)
        self.kv.compact()  # the whole key range: the body and the index keys are gone

    # --- indexes -----------------------------------------------------------------

    def search(
        self,
        index: str,
        value: str,
        *,
        after_leaf: int | None = None,
        limit: int = 100,
        sealed: bool = True,
    ) -> list[tuple[int, str]]:
        """(leaf_index, record_id) pairs of ``index`` == ``value``, in commit order.

        Page with ``after_leaf`` = the last leaf index returned; ``limit`` is
        capped at SEARCH_LIMIT_MAX. ``sealed`` also finds the entries that only
        private bodies give (a party's own use, or a body reader's search).
        """
        if index not in ks.INDEX_NAMES:
            raise ClientError(
                f"unknown index {index!r}; known: {', '.join(ks.INDEX_NAMES)}",
                field="index",
                code="unknown_index",
            )
        if len(value.encode()) > INDEX_VALUE_BYTES_MAX:
            raise ClientError(
                f"search value is over {INDEX_VALUE_BYTES_MAX} bytes",
                field="value",
                code="bad_query",
            )
        if limit < 1:
            raise ClientError("limit must be at least 1", field="limit", code="bad_query")
        limit = min(limit, SEARCH_LIMIT_MAX)
        found: list[tuple[int, str]] = []
        prefixes = [ks.index_prefix(index, value)]
        if sealed:
            prefixes.append(ks.sealed_index_prefix(index, value))
        for prefix in prefixes:
            start = (
                None if after_leaf is None or after_leaf < 0 else prefix + ks.u64(after_leaf + 1)
            )
            pairs = self.kv.iterate(prefix=prefix, start=start, limit=limit)
            found += [(ks.read_u64(key[len(prefix) :]), rid.hex()) for key, rid in pairs]
        return sorted(found)[:limit]

    # --- the Merkle log ----------------------------------------------------------

    def get_node(self, level: int, index: int) -> bytes:
        """merkle.HashReader: hash of the perfect node (level, index); KeyError if absent."""
        raw = self.kv.get(ks.node_key(level, index))
        if raw is None:
            raise KeyError((level, index))
        return raw

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self._ledger_size:
            raise NotFound(
                f"tree size {size} is beyond the ledger size {self._ledger_size}",
                field="size",
                code="size_beyond_ledger",
            )

    def ledger_root(self, size: int | None = None) -> bytes:
        """RFC 6962 root of the first ``size`` leaves (default: the whole ledger)."""
        size = self._ledger_size if size is None else size
        self._check_size(size)
        return merkle.root(size, self)

    def inclusion_proof(self, leaf_index: int, size: int) -> list[bytes]:
        self._check_size(size)
        if not 0 <= leaf_index < size:
            raise NotFound(
                f"leaf {leaf_index} is not in the tree of size {size}", field="leaf_index"
            )
        return merkle.inclusion_proof(leaf_index, size, self)

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        self._check_size(size2)
        if not 0 < size1 <= size2:
            raise ClientError(
                f"consistency needs 0 < size1 <= size2, got {size1} and {size2}",
                field="size1",
                code="bad_range",
            )
        return merkle.consistency_proof(size1, size2, self)

    # --- node-local and caller state ---------------------------------------------

    @staticmethod
    def _state_key(name: str) -> bytes:
        key = ks.state_key(name)
        if not name or len(key) > STATE_NAME_BYTES_MAX:
            raise InvariantViolation(f"state name {name!r:.60} is empty or too long")
        return key

    def put_state(self, name: str, value: bytes, *, sync: bool = True) -> None:
        """Write node-local state; ``sync=True`` (the default) returns once it is durable."""
        self.kv.write([(self._state_key(name), value)], sync=sync)

    def get_state(self, name: str) -> bytes | None:
        return self.kv.get(self._state_key(name))

    def delete_state(self, name: str, *, sync: bool = True) -> None:
        self.kv.write([(self._state_key(name), None)], sync=sync)

    @staticmethod
    def _caller_key(key: bytes) -> bytes:
        if not key.startswith(ks.CALLER):
            raise InvariantViolation(f"caller keys start with b'g', got {key!r:.60}")
        return key

    def get_kv(self, key: bytes) -> bytes | None:
        return self.kv.get(self._caller_key(key))

    def iter_prefix(
        self, prefix: bytes, *, limit: int | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Caller (``g``) keys under ``prefix`` in byte order."""
        return self.kv.iterate(prefix=self._caller_key(prefix), limit=limit)


def _check_unique(envelopes: Sequence[Envelope]) -> None:
    """No record id, and no (signer, nonce), twice in one block."""
    ids: set[str] = set()
    nonces: set[tuple[str, str]] = set()
    for envelope in envelopes:
        nonce = (envelope.signer, str(envelope.record["nonce"]))
        if envelope.id in ids:
            raise ChainError(
                f"record {envelope.id} is in the block more than once",
                field="envelopes.id",
                actual=envelope.id,
            )
        if nonce in nonces:
            raise ChainError(
                f"record {envelope.id} reuses nonce {nonce[1]!r} of signer "
                f"{nonce[0]} within the block",
                field="record.nonce",
                actual=nonce[1],
            )
        ids.add(envelope.id)
        nonces.add(nonce)


def _note(status: str, **extra: str) -> bytes:
    return canonical_bytes({"status": status, **extra})


def _body_batch(
    envelopes: Sequence[Envelope], notes: Mapping[str, tuple[str, dict[str, Any] | None]]
) -> list[tuple[bytes, bytes | None]]:
    """The body and note keys of a block's private acts held here."""
    batch: list[tuple[bytes, bytes | None]] = []
    for envelope in envelopes:
        if envelope.body is not None:
            record_id = bytes.fromhex(envelope.id)
            batch.append((ks.body_key(record_id), canonical_bytes(envelope.body)))
            batch.append((ks.body_note_key(record_id), _note("kept")))
    for record_id_hex, (status, body) in notes.items():
        if (status, body is None) not in (("void", False), ("wanted", True)):
            raise InvariantViolation(f"body note {status!r} for {record_id_hex}")
        record_id = bytes.fromhex(record_id_hex)
        batch.append((ks.body_note_key(record_id), _note(status)))
        if status == "wanted":
            batch.append((ks.BODY_WANTED + record_id, b""))
        if body is not None:
            batch.append((ks.body_key(record_id), canonical_bytes(body)))
    return batch
