"""The application: what makes a record admissible and a block valid.

Theory of operation
-------------------
This is ``valid(v)`` of the consensus algorithm and the ingress check of the
mempool, written once so both apply the same rules at the same height. It
does no I/O besides reading the store, and never writes except in
``commit``, which hands the block to ``Store.commit_block`` (one atomic
batch) and then advances ``ChainState``.

Record rules are deterministic functions of the chain at the previous
height: chain id, known type and its rule, signer enrolled for the actor's
state with a role that allows the type, id and (signer, nonce) unused, and
``occurred_at`` no later than the block time plus the consortium's clock-skew
bound and no earlier than the block time minus ``max_backdate_ms``. At
ingress the same rules use the node's clock instead of a block time.
Block rules: the envelopes are the header's body (its ledger root and size),
height, previous hash, proposer state, validator-set hash, time after the
previous block's, record and byte limits, no record id or (signer, nonce)
twice, at most one governance record per ``governance.conflict_key`` (all
records of a block are judged against the state before it, so two votes of
one state must not share a block), and the ledger root and size that
appending its records gives.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from ledger import merkle
from ledger.acts_context import StoreActContext, check_act_context
from ledger.acts_treaty import language_warnings
from ledger.block import BlockHeader, CommitCertificate, validators_hash
from ledger.canonical import parse_json
from ledger.errors import (
    BodyMismatch,
    ChainError,
    ClientError,
    Conflict,
    EncodingError,
    Forbidden,
    RecordInvalid,
    StoreError,
)
from ledger.merkle import Appended
from ledger.private import ACT_TYPES, check_body, check_parties, is_private, schema_view
from ledger.records import Envelope, TypeRegistry, format_time, parse_envelope, parse_time
from ledger.roles import ALL_TYPES, NODE_KEY_TYPES
from ledger.store import Store
from node import governance
from node.bodies import BodyPool, OrphanBodies
from node.genesis import Genesis
from node.mempool import SignatureCache
from node.state import ChainState

#: Record ids whose type rule passed (the rule reads only the record, and the id
#: is the hash of the record, so the result can be reused across admission,
#: block building and block validation).
TYPED_OK_MAX = 200_000

#: The records a node signs about private bodies (node/privacy.py).
NODE_RECORDS = NODE_KEY_TYPES - {"misbehaviour"}


@dataclass(frozen=True, slots=True)
class Block:
    """A proposed or committed block body: its header and its envelopes."""

    header: BlockHeader
    envelopes: tuple[Envelope, ...]

    @property
    def hash(self) -> str:
        return self.header.hash()

    @property
    def height(self) -> int:
        return self.header.height

    def to_json(self) -> dict[str, Any]:
        return {
            "header": self.header.to_json(),
            "envelopes": [envelope.to_json() for envelope in self.envelopes],
        }

    @classmethod
    def from_json(cls, obj: Any, *, max_record_bytes: int, max_records: int) -> Block:
        if not isinstance(obj, dict) or set(obj) != {"header", "envelopes"}:
            raise EncodingError("block must be an object with header and envelopes", field="block")
        raw = obj["envelopes"]
        if not isinstance(raw, list) or len(raw) > max_records:
            raise EncodingError(
                f"block.envelopes must be a list of at most {max_records}", field="block.envelopes"
            )
        envelopes = tuple(parse_envelope(e, max_record_bytes=max_record_bytes) for e in raw)
        return cls(BlockHeader.from_json(obj["header"]), envelopes)


class CommittedRecords(Protocol):
    """Committed records by id, read-only: what the read views need of the chain
    (``Application`` is one)."""

    @property
    def store(self) -> Store: ...

    def load_envelope(self, record_id: str) -> Envelope: ...


class Application:
    def __init__(
        self,
        genesis: Genesis,
        store: Store,
        registry: TypeRegistry,
        signatures: SignatureCache | None = None,
        *,
        me: str | None = None,
        bodies: BodyPool | None = None,
    ) -> None:
        self.genesis = genesis
        #: This node's state: it is a party of the private acts that name it.
        self.me = me
        self.bodies = bodies or BodyPool()
        self.orphans = OrphanBodies()
        #: What this node found of the bodies of the block being validated, by
        #: record id: None (valid) or the rule it broke (docs/PRIVACY.md).
        self._verdicts: dict[str, ClientError | None] = {}
        #: Private acts whose body broke a rule, committed since the node last took
        #: them (it reports each on the chain): (record id, error).
        self.voided: list[tuple[str, ClientError]] = []
        self.params = genesis.consensus
        self.store = store
        self.registry = registry
        self.signatures = signatures or SignatureCache()
        self.state = ChainState.from_genesis(genesis)
        self.acts = StoreActContext(store, self.load_content, self._signer_roles, ingress=True)
        self._typed_ok: OrderedDict[str, int] = OrderedDict()
        #: The last block that passed every check (built or validated here), with
        #: the Merkle append its header was computed from: its commit may skip
        #: the store's repeat of the freshness checks and of the append.
        self._checked: tuple[BlockHeader, Appended] | None = None
        store.check_genesis(genesis.hash())
        self._replay_state()

    def _replay_state(self) -> None:
        """Rebuild governance state after a restart from the governance records only.

        The type index lists them in commit order, so this costs O(governance
        records), not O(chain).
        """
        found: list[tuple[int, str]] = []
        for type_name in sorted(governance.GOVERNANCE):
            after: int | None = None
            while page := self.store.search("type", type_name, after_leaf=after, limit=1000):
                found.extend(page)
                after = page[-1][0]
        by_height: dict[int, list[Envelope]] = {}
        for _, record_id in sorted(found):
            located = self.store.locate(record_id)
            if located is None:
                raise StoreError(f"indexed record {record_id} has no locator")
            by_height.setdefault(located[0], []).append(self.load_envelope(record_id))
        state = self.state
        for height in sorted(by_height):
            state = governance.apply_records(state, height, by_height[height])
        self.state = state.at_height(self.store.height)

    @property
    def chain_id(self) -> str:
        return self.genesis.chain_id

    @property
    def height(self) -> int:
        return self.store.height

    def load_envelope(self, record_id: str) -> Envelope:
        data = self.store.get_envelope_bytes(record_id)
        if data is None:
            raise StoreError(f"record {record_id} is indexed but its envelope is missing")
        return parse_envelope(parse_json(data), max_record_bytes=self.params.max_record_bytes)

    def load_content(self, record_id: str) -> Envelope:
        """A committed record as the act rules read it: with its private body if this
        node is a party and keeps it as valid."""
        envelope = self.load_envelope(record_id)
        if not self.is_party(envelope):
            return envelope
        note = self.store.body_note(record_id)
        if note is None or note.get("status") != "kept":
            return envelope
        return envelope.with_body(self.store.get_body(record_id))

    def is_party(self, envelope: Envelope) -> bool:
        return is_private(envelope.record) and self.me in envelope.record["parties"]

    def attach(self, envelope: Envelope) -> Envelope:
        """``envelope`` with the private body this node holds for it, if any."""
        if envelope.body is not None or not self.is_party(envelope):
            return envelope
        body = self.bodies.get(envelope.id)
        if body is None:
            body = self._adopt(envelope)
        return envelope.with_body(body)

    def _adopt(self, envelope: Envelope) -> dict[str, Any] | None:
        """A body that came before its header: kept if it matches the header and came
        from a party's node, else dropped (it is fetched after commit)."""
        held = self.orphans.pop(envelope.id)
        if held is None:
            return None
        body, sender = held
        try:
            check_body(envelope.record, body)
        except ClientError:
            return None
        if sender not in envelope.record["parties"]:
            return None
        self.bodies.put(envelope.id, body)
        return body

    def ref_parties(self, record_id: str, block: StoreActContext | None = None) -> list[str]:
        """The parties of a referenced record: a private act's, else none."""
        found = (block or self.acts).lookup(record_id)
        if found is None or not is_private(found.record):
            return []
        return list(found.record["parties"])

    # --- records --------------------------------------------------------------------

    def check_record(
        self,
        envelope: Envelope,
        at_time: datetime,
        block: StoreActContext | None = None,
        *,
        live: bool = True,
    ) -> Envelope:
        """Every rule a record must meet to enter the next block; raise ClientError.
        Returns the envelope as checked: a private act with the body this node holds.

        ``block`` sees the records ahead of this one in the same block, so
        contextual act rules (refs, custody order) treat them as committed.

        A party holding a private act's body checks the act too. ``live`` (a
        record or block not yet decided) refuses the record when its body breaks
        a rule; otherwise (a certified block) the header is judged alone and the
        body's fault is kept in ``_verdicts`` for the commit.
        """
        if not is_private(envelope.record):
            self._check(envelope, at_time, block)
            return envelope
        held = self.attach(envelope)
        if held.body is not None:
            try:
                self._check(held, at_time, block)
            except ClientError as exc:
                if live:
                    raise
                self._verdicts[envelope.id] = exc
                held = envelope.with_body(None)
            else:
                self._verdicts[envelope.id] = None
                return held
        self._check(held, at_time, block)
        return held

    def _check(self, envelope: Envelope, at_time: datetime, block: StoreActContext | None) -> None:
        record = envelope.record
        if record["chain_id"] != self.chain_id:
            raise RecordInvalid(
                f"record.chain_id {record['chain_id']!r} is not this chain ({self.chain_id!r})",
                field="record.chain_id",
                code="wrong_chain",
            )
        occurred = parse_time(record["occurred_at"], "record.occurred_at")
        if occurred > at_time + timedelta(milliseconds=self.params.max_clock_skew_ms):
            raise RecordInvalid(
                "record.occurred_at is in the future beyond the allowed clock skew",
                field="record.occurred_at",
                code="clock_skew",
            )
        if occurred < at_time - timedelta(milliseconds=self.params.backdate_bound_ms):
            raise RecordInvalid(
                "record.occurred_at is earlier than the consortium's max_backdate_ms allows",
                field="record.occurred_at",
                code="occurred_too_early",
            )
        if envelope.type not in ALL_TYPES:  # no role may sign it: name it unknown (no schema)
            self.registry.check(record)
        self.state.authorise(envelope, at_time)  # a lookup: before the costly schema
        version = self.catalogue_version()
        if self._typed_ok.get(envelope.id) != version:  # a function of record and version
            self.registry.check(record, version)
            self._typed_ok[envelope.id] = version
            if len(self._typed_ok) > TYPED_OK_MAX:
                self._typed_ok.popitem(last=False)
        self._check_visibility(record)
        if is_private(record):
            self._check_private(envelope, block)
        elif envelope.type in NODE_RECORDS:
            self._check_node_record(envelope, at_time, block)
        governance.check(self.state, envelope, at_time)
        check_act_context(envelope, block or self.acts, version, self.state.directory_entries())
        if self.store.has_record(envelope.id):
            raise Conflict("record is already committed", field="record", code="already_committed")
        if self.store.nonce_used(envelope.signer, str(record["nonce"])):
            raise Conflict(
                "record.nonce was already used by this signer",
                field="record.nonce",
                code="duplicate_nonce",
            )
        self.signatures.verify(envelope)

    def warnings(self, envelope: Envelope) -> list[dict[str, str]]:
        """What is worth a look in an admitted record (``ledger/acts_treaty.py``)."""
        directory = self.state.directory_entries()
        if not directory or envelope.type not in ACT_TYPES:
            return []
        return language_warnings(envelope, directory)

    def catalogue_version(self) -> int:
        """The act catalogue version the next block's acts follow (``ledger/acts_versions.py``)."""
        return self.state.catalogue_version(self.height + 1)

    def _check_visibility(self, record: dict[str, Any]) -> None:
        """From the consortium's need-to-know height (docs/PROTOCOL.md §14.6) an act is
        private unless it opts in to ``consortium``; before it, no act is private."""
        active = self.state.need_to_know_active(self.height + 1)
        if is_private(record):
            if not active:
                raise RecordInvalid(
                    "private acts apply from the consortium's need_to_know_from_height, "
                    "not yet reached",
                    field="record.type",
                    code="need_to_know_inactive",
                )
        elif active and record["type"] in ACT_TYPES and record.get("visibility") != "consortium":
            raise RecordInvalid(
                'an act in clear must say "visibility": "consortium" (or be filed as a '
                "private_act, the default: docs/PRIVACY.md)",
                field="record.visibility",
                code="visibility_required",
            )

    def _check_private(self, envelope: Envelope, block: StoreActContext | None) -> None:
        """A private act's header against the chain (refs committed, their parties
        among ours) and, when this node holds the body, the body against the header."""
        header = envelope.record
        ctx = block or self.acts
        for i, ref in enumerate(header.get("refs") or []):
            found = ctx.lookup(ref)
            if found is None:
                raise RecordInvalid(
                    f"record.refs[{i}] names no committed record",
                    field=f"record.refs[{i}]",
                    code="ref_not_found",
                )
            if is_private(found.record) and not set(found.record["parties"]) <= set(
                header["parties"]
            ):
                raise RecordInvalid(
                    f"record.parties must include every party of record.refs[{i}]",
                    field="record.parties",
                    code="parties_mismatch",
                )
        if envelope.body is None:
            return
        check_body(header, envelope.body)
        key, version = envelope.id + ":body", self.catalogue_version()
        if self._typed_ok.get(key) != version:
            self.registry.check(schema_view(envelope.content), version)
            self._typed_ok[key] = version
        check_parties(header, envelope.content, lambda ref: self.ref_parties(ref, block))

    def _check_node_record(
        self, envelope: Envelope, at_time: datetime, block: StoreActContext | None
    ) -> None:
        """A node's ``body_violation`` or ``body_purge``: it names committed private
        acts its state is a party of; a purge only once their retention has ended."""
        refs = envelope.record.get("refs") or []
        if not refs:
            raise RecordInvalid(
                "record.refs must name the private acts", field="record.refs", code="missing_field"
            )
        for i, ref in enumerate(refs):
            found = (block or self.acts).lookup(ref)
            if found is None or not is_private(found.record):
                raise RecordInvalid(
                    f"record.refs[{i}] names no committed private act",
                    field=f"record.refs[{i}]",
                    code="ref_not_found",
                )
            if envelope.actor_state not in found.record["parties"]:
                raise Forbidden(
                    f"{envelope.actor_state} is not a party of record.refs[{i}]",
                    field=f"record.refs[{i}]",
                    code="not_a_party",
                )
            if envelope.type == "body_purge" and at_time < parse_time(
                found.record["retain_until"], "retain_until"
            ):
                raise RecordInvalid(
                    f"record.refs[{i}] is to be kept until {found.record['retain_until']}",
                    field=f"record.refs[{i}]",
                    code="retention_not_ended",
                )

    def check_late_body(self, envelope: Envelope) -> None:
        """A body that came after its header committed: what can still be judged of it
        (commitment, class, schema, derived parties); raise ClientError."""
        if envelope.body is None:
            raise RecordInvalid("no body", field="private", code="no_body")
        check_body(envelope.record, envelope.body)
        located = self.store.locate(envelope.id)
        height = located[0] if located is not None else self.height + 1
        self.registry.check(schema_view(envelope.content), self.state.catalogue_version(height))
        check_parties(envelope.record, envelope.content, self.ref_parties)

    def _signer_roles(self, signer: str) -> frozenset[str]:
        grant = self.state.keys.get(signer)
        return grant.roles if grant is not None else frozenset()

    # --- blocks ---------------------------------------------------------------------

    def build_block(
        self, proposer: str, candidates: Sequence[Envelope], now: datetime
    ) -> tuple[Block, list[str]]:
        """A block for the next height from ``candidates`` (oldest first).

        Returns the block and the ids of candidates that are no longer valid
        (the caller drops them from the mempool).
        """
        height = self.height + 1
        previous = self.store.get_header(self.height)
        block_time = (
            max(now, parse_time(previous.time, "time") + timedelta(milliseconds=1))
            if previous
            else now
        )
        chosen: list[Envelope] = []
        rejected: list[str] = []
        self._verdicts.clear()
        seen: set[tuple[str, str] | str] = set()
        ids: set[str] = set()
        size = 0
        context = self.acts.with_pending(())
        for envelope in candidates:
            key = (envelope.signer, str(envelope.record["nonce"]))
            if (
                len(chosen) >= self.params.max_block_records
                or size + len(envelope.leaf) > self.params.max_block_bytes
            ):
                break
            if envelope.id in ids:
                continue  # another envelope of a chosen record (finding C2); it stays pending
            try:
                held = self.check_record(envelope, block_time, context)
            except ClientError:
                rejected.append(envelope.id)
                continue
            conflict = governance.conflict_key(self.state, envelope)
            if key in seen or conflict in seen:
                rejected.append(envelope.id)
                continue
            seen.add(key)
            ids.add(envelope.id)
            if conflict is not None:
                seen.add(conflict)
            chosen.append(envelope)
            context.push(held)
            size += len(envelope.leaf)
        header, appended = self._header(height, proposer, format_time(block_time), chosen)
        self._checked = (header, appended)
        return Block(header, tuple(chosen)), rejected

    def _header(
        self, height: int, proposer: str, time: str, envelopes: Sequence[Envelope]
    ) -> tuple[BlockHeader, Appended]:
        previous = self.store.get_header(height - 1)
        prev_hash = previous.hash() if previous else self.genesis.hash()
        leaf_hashes = [merkle.leaf_hash(e.leaf) for e in envelopes]
        appended = merkle.append_leaves(self.store.ledger_size, leaf_hashes, self.store)
        header = BlockHeader(
            chain_id=self.chain_id,
            height=height,
            time=time,
            prev_hash=prev_hash,
            proposer=proposer,
            record_count=len(envelopes),
            ledger_size=appended.size,
            ledger_root=appended.root.hex(),
            validators_hash=validators_hash(self.state.validators(height)),
        )
        return header, appended

    def validate_block(self, block: Block, *, now: datetime | None) -> None:
        """Raise ChainError (or a ClientError for a bad record) unless ``block`` is valid;
        raise ``BodyMismatch`` if its envelopes are not its header's body at all.

        ``now`` bounds the block time from above for live proposals; block
        sync passes None because a certified past block is judged by its
        certificate, not by today's clock.

        The body is checked against the header first: a block hash names the
        header, and only a body whose ledger root matches it is that block's
        body. One built from the other envelope of a record (finding C1), or
        junk a peer attached, proves nothing about the block.
        """
        header = block.header
        if header.height != self.height + 1:
            raise ChainError(
                f"block height {header.height}, expected {self.height + 1}",
                height=header.height,
                field="header.height",
                expected=self.height + 1,
                actual=header.height,
            )
        if header.chain_id != self.chain_id:
            raise ChainError(
                f"block chain_id {header.chain_id!r} is not {self.chain_id!r}",
                height=header.height,
                field="header.chain_id",
                expected=self.chain_id,
                actual=header.chain_id,
            )
        expected, appended = self._header(
            header.height, header.proposer, header.time, block.envelopes
        )
        if (expected.record_count, expected.ledger_size, expected.ledger_root) != (
            header.record_count,
            header.ledger_size,
            header.ledger_root,
        ):
            raise BodyMismatch(
                f"the {len(block.envelopes)} envelopes held for block "
                f"{header.hash()[:16]}… at height {header.height} are not its "
                f"body: {_diff(header, expected)}"
            )
        # The builder of a block, not the proposer of the deciding round: a block
        # re-proposed as validValue in a later round keeps its original header.
        if header.proposer not in self.state.member_states(header.height):
            raise ChainError(
                f"block proposer {header.proposer} is not a validator",
                height=header.height,
                field="header.proposer",
                actual=header.proposer,
            )
        block_time = parse_time(header.time, "header.time")
        self._check_time(block_time, now)
        size = sum(len(e.leaf) for e in block.envelopes)
        if (
            len(block.envelopes) > self.params.max_block_records
            or size > self.params.max_block_bytes
        ):
            raise ChainError(
                f"block holds {len(block.envelopes)} records / {size} bytes, "
                "over the consortium limits",
                height=header.height,
                field="envelopes",
                expected=(self.params.max_block_records, self.params.max_block_bytes),
                actual=(len(block.envelopes), size),
            )
        self._check_records(block.envelopes, block_time, live=now is not None)
        if expected != header:
            raise ChainError(
                f"block header differs from the computed one: {_diff(header, expected)}",
                height=header.height,
                field="header",
                expected=expected,
                actual=header,
            )
        self._checked = (header, appended)

    def _check_records(
        self, envelopes: Sequence[Envelope], block_time: datetime, *, live: bool = True
    ) -> None:
        """Every record of a block, in order, against the chain and the records before
        it: no record id, (signer, nonce) or governance conflict key twice."""
        self._verdicts.clear()
        seen: set[tuple[str, str] | str] = set()
        ids: set[str] = set()
        context = self.acts.with_pending(())
        for envelope in envelopes:
            if envelope.id in ids:
                # One record in two envelopes (finding C2): the store maps an id to one
                # envelope, so such a block could never be served or verified again.
                raise ChainError(
                    f"block holds record {envelope.id} more than once",
                    field="envelopes.id",
                    actual=envelope.id,
                )
            ids.add(envelope.id)
            key = (envelope.signer, str(envelope.record["nonce"]))
            if key in seen:
                raise ChainError(
                    f"block reuses nonce of signer {envelope.signer}",
                    field="record.nonce",
                    actual=key[1],
                )
            seen.add(key)
            context.push(self.check_record(envelope, block_time, context, live=live))
            conflict = governance.conflict_key(self.state, envelope)
            if conflict is not None and conflict in seen:
                raise ChainError(
                    f"block holds two governance records for {conflict}",
                    field="record",
                    actual=conflict,
                )
            if conflict is not None:
                seen.add(conflict)

    def _check_time(self, block_time: datetime, now: datetime | None) -> None:
        previous = self.store.get_header(self.height)
        if previous is not None and block_time <= parse_time(previous.time, "time"):
            raise ChainError(
                "block time is not after the previous block's time",
                field="header.time",
                expected=f"after {previous.time}",
                actual=block_time.isoformat(),
            )
        if now is not None and block_time > now + timedelta(
            milliseconds=self.params.block_time_skew_ms
        ):
            raise ChainError(
                "block time is too far in the future",
                field="header.time",
                expected=f"at most {self.params.block_time_skew_ms} ms after {now.isoformat()}",
                actual=block_time.isoformat(),
            )

    def commit(self, block: Block, certificate: CommitCertificate) -> None:
        """Store ``block`` atomically, then advance the chain state."""
        # The header names the height, the previous block and the ledger root, so
        # an equal header means the same block checked against this same chain.
        checked, self._checked = self._checked, None
        appended = checked[1] if checked is not None and checked[0] == block.header else None
        fresh = checked is not None and checked[0] == block.header
        envelopes, notes = self._held(block, fresh=fresh)
        self.store.commit_block(block.header, envelopes, certificate, checked=appended, notes=notes)
        self.state = governance.apply_block(self.state, block.height, block.envelopes)
        for envelope in block.envelopes:
            self.bodies.pop(envelope.id)
        self._verdicts.clear()

    def _held(
        self, block: Block, *, fresh: bool
    ) -> tuple[list[Envelope], dict[str, tuple[str, dict[str, Any] | None]]]:
        """The block's envelopes with the valid bodies this node holds, and a note for
        each private act of ours whose body is void or not here (docs/PRIVACY.md)."""
        ours = [e for e in block.envelopes if self.is_party(e)]
        for envelope in ours:
            if envelope.id not in self.bodies:
                self._adopt(envelope)  # a body that came before its header
        if any((not fresh or e.id not in self._verdicts) and e.id in self.bodies for e in ours):
            # The block was not the last one checked here, or a body came after
            # it was: judge the block's bodies now, against the chain before it.
            self._check_records(block.envelopes, parse_time(block.header.time, "time"), live=False)
        notes: dict[str, tuple[str, dict[str, Any] | None]] = {}
        envelopes = []
        for envelope in block.envelopes:
            body = self.bodies.get(envelope.id) if self.is_party(envelope) else None
            if self.is_party(envelope) and body is None:
                notes[envelope.id] = ("wanted", None)
            elif body is not None:
                fault = self._verdicts.get(envelope.id)
                if fault is None:
                    envelope = envelope.with_body(body)
                else:
                    notes[envelope.id] = ("void", body)
                    self.voided.append((envelope.id, fault))
            envelopes.append(envelope)
        return envelopes, notes

    def stored_block(self, height: int) -> tuple[Block, CommitCertificate] | None:
        header = self.store.get_header(height)
        certificate = self.store.get_certificate(height)
        if header is None or certificate is None:
            return None
        ids = self.store.get_block_record_ids(height)
        return Block(header, tuple(self.load_envelope(rid) for rid in ids)), certificate


def _diff(actual: BlockHeader, expected: BlockHeader) -> str:
    a, e = actual.to_json(), expected.to_json()
    return ", ".join(f"{k}={a[k]!r} (expected {e[k]!r})" for k in a if a[k] != e[k])
