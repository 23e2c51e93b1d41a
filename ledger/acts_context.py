"""Act rules that need the chain: what refs point to, who may answer, custody order.

Theory of operation
-------------------
``check_act_context(envelope, ctx)`` is a pure function of the record and of
what ``ctx`` reports about the committed chain, so every node decides the
same at the same height (it runs in ``Application.check_record`` after the
registry and ``authorise``). ``ctx`` answers three questions:

* ``lookup(record_id)``: the committed envelope with that id, or None;
* ``custody_state(sha256, act)``: the state the custody chain of that hash
  under ``act`` (its introducing act) has reached, with the records pending
  in the block;
* ``signer_roles(pubkey)``: the roles the key is enrolled with.

Rules (docs/ACTS.md, "Contextual rules"):

* every ref names a committed act (``ref_not_found``, ``ref_wrong_type``);
* ``mla_response`` answers an ``mla_request`` (or ``emergency_disclosure``) of
  the same case, and is signed for the requested state, never the requester;
* ``sovereignty_response`` answers one act of the same case, and is signed by
  an AUTHORITY key of a state named in that act's ``territorial_states``,
  other than the acting state (docs/DOMAIN.md: "Only an authority of a
  territorial state named in the act may sign it");
* ``custody_event`` names a non-custody record that holds its hash, and
  follows the state machine of ``ledger/acts_custody.py`` for the chain
  (hash, that record): the first ``collected`` is by that record's state;
* ``conditions_acknowledgement`` accepts the conditions (``confidential``,
  ``use_conditions``, ``onward_transfer``, or Art 26(2) ``conditions``) of one
  act of the same case that carries some, and is signed for a state that act
  concerns (``concerned_states``), never for its author; the conditions it
  lists are the act's own;
* a ``preservation_request``/``technical_measure`` of phase ``extension`` or
  ``termination`` changes an earlier one of the same type, state and case;
  an extension ends later than what it extends;
* ``exchange_receipt`` anchors one request or answer of the same case, is
  signed for a state that record concerns (its author or a state it names or
  is private to), is private when that record is, and is the first receipt of
  its key (actor state, channel, external id) that every judging node can see
  (``receipt_duplicates``; docs/CHANNELS.md "Idempotency").

``StoreActContext`` implements ``ctx`` over the ``Store``. Records already
chosen for the block being built or validated are not committed yet; pass
them with ``with_pending`` so two custody events of one hash in one block are
checked in order, exactly as if they were in consecutive blocks.

A chain's committed history is read by walking its holders: the next event
is the first custody event of the hash, signed for the current holder's
state, that names the chain's act (``ledger/acts_index.intersect``). Another
state's events of the same hash, however many, are never read, so a state
cannot push an honest chain's events past the read bound by flooding a chain
of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Protocol

from ledger.acts import (
    ACT_TYPES,
    EPOC_PR_EXTENSION_DAYS,
    PRESERVATION_ART29_MIN_DAYS,
    REQUEST_TYPES,
)
from ledger.acts_custody import (
    CustodyState,
    CustodyViolation,
    chain_key,
    derives,
    fold_lenient,
    start,
    step,
)
from ledger.acts_fields import CATALOGUE_LATEST
from ledger.acts_index import SeekBudget, intersect
from ledger.acts_levels import VALIDATED_TYPES
from ledger.acts_lifecycle import ANSWERS
from ledger.acts_treaty import check_treaty
from ledger.directory import Entry
from ledger.errors import Conflict, Forbidden, InvariantViolation, RecordInvalid
from ledger.keyspace import receipt_key
from ledger.private import TYPE_CLASSES, is_private, named_states
from ledger.records import Envelope, evidence_hashes, parse_time
from ledger.store import Store

#: Bound on the index seeks made to read one custody chain (TigerStyle: a limit on
#: everything). Only the chain's holders' own custody events of the hash count.
HISTORY_SEEKS_MAX = 100_000
ANSWERABLE_BY_MLA_RESPONSE = ANSWERS["mla_response"]


class ActContext(Protocol):
    def lookup(self, record_id: str) -> Envelope | None: ...

    def custody_state(self, sha256: str, act: Envelope) -> CustodyState: ...

    def signer_roles(self, signer: str) -> frozenset[str]: ...

    def receipt_duplicates(self, key: str, scope: ReceiptScope | None) -> list[str]: ...


#: What a private receipt's parties are made of besides its state: the anchored record's
#: id and the counterpart state. Receipts of one key and one scope have the same parties.
ReceiptScope = tuple[str, str]
Rule = Callable[[Envelope, list[Envelope], ActContext], None]


def check_act_context(
    envelope: Envelope,
    ctx: ActContext,
    version: int = CATALOGUE_LATEST,
    directory: Mapping[str, Entry] | None = None,
) -> None:
    """Raise ``RecordInvalid``/``Forbidden`` unless the act fits the committed chain.

    ``version``: the catalogue version in force at the act's height
    (``ledger/acts_versions.py``); the chain rules version 2 added apply from it.
    ``directory``: each member's directory entry in the state before the block; the
    treaty-matrix rules (``ledger/acts_treaty.py``) apply between states that have one.
    """
    if envelope.type not in ACT_TYPES:
        return
    referenced = [_resolve(ctx, ref, i) for i, ref in enumerate(envelope.content.get("refs") or [])]
    rule = _RULES.get(envelope.type) if version >= 2 else _V1_RULES.get(envelope.type)
    if rule is not None:
        rule(envelope, referenced, ctx)
    if envelope.type in VALIDATED_TYPES and version >= 2:
        _validated_by_level(envelope, ctx)
    if directory:
        check_treaty(envelope, directory)


def _validated_by_level(envelope: Envelope, ctx: ActContext) -> None:
    """An investigator's EU order or intrusive measure rests on a dated prior validation."""
    if "authority" in ctx.signer_roles(envelope.signer):
        return
    authorisation = envelope.content.get("authorisation") or {}
    approved = authorisation.get("approved_at")
    if approved is None or parse_time(approved, "approved_at") > parse_time(
        envelope.content["occurred_at"], "occurred_at"
    ):
        raise RecordInvalid(
            f"record.authorisation.approved_at must date the {authorisation.get('level')} "
            f"validation before this {envelope.type}, which an investigator key signed",
            field="record.authorisation.approved_at",
            code="validation_not_recorded",
        )


def _resolve(ctx: ActContext, record_id: str, index: int) -> Envelope:
    found = ctx.lookup(record_id)
    if found is None:
        raise RecordInvalid(
            f"record.refs[{index}] names no committed record",
            field=f"record.refs[{index}]",
            code="ref_not_found",
        )
    if found.type not in ACT_TYPES:
        _wrong_type(index, found, "an act")
    return found


def _wrong_type(index: int, found: Envelope, wanted: str) -> None:
    raise RecordInvalid(
        f"record.refs[{index}] is a {found.type}, it must be {wanted}",
        field=f"record.refs[{index}]",
        code="ref_wrong_type",
    )


def _same_case(envelope: Envelope, other: Envelope) -> None:
    if envelope.content.get("case_ref") != other.content.get("case_ref"):
        raise RecordInvalid(
            f"record.case_ref must be the case_ref of the referenced "
            f"{other.type} ({other.content.get('case_ref')})",
            field="record.case_ref",
            code="case_mismatch",
        )


def _mla_response(envelope: Envelope, refs: list[Envelope], ctx: ActContext) -> None:
    request = refs[0]
    if request.type not in ANSWERABLE_BY_MLA_RESPONSE:
        _wrong_type(0, request, "an mla_request or emergency_disclosure")
    _same_case(envelope, request)
    answering = envelope.actor_state
    if answering == request.actor_state:
        # A requester "answering" itself would clear its own deadline (FINDINGS L1).
        raise Forbidden(
            f"{answering} made this {request.type}; only the state it was sent to answers it",
            field="record.actor.state",
            code="own_act",
        )
    if request.type == "mla_request":
        allowed = answering == request.content["requested_state"]
    else:
        allowed = answering in request.content["territorial_states"]
    if not allowed:
        raise Forbidden(
            f"{answering} is not the state this {request.type} was sent to",
            field="record.actor.state",
            code="not_requested_state",
        )


def _sovereignty_response(envelope: Envelope, refs: list[Envelope], ctx: ActContext) -> None:
    if "authority" not in ctx.signer_roles(envelope.signer):
        raise Forbidden(
            "a sovereignty_response must be signed by an authority key",
            field="signer",
            code="not_an_authority",
        )
    act = refs[0]
    if act.type == "sovereignty_response":
        _wrong_type(0, act, "an act other than a sovereignty_response")
    state = envelope.actor_state
    if state == act.actor_state:
        raise Forbidden(
            f"{state} performed this act; only a territorial state answers it",
            field="record.actor.state",
            code="own_act",
        )
    if state not in (act.content.get("territorial_states") or []):
        raise Forbidden(
            f"{state} is not named in the act's territorial_states",
            field="record.actor.state",
            code="not_territorial",
        )
    _same_case(envelope, act)


def _custody_event(envelope: Envelope, refs: list[Envelope], ctx: ActContext) -> None:
    digest = envelope.content["evidence"][0]["sha256"]
    introducing = refs[0]  # keys the chain, with the hash (ledger/acts_custody.py)
    if introducing.type == "custody_event" and not derives(introducing.content, digest):
        _wrong_type(0, introducing, "the act that holds the evidence, or the event deriving it")
    if digest not in evidence_hashes(introducing.content):
        raise RecordInvalid(
            "record.refs[0] does not list record.evidence[0].sha256 in its evidence",
            field="record.refs[0]",
            code="hash_not_in_ref",
        )
    state = ctx.custody_state(digest, introducing)
    try:
        step(state, envelope.content, envelope.id)
    except CustodyViolation as exc:
        field = exc.field or "record.action"
        if exc.status == 403:
            raise Forbidden(str(exc), field=field, code=exc.code) from exc
        raise RecordInvalid(f"{field}: {exc}", field=field, code=exc.code) from exc


_END_FIELD = {
    "preservation_request": "expires_at",
    "technical_measure": "ends_at",
    "epoc_pr": "expires_at",
}


def _phase_change(envelope: Envelope, refs: list[Envelope], ctx: ActContext) -> None:
    phase = envelope.content.get("phase", "initial")
    if phase == "initial":
        return
    original = refs[0]
    if original.type != envelope.type:
        _wrong_type(0, original, f"the {envelope.type} this {phase} changes")
    if original.actor_state != envelope.actor_state:
        raise Forbidden(
            f"only {original.actor_state}, which made the original {envelope.type}, may change it",
            field="record.actor.state",
            code="not_owner",
        )
    _same_case(envelope, original)
    end = _END_FIELD[envelope.type]
    if phase == "extension" and parse_time(envelope.content[end], end) <= parse_time(
        original.content[end], end
    ):
        raise RecordInvalid(
            f"record.{end} of an extension must be later than the "
            f"original's ({original.content[end]})",
            field=f"record.{end}",
            code="extension_not_later",
        )
    if envelope.type == "epoc_pr" and phase == "extension":
        _epoc_pr_extension(envelope, original)


def _epoc_pr_extension(envelope: Envelope, original: Envelope) -> None:
    """Regulation (EU) 2023/1543 Art 11(1): one extension of at most 30 days."""
    if original.content.get("phase", "initial") != "initial":
        raise RecordInvalid(
            "record.refs[0] must be the initial epoc_pr: an EPOC-PR is extended once",
            field="record.refs[0]",
            code="extension_twice",
        )
    cap = parse_time(original.content["expires_at"], "expires_at") + timedelta(
        days=EPOC_PR_EXTENSION_DAYS
    )
    if parse_time(envelope.content["expires_at"], "expires_at") > cap:
        raise RecordInvalid(
            f"record.expires_at of an EPOC-PR extension is more than "
            f"{EPOC_PR_EXTENSION_DAYS} days after the original's ({original.content['expires_at']})",
            field="record.expires_at",
            code="extension_too_long",
        )


#: answer type -> the states that may sign it, given the request it answers.
_ANSWERING_STATES: dict[str, Callable[[Envelope], frozenset[str]]] = {
    "preservation_response": lambda r: frozenset(r.content["territorial_states"]),
    "traffic_path_disclosure": lambda r: frozenset(r.content["territorial_states"]),
    "provider_request_answer": lambda r: frozenset({r.content["provider_state"]}),
    "epoc_enforcing_decision": lambda r: frozenset({r.content["establishment_state"]}),
    "addressee_report": lambda r: frozenset({r.actor_state}),  # the issuer records it
    "eio_response": lambda r: frozenset({r.content["executing_state"]}),
    "jit_accession": lambda r: frozenset(r.content["member_states"]) - {r.actor_state},
}


def answering_states(answer_type: str, request: Envelope) -> frozenset[str]:
    """The states that may sign an ``answer_type`` to ``request`` (the rules above):
    what the read side searches for answers, so it finds exactly what could commit."""
    if answer_type == "mla_response":
        if request.type == "mla_request":
            return frozenset({request.content["requested_state"]}) - {request.actor_state}
        return frozenset(request.content["territorial_states"]) - {request.actor_state}
    if answer_type == "sovereignty_response":
        return frozenset(request.content.get("territorial_states") or []) - {request.actor_state}
    states = _ANSWERING_STATES[answer_type](request)
    return states if answer_type == "addressee_report" else states - {request.actor_state}


def _answer(envelope: Envelope, refs: list[Envelope], ctx: ActContext) -> None:
    """An issue-18 answer answers its request type, same case, by a state it names."""
    request = refs[0]
    wanted = ANSWERS[envelope.type]
    if request.type not in wanted:
        _wrong_type(0, request, " or ".join(f"a {name}" for name in sorted(wanted)))
    _same_case(envelope, request)
    state = envelope.actor_state
    if envelope.type != "addressee_report" and state == request.actor_state:
        raise Forbidden(
            f"{state} made this {request.type}; only the state it was sent to answers it",
            field="record.actor.state",
            code="own_act",
        )
    if state not in _ANSWERING_STATES[envelope.type](request):
        raise Forbidden(
            f"{state} may not sign a {envelope.type} to this {request.type}",
            field="record.actor.state",
            code="not_requested_state",
        )
    check = _ANSWER_CHECKS.get(envelope.type)
    if check is not None:
        check(envelope, request)


def _art29_minimum(envelope: Envelope, request: Envelope) -> None:
    """Budapest Art 29(7): preservation on a foreign request lasts at least 60 days."""
    until = envelope.content.get("preserved_until")
    if request.content.get("basis") != "budapest_29" or until is None:
        return
    floor = parse_time(envelope.content["occurred_at"], "occurred_at") + timedelta(
        days=PRESERVATION_ART29_MIN_DAYS
    )
    if parse_time(until, "preserved_until") < floor:
        raise RecordInvalid(
            f"record.preserved_until is less than {PRESERVATION_ART29_MIN_DAYS} days "
            "after occurred_at (Budapest Art 29(7))",
            field="record.preserved_until",
            code="preservation_too_short",
        )


def _notified_epoc(envelope: Envelope, request: Envelope) -> None:
    """Regulation (EU) 2023/1543 Art 12: only a notified enforcing state raises grounds."""
    if request.content.get("notification_required") is not True:
        raise RecordInvalid(
            "record.refs[0] is an epoc without notification_required: its enforcing "
            "state was not notified (Regulation (EU) 2023/1543 Art 8)",
            field="record.refs[0]",
            code="not_notified",
        )


def _same_agreement(envelope: Envelope, request: Envelope) -> None:
    if envelope.content["agreement_sha256"] != request.content["agreement_sha256"]:
        raise RecordInvalid(
            "record.agreement_sha256 is not the agreement_sha256 of the referenced jit_agreement",
            field="record.agreement_sha256",
            code="agreement_mismatch",
        )


def _notified_request(envelope: Envelope, request: Envelope) -> None:
    if envelope.content["decision"] == "instruct_not_to_disclose" and not request.content.get(
        "notification_required"
    ):
        raise RecordInvalid(
            "record.refs[0] required no notification: its provider's state cannot "
            "instruct not to disclose (SAP Art 7(5))",
            field="record.refs[0]",
            code="not_notified",
        )


_ANSWER_CHECKS: dict[str, Callable[[Envelope, Envelope], None]] = {
    "preservation_response": _art29_minimum,
    "epoc_enforcing_decision": _notified_epoc,
    "jit_accession": _same_agreement,
    "provider_request_answer": _notified_request,
}


def _mla_request(envelope: Envelope, refs: list[Envelope], ctx: ActContext) -> None:
    """An MLA request that names a preservation puts it "pending MLA decision" (Art 29(7)):
    only the requesting state's own preservation of the same case, sent to the requested
    state."""
    for index, ref in enumerate(refs):
        if ref.type != "preservation_request":
            continue
        _same_case(envelope, ref)
        if ref.actor_state != envelope.actor_state:
            raise Forbidden(
                f"record.refs[{index}] is {ref.actor_state}'s preservation request, "
                f"not {envelope.actor_state}'s",
                field=f"record.refs[{index}]",
                code="not_owner",
            )
        if envelope.content["requested_state"] not in ref.content["territorial_states"]:
            raise RecordInvalid(
                f"record.refs[{index}] was not sent to the requested_state",
                field=f"record.refs[{index}]",
                code="ref_wrong_state",
            )


#: Fields of an act that carry conditions a receiving state may accept.
_CONDITION_FIELDS = ("confidential", "use_conditions", "onward_transfer", "conditions")


def concerned_states(act: Envelope, ctx: ActContext) -> frozenset[str]:
    """The states an act concerns other than its author's: the ones that may accept it.

    Every state its content names (``ledger.private.named_states``: territorial,
    requested, executing, receiving, the custodian's, JIT members, ...), the
    same states that are the parties of a private act; for an ``mla_response``
    also the state that made the request it answers (Budapest Art 28(2)).
    """
    content = act.content
    states = named_states(content)
    if act.type == "mla_response" and content.get("refs"):
        request = ctx.lookup(content["refs"][0])
        if request is not None:
            states.add(request.actor_state)
    return frozenset(states - {act.actor_state})


def _conditions_acknowledgement(envelope: Envelope, refs: list[Envelope], ctx: ActContext) -> None:
    act = refs[0]
    if act.type in ("conditions_acknowledgement", "sovereignty_response"):
        _wrong_type(0, act, "the act whose conditions are accepted, not an answer")
    if not any(act.content.get(name) for name in _CONDITION_FIELDS):
        raise RecordInvalid(
            f"record.refs[0] is a {act.type} that carries no conditions to accept",
            field="record.refs[0]",
            code="no_conditions",
        )
    state = envelope.actor_state
    if state == act.actor_state:
        raise Forbidden(
            f"{state} set these conditions; only a state the act concerns accepts them",
            field="record.actor.state",
            code="own_act",
        )
    if state not in concerned_states(act, ctx):
        raise Forbidden(
            f"{state} is not a requested, receiving or territorial state of this {act.type}",
            field="record.actor.state",
            code="not_concerned",
        )
    _same_case(envelope, act)
    offered = act.content.get("use_conditions") or []
    for index, condition in enumerate(envelope.content.get("use_conditions") or []):
        if condition not in offered:
            raise RecordInvalid(
                f"record.use_conditions[{index}] is not a condition of the referenced {act.type}",
                field=f"record.use_conditions[{index}]",
                code="condition_not_in_ref",
            )


#: What a receipt may anchor: a request or an answer sent to another state.
ANCHORABLE: frozenset[str] = (
    REQUEST_TYPES | TYPE_CLASSES["answer"] | TYPE_CLASSES["request"] | {"jit_accession"}
)
#: Bound on the earlier receipts of one key read to judge a new one.
RECEIPT_KEY_READS_MAX = 100


def _exchange_receipt(envelope: Envelope, refs: list[Envelope], ctx: ActContext) -> None:
    anchored = refs[0]
    if anchored.type not in ANCHORABLE:
        _wrong_type(0, anchored, "a request or answer")
    _same_case(envelope, anchored)
    private = is_private(envelope.record)
    if is_private(anchored.record) and not private:
        raise RecordInvalid(
            "record.visibility of a receipt of a private act must be 'parties': the "
            "channel trail is as need-to-know as the act",
            field="record.visibility",
            code="receipt_in_clear",
        )
    state = envelope.actor_state
    concerned = {anchored.actor_state, *named_states(anchored.content)}
    if is_private(anchored.record):
        concerned.update(anchored.record["parties"])
    if state not in concerned:
        raise Forbidden(
            f"{state} neither made nor is named in this {anchored.type}",
            field="record.actor.state",
            code="not_concerned",
        )
    content = envelope.content
    if content["counterpart_state"] not in concerned:
        raise RecordInvalid(
            f"record.counterpart_state {content['counterpart_state']} is not a state "
            f"this {anchored.type} concerns",
            field="record.counterpart_state",
            code="not_concerned",
        )
    key = receipt_key(state, content["channel"], content["external_id"])
    scope = (anchored.id, content["counterpart_state"]) if private else None
    earlier = ctx.receipt_duplicates(key, scope)
    if earlier:
        raise Conflict(
            f"{state} already anchored {content['channel']} message "
            f"{content['external_id']!r}: receipt {earlier[0]}",
            field="record.external_id",
            code="duplicate_receipt",
        )


_RULES: dict[str, Rule] = {
    "mla_response": _mla_response,
    "sovereignty_response": _sovereignty_response,
    "custody_event": _custody_event,
    "preservation_request": _phase_change,
    "technical_measure": _phase_change,
    "epoc_pr": _phase_change,
    "conditions_acknowledgement": _conditions_acknowledgement,
    "mla_request": _mla_request,
    "exchange_receipt": _exchange_receipt,
    **{name: _answer for name in _ANSWERING_STATES},
}
#: Catalogue version 1 (``ledger/acts_versions.py``): before the answers of issue 18, the
#: EPOC-PR's phases and the MLA request's link to the preservation it follows.
_V1_RULES: dict[str, Rule] = {
    name: rule
    for name, rule in _RULES.items()
    if name not in _ANSWERING_STATES and name not in ("epoc_pr", "mla_request")
}


class StoreActContext:
    """``ActContext`` over a ``Store``, optionally with records pending in a block."""

    def __init__(
        self,
        store: Store,
        load: Callable[[str], Envelope],
        roles: Callable[[str], frozenset[str]],
        pending: Sequence[Envelope] = (),
        *,
        ingress: bool = False,
    ) -> None:
        self.store = store
        self.load = load
        self.roles = roles
        self.pending = list(pending)
        self._pending_by_id = {e.id: e for e in self.pending}
        #: Admission at this node (not a block): see ``receipt_duplicates``.
        self.ingress = ingress

    def with_pending(self, envelopes: Sequence[Envelope]) -> StoreActContext:
        """The same context, also seeing ``envelopes`` (earlier records of this block)."""
        return StoreActContext(self.store, self.load, self.roles, envelopes)

    def push(self, envelope: Envelope) -> None:
        """Let later records of the block see ``envelope`` (O(1), unlike with_pending)."""
        self.pending.append(envelope)
        self._pending_by_id[envelope.id] = envelope

    def lookup(self, record_id: str) -> Envelope | None:
        pending = self._pending_by_id.get(record_id)
        if pending is not None:
            return pending
        return self.load(record_id) if self.store.has_record(record_id) else None

    def custody_state(self, sha256: str, act: Envelope) -> CustodyState:
        located = self.store.locate(act.id)
        state = (
            start(act.actor_state)
            if located is None
            else self._committed_chain(sha256, act, located[1])
        )
        pending = [
            (e.id, e.content)
            for e in self.pending
            if e.type == "custody_event" and chain_key(e.content) == (sha256, act.id)
        ]
        return fold_lenient(state, pending)[0]

    def _committed_chain(self, sha256: str, act: Envelope, after: int) -> CustodyState:
        state = start(act.actor_state)
        budget = SeekBudget(HISTORY_SEEKS_MAX)
        while True:
            actor = state.next_actor  # the holder, or the receiver of a transfer in transit
            if actor is None:
                raise InvariantViolation(f"custody chain of {sha256} has no holder: {state}")
            terms = (("evidence", sha256), ("actor_state", actor), ("type", "custody_event"))
            found = None
            for leaf, record_id in intersect(self.store, terms, budget, after_leaf=after):
                after = leaf
                envelope = self.load(record_id)
                if chain_key(envelope.content) == (sha256, act.id):
                    found = envelope
                    break
            if budget.exhausted:
                raise RecordInvalid(
                    f"the custody chain of {sha256} under record.refs[0] is "
                    "longer than this node reads",
                    field="record.refs[0]",
                    code="custody_history_too_long",
                )
            if found is None:
                return state
            state = fold_lenient(state, [(found.id, found.content)])[0]

    def signer_roles(self, signer: str) -> frozenset[str]:
        return self.roles(signer)

    def receipt_duplicates(self, key: str, scope: ReceiptScope | None) -> list[str]:
        """Earlier receipts of ``key`` that make a new one a duplicate.

        In a block the verdict must be the same at every node that judges it: a
        clear receipt (``scope`` None) counts only clear receipts, which every
        node indexes; a private one only private receipts of the same ``scope``
        (anchored record, counterpart state), whose parties are exactly its own,
        so every judge holds them. At admission this node refuses any receipt of
        the key it can see, its own state's private ones included.
        """
        found = [
            e.id
            for e in self.pending
            if e.type == "exchange_receipt"
            and receipt_key(e.actor_state, e.content["channel"], e.content["external_id"]) == key
            and (self.ingress or _counts(e, scope))
        ]
        sealed = self.ingress or scope is not None
        for _, record_id in self.store.search(
            "receipt", key, limit=RECEIPT_KEY_READS_MAX, sealed=sealed
        ):
            if self.ingress or _counts(self.load(record_id), scope):
                found.append(record_id)
        return found


def _counts(earlier: Envelope, scope: ReceiptScope | None) -> bool:
    if earlier.type != "exchange_receipt":  # a void body is no receipt
        return False
    if scope is None:
        return not is_private(earlier.record)
    content = earlier.content
    return (
        is_private(earlier.record)
        and (
            (content.get("refs") or [None])[0],
            content.get("counterpart_state"),
        )
        == scope
    )
