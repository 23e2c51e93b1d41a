"""Custody both sides sign (issue 20 item 4, docs/ACTS.md §5): catalogue version 3.

The pure machine of ``ledger/acts_custody.py`` first (table rows: events in,
status or refusal out), then the same rules judged by a real ``Application``
(the ``Chain`` of test_governance): a transfer is in transit until the named
receiver records ``received`` with the hash it recomputed; a mismatch flags
the chain for good; only the introducing state opens a chain and only the
holder acts on it, for every action (FINDINGS.md H2); custody events derive
new hashes; and a chain written under version 2 keeps its meaning.
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest

from ledger.acts import json_schemas, validate_act
from ledger.acts_custody import CustodyState, CustodyViolation, replay, replay_lenient, step
from ledger.acts_fields import ActPolicy
from ledger.canonical import canonical_bytes
from ledger.errors import ClientError, RecordInvalid
from ledger.records import Envelope, parse_envelope
from ledger.store import Store
from node.application import Application
from node.clock import utcnow
from node.evidence import ChainView, evidence_view
from node.rules import build_registry
from tests.unit.test_governance import Chain

X = "5a" * 32
IMAGE = "6b" * 32
T0, T1, T2, T3 = (f"2026-03-0{d}T10:00:00Z" for d in (1, 2, 3, 4))
WHERE = {"state": "FR", "place": "FR seal room"}
WHY = {"code": "investigation"}


def _ev(state: str, action: str, at: str = T1, v3: bool = True, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "action": action,
        "actor": {"state": state},
        "occurred_at": at,
        "evidence": [{"sha256": X}],
        "refs": ["act"],
        **fields,
    }
    if v3:
        record.update(location={"state": state, "place": "lab"}, purpose=WHY)
    return record


def _to(state: str) -> dict[str, Any]:
    return {"state": state, "agency": f"{state} lab"}


def _received(state: str, transfer: str = "t", digest: str = X, at: str = T2) -> dict[str, Any]:
    check = "verified" if digest == X else "mismatch"
    return _ev(
        state, "received", at, refs=["act", transfer], hash_check=check, recomputed_sha256=digest
    )


# --- the pure machine --------------------------------------------------------------------


def test_a_version_3_transfer_is_in_transit_until_the_named_receiver_records_it() -> None:
    collected = ("c", _ev("FR", "collected", T0))
    transfer = ("t", _ev("FR", "transferred", to=_to("TH")))
    state = replay([collected, transfer], "FR")
    assert (state.status, state.holder, state.receiver, state.since) == (
        "in_transit",
        "FR",
        "TH",
        T1,
    )
    assert state.to_json()["in_transit"] == {
        "from": "FR",
        "to": "TH",
        "transfer_id": "t",
        "since": T1,
    }
    after = step(state, _received("TH"), "r")
    assert (after.status, after.holder, after.integrity, after.receiver) == (
        "received",
        "TH",
        "intact",
        None,
    )
    assert step(after, _ev("TH", "examined", T3), "e").status == "examined"


REFUSED_IN_TRANSIT = [
    pytest.param(_received("CN"), "not_named_receiver", 403, "record.actor.state", id="not-named"),
    pytest.param(_received("FR"), "not_named_receiver", 403, "record.actor.state", id="sender"),
    pytest.param(
        _received("TH", transfer="other"),
        "custody_wrong_transfer",
        422,
        "record.refs[1]",
        id="other-transfer",
    ),
    pytest.param(_ev("TH", "examined"), "custody_out_of_order", 422, "record.action", id="early"),
    pytest.param(_ev("FR", "destroyed"), "custody_out_of_order", 422, "record.action", id="recall"),
    pytest.param(
        _received("TH", at=T0), "custody_out_of_order", 422, "record.action", id="backdated"
    ),
]


@pytest.mark.parametrize(("event", "code", "status", "field"), REFUSED_IN_TRANSIT)
def test_only_the_named_receiver_ends_a_transit(
    event: dict[str, Any], code: str, status: int, field: str
) -> None:
    state = replay(
        [("c", _ev("FR", "collected", T0)), ("t", _ev("FR", "transferred", to=_to("TH")))], "FR"
    )
    with pytest.raises(CustodyViolation) as caught:
        step(state, event, "x")
    assert (caught.value.code, caught.value.status, caught.value.field) == (code, status, field)


def test_a_hash_mismatch_leaves_the_chain_flagged_and_only_returnable() -> None:
    events = [
        ("c", _ev("FR", "collected", T0)),
        ("t", _ev("FR", "transferred", to=_to("TH"))),
        ("r", _received("TH", digest="ee" * 32)),
    ]
    state = replay(events, "FR")
    assert (state.status, state.holder, state.integrity) == ("hash_mismatch", "TH", "hash_mismatch")
    with pytest.raises(CustodyViolation) as caught:
        step(state, _ev("TH", "examined", T3), "e")
    assert caught.value.code == "custody_out_of_order"
    returned = step(state, _ev("TH", "returned", T3), "back")
    assert (returned.status, returned.terminal, returned.integrity) == (
        "returned",
        True,
        "hash_mismatch",
    )


def test_a_version_2_transfer_takes_effect_at_once() -> None:
    events = [
        ("c", _ev("FR", "collected", T0, v3=False)),
        ("t", _ev("FR", "transferred", v3=False, to=_to("TH"))),
        ("e", _ev("TH", "examined", T2, v3=False)),
    ]
    assert (replay(events, "FR").status, replay(events, "FR").holder) == ("examined", "TH")
    # The same steps written under version 3 stop at the transit: TH's examination is refused.
    v3 = [(i, {**e, "location": WHERE, "purpose": WHY}) for i, e in events]
    state, anomalies = replay_lenient(v3, "FR")
    assert (state.status, [(i, a.code) for i, a in anomalies]) == (
        "in_transit",
        [(2, "custody_out_of_order")],
    )


def test_a_chain_spanning_the_activation_folds_each_event_by_its_own_version() -> None:
    events = [
        ("c", _ev("FR", "collected", T0, v3=False)),
        ("t", _ev("FR", "transferred", v3=False, to=_to("TH"))),  # v2: TH holds
        ("t3", _ev("TH", "transferred", T2, to=_to("CN"))),  # v3: in transit to CN
    ]
    state = replay(events, "FR")
    assert (state.status, state.holder, state.receiver, state.transfer_id) == (
        "in_transit",
        "TH",
        "CN",
        "t3",
    )


FIRST_ACTIONS = ["identified", "collected", "acquired", "preserved"]
LATER_ACTIONS = ["acquired", "preserved", "examined", "translated", "returned", "destroyed"]


@pytest.mark.parametrize("action", FIRST_ACTIONS)
def test_iso_27037_processes_open_a_chain_only_for_the_introducing_state(action: str) -> None:
    assert step(CustodyState(holder="FR"), _ev("FR", action), "a").status == action
    with pytest.raises(CustodyViolation) as caught:
        step(CustodyState(holder="FR"), _ev("CN", action), "a")
    assert (caught.value.code, caught.value.status) == ("not_custody_holder", 403)


@pytest.mark.parametrize("action", [*LATER_ACTIONS, "transferred"])
def test_no_other_state_acts_on_a_held_chain(action: str) -> None:
    state = replay([("c", _ev("FR", "collected", T0))], "FR")
    extra: dict[str, Any] = {"to": _to("CN")} if action == "transferred" else {}
    with pytest.raises(CustodyViolation) as caught:
        step(state, _ev("CN", action, **extra), "x")
    assert (caught.value.code, caught.value.status) == ("not_custody_holder", 403)


def test_identification_is_followed_by_collection_acquisition_or_preservation() -> None:
    state = replay([("i", _ev("FR", "identified", T0))], "FR")
    for action in ("examined", "transferred", "destroyed", "identified"):
        extra: dict[str, Any] = {"to": _to("TH")} if action == "transferred" else {}
        with pytest.raises(CustodyViolation) as caught:
            step(state, _ev("FR", action, **extra))
        assert caught.value.code == "custody_out_of_order", action
    assert step(state, _ev("FR", "acquired"), "a").holder == "FR"


# --- the catalogue: version 3's fields and values, refused under version 2 -----------------


def _act(**fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "schema": "comity/1",
        "type": "custody_event",
        "chain_id": "unit-chain",
        "nonce": "nonce-000001",
        "actor": {"state": "FR", "agency": "lab"},
        "occurred_at": T1,
        "case_ref": "FR-2026-7",
        "territorial_states": ["FR"],
        "visibility": "consortium",
        "evidence": [{"sha256": X}],
        "refs": ["ab" * 32],
        "action": "collected",
        "location": WHERE,
        "purpose": WHY,
    }
    record.update(fields)
    return {k: v for k, v in record.items() if v is not None}


V2, V3 = ActPolicy(version=2), ActPolicy(version=3)
RECEIVED = {
    "action": "received",
    "refs": ["ab" * 32, "cd" * 32],
    "hash_check": "verified",
    "recomputed_sha256": X,
}

NOT_IN_V2 = [
    pytest.param({}, "record.location", id="location"),
    pytest.param({"location": None}, "record.purpose", id="purpose"),
    pytest.param(
        {"location": None, "purpose": None, "action": "acquired"}, "record.action", id="acq"
    ),
    pytest.param(
        {"location": None, "purpose": None, "action": "identified"}, "record.action", id="ident"
    ),
    pytest.param({**RECEIVED, "location": None, "purpose": None}, "record.hash_check", id="recv"),
]


@pytest.mark.parametrize(("fields", "field"), NOT_IN_V2)
def test_version_3_custody_is_refused_under_version_2(fields: dict[str, Any], field: str) -> None:
    record = _act(**fields)
    with pytest.raises(RecordInvalid) as caught:
        validate_act(record, V2)
    assert (caught.value.code, caught.value.field) == ("not_in_catalogue_version", field)


def test_version_2_custody_is_refused_under_version_3_without_where_and_why() -> None:
    old = _act(location=None, purpose=None)
    assert validate_act(old, V2).type == "custody_event"
    with pytest.raises(RecordInvalid) as caught:
        validate_act(old, V3)
    assert (caught.value.code, caught.value.field) == ("invalid_act", "record.location")


def test_a_received_and_a_derivation_are_valid_acts_of_version_3() -> None:
    assert validate_act(_act(**RECEIVED), V3).type == "custody_event"
    derived = [{"sha256": X}, {"sha256": IMAGE, "derived_from": X, "role": "evidence"}]
    assert validate_act(_act(action="acquired", evidence=derived), V3).type == "custody_event"
    with pytest.raises(RecordInvalid) as caught:
        validate_act(_act(action="examined", evidence=derived, location=None, purpose=None), V2)
    assert (caught.value.code, caught.value.field) == ("invalid_act", "record.evidence")


def test_the_schemas_of_version_2_and_3() -> None:
    v2, v3 = json_schemas(2)["types"], json_schemas(3)["types"]
    assert {"location", "purpose"} <= set(v3["custody_event"]["required"])
    assert "location" not in v2["custody_event"]["properties"]
    assert "received" not in v2["custody_event"]["properties"]["action"]["enum"]
    assert "received" in v3["custody_event"]["properties"]["action"]["enum"]
    # Another type's value of the same name is no custody action: version 2 keeps it.
    assert "received" in str(v2["mla_response"]["properties"]["status"])
    assert jsonschema_rs.is_valid(v3["custody_event"], _act(**RECEIVED))
    assert not jsonschema_rs.is_valid(v2["custody_event"], _act(**RECEIVED))
    assert jsonschema_rs.is_valid(v2["custody_event"], _act(location=None, purpose=None))
    assert not jsonschema_rs.is_valid(v3["custody_event"], _act(location=None, purpose=None))


# --- on a chain: a real Application ------------------------------------------------------


def _resign(chain: Chain, state: str, envelope: Envelope, drop: tuple[str, ...]) -> Envelope:
    record = {k: v for k, v in envelope.record.items() if k not in drop}
    signer = chain.keys(state).investigator
    return parse_envelope(
        {
            "record": record,
            "signer": signer.public_hex,
            "signature": signer.sign(canonical_bytes(record)).hex(),
        }
    )


def _seizure(chain: Chain, state: str, digest: str = X) -> Envelope:
    return chain.env(
        state,
        chain.keys(state).investigator,
        "search_seizure",
        evidence=[{"sha256": digest}],
        territorial_states=[state],
        case_ref=f"{state}-2026-7",
    )


def _custody(
    chain: Chain, state: str, act: Envelope, action: str, digest: str = X, **fields: Any
) -> Envelope:
    record: dict[str, Any] = {
        "action": action,
        "refs": [act.id],
        "evidence": [{"sha256": digest}],
        "territorial_states": [state],
        "case_ref": act.record["case_ref"],
        **fields,
    }
    envelope = chain.env(state, chain.keys(state).investigator, "custody_event", **record)
    v2 = chain.app.catalogue_version() < 3
    return _resign(chain, state, envelope, ("location", "purpose")) if v2 else envelope


def _receive(chain: Chain, state: str, act: Envelope, transfer: Envelope, digest: str) -> Envelope:
    check = "verified" if digest == X else "mismatch"
    return _custody(
        chain,
        state,
        act,
        "received",
        refs=[act.id, transfer.id],
        hash_check=check,
        recomputed_sha256=digest,
    )


def _chain_of(chain: Chain, act: Envelope, digest: str = X) -> dict[str, Any]:
    view = evidence_view(ChainView(chain.store, chain.app.load_envelope), digest)
    return next(c for c in view["custody_chains"] if c["ref"] == act.id)


def _refused(chain: Chain, envelope: Envelope) -> tuple[int, str, str | None]:
    with pytest.raises(ClientError) as caught:
        chain.app.check_record(envelope, utcnow())
    return caught.value.status, caught.value.code, caught.value.field


def _forbidden(chain: Chain, envelope: Envelope, code: str) -> None:
    assert _refused(chain, envelope) == (403, code, "record.actor.state")


def test_on_a_chain_the_item_is_in_transit_until_the_receiver_signs() -> None:
    chain = Chain(need_to_know_from_height=None)
    assert chain.app.catalogue_version() == 3
    act = _seizure(chain, "FR")
    chain.commit(act)
    collected = _custody(chain, "FR", act, "collected")
    chain.commit(collected)
    transfer = _custody(chain, "FR", act, "transferred", to=_to("TH"))
    chain.commit(transfer)
    seen = _chain_of(chain, act)
    assert (seen["status"], seen["holder"], seen["in_transit"]["to"]) == ("in_transit", "FR", "TH")
    assert seen["in_transit"]["transfer_id"] == transfer.id
    assert seen["events"][1]["location"]["state"] == "FR"
    _forbidden(chain, _receive(chain, "CN", act, transfer, X), "not_named_receiver")
    # Order is judged first: in transit nothing but a received may come, from anyone.
    assert _refused(chain, _custody(chain, "CN", act, "examined"))[1] == "custody_out_of_order"
    chain.refused(_custody(chain, "TH", act, "examined"), "custody_out_of_order")
    assert _refused(chain, _receive(chain, "TH", act, collected, X)) == (
        422,
        "custody_wrong_transfer",
        "record.refs[1]",
    )
    chain.commit(_receive(chain, "TH", act, transfer, X))
    seen = _chain_of(chain, act)
    assert (seen["status"], seen["holder"], seen["integrity"]) == ("received", "TH", "intact")
    assert "in_transit" not in seen
    chain.commit(_custody(chain, "TH", act, "examined"))
    _forbidden(chain, _custody(chain, "FR", act, "destroyed"), "not_custody_holder")


def test_on_a_chain_a_mismatch_is_recorded_and_flagged() -> None:
    chain = Chain(need_to_know_from_height=None)
    act = _seizure(chain, "FR")
    chain.commit(act)
    chain.commit(_custody(chain, "FR", act, "collected"))
    transfer = _custody(chain, "FR", act, "transferred", to=_to("TH"))
    chain.commit(transfer)
    chain.commit(_receive(chain, "TH", act, transfer, "ee" * 32))
    seen = _chain_of(chain, act)
    assert (seen["status"], seen["holder"], seen["integrity"]) == (
        "hash_mismatch",
        "TH",
        "hash_mismatch",
    )
    assert seen["events"][-1]["hash_check"] == "mismatch"
    chain.refused(_custody(chain, "TH", act, "examined"), "custody_out_of_order")
    chain.commit(_custody(chain, "TH", act, "returned"))
    assert _chain_of(chain, act)["integrity"] == "hash_mismatch"


@pytest.mark.parametrize("action", FIRST_ACTIONS)
def test_on_a_chain_no_other_state_opens_a_chain(action: str) -> None:
    chain = Chain(need_to_know_from_height=None)
    act = _seizure(chain, "FR")
    chain.commit(act)
    _forbidden(chain, _custody(chain, "CN", act, action), "not_custody_holder")
    chain.commit(_custody(chain, "FR", act, action))


@pytest.mark.parametrize("action", LATER_ACTIONS)
def test_on_a_chain_no_other_state_acts_on_or_closes_a_chain(action: str) -> None:
    chain = Chain(need_to_know_from_height=None)
    act = _seizure(chain, "FR")
    chain.commit(act)
    chain.commit(_custody(chain, "FR", act, "collected"))
    _forbidden(chain, _custody(chain, "CN", act, action), "not_custody_holder")
    _forbidden(chain, _custody(chain, "CN", act, "transferred", to=_to("CN")), "not_custody_holder")
    chain.commit(_custody(chain, "FR", act, action))


def test_an_acquisition_derives_an_image_whose_chain_is_the_holders() -> None:
    chain = Chain(need_to_know_from_height=None)
    act = _seizure(chain, "FR")
    chain.commit(act)
    chain.commit(_custody(chain, "FR", act, "collected"))
    items = [{"sha256": X}, {"sha256": IMAGE, "derived_from": X, "role": "evidence"}]
    acquisition = _custody(chain, "FR", act, "acquired", evidence=items)
    chain.commit(acquisition)
    # The image's chain is introduced by the acquisition, so it is FR's: CN cannot open it.
    _forbidden(chain, _custody(chain, "CN", acquisition, "preserved", IMAGE), "not_custody_holder")
    chain.commit(_custody(chain, "FR", acquisition, "preserved", IMAGE))
    # An event that did not derive the hash is no introducing act.
    collected = _custody(chain, "FR", act, "examined")
    chain.commit(collected)
    chain.refused(_custody(chain, "FR", collected, "examined"), "ref_wrong_type")

    view = ChainView(chain.store, chain.app.load_envelope)
    original, image = evidence_view(view, X), evidence_view(view, IMAGE)
    assert original["derivatives"] == [
        {"sha256": IMAGE, "record_id": acquisition.id, "type": "custody_event", "role": "evidence"}
    ]
    assert image["derived_from"] == [
        {"sha256": X, "record_id": acquisition.id, "type": "custody_event", "role": "evidence"}
    ]
    # The acquisition belongs to the original's chain, not to the image's.
    assert [c["ref"] for c in image["custody_chains"]] == [acquisition.id]
    assert _chain_of(chain, acquisition, IMAGE)["introduced_by"] == "FR"
    assert _chain_of(chain, act)["events"][1]["derived"] == [IMAGE]


def test_under_version_2_a_transfer_takes_effect_at_once_and_the_chain_replays() -> None:
    chain = Chain(need_to_know_from_height=None, catalogue_v3_from_height=None)
    assert chain.app.catalogue_version() == 2
    act = _seizure(chain, "FR")
    chain.commit(act)
    chain.commit(_custody(chain, "FR", act, "collected"))
    chain.commit(_custody(chain, "FR", act, "transferred", to=_to("TH")))
    chain.commit(_custody(chain, "TH", act, "examined"))
    assert (_chain_of(chain, act)["status"], _chain_of(chain, act)["holder"]) == (
        "examined",
        "TH",
    )
    replay_app = Application(chain.genesis, Store.open_memory(), build_registry())
    for height in range(1, chain.app.height + 1):
        stored = chain.app.stored_block(height)
        assert stored is not None
        replay_app.validate_block(stored[0], now=None)
        replay_app.commit(*stored)
    assert replay_app.height == chain.app.height and replay_app.catalogue_version() == 2


def test_version_3_applies_from_the_voted_height_and_the_v2_chain_replays() -> None:
    chain = Chain(need_to_know_from_height=None, catalogue_v3_from_height=None)
    act = _seizure(chain, "FR")
    chain.commit(act)
    chain.commit(_custody(chain, "FR", act, "collected"))
    chain.commit(_custody(chain, "FR", act, "transferred", to=_to("TH")))  # v2: TH holds now
    early = _custody(chain, "TH", act, "examined")
    early3 = chain.env(
        "TH",
        chain.keys("TH").investigator,
        "custody_event",
        **{k: v for k, v in early.record.items() if k not in ("nonce", "signer")},
        location={"state": "TH", "place": "lab"},
        purpose=WHY,
    )
    assert _refused(chain, early3) == (422, "not_in_catalogue_version", "record.location")

    param = "catalogue_v3_from_height"
    target = chain.app.height + 10
    proposal = chain.admin("CN", "member_proposal", action="set_param", name=param, value=target)
    chain.commit(proposal)
    for voter in ("CN", "FR", "TH"):
        chain.commit(chain.admin(voter, "member_vote", proposal=proposal.id, vote="yes"))
    assert chain.app.state.param(param) == target
    while chain.app.height + 1 < target:
        chain.commit(_seizure(chain, "VN", "77" * 32))
    assert chain.app.catalogue_version() == 3
    # The v2-shaped event is refused now; TH's v3 transfer to CN is in transit.
    v2_shaped = _resign(
        chain, "TH", _custody(chain, "TH", act, "examined"), ("location", "purpose")
    )
    assert _refused(chain, v2_shaped) == (422, "invalid_act", "record.location")
    late = _custody(chain, "TH", act, "transferred", to=_to("CN"))
    assert "location" in late.record
    chain.commit(late)
    seen = _chain_of(chain, act)
    assert (seen["status"], seen["holder"], seen["in_transit"]["to"]) == ("in_transit", "TH", "CN")

    replay_app = Application(chain.genesis, Store.open_memory(), build_registry())
    for height in range(1, chain.app.height + 1):
        stored = chain.app.stored_block(height)
        assert stored is not None
        replay_app.validate_block(stored[0], now=None)
        replay_app.commit(*stored)
    assert replay_app.height == chain.app.height and replay_app.catalogue_version() == 3


@pytest.mark.parametrize(
    "params",
    [
        {"catalogue_v2_from_height": None, "catalogue_v3_from_height": 5},
        {"catalogue_v2_from_height": 9, "catalogue_v3_from_height": 5},
    ],
)
def test_a_genesis_cannot_start_version_3_before_version_2(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="catalogue_v3_from_height"):
        Chain(**params)
