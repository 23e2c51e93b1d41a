"""Key layout of the store: one 1-byte prefix per kind of key.

Integers are 8-byte big-endian (``u64``) so byte order is numeric order and a
range scan over heights or leaf indexes comes back sorted. Record ids, signers
and block hashes are stored as their 32 raw bytes, not hex.

======  ==============================================  ==============================
prefix  key                                             value
======  ==============================================  ==============================
``b``   height                                          header, JCS JSON
``c``   height                                          commit certificate, JCS JSON
``r``   height                                          record ids of the block, 32 B each,
                                                        concatenated in leaf order
``h``   block_hash                                      height
``e``   record_id                                       envelope canonical bytes (the leaf)
``l``   record_id                                       height ‖ leaf_index
``x``   leaf_index                                      record_id (leaf order)
``m``   level (1 B) ‖ index                             perfect Merkle subtree hash
``n``   signer ‖ nonce (UTF-8)                          record_id (nonce used once)
``i``   index ‖ 0x00 ‖ escaped value ‖ 0x00 ‖ leaf      record_id (secondary indexes)
``s``   name (UTF-8)                                    node-local state (consensus WAL)
``g``   chosen by the caller                            governance / application state
``p``   record_id                                       private body of a private act,
                                                        JCS JSON (party nodes only)
``q``   record_id                                       what became of that body: JCS
                                                        {"status": "void"|"wanted"|"purged"}
``w``   record_id                                       empty: a body this party still
                                                        lacks (fetched from another party)
``t``   retain_until (ms) ‖ record_id                   empty: a body held here, by the
                                                        time its retention ends
``M``   name (ASCII)                                    meta: height, ledger_size, genesis,
                                                        schema version of the store
======  ==============================================  ==============================

Index values are escaped (0x01 → 0x01 0x02, 0x00 → 0x01 0x01) so no value
holds 0x00 and ``i ‖ index ‖ 0x00 ‖ value ‖ 0x00`` is a prefix of exactly the
entries for that value, whatever a record's ``case_ref`` contains. The
trailing leaf index makes each value's entries come back in commit order.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

from ledger.records import Envelope, evidence_hashes

U64_MAX = 2**64 - 1

BLOCK = b"b"
CERT = b"c"
BLOCK_RECORDS = b"r"
BLOCK_HASH = b"h"
ENVELOPE = b"e"
LOCATOR = b"l"
LEAF = b"x"
NODE = b"m"
NONCE = b"n"
INDEX = b"i"
STATE = b"s"
CALLER = b"g"
BODY = b"p"
BODY_NOTE = b"q"
BODY_WANTED = b"w"
BODY_RETAIN = b"t"
META = b"M"

META_SCHEMA = META + b"schema"
META_HEIGHT = META + b"height"
META_LEDGER_SIZE = META + b"ledger_size"
META_GENESIS = META + b"genesis"

#: Index key prefixes kept ready (a few hundred KiB at most).
INDEX_PREFIX_CACHE = 4096

#: ``receipt``: an ``exchange_receipt`` by its key (actor state / channel / external id,
#: ``ledger.acts.receipt_key``); ``receipt_of``: by the record it anchors (docs/CHANNELS.md).
RECEIPT_INDEXES = ("receipt", "receipt_of")
INDEX_NAMES = (
    "case_ref",
    "evidence",
    "actor_state",
    "territorial_state",
    "type",
    "signer",
    *RECEIPT_INDEXES,
)


def u64(number: int) -> bytes:
    if not 0 <= number <= U64_MAX:
        raise ValueError(f"{number} does not fit in an unsigned 64-bit key")
    return number.to_bytes(8, "big")


def read_u64(data: bytes) -> int:
    if len(data) != 8:
        raise ValueError(f"expected 8 bytes, got {len(data)}")
    return int.from_bytes(data, "big")


def block_key(height: int) -> bytes:
    return BLOCK + u64(height)


def cert_key(height: int) -> bytes:
    return CERT + u64(height)


def block_records_key(height: int) -> bytes:
    return BLOCK_RECORDS + u64(height)


def block_hash_key(block_hash: bytes) -> bytes:
    return BLOCK_HASH + block_hash


def envelope_key(record_id: bytes) -> bytes:
    return ENVELOPE + record_id


def locator_key(record_id: bytes) -> bytes:
    return LOCATOR + record_id


def leaf_key(leaf_index: int) -> bytes:
    return LEAF + u64(leaf_index)


def node_key(level: int, index: int) -> bytes:
    return NODE + bytes([level]) + u64(index)


def nonce_key(signer: bytes, nonce: str) -> bytes:
    return NONCE + signer + nonce.encode()


def body_key(record_id: bytes) -> bytes:
    return BODY + record_id


def body_note_key(record_id: bytes) -> bytes:
    return BODY_NOTE + record_id


def body_retain_key(retain_until_ms: int, record_id: bytes) -> bytes:
    return BODY_RETAIN + u64(retain_until_ms) + record_id


def state_key(name: str) -> bytes:
    return STATE + name.encode()


def escape_value(value: str) -> bytes:
    return value.encode().replace(b"\x01", b"\x01\x02").replace(b"\x00", b"\x01\x01")


@functools.lru_cache(maxsize=INDEX_PREFIX_CACHE)
def index_prefix(index: str, value: str) -> bytes:
    # Cached: most values repeat across records (a state, a type, a signer, a case),
    # and a block's commit builds about six index keys per record.
    return INDEX + index.encode() + b"\x00" + escape_value(value) + b"\x00"


def index_key(index: str, value: str, leaf_index: int) -> bytes:
    return index_prefix(index, value) + u64(leaf_index)


@functools.lru_cache(maxsize=INDEX_PREFIX_CACHE)
def sealed_index_prefix(index: str, value: str) -> bytes:
    """The prefix of an entry derived from a private body: the value as a SHA-256,
    so that no body's text is ever part of a key. LevelDB copies keys into its
    MANIFEST (each table's first and last key), which a purge cannot rewrite."""
    digest = hashlib.sha256(b"comity-index\x00" + index.encode() + b"\x00" + value.encode())
    # 0x01 0x03 starts no escaped value (an escaped 0x01 is always 0x01 0x01 or 0x01 0x02)
    return INDEX + index.encode() + b"\x00\x01\x03" + digest.digest().hex().encode() + b"\x00"


def index_prefixes(envelope: Envelope) -> list[bytes]:
    """The index prefixes of ``envelope``'s entries: the signed record's as they are,
    those only a private body gives in their sealed form."""
    entries = index_entries(envelope)
    if envelope.body is None:
        return [index_prefix(name, value) for name, value in entries]
    public = index_entries(envelope.with_body(None))
    return [
        index_prefix(name, value) if (name, value) in public else sealed_index_prefix(name, value)
        for name, value in entries
    ]


def index_entries(envelope: Envelope) -> set[tuple[str, str]]:
    """The (index, value) pairs under which ``envelope`` is found; a set drops repeats."""
    record = envelope.content
    entries = {
        ("actor_state", envelope.actor_state),
        ("type", envelope.type),
        ("signer", envelope.signer),
    }
    case_ref = record.get("case_ref")
    if isinstance(case_ref, str):
        entries.add(("case_ref", case_ref))
    entries.update(("evidence", digest) for digest in evidence_hashes(record))
    entries.update(("territorial_state", state) for state in record.get("territorial_states") or [])
    if envelope.type == "exchange_receipt":
        entries.update(_receipt_entries(envelope.actor_state, record))
    return entries


def receipt_key(state: str, channel: str, external_id: str) -> str:
    """The idempotency key of an ``exchange_receipt``: one state records one message of
    one channel once. The state is two letters and a channel has no ``/``, so the key
    names one triple."""
    return f"{state}/{channel}/{external_id}"


def _receipt_entries(state: str, record: dict[str, Any]) -> set[tuple[str, str]]:
    """A receipt's key and the record it anchors (its shape was checked before commit;
    a record of another shape, e.g. a void body, is indexed under neither)."""
    channel, external_id, refs = (
        record.get("channel"),
        record.get("external_id"),
        record.get("refs"),
    )
    if not (isinstance(channel, str) and isinstance(external_id, str) and isinstance(refs, list)):
        return set()
    entries = {("receipt", receipt_key(state, channel, external_id))}
    entries.update(("receipt_of", ref) for ref in refs[:1] if isinstance(ref, str))
    return entries
