"""The treaty matrix drives the act rules (issue 19 item 2, docs/ACTS.md §21).

An act between two states that both have a directory entry names an instrument in
force between them (``no_legal_basis``); an SAP Art 7 request to a state that
declared Art 7(5)(a) notification is a notified one (``notification_declared``),
so its notice and its clock follow; a request in no language the requested state
accepts warns on submit and shows in the deadlines; notices name the authority the
directory routes them to. Nothing changes on a chain, or for a state, without one.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from ledger.records import Envelope
from node import deadlines as dl
from node import evidence
from node.clock import utcnow
from tests.unit.test_directory import directory_record
from tests.unit.test_governance import Chain


def _custodian(state: str) -> dict[str, Any]:
    return {"name": "Example Hosting Ltd", "kind": "service_provider", "state": state}


def _request(
    chain: Chain, actor: str, to: str, type_: str = "preservation_request", **fields: Any
) -> Envelope:
    base: dict[str, Any] = {"territorial_states": [to], "custodian": _custodian(to)}
    if type_ == "direct_provider_request":
        base["provider_state"] = to
    return chain.env(actor, chain.keys(actor).investigator, type_, **{**base, **fields})


def _basis(instrument: str) -> dict[str, Any]:
    return {"legal_basis": {"instrument": instrument, "article": "Art 29"}}


def _accepted(chain: Chain, envelope: Envelope) -> None:
    chain.app.check_record(envelope, utcnow())


def _with_directory(*states: str) -> Chain:
    chain = Chain()
    chain.commit(*(directory_record(chain, s) for s in states))
    return chain


# --- no_legal_basis ---------------------------------------------------------------------------


def test_no_legal_basis_applies_only_once_both_states_have_an_entry() -> None:
    chain = Chain()
    budapest = _basis("Budapest Convention")
    _accepted(chain, _request(chain, "FR", "CN", **budapest))  # no directory: as before
    chain.commit(directory_record(chain, "FR"))
    _accepted(chain, _request(chain, "FR", "CN", **budapest))  # CN has none yet
    chain.commit(directory_record(chain, "CN"))
    refused = _request(chain, "FR", "CN", **budapest)
    with pytest.raises(Exception) as info:
        _accepted(chain, refused)
    error: Any = info.value
    assert (error.status, error.code, error.field) == (
        422,
        "no_legal_basis",
        "record.legal_basis.instrument",
    )
    assert "bilateral_mlat:CN" in error.message and "untoc" in error.message


@pytest.mark.parametrize(
    ("actor", "to", "instrument", "ok"),
    [
        ("FR", "CN", "UNTOC", True),
        ("FR", "CN", "United Nations Convention against Cybercrime", True),
        ("FR", "CN", "MLAT", True),  # the bilateral treaty both entries list
        ("FR", "CN", "Budapest Convention, Art. 29", False),
        ("FR", "TH", "Budapest Convention", True),
        ("FR", "TH", "MLAT", False),  # FR lists no treaty with TH
        ("TH", "VN", "bilateral_mlat:VN", True),
        ("TH", "VN", "Treaty of Westphalia", False),  # names no instrument at all
        ("CN", "VN", "Directive 2014/41/EU", False),
    ],
)
def test_the_instrument_must_be_in_force_between_the_pair(
    actor: str, to: str, instrument: str, ok: bool
) -> None:
    chain = _with_directory("CN", "FR", "TH", "VN")
    envelope = _request(chain, actor, to, **_basis(instrument))
    if ok:
        _accepted(chain, envelope)
    else:
        chain.refused(envelope, "no_legal_basis")


def test_a_request_without_a_legal_basis_uses_its_basis_or_is_refused() -> None:
    chain = _with_directory("CN", "FR", "TH", "VN")
    chain.refused(_request(chain, "FR", "TH", legal_basis=None), "no_legal_basis")
    template = _request(chain, "FR", "TH", basis="budapest_29").record
    bare = {k: v for k, v in template.items() if k != "legal_basis"}
    # basis budapest_29 names the Budapest Convention, in force between FR and TH ...
    _accepted(chain, _resign(chain, "FR", bare))
    # ... not between FR and CN.
    to_cn = {**bare, "territorial_states": ["CN"], "custodian": _custodian("CN")}
    chain.refused(_resign(chain, "FR", {**to_cn, "nonce": "unit-bare-cn-0001"}), "no_legal_basis")


def _resign(chain: Chain, state: str, record: dict[str, Any]) -> Envelope:
    from ledger.canonical import canonical_bytes
    from ledger.records import parse_envelope

    key = chain.keys(state).investigator
    return parse_envelope(
        {
            "record": record,
            "signer": key.public_hex,
            "signature": key.sign(canonical_bytes(record)).hex(),
        }
    )


def test_a_state_without_an_entry_is_not_judged() -> None:
    chain = _with_directory("FR", "TH")  # CN and VN have none
    _accepted(chain, _request(chain, "FR", "CN", **_basis("Budapest Convention")))
    # A request to two states is judged per pair: TH has an entry, CN has none.
    both = _request(chain, "FR", "CN", territorial_states=["CN", "TH"], **_basis("MLAT"))
    chain.refused(both, "no_legal_basis")


# --- notification_required --------------------------------------------------------------------


def test_a_sap7_request_to_a_state_that_declared_7_5_a_must_be_notified() -> None:
    chain = _with_directory("CN", "FR", "TH", "VN")
    silent = _request(chain, "FR", "TH", "direct_provider_request", notification_required=False)
    with pytest.raises(Exception) as info:
        _accepted(chain, silent)
    error: Any = info.value
    assert (error.status, error.code, error.field) == (
        422,
        "notification_declared",
        "record.notification_required",
    )
    _accepted(chain, _request(chain, "FR", "TH", "direct_provider_request"))
    # Another basis, or a state that declared nothing: no notification is derived.
    other = _request(
        chain,
        "FR",
        "TH",
        "direct_provider_request",
        notification_required=False,
        basis="budapest_18_1_b",
    )
    _accepted(chain, other)


def test_the_notified_request_creates_the_notice_and_the_deadline() -> None:
    """Issue 19's done-when: an SAP Art 7 request to a state that declared 7(5)
    notification creates the notice and the deadline automatically."""
    chain = _with_directory("CN", "FR", "TH", "VN")
    act = _request(chain, "FR", "TH", "direct_provider_request")
    chain.commit(act)
    view = evidence.view_of(chain.app)
    notices = evidence.notices(view, "TH")["notices"]
    notice = next(n for n in notices if n["id"] == act.id)
    assert notice["status"] == "pending" and notice["notification_required"] is True
    assert notice["route_to"]["authority"] == "th-ca"  # competent for budapest_sap
    assert notice["route_to"]["channels"][0]["kind"] == "e_mla"
    items = dl.evaluate(view, utcnow())
    clocks = {i.clock.id for i in items if i.act.id == act.id}
    assert {"sap7_notification", "sap7_disclosure"} <= clocks
    notified = next(i for i in items if i.act.id == act.id and i.clock.id == "sap7_notification")
    assert notified.status == "running"
    assert notified.due - notified.start == timedelta(days=30)


def test_a_preservation_notice_goes_to_the_24_7_contact() -> None:
    chain = _with_directory("CN", "FR", "TH", "VN")
    act = _request(chain, "FR", "TH", **_basis("Budapest Convention"))
    chain.commit(act)
    notice = evidence.notices(evidence.view_of(chain.app), "TH")["notices"][-1]
    assert notice["id"] == act.id and notice["route_to"]["authority"] == "th-247"
    # Without TH's entry, no route_to at all.
    bare = Chain()
    act = _request(bare, "FR", "TH")
    bare.commit(act)
    assert "route_to" not in evidence.notices(evidence.view_of(bare.app), "TH")["notices"][-1]


# --- languages --------------------------------------------------------------------------------


def _translation(language: str) -> dict[str, Any]:
    return {
        "evidence": [
            {"sha256": "aa" * 32, "role": "request_document", "language": "fr"},
            {
                "sha256": "bb" * 32,
                "role": "translation",
                "language": language,
                "derived_from": "aa" * 32,
            },
        ]
    }


@pytest.mark.parametrize(
    ("fields", "warned"),
    [
        ({"languages": ["fr"]}, True),  # TH accepts th and en
        ({"languages": ["fr", "en"]}, False),
        ({"languages": ["EN-gb"]}, False),  # a more specific tag of an accepted language
        ({"languages": ["enm"]}, True),  # Middle English is not "en"
        (_translation("en"), False),  # the request document's language, translated
        (_translation("de"), True),
        ({"languages": ["fr", "de"], **_translation("de")}, True),
        ({}, False),  # states no language: nothing known to be wrong
    ],
)
def test_a_request_in_no_accepted_language_warns(fields: dict[str, Any], warned: bool) -> None:
    chain = _with_directory("CN", "FR", "TH", "VN")
    envelope = _request(chain, "FR", "TH", **{**_basis("Budapest Convention"), **fields})
    _accepted(chain, envelope)
    warnings = chain.app.warnings(envelope)
    if not warned:
        assert warnings == []
        return
    assert [(w["code"], w["field"]) for w in warnings] == [
        ("translation_missing", "record.languages")
    ]
    assert "TH accepts ['en', 'th']" in warnings[0]["message"]


def test_a_missing_translation_is_a_deadline_until_answered() -> None:
    chain = _with_directory("CN", "FR", "TH", "VN")
    act = _request(chain, "FR", "TH", languages=["fr"], **_basis("Budapest Convention"))
    chain.commit(act)
    items = [i for i in dl.evaluate(evidence.view_of(chain.app), utcnow()) if i.act.id == act.id]
    missing = next(i for i in items if i.clock.id == "translation_missing")
    assert missing.status == "overdue" and missing.due == missing.start
    # TH's answer (it took the request up) stops it.
    answer = chain.env(
        "TH",
        chain.keys("TH").authority,
        "sovereignty_response",
        refs=[act.id],
        territorial_states=["TH"],
        case_ref=act.record["case_ref"],
    )
    chain.commit(answer)
    items = [i for i in dl.evaluate(evidence.view_of(chain.app), utcnow()) if i.act.id == act.id]
    assert next(i for i in items if i.clock.id == "translation_missing").status == "stopped"
    # No directory: no such clock.
    bare = Chain()
    plain = _request(bare, "FR", "TH", languages=["fr"])
    bare.commit(plain)
    ids = {i.clock.id for i in dl.evaluate(evidence.view_of(bare.app), utcnow())}
    assert "translation_missing" not in ids


def test_the_notified_states_answer_stops_the_notification_clock() -> None:
    chain = _with_directory("CN", "FR", "TH", "VN")
    act = _request(chain, "FR", "TH", "direct_provider_request")
    chain.commit(act)
    answer = chain.env(
        "TH",
        chain.keys("TH").authority,
        "provider_request_answer",
        refs=[act.id],
        territorial_states=["TH"],
        case_ref=act.record["case_ref"],
        decision="instruct_not_to_disclose",  # allowed: the request is a notified one
        ground="prejudice_domestic_proceedings",
        reason="disclosure would prejudice a domestic investigation",
    )
    chain.commit(answer)
    items = dl.evaluate(evidence.view_of(chain.app), utcnow())
    notified = next(i for i in items if i.act.id == act.id and i.clock.id == "sap7_notification")
    assert notified.status == "stopped" and notified.stopped_by is not None
    assert notified.stopped_by.id == answer.id
