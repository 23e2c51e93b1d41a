"""Contextual act rules (ledger/acts_context.py) and the custody machine, hostile cases first.

docs/DOMAIN.md: "Only an authority of a territorial state named in the act may
sign" a sovereignty_response; custody events "must refer to a record that
already holds that hash"; an extension of a preservation "is its own record".
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest

from ledger.acts_context import StoreActContext, check_act_context
from ledger.acts_custody import CustodyState, CustodyViolation, replay, replay_lenient
from ledger.canonical import parse_json
from ledger.errors import ClientError, Forbidden, RecordInvalid
from ledger.records import Envelope, evidence_hashes, parse_envelope
from ledger.store import Store
from tests.factory import ChainBuilder, key, sign_record
from tests.unit.test_acts import COMMON, VALID

H = "12" * 32
START = str(COMMON["occurred_at"])
CN_INV, CN_AUTH = key("cn-investigator"), key("cn-authority")
TH_AUTH, TH_INV, VN_AUTH = key("th-authority"), key("th-investigator"), key("vn-authority")
ROLES = {
    CN_INV.public_hex: frozenset({"investigator"}),
    CN_AUTH.public_hex: frozenset({"authority"}),
    TH_AUTH.public_hex: frozenset({"authority"}),
    TH_INV.public_hex: frozenset({"investigator"}),
    VN_AUTH.public_hex: frozenset({"authority"}),
}


@dataclass
class FakeChain:
    """Committed records in commit order: the three questions the rules ask."""

    committed: list[Envelope] = field(default_factory=list)
    counter: int = 0

    def lookup(self, record_id: str) -> Envelope | None:
        return next((e for e in self.committed if e.id == record_id), None)

    def custody_state(self, sha256: str, act: Envelope) -> CustodyState:
        chain = [
            (e.id, e.record)
            for e in self.committed
            if e.type == "custody_event"
            and sha256 in evidence_hashes(e.record)
            and e.record["refs"][0] == act.id
        ]
        return replay_lenient(chain, act.actor_state)[0]

    def signer_roles(self, signer: str) -> frozenset[str]:
        return ROLES.get(signer, frozenset())

    def receipt_duplicates(self, key: str, scope: tuple[str, str] | None) -> list[str]:
        return []  # exchange_receipt's chain rules: tests/unit/test_receipts.py

    def make(
        self, type_: str, signer: Any, state: str, drop: tuple[str, ...] = (), **changes: Any
    ) -> Envelope:
        self.counter += 1
        record = {
            **copy.deepcopy(COMMON),
            "type": type_,
            **copy.deepcopy(VALID[type_]),
            "nonce": f"nonce-{self.counter:06d}",
            "actor": {"state": state, "agency": f"{state} agency"},
            **changes,
        }
        for name in drop:
            record.pop(name, None)
        return sign_record(signer, record)

    def commit(self, envelope: Envelope) -> Envelope:
        check_act_context(envelope, self)
        self.committed.append(envelope)
        return envelope


def _preservation(chain: FakeChain) -> Envelope:
    return chain.commit(
        chain.make(
            "preservation_request",
            CN_INV,
            "CN",
            territorial_states=["TH", "VN"],
            evidence=[{"sha256": H}],
        )
    )


def _answer(chain: FakeChain, act: Envelope, signer: Any, state: str, **changes: Any) -> Envelope:
    return chain.make(
        "sovereignty_response", signer, state, refs=[act.id], territorial_states=[state], **changes
    )


def _custody(
    chain: FakeChain, holder: Envelope, signer: Any, state: str, action: str, **changes: Any
) -> Envelope:
    # Catalogue version 2's events (no location): tests/unit/test_custody.py has version 3's.
    drop = ("location", "purpose") + (() if action == "transferred" else ("to",))
    return chain.make(
        "custody_event",
        signer,
        state,
        drop,
        action=action,
        refs=[holder.id],
        evidence=[{"sha256": H}],
        **changes,
    )


def _raises(
    chain: FakeChain, envelope: Envelope, kind: type[ClientError], field: str, code: str
) -> None:
    with pytest.raises(kind) as caught:
        check_act_context(envelope, chain)
    assert (caught.value.field, caught.value.code) == (field, code), caught.value.message


# --- sovereignty_response ----------------------------------------------------------------


def test_territorial_authority_may_answer() -> None:
    chain = FakeChain()
    act = _preservation(chain)
    chain.commit(_answer(chain, act, TH_AUTH, "TH", response="acknowledged", reason=None))
    chain.commit(_answer(chain, act, VN_AUTH, "VN"))


SOVEREIGNTY_HOSTILE = [
    # (signer, state, field, code, why)
    ("TH_INV", "TH", "signer", "not_an_authority", "an investigator of the territorial state"),
    ("CN_AUTH", "CN", "record.actor.state", "own_act", "the acting state answering itself"),
    ("FR", "FR", "record.actor.state", "not_territorial", "a state not named in the act"),
]


@pytest.mark.parametrize(
    ("who", "state", "field", "code", "why"),
    SOVEREIGNTY_HOSTILE,
    ids=[r[4] for r in SOVEREIGNTY_HOSTILE],
)
def test_sovereignty_response_by_the_wrong_signer_is_forbidden(
    who: str, state: str, field: str, code: str, why: str
) -> None:
    chain = FakeChain()
    act = _preservation(chain)
    signer = {"TH_INV": TH_INV, "CN_AUTH": CN_AUTH, "FR": key("fr-authority")}[who]
    ROLES.setdefault(key("fr-authority").public_hex, frozenset({"authority"}))
    _raises(chain, _answer(chain, act, signer, state), Forbidden, field, code)


def test_sovereignty_response_to_a_response_or_unknown_or_other_case() -> None:
    chain = FakeChain()
    act = _preservation(chain)
    answer = chain.commit(_answer(chain, act, TH_AUTH, "TH"))
    _raises(
        chain,
        _answer(chain, answer, VN_AUTH, "VN"),
        RecordInvalid,
        "record.refs[0]",
        "ref_wrong_type",
    )
    missing = chain.make(
        "sovereignty_response", TH_AUTH, "TH", refs=["ee" * 32], territorial_states=["TH"]
    )
    _raises(chain, missing, RecordInvalid, "record.refs[0]", "ref_not_found")
    _raises(
        chain,
        _answer(chain, act, TH_AUTH, "TH", case_ref="OTHER-1"),
        RecordInvalid,
        "record.case_ref",
        "case_mismatch",
    )


# --- mla_response ------------------------------------------------------------------------


def test_mla_response_answers_a_request_of_the_requested_state() -> None:
    chain = FakeChain()
    request = chain.commit(chain.make("mla_request", CN_AUTH, "CN"))
    preservation = _preservation(chain)
    chain.commit(chain.make("mla_response", TH_AUTH, "TH", refs=[request.id]))
    _raises(
        chain,
        chain.make("mla_response", VN_AUTH, "VN", refs=[request.id]),
        Forbidden,
        "record.actor.state",
        "not_requested_state",
    )
    _raises(
        chain,
        chain.make("mla_response", TH_AUTH, "TH", refs=[preservation.id]),
        RecordInvalid,
        "record.refs[0]",
        "ref_wrong_type",
    )


# --- preservation extension --------------------------------------------------------------


def test_extension_must_extend_own_preservation_later() -> None:
    chain = FakeChain()
    original = _preservation(chain)
    later: dict[str, Any] = {
        "phase": "extension",
        "refs": [original.id],
        "occurred_at": "2026-05-20T00:00:00Z",
        "expires_at": "2026-08-01T00:00:00Z",
    }
    chain.commit(chain.make("preservation_request", CN_INV, "CN", **later))
    _raises(
        chain,
        chain.make("preservation_request", key("fr-inv"), "FR", **later),
        Forbidden,
        "record.actor.state",
        "not_owner",
    )
    earlier = {**later, "expires_at": "2026-05-29T00:00:00Z", "occurred_at": START}
    _raises(
        chain,
        chain.make("preservation_request", CN_INV, "CN", **earlier),
        RecordInvalid,
        "record.expires_at",
        "extension_not_later",
    )
    request = chain.commit(chain.make("mla_request", CN_AUTH, "CN"))
    _raises(
        chain,
        chain.make("preservation_request", CN_INV, "CN", **{**later, "refs": [request.id]}),
        RecordInvalid,
        "record.refs[0]",
        "ref_wrong_type",
    )


# --- custody -----------------------------------------------------------------------------


def test_custody_happy_path_collect_transfer_examine_return() -> None:
    chain = FakeChain()
    act = _preservation(chain)
    chain.commit(_custody(chain, act, CN_INV, "CN", "collected"))
    chain.commit(
        _custody(chain, act, CN_INV, "CN", "transferred", to={"state": "TH", "agency": "CCIB"})
    )
    chain.commit(_custody(chain, act, TH_INV, "TH", "examined"))
    chain.commit(_custody(chain, act, TH_INV, "TH", "returned"))
    state = replay(((e.id, e.record) for e in chain.committed if e.type == "custody_event"), "CN")
    assert (state.status, state.holder, state.events, state.terminal) == ("returned", "TH", 4, True)


def test_custody_out_of_order_is_rejected() -> None:
    chain = FakeChain()
    act = _preservation(chain)
    _raises(
        chain,
        _custody(chain, act, CN_INV, "CN", "examined"),
        RecordInvalid,
        "record.action",
        "custody_out_of_order",
    )
    chain.commit(_custody(chain, act, CN_INV, "CN", "collected"))
    _raises(
        chain,
        _custody(chain, act, CN_INV, "CN", "collected"),
        RecordInvalid,
        "record.action",
        "custody_out_of_order",
    )
    _raises(
        chain,
        _custody(chain, act, TH_INV, "TH", "examined"),
        Forbidden,
        "record.actor.state",
        "not_custody_holder",
    )
    _raises(
        chain,
        _custody(chain, act, CN_INV, "CN", "examined", occurred_at="2026-02-01T00:00:00Z"),
        RecordInvalid,
        "record.action",
        "custody_out_of_order",
    )
    chain.commit(_custody(chain, act, CN_INV, "CN", "destroyed"))
    _raises(
        chain,
        _custody(chain, act, CN_INV, "CN", "examined"),
        RecordInvalid,
        "record.action",
        "custody_closed",
    )


def test_custody_ref_must_hold_the_hash_and_not_be_a_custody_event() -> None:
    chain = FakeChain()
    act = _preservation(chain)
    other = chain.commit(chain.make("eio", CN_INV, "CN", evidence=[{"sha256": "34" * 32}]))
    _raises(
        chain,
        _custody(chain, other, CN_INV, "CN", "collected"),
        RecordInvalid,
        "record.refs[0]",
        "hash_not_in_ref",
    )
    collected = chain.commit(_custody(chain, act, CN_INV, "CN", "collected"))
    _raises(
        chain,
        _custody(chain, collected, CN_INV, "CN", "examined"),
        RecordInvalid,
        "record.refs[0]",
        "ref_wrong_type",
    )


def test_lenient_replay_skips_and_reports_bad_history() -> None:
    base = {"actor": {"state": "CN"}, "occurred_at": START}
    events = [
        (f"id-{i}", {**base, "action": action})
        for i, action in enumerate(("examined", "collected", "destroyed", "examined"))
    ]
    state, anomalies = replay_lenient(events, "CN")
    assert state.status == "destroyed"
    assert [(i, exc.code) for i, exc in anomalies] == [
        (0, "custody_out_of_order"),
        (3, "custody_closed"),
    ]
    with pytest.raises(CustodyViolation):
        replay(events, "CN")
    # Under an act of TH, CN's events are refused: the chain never left "none".
    assert replay_lenient(events, "TH")[0].status == "none"


def test_non_act_records_are_ignored() -> None:
    chain = FakeChain()
    envelope = sign_record(CN_INV, {**COMMON, "type": "enroll_key", "refs": ["99" * 32]})
    check_act_context(envelope, chain)


# --- StoreActContext over a real store ---------------------------------------------------


def test_store_context_sees_committed_and_pending_records_in_order() -> None:
    store, builder, chain = Store.open_memory(), ChainBuilder(), FakeChain()
    act = chain.make("preservation_request", CN_INV, "CN", evidence=[{"sha256": H}])
    block = builder.next_block([act])
    store.commit_block(block.header, block.envelopes, block.certificate)
    context = StoreActContext(
        store,
        lambda rid: parse_envelope(parse_json(store.get_envelope_bytes(rid) or b"null")),
        chain.signer_roles,
    )
    assert context.lookup(act.id) == act and context.lookup("00" * 32) is None
    assert context.custody_state(H, act).holder == "CN"
    collected = _custody(chain, act, CN_INV, "CN", "collected")
    examined = _custody(chain, act, CN_INV, "CN", "examined")
    check_act_context(collected, context)
    # Without the earlier record of the same block, "examined" would come first.
    with pytest.raises(RecordInvalid, match="cannot follow 'none'"):
        check_act_context(examined, context)
    check_act_context(examined, context.with_pending([collected]))
    with pytest.raises(RecordInvalid):
        check_act_context(collected, context.with_pending([collected]))


def test_epoc_pr_is_extended_once_by_at_most_30_days() -> None:
    """Regulation (EU) 2023/1543 Art 11(1): 60 days, one further 30-day period."""
    chain = FakeChain()
    order = chain.commit(chain.make("epoc_pr", CN_AUTH, "CN"))  # expires 2026-04-30
    extension: dict[str, Any] = {
        "phase": "extension",
        "refs": [order.id],
        "occurred_at": "2026-04-20T00:00:00Z",
        "expires_at": "2026-05-30T00:00:00Z",  # original + 30 days exactly
    }
    extended = chain.commit(chain.make("epoc_pr", CN_AUTH, "CN", **extension))
    too_long = {**extension, "expires_at": "2026-05-30T00:00:01Z"}
    _raises(
        chain,
        chain.make("epoc_pr", CN_AUTH, "CN", **too_long),
        RecordInvalid,
        "record.expires_at",
        "extension_too_long",
    )
    again = {**extension, "refs": [extended.id], "expires_at": "2026-06-10T00:00:00Z"}
    _raises(
        chain,
        chain.make("epoc_pr", CN_AUTH, "CN", **again),
        RecordInvalid,
        "record.refs[0]",
        "extension_twice",
    )
    _raises(
        chain,
        chain.make("epoc_pr", VN_AUTH, "VN", **extension),
        Forbidden,
        "record.actor.state",
        "not_owner",
    )


# --- issue 18: answers to the new requests ------------------------------------------------


def test_preservation_response_by_the_territorial_state_at_least_60_days_on_art29() -> None:
    chain = FakeChain()
    request = chain.commit(chain.make("preservation_request", CN_INV, "CN", basis="budapest_29"))
    answer: dict[str, Any] = {"refs": [request.id]}
    short = {**answer, "preserved_until": "2026-04-29T23:59:59Z"}
    _raises(
        chain,
        chain.make("preservation_response", TH_AUTH, "TH", **short),
        RecordInvalid,
        "record.preserved_until",
        "preservation_too_short",
    )
    ok = {**answer, "preserved_until": "2026-04-30T00:00:00Z"}
    chain.commit(chain.make("preservation_response", TH_AUTH, "TH", **ok))
    own: dict[str, Any] = {**ok, "territorial_states": ["CN"]}
    _raises(
        chain,
        chain.make("preservation_response", CN_AUTH, "CN", **own),
        Forbidden,
        "record.actor.state",
        "own_act",
    )
    vn: dict[str, Any] = {**ok, "territorial_states": ["VN"]}
    _raises(
        chain,
        chain.make("preservation_response", VN_AUTH, "VN", **vn),
        Forbidden,
        "record.actor.state",
        "not_requested_state",
    )
    mla = chain.commit(chain.make("mla_request", CN_AUTH, "CN"))
    _raises(
        chain,
        chain.make("preservation_response", TH_AUTH, "TH", refs=[mla.id]),
        RecordInvalid,
        "record.refs[0]",
        "ref_wrong_type",
    )


def test_art16_preservation_has_no_60_day_floor() -> None:
    chain = FakeChain()
    request = chain.commit(chain.make("preservation_request", CN_INV, "CN"))
    short: dict[str, Any] = {"refs": [request.id], "preserved_until": "2026-03-10T00:00:00Z"}
    chain.commit(chain.make("preservation_response", TH_AUTH, "TH", **short))


def test_traffic_path_disclosure_answers_the_preservation_request() -> None:
    chain = FakeChain()
    request = chain.commit(chain.make("preservation_request", CN_INV, "CN"))
    chain.commit(chain.make("traffic_path_disclosure", TH_AUTH, "TH", refs=[request.id]))
    _raises(
        chain,
        chain.make("traffic_path_disclosure", CN_AUTH, "CN", refs=[request.id]),
        Forbidden,
        "record.actor.state",
        "own_act",
    )


def test_epoc_enforcing_decision_only_on_a_notified_epoc_by_the_enforcing_state() -> None:
    chain = FakeChain()
    silent = chain.commit(chain.make("epoc", CN_AUTH, "CN"))
    notified = chain.commit(chain.make("epoc", CN_AUTH, "CN", notification_required=True))
    _raises(
        chain,
        chain.make("epoc_enforcing_decision", TH_AUTH, "TH", refs=[silent.id]),
        RecordInvalid,
        "record.refs[0]",
        "not_notified",
    )
    chain.commit(chain.make("epoc_enforcing_decision", TH_AUTH, "TH", refs=[notified.id]))
    vn: dict[str, Any] = {"refs": [notified.id], "territorial_states": ["VN"]}
    _raises(
        chain,
        chain.make("epoc_enforcing_decision", VN_AUTH, "VN", **vn),
        Forbidden,
        "record.actor.state",
        "not_requested_state",
    )
    report = chain.make("addressee_report", CN_AUTH, "CN", refs=[notified.id])
    chain.commit(report)  # the issuer records what its addressee reported
    _raises(
        chain,
        chain.make("addressee_report", TH_AUTH, "TH", refs=[notified.id]),
        Forbidden,
        "record.actor.state",
        "not_requested_state",
    )


def test_provider_state_instructs_not_to_disclose_only_when_notified() -> None:
    chain = FakeChain()
    notified = chain.commit(chain.make("direct_provider_request", CN_AUTH, "CN"))
    silent = chain.commit(
        chain.make("direct_provider_request", CN_AUTH, "CN", notification_required=False)
    )
    chain.commit(chain.make("provider_request_answer", TH_AUTH, "TH", refs=[notified.id]))
    _raises(
        chain,
        chain.make("provider_request_answer", TH_AUTH, "TH", refs=[silent.id]),
        RecordInvalid,
        "record.refs[0]",
        "not_notified",
    )


def test_eio_response_by_the_executing_state() -> None:
    chain = FakeChain()
    eio = chain.commit(chain.make("eio", CN_AUTH, "CN"))
    chain.commit(chain.make("eio_response", TH_AUTH, "TH", refs=[eio.id]))
    vn: dict[str, Any] = {"refs": [eio.id], "territorial_states": ["VN"]}
    _raises(
        chain,
        chain.make("eio_response", VN_AUTH, "VN", **vn),
        Forbidden,
        "record.actor.state",
        "not_requested_state",
    )


def test_jit_accession_by_a_member_with_the_same_agreement() -> None:
    chain = FakeChain()
    agreement = chain.commit(chain.make("jit_agreement", CN_AUTH, "CN"))
    chain.commit(chain.make("jit_accession", TH_AUTH, "TH", refs=[agreement.id]))
    _raises(
        chain,
        chain.make("jit_accession", TH_AUTH, "TH", refs=[agreement.id], agreement_sha256="ef" * 32),
        RecordInvalid,
        "record.agreement_sha256",
        "agreement_mismatch",
    )
    founder: dict[str, Any] = {"refs": [agreement.id], "territorial_states": ["CN"]}
    _raises(
        chain,
        chain.make("jit_accession", CN_AUTH, "CN", **founder),
        Forbidden,
        "record.actor.state",
        "own_act",
    )


def test_mla_request_naming_a_preservation_makes_it_pending_the_decision() -> None:
    chain = FakeChain()
    preservation = chain.commit(chain.make("preservation_request", CN_INV, "CN"))
    chain.commit(chain.make("mla_request", CN_AUTH, "CN", refs=[preservation.id]))
    _raises(
        chain,
        chain.make("mla_request", CN_AUTH, "CN", refs=[preservation.id], case_ref="CN-OTHER"),
        RecordInvalid,
        "record.case_ref",
        "case_mismatch",
    )
    foreign: dict[str, Any] = {"refs": [preservation.id], "requested_state": "TH"}
    _raises(
        chain,
        chain.make("mla_request", VN_AUTH, "VN", **foreign),
        Forbidden,
        "record.refs[0]",
        "not_owner",
    )
    elsewhere: dict[str, Any] = {
        "refs": [preservation.id],
        "requested_state": "VN",
        "territorial_states": ["VN"],
    }
    _raises(
        chain,
        chain.make("mla_request", CN_AUTH, "CN", **elsewhere),
        RecordInvalid,
        "record.refs[0]",
        "ref_wrong_state",
    )
