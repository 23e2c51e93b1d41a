"""The auditor's verifier: check a Comity chain from genesis, trusting no node.

Theory of operation
-------------------
``ChainVerifier(genesis).feed(block)`` takes blocks in height order, each as
served by ``GET /v1/blocks?envelopes=true`` (``header``, ``commit``,
``envelopes``, optionally ``hash`` and ``record_ids``), and raises
``AuditFailure`` (code, detail, height) at the first thing that does not hold:

1. the header: exactly the nine fields of docs/PROTOCOL.md §7, the chain id,
   height = previous + 1, ``prev_hash`` = hash of the previous block (block 1:
   the genesis hash), time after the previous block's, proposer and
   ``validators_hash`` of the replayed validator set of this height;
2. the commit certificate (§9): this height and block hash, only distinct
   validators of this height's set, every precommit signature valid, at least
   ``floor(2n/3)+1`` of them;
3. every envelope (§3, §5): its id, its Ed25519 signature over JCS(record),
   the chain id, and that its signer may sign that type for that state at
   this height (``ledger.audit.gov``);
4. the ledger (§6): the block's leaves JCS(envelope) appended to a running
   RFC 6962 log give the header's ``ledger_size`` and ``ledger_root``.

Then the block's governance records are applied, so validator-set changes are
derived from the votes that made them, never taken from a node's word.

Memory is bounded: the log keeps only its right edge (one hash per set bit
of the size, the "compact range"), so a chain of any length costs O(log n)
for the log plus the governance state, never O(records).

Only the standard library and PyNaCl are used (plus ``ledger.merkle``'s
verifiers, ``ledger.errors`` and ``ledger.quorum``, themselves
stdlib-only), so an auditor can read this file and its companions alone.
JCS is re-implemented for Comity's subset (RFC 8785 §3.2: no whitespace,
minimal string escapes with lowercase hex, integers only, object members
sorted by UTF-16 code units) on top of the standard ``json`` module.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from ledger.audit.gov import AuditFailure, GovState, Seat, parse_utc
from ledger.quorum import quorum

HEADER_FIELDS: Final = (
    "chain_id",
    "height",
    "time",
    "prev_hash",
    "proposer",
    "record_count",
    "ledger_size",
    "ledger_root",
    "validators_hash",
)
_GENESIS_FIELDS: Final = {"chain_id", "genesis_time", "consensus", "members", "enrollments"}
_MAX_INT: Final = 2**53 - 1
_MAX_DEPTH: Final = 32
_EMPTY_ROOT: Final = hashlib.sha256(b"").digest()

__all__ = ["AuditFailure", "ChainVerifier", "CompactLog", "check_certificate", "jcs"]


# --- RFC 8785 canonical JSON, Comity's subset -------------------------------------------------


def _utf16_key(key: str) -> bytes:
    # RFC 8785 §3.2.3: compare keys as arrays of UTF-16 code units; big-endian
    # UTF-16 bytes compare in exactly that order.
    return key.encode("utf-16-be", "surrogatepass")


def _canon(value: Any, depth: int) -> Any:
    """A copy of ``value`` with object members in JCS order; refuse what JCS-subset forbids."""
    if isinstance(value, str) or value is None or value is True or value is False:
        return value
    if type(value) is int:
        if abs(value) > _MAX_INT:
            raise ValueError(f"integer {value} is outside ±(2^53-1)")
        return value
    if depth >= _MAX_DEPTH:
        raise ValueError("nesting deeper than 32 levels")
    if isinstance(value, dict):
        return {k: _canon(value[k], depth + 1) for k in sorted(value, key=_utf16_key)}
    if isinstance(value, list):
        return [_canon(item, depth + 1) for item in value]
    raise ValueError(f"{type(value).__name__} is not in Comity's JSON subset (no floats)")


def jcs(value: Any) -> bytes:
    """RFC 8785 bytes of ``value`` (objects, arrays, strings, integers, booleans, null).

    The stdlib encoder with ``ensure_ascii=False`` escapes exactly what §3.2.2.2
    requires (``"``, ``\\``, U+0000..U+001F, short forms for \\b \\t \\n \\f \\r,
    ``\\u00xx`` in lowercase hex otherwise); integers print as JCS prints them.
    """
    text = json.dumps(_canon(value, 0), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate: not valid Unicode
        raise ValueError(f"string holds a lone surrogate ({exc.reason})") from exc


def loads(data: bytes | str) -> Any:
    """Parse JSON as served; refuse NaN/Infinity (they are not JSON)."""

    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(data, parse_constant=refuse)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- genesis, headers, validator sets --------------------------------------------------------


def check_genesis(doc: Any) -> dict[str, Any]:
    """The genesis document exactly as nodes hash it, or AuditFailure.

    Nodes hash ``Genesis.model_dump(mode="json")``: every consensus parameter
    written out, defaults included. A file written by ``comity devnet`` may
    leave them out, and its hash then depends on the node software's defaults;
    complete it with ``complete_genesis`` against ``GET /v1/genesis``.
    """
    if not isinstance(doc, dict) or not {"chain_id", "genesis_time", "members"} <= set(doc):
        raise AuditFailure("bad_genesis", "genesis needs chain_id, genesis_time and members")
    unknown = set(doc) - _GENESIS_FIELDS
    if unknown:
        raise AuditFailure("bad_genesis", f"unknown genesis fields {sorted(unknown)}")
    consensus = doc.get("consensus")
    if (
        not isinstance(consensus, dict)
        or "proposal_expiry_blocks" not in consensus
        or "enrollments" not in doc
    ):
        raise AuditFailure(
            "incomplete_genesis",
            "the genesis leaves out default consensus "
            "parameters or enrollments; use the document GET /v1/genesis serves "
            "(comity verify completes a local file from it)",
        )
    try:
        GovState(doc)  # every member and enrolment has the fields the replay reads
    except (KeyError, TypeError) as exc:
        raise AuditFailure("bad_genesis", f"malformed member or enrolment ({exc!r})") from exc
    return doc


def complete_genesis(
    local: Mapping[str, Any], served: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """``local`` with the consensus parameters it leaves out taken from ``served``.

    Any other difference is refused: the auditor's own file decides members,
    keys and every parameter it states; a node only supplies its defaults.
    Returns the completed document and the names of the parameters filled in.
    """
    out = dict(local)
    out.setdefault("enrollments", [])
    consensus = dict(local.get("consensus") or {})
    served_consensus = served.get("consensus")
    served_consensus = served_consensus if isinstance(served_consensus, dict) else {}
    filled = sorted(set(served_consensus) - set(consensus))
    consensus.update({name: served_consensus[name] for name in filled})
    out["consensus"] = consensus
    try:
        same = jcs(out) == jcs(dict(served))
    except ValueError as exc:
        raise AuditFailure("bad_genesis", f"genesis is not canonical JSON: {exc}") from exc
    if not same:
        differ = sorted(k for k in set(out) | set(served) if out.get(k) != served.get(k))
        raise AuditFailure(
            "genesis_mismatch",
            f"the node's genesis differs from the local file "
            f"beyond default parameters, in {differ}",
        )
    return out, filled


def genesis_hash(genesis: Mapping[str, Any]) -> str:
    """docs/PROTOCOL.md §7: hex SHA-256 of JCS(genesis document)."""
    return sha256_hex(jcs(genesis))


def validators_hash(seats: Iterable[Seat]) -> str:
    rows = [{"state": s.state, "pubkey": s.pubkey} for s in sorted(seats)]
    return sha256_hex(jcs(rows))


def header_hash(header: Mapping[str, Any]) -> str:
    return sha256_hex(jcs(header))


def precommit_bytes(chain_id: str, height: int, round_: int, block_hash: str) -> bytes:
    return jcs(
        {
            "type": "precommit",
            "chain_id": chain_id,
            "height": height,
            "round": round_,
            "block_hash": block_hash,
        }
    )


def is_hex(value: Any, size: int) -> bool:
    return (
        isinstance(value, str)
        and len(value) == 2 * size
        and all(c in "0123456789abcdef" for c in value)
    )


def check_header_shape(header: Any, height: int | None) -> None:
    if not isinstance(header, dict) or set(header) != set(HEADER_FIELDS):
        got = sorted(header) if isinstance(header, dict) else type(header).__name__
        raise AuditFailure("bad_header", f"header fields are {got}", height=height)
    for name in ("height", "record_count", "ledger_size"):
        if type(header[name]) is not int or header[name] < 0:
            raise AuditFailure(
                "bad_header", f"header.{name} is not a non-negative integer", height=height
            )
    for name in ("prev_hash", "ledger_root", "validators_hash"):
        if not is_hex(header[name], 32):
            raise AuditFailure(
                "bad_header", f"header.{name} is not 64 lowercase hex", height=height
            )
    for name in ("chain_id", "time", "proposer"):
        if not isinstance(header[name], str):
            raise AuditFailure("bad_header", f"header.{name} is not a string", height=height)


# --- signatures and certificates ---------------------------------------------------------------

_KEYS: dict[str, VerifyKey] = {}


def verify_signature(pubkey_hex: str, message: bytes, signature_hex: str) -> bool:
    """Ed25519 (RFC 8032) via libsodium; False for anything malformed."""
    if not is_hex(pubkey_hex, 32) or not is_hex(signature_hex, 64):
        return False
    try:
        key = _KEYS.get(pubkey_hex)
        if key is None:
            if len(_KEYS) > 100_000:  # a bound on the cache, not on correctness
                _KEYS.clear()
            key = _KEYS[pubkey_hex] = VerifyKey(bytes.fromhex(pubkey_hex))
        key.verify(message, bytes.fromhex(signature_hex))
    except (BadSignatureError, ValueError, TypeError):
        return False
    except Exception:  # PyNaCl raises its own errors for small-order keys etc.
        return False
    return True


def check_certificate(
    cert: Any, chain_id: str, seats: Sequence[Seat], block_hash: str, height: int
) -> list[str]:
    """docs/PROTOCOL.md §9; returns the states that signed, raises AuditFailure if not proven."""
    if (
        not isinstance(cert, dict)
        or not isinstance(cert.get("signatures"), list)
        or type(cert.get("round")) is not int
    ):
        raise AuditFailure("bad_certificate", "certificate is malformed", height=height)
    if cert.get("height") != height:
        raise AuditFailure(
            "bad_certificate", f"certificate is for height {cert.get('height')}", height=height
        )
    if cert.get("block_hash") != block_hash:
        raise AuditFailure(
            "bad_certificate",
            f"certificate commits {cert.get('block_hash')}, the block hash is {block_hash}",
            height=height,
        )
    by_key = {s.pubkey: s.state for s in seats}
    message = precommit_bytes(chain_id, height, cert["round"], block_hash)
    signed: list[str] = []
    for entry in cert["signatures"]:
        validator = entry.get("validator") if isinstance(entry, dict) else None
        if validator not in by_key:
            raise AuditFailure(
                "bad_certificate",
                f"signer {str(validator)[:16]}… is not a validator of height {height}",
                height=height,
            )
        if by_key[validator] in signed:
            raise AuditFailure(
                "bad_certificate", f"validator {by_key[validator]} signed twice", height=height
            )
        if not verify_signature(validator, message, str(entry.get("signature"))):
            raise AuditFailure(
                "bad_certificate", f"bad precommit signature by {by_key[validator]}", height=height
            )
        signed.append(by_key[validator])
    need = quorum(len(seats))
    if len(signed) < need:
        raise AuditFailure(
            "bad_certificate",
            f"{len(signed)} signatures, the quorum of {len(seats)} validators is {need}",
            height=height,
        )
    return signed


# --- envelopes -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckedEnvelope:
    id: str
    leaf: bytes  # JCS(envelope), the RFC 6962 leaf input
    signer: str
    record: Mapping[str, Any]


def check_envelope(
    envelope: Any, chain_id: str, height: int | None, *, signature: bool = True
) -> CheckedEnvelope:
    """Shape, id and (unless told not to) signature of one envelope (PROTOCOL.md §3, §5)."""
    if (
        not isinstance(envelope, dict)
        or set(envelope) != {"record", "signer", "signature"}
        or not isinstance(envelope["record"], dict)
    ):
        raise AuditFailure(
            "bad_envelope", "an envelope is not {record, signer, signature}", height=height
        )
    record, signer, sig = envelope["record"], envelope["signer"], envelope["signature"]
    if not is_hex(signer, 32) or not is_hex(sig, 64):
        raise AuditFailure(
            "bad_envelope", "signer or signature is not lowercase hex", height=height
        )
    try:
        record_bytes = jcs(record)
    except ValueError as exc:
        raise AuditFailure(
            "bad_envelope", f"record is not canonical JSON: {exc}", height=height
        ) from exc
    record_id = sha256_hex(record_bytes)
    if signature and not verify_signature(signer, record_bytes, sig):
        raise AuditFailure(
            "bad_record_signature",
            f"record {record_id}: the signature by {str(signer)[:16]}… does not verify",
            height=height,
        )
    if (
        record.get("chain_id") != chain_id
        or not isinstance(record.get("actor"), dict)
        or not isinstance(record.get("type"), str)
    ):
        raise AuditFailure(
            "bad_record", f"record {record_id}: wrong chain_id or no actor/type", height=height
        )
    # "record" < "signature" < "signer": the canonical envelope, built without re-encoding.
    leaf = b'{"record":%s,"signature":"%s","signer":"%s"}' % (
        record_bytes,
        sig.encode(),
        signer.encode(),
    )
    return CheckedEnvelope(record_id, leaf, signer, record)


# --- RFC 6962 log, right edge only -----------------------------------------------------------------


class CompactLog:
    """An append-only RFC 6962 log that keeps only its right edge.

    ``edge`` holds the roots of the perfect subtrees the size decomposes into,
    one per set bit, largest first; MTH splits at the largest power of two, so
    the root is the right fold of the edge (RFC 6962 §2.1).
    """

    def __init__(self) -> None:
        self.size = 0
        self.edge: list[tuple[int, bytes]] = []  # (width, hash)

    def append(self, leaf: bytes) -> None:
        node = hashlib.sha256(b"\x00" + leaf).digest()
        width = 1
        while self.edge and self.edge[-1][0] == width:
            _, left = self.edge.pop()
            node = hashlib.sha256(b"\x01" + left + node).digest()
            width *= 2
        self.edge.append((width, node))
        self.size += 1

    def root(self) -> bytes:
        if not self.edge:
            return _EMPTY_ROOT
        node = self.edge[-1][1]
        for _, left in reversed(self.edge[:-1]):
            node = hashlib.sha256(b"\x01" + left + node).digest()
        return node


# --- the streaming verifier ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    height: int
    hash: str
    ledger_size: int
    ledger_root: str


class ChainVerifier:
    """Feed blocks from height 1 in order; every ``feed`` checks one block fully."""

    def __init__(
        self, genesis: Any, *, keep_hashes: bool = False, signatures_from: int = 1
    ) -> None:
        self.genesis = check_genesis(genesis)
        self.chain_id: str = self.genesis["chain_id"]
        self.genesis_hash = sha256_hex(jcs(self.genesis))
        self.gov = GovState(self.genesis)
        self.log = CompactLog()
        self.height = 0
        self.prev_hash = self.genesis_hash
        self.prev_time: str | None = None
        self.records = 0
        #: Record signatures and signer rights are checked from this height on; earlier
        #: blocks are still replayed in full otherwise (``comity verify --from``).
        self.signatures_from = signatures_from
        #: height -> block hash, for the fork watcher (off by default: O(height) memory).
        self.hashes: dict[int, str] | None = {} if keep_hashes else None

    @property
    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.height, self.prev_hash, self.log.size, self.log.root().hex())

    def feed(self, block: Mapping[str, Any]) -> Checkpoint:
        """Check the next block; raise AuditFailure at the first thing that does not hold."""
        height = self.height + 1
        header = block.get("header") if isinstance(block, Mapping) else None
        check_header_shape(header, height)
        assert isinstance(header, dict)
        block_hash = header_hash(header)
        self._check_header(header, block_hash, block, height)
        seats = self.gov.validators(height)
        check_certificate(block.get("commit"), self.chain_id, seats, block_hash, height)
        if "hash" in block and block["hash"] != block_hash:
            raise AuditFailure(
                "bad_block_hash",
                f"served hash {block['hash']} but SHA-256(JCS(header)) is {block_hash}",
                height=height,
            )
        checked = self._check_envelopes(block, header, height)
        if self.log.size != header["ledger_size"] or self.log.root().hex() != header["ledger_root"]:
            raise AuditFailure(
                "ledger_mismatch",
                f"appending the block's records gives size "
                f"{self.log.size} root {self.log.root().hex()}, the header says "
                f"{header['ledger_size']} {header['ledger_root']}",
                height=height,
            )
        self.gov.apply_block(height, [(c.id, c.record) for c in checked])
        self.height, self.prev_hash, self.prev_time = height, block_hash, header["time"]
        self.records += len(checked)
        if self.hashes is not None:
            self.hashes[height] = block_hash
        return self.checkpoint

    def _check_header(
        self, header: Mapping[str, Any], block_hash: str, block: Mapping[str, Any], height: int
    ) -> None:
        def fail(code: str, detail: str) -> AuditFailure:
            return AuditFailure(code, detail, height=height)

        if header["height"] != height:
            raise fail("bad_height", f"header.height is {header['height']}")
        if header["chain_id"] != self.chain_id:
            raise fail("wrong_chain", f"header.chain_id is {header['chain_id']!r}")
        if header["prev_hash"] != self.prev_hash:
            what = "the genesis hash" if height == 1 else f"the hash of block {height - 1}"
            hint = (
                " (is the genesis the one nodes hash? see GET /v1/genesis)" if height == 1 else ""
            )
            raise fail(
                "bad_prev_hash",
                f"prev_hash {header['prev_hash']} is not {what} {self.prev_hash}{hint}",
            )
        try:
            later = self.prev_time is None or parse_utc(header["time"]) > parse_utc(self.prev_time)
        except ValueError as exc:
            raise fail("bad_header", f"header.time {header['time']!r} is not a time") from exc
        if not later:
            raise fail("bad_time", f"time {header['time']} is not after {self.prev_time}")
        seats = self.gov.validators(height)
        if header["validators_hash"] != validators_hash(seats):
            raise fail(
                "bad_validators_hash",
                f"validators_hash is not the hash of the replayed set {[s.state for s in seats]}",
            )
        if header["proposer"] not in {s.state for s in seats}:
            raise fail("bad_proposer", f"proposer {header['proposer']} is not a validator")

    def _check_envelopes(
        self, block: Mapping[str, Any], header: Mapping[str, Any], height: int
    ) -> list[CheckedEnvelope]:
        envelopes = block.get("envelopes")
        if not isinstance(envelopes, list) or len(envelopes) != header["record_count"]:
            raise AuditFailure(
                "bad_record_count",
                f"block holds "
                f"{len(envelopes) if isinstance(envelopes, list) else 'no'} "
                f"envelopes, header.record_count is {header['record_count']}",
                height=height,
            )
        ids = block.get("record_ids")
        block_time = parse_utc(header["time"])
        checked = []
        full = height >= self.signatures_from
        for position, envelope in enumerate(envelopes):
            item = check_envelope(envelope, self.chain_id, height, signature=full)
            if ids is not None and (position >= len(ids) or ids[position] != item.id):
                raise AuditFailure(
                    "bad_record_id",
                    f"record_ids[{position}] is not the id {item.id} of the envelope",
                    height=height,
                )
            refused = self._authorise(item, height, block_time) if full else None
            if refused is not None:
                raise AuditFailure(refused[0], f"record {item.id}: {refused[1]}", height=height)
            self.log.append(item.leaf)
            checked.append(item)
        return checked

    def _authorise(
        self, item: CheckedEnvelope, height: int, block_time: Any
    ) -> tuple[str, str] | None:
        try:
            return self.gov.authorise(height, block_time, item.signer, item.record)
        except (KeyError, TypeError, ValueError) as exc:
            return "bad_record", f"record fields unreadable ({exc!r})"
