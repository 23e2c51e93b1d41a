"""Conditions of use on requests and their acknowledgement, hostile cases first.

docs/ACTS.md "Conditions of use and their acknowledgement": requests may be
``confidential`` (Budapest Art 27(8)), carry ``use_conditions`` (Art 28(2))
and an ``onward_transfer`` rule (SAP Art 14(10)); only a state the act
concerns, never its author, accepts them with a ``conditions_acknowledgement``
(Art 28(3)).
"""

from __future__ import annotations

from typing import Any

import pytest

from ledger.acts import REQUEST_TYPES, validate_act
from ledger.acts_context import concerned_states
from ledger.errors import ClientError, Forbidden, RecordInvalid
from ledger.records import Envelope
from ledger.roles import AUTHORITY_ACTS, INVESTIGATOR_ACTS, allowed_types
from tests.factory import key
from tests.unit.test_acts import make
from tests.unit.test_acts_context import CN_AUTH, CN_INV, ROLES, TH_AUTH, VN_AUTH, FakeChain

FR_AUTH = key("fr-authority")
ROLES.setdefault(FR_AUTH.public_hex, frozenset({"authority"}))
CONDITIONS: dict[str, Any] = {
    "confidential": True,
    "use_conditions": ["use only in case CN-2026-0042", "no disclosure to third parties"],
    "onward_transfer": "with_consent",
}


def _commit(chain: FakeChain, envelope: Envelope) -> Envelope:
    validate_act(envelope.record)  # the catalogue, then the chain (as Application does)
    return chain.commit(envelope)


def _request(chain: FakeChain, type_: str = "mla_request", **changes: Any) -> Envelope:
    signer = CN_INV if type_ not in ("mla_request", "mla_response") else CN_AUTH
    return _commit(chain, chain.make(type_, signer, "CN", **(CONDITIONS | changes)))


def _ack(chain: FakeChain, act: Envelope, signer: Any, state: str, **changes: Any) -> Envelope:
    return chain.make(
        "conditions_acknowledgement",
        signer,
        state,
        refs=[act.id],
        territorial_states=[state],
        **changes,
    )


def _raises(
    chain: FakeChain, envelope: Envelope, kind: type[ClientError], field: str, code: str
) -> None:
    validate_act(envelope.record)
    with pytest.raises(kind) as caught:
        chain.commit(envelope)
    assert (caught.value.field, caught.value.code) == (field, code), caught.value.message


# --- the fields on request types ---------------------------------------------------------


@pytest.mark.parametrize("type_", sorted(REQUEST_TYPES))
def test_every_request_type_takes_the_conditions(type_: str) -> None:
    act = validate_act(make(type_, **CONDITIONS))
    assert (act.confidential, act.onward_transfer) == (True, "with_consent")  # type: ignore[attr-defined]


def test_request_types_are_those_that_hand_information_to_another_state() -> None:
    assert {
        "mla_request",
        "mla_response",
        "preservation_request",
        "production_order",
        "eio",
        "epoc",
        "epoc_pr",
        "emergency_disclosure",
        "spontaneous_information",
    } <= REQUEST_TYPES
    assert not REQUEST_TYPES & {"custody_event", "sovereignty_response", "search_seizure"}


@pytest.mark.parametrize("type_", ["custody_event", "search_seizure", "technical_measure"])
def test_non_request_types_refuse_the_conditions(type_: str) -> None:
    with pytest.raises(RecordInvalid) as caught:
        validate_act(make(type_, onward_transfer="prohibited"))
    assert (caught.value.field, caught.value.code) == ("record.onward_transfer", "invalid_act")


def test_conditions_of_a_consortium_act_are_linted() -> None:
    record = make("eio", visibility="consortium", use_conditions=["ok", "ask a.b@example.org"])
    with pytest.raises(RecordInvalid) as caught:
        validate_act(record)
    assert (caught.value.field, caught.value.code) == (
        "record.use_conditions[1]",
        "personal_identifier",
    )


def test_a_confidential_act_is_never_read_in_clear_by_every_member() -> None:
    with pytest.raises(RecordInvalid) as caught:
        validate_act(make("mla_request", visibility="consortium", confidential=True))
    assert (caught.value.field, caught.value.code) == ("record.visibility", "confidential_in_clear")
    validate_act(make("mla_request", visibility="consortium", confidential=False))
    validate_act(make("mla_request", visibility="parties", confidential=True))


def test_acknowledgement_is_an_authority_act_only() -> None:
    assert "conditions_acknowledgement" in AUTHORITY_ACTS
    assert "conditions_acknowledgement" not in INVESTIGATOR_ACTS
    assert "conditions_acknowledgement" not in allowed_types(("investigator", "auditor"))


# --- who may acknowledge -----------------------------------------------------------------


def test_requested_state_acknowledges_all_or_some_conditions() -> None:
    chain = FakeChain()
    request = _request(chain)
    _commit(chain, _ack(chain, request, TH_AUTH, "TH"))
    _commit(
        chain, _ack(chain, request, TH_AUTH, "TH", use_conditions=CONDITIONS["use_conditions"][1:])
    )


@pytest.mark.parametrize(
    ("type_", "changes", "state"),
    [
        ("spontaneous_information", {"receiving_states": ["VN"]}, "VN"),  # Art 26(2) receiver
        ("eio", {"territorial_states": ["TH", "FR"], "executing_state": "FR"}, "FR"),
        ("preservation_request", {"custodian": {"name": "Host", "state": "VN"}}, "VN"),
        ("preservation_request", {}, "TH"),  # territorial
    ],
)
def test_a_state_the_act_concerns_acknowledges(
    type_: str, changes: dict[str, Any], state: str
) -> None:
    chain = FakeChain()
    act = _request(chain, type_, **changes)
    signer = {"TH": TH_AUTH, "VN": VN_AUTH, "FR": FR_AUTH}[state]
    _commit(chain, _ack(chain, act, signer, state))


def test_requester_acknowledges_the_conditions_of_the_response() -> None:
    """Budapest Art 28(2)-(3): the requested state sets them on what it supplies."""
    chain = FakeChain()
    request = _commit(chain, chain.make("mla_request", CN_AUTH, "CN"))
    response = _commit(
        chain,
        chain.make(
            "mla_response",
            TH_AUTH,
            "TH",
            refs=[request.id],
            status="evidence_transferred",
            ground=None,
            reason=None,
            territorial_states=["TH"],
            use_conditions=["not used in other proceedings"],
        ),
    )
    assert concerned_states(response, chain) == {"CN"}
    _commit(chain, _ack(chain, response, CN_AUTH, "CN"))
    _raises(
        chain,
        _ack(chain, response, VN_AUTH, "VN"),
        Forbidden,
        "record.actor.state",
        "not_concerned",
    )


def test_author_cannot_acknowledge_its_own_conditions() -> None:
    chain = FakeChain()
    request = _request(chain)
    _raises(chain, _ack(chain, request, CN_AUTH, "CN"), Forbidden, "record.actor.state", "own_act")


def test_a_state_the_act_does_not_concern_is_refused() -> None:
    chain = FakeChain()
    request = _request(chain)  # CN asks TH; VN and FR are not named
    for signer, state in ((VN_AUTH, "VN"), (FR_AUTH, "FR")):
        _raises(
            chain,
            _ack(chain, request, signer, state),
            Forbidden,
            "record.actor.state",
            "not_concerned",
        )


def test_an_act_without_conditions_has_nothing_to_acknowledge() -> None:
    chain = FakeChain()
    plain = _commit(chain, chain.make("mla_request", CN_AUTH, "CN"))
    unflagged = _request(chain, confidential=False, use_conditions=None, onward_transfer=None)
    for act in (plain, unflagged):
        _raises(
            chain, _ack(chain, act, TH_AUTH, "TH"), RecordInvalid, "record.refs[0]", "no_conditions"
        )


def test_art26_conditions_text_counts_as_conditions() -> None:
    chain = FakeChain()
    info = _commit(
        chain,
        chain.make(
            "spontaneous_information",
            CN_INV,
            "CN",
            receiving_states=["TH"],
            conditions="only for X",
        ),
    )
    _commit(chain, _ack(chain, info, TH_AUTH, "TH"))


def test_acknowledgement_of_an_answer_or_of_another_case_is_refused() -> None:
    chain = FakeChain()
    request = _request(chain)
    ack = _commit(
        chain,
        _ack(chain, request, TH_AUTH, "TH", use_conditions=["no disclosure to third parties"]),
    )
    _raises(
        chain, _ack(chain, ack, CN_AUTH, "CN"), RecordInvalid, "record.refs[0]", "ref_wrong_type"
    )
    _raises(
        chain,
        _ack(chain, request, TH_AUTH, "TH", case_ref="OTHER-1"),
        RecordInvalid,
        "record.case_ref",
        "case_mismatch",
    )
    missing = chain.make(
        "conditions_acknowledgement", TH_AUTH, "TH", refs=["ee" * 32], territorial_states=["TH"]
    )
    _raises(chain, missing, RecordInvalid, "record.refs[0]", "ref_not_found")


def test_listed_conditions_must_be_the_acts_own() -> None:
    chain = FakeChain()
    request = _request(chain)
    forged = _ack(
        chain,
        request,
        TH_AUTH,
        "TH",
        use_conditions=["no disclosure to third parties", "may be published"],
    )
    _raises(chain, forged, RecordInvalid, "record.use_conditions[1]", "condition_not_in_ref")
