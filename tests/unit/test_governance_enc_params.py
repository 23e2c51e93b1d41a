"""Issue 17 governance: X25519 key rotation and the need-to-know migration height.

``rotate_enc_key`` is decided at once by the member's own admin and never
reuses a key; ``set_param`` (``need_to_know_from_height``) applies only once
its vote passes, only for a height beyond the decision + 2, and never moves a
value already in force. Each refusal is checked by status, code and field,
and the offline auditor's replay must agree with the node on each outcome.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ledger.audit import gov as audit_gov
from ledger.errors import ClientError, RecordInvalid
from ledger.records import Envelope
from node import govshapes, govtypes, queries
from node.clock import utcnow
from node.genesis import OPTIONAL_PARAMS, ConsensusParams, Genesis, full_consensus
from tests.unit.test_governance import Chain

PARAM = "need_to_know_from_height"


def _new_enc() -> str:
    return X25519PrivateKey.generate().public_key().public_bytes_raw().hex()


def _refusal(chain: Chain, envelope: Envelope) -> tuple[int, str, str | None]:
    with pytest.raises(ClientError) as info:
        chain.app.check_record(envelope, utcnow())
    return info.value.status, info.value.code, info.value.field


def _rotate(chain: Chain, state: str, enc: str, signer_state: str | None = None) -> Envelope:
    return chain.admin(
        signer_state or state,
        "member_proposal",
        action="rotate_enc_key",
        state=state,
        enc_pubkey=enc,
    )


def _set(chain: Chain, actor: str, value: Any, /, **extra: Any) -> Envelope:
    fields = {"action": "set_param", "name": PARAM, "value": value, **extra}
    return chain.admin(actor, "member_proposal", **fields)


def _vote(chain: Chain, state: str, proposal: str, vote: str = "yes") -> Envelope:
    return chain.admin(state, "member_vote", proposal=proposal, vote=vote)


#: The legacy chains here predate need to know only: they start on the latest catalogue.
NEW_CATALOGUE = {"catalogue_v2_from_height": 1, "catalogue_v3_from_height": 1}


def _legacy() -> Chain:
    """A chain whose genesis predates the parameter (it is left out)."""
    chain = Chain(need_to_know_from_height=None)
    assert "need_to_know_from_height" not in chain.genesis.to_json()["consensus"]
    return chain


def _audit(chain: Chain) -> audit_gov.GovState:
    replay = audit_gov.GovState(chain.genesis.to_json())
    for height in range(1, chain.app.height + 1):
        stored = chain.app.stored_block(height)
        assert stored is not None
        records: list[tuple[str, Mapping[str, Any]]] = [
            (e.id, e.record) for e in stored[0].envelopes if e.type in audit_gov.REPLAYED_TYPES
        ]
        replay.apply_block(height, records)
    return replay


# --- shapes ---------------------------------------------------------------------------------

GOOD_ENC = "ab" * 32


@pytest.mark.parametrize(
    ("record", "code", "field"),
    [
        ({"action": "rotate_enc_key", "state": "CN"}, "bad_hex", "record.enc_pubkey"),
        (
            {"action": "rotate_enc_key", "state": "CN", "enc_pubkey": "AB" * 32},
            "bad_hex",
            "record.enc_pubkey",
        ),
        (
            {"action": "rotate_enc_key", "state": "CN", "enc_pubkey": "ab" * 31},
            "bad_hex",
            "record.enc_pubkey",
        ),
        ({"action": "rotate_enc_key", "enc_pubkey": GOOD_ENC}, "bad_state", "record.state"),
        ({"action": "set_param", "name": PARAM, "value": 9, "state": "CN"}, "unexpected_field",
         "record.state"),
        ({"action": "set_param", "name": "max_block_records", "value": 9}, "bad_param",
         "record.name"),
        ({"action": "set_param", "value": 9}, "bad_param", "record.name"),
        ({"action": "set_param", "name": PARAM}, "bad_type", "record.value"),
        ({"action": "set_param", "name": PARAM, "value": "9"}, "bad_type", "record.value"),
        ({"action": "set_param", "name": PARAM, "value": True}, "bad_type", "record.value"),
        ({"action": "set_param", "name": PARAM, "value": 0}, "bad_type", "record.value"),
        ({"action": "set_param", "name": PARAM, "value": 9.5}, "bad_type", "record.value"),
        ({"action": "set_param", "name": PARAM, "value": 2**53}, "bad_type", "record.value"),
        ({"action": "set_params", "name": PARAM, "value": 9}, "bad_action", "record.action"),
    ],
)  # fmt: skip
def test_record_shapes_refuse_with_422_naming_the_field(
    record: dict[str, Any], code: str, field: str
) -> None:
    with pytest.raises(RecordInvalid) as info:
        govshapes.check_member_proposal(record)
    assert (info.value.status, info.value.code, info.value.field) == (422, code, field)


@pytest.mark.parametrize(
    "record",
    [
        {"action": "rotate_enc_key", "state": "CN", "enc_pubkey": GOOD_ENC},
        {"action": "set_param", "name": PARAM, "value": 1},
        {"action": "set_param", "name": PARAM, "value": 2**53 - 1, "reason": "migration"},
    ],
)
def test_record_shapes_accept_the_documented_forms(record: dict[str, Any]) -> None:
    govshapes.check_member_proposal(record)


def test_a_bad_shape_is_refused_by_the_node_before_any_state_rule() -> None:
    chain = _legacy()
    refused = _set(chain, "CN", 10**6, state="CN")
    assert _refusal(chain, refused) == (422, "unexpected_field", "record.state")


def test_the_subject_of_a_parameter_is_the_parameter_not_a_state() -> None:
    assert govtypes.proposal_subject({"action": "set_param", "name": PARAM}) == f"param:{PARAM}"
    assert govtypes.proposal_subject({"action": "rotate_enc_key", "state": "VN"}) == "VN"


# --- rotate_enc_key -------------------------------------------------------------------------


def test_rotation_is_decided_at_once_and_applies_from_the_next_height() -> None:
    chain = Chain()
    old = chain.keys("VN").enc_public_hex
    new = _new_enc()
    sets_before = dict(chain.app.state.validators_by_height)
    proposal = _rotate(chain, "VN", new)
    height = chain.commit(proposal)
    state = chain.app.state
    assert state.members["VN"].enc_pubkey == new
    assert state.enc_pubkey_at("VN", height) == old
    assert state.enc_pubkey_at("VN", height + 1) == new
    assert state.enc_pubkey_at("VN", 1) == old
    assert state.enc_pubkey_at("CN", height + 1) == chain.keys("CN").enc_public_hex
    assert state.enc_pubkey_at("XX", height) is None
    [row] = [p for p in state.proposals.values() if p.id == proposal.id]
    assert (row.status, row.decided_at, row.effective_at) == ("passed", height, height + 1)
    assert dict(state.validators_by_height) == sets_before and state.changes == ()
    # The members view (GET /v1/members, what comity seal reads) serves the new key.
    vn = next(m for m in queries.members_view(state) if m["state"] == "VN")
    assert vn["enc_pubkey"] == new and "previous_enc_keys" not in vn
    # A second rotation keeps both former keys with the heights they served.
    newer = _new_enc()
    second = chain.commit(_rotate(chain, "VN", newer))
    assert chain.app.state.members["VN"].enc_pubkeys() == (old, new, newer)
    assert chain.app.state.enc_pubkey_at("VN", second) == new
    assert chain.app.state.enc_pubkey_at("VN", second + 1) == newer
    assert _audit(chain).proposals[proposal.id].status == "passed"


def test_rotation_refuses_another_state_and_every_key_ever_used() -> None:
    chain = Chain()
    old = chain.keys("VN").enc_public_hex
    chain.commit(_rotate(chain, "VN", _new_enc()))
    cases = [
        (_rotate(chain, "VN", _new_enc(), signer_state="CN"), (403, "wrong_state", "record.state")),
        (_rotate(chain, "VN", old), (409, "enc_key_reused", "record.enc_pubkey")),
        (
            _rotate(chain, "VN", chain.keys("FR").enc_public_hex),
            (409, "enc_key_reused", "record.enc_pubkey"),
        ),
        (
            _rotate(chain, "XX", _new_enc(), signer_state="CN"),
            (422, "not_a_member", "record.state"),
        ),
    ]
    for envelope, expected in cases:
        assert _refusal(chain, envelope) == expected
    admit = chain.admin(
        "CN",
        "member_proposal",
        action="add",
        state="BR",
        name="Brazil",
        node_pubkey="12" * 32,
        admin_pubkeys=["13" * 32],
        enc_pubkey=old,
        p2p_url="http://br.p2p",
    )
    assert _refusal(chain, admit) == (409, "enc_key_reused", "record.enc_pubkey")


def test_a_rotation_waits_while_a_proposal_about_the_state_is_open() -> None:
    chain = Chain()
    chain.commit(chain.admin("CN", "member_proposal", action="remove", state="VN"))
    refused = _rotate(chain, "VN", _new_enc())
    assert _refusal(chain, refused) == (409, "proposal_open", "record.state")


# --- set_param ------------------------------------------------------------------------------


def test_a_new_chain_starts_under_need_to_know_and_an_old_one_does_not() -> None:
    assert full_consensus()[PARAM] == 1
    assert PARAM not in full_consensus({PARAM: None})
    new = Chain()
    assert new.app.state.need_to_know_active(1)
    assert not _legacy().app.state.need_to_know_active(10**9)
    document = new.genesis.to_json()
    with pytest.raises(ValueError, match=PARAM):
        Genesis.model_validate({**document, "consensus": {**document["consensus"], PARAM: None}})
    with pytest.raises(ValueError, match=PARAM):
        Genesis.model_validate({**document, "consensus": {**document["consensus"], PARAM: 0}})


def test_the_parameter_applies_only_once_the_vote_passes() -> None:
    chain = _legacy()
    target = chain.app.height + 50
    proposal = _set(chain, "CN", target, reason="move to need to know")
    chain.commit(proposal)
    for voter in ("CN", "FR"):  # 2 of 4: not more than 2/3 yet
        chain.commit(_vote(chain, voter, proposal.id))
        assert chain.app.state.need_to_know_from_height() is None
        assert chain.app.state.proposals[proposal.id].status == "open"
    decided = chain.commit(_vote(chain, "TH", proposal.id))
    state = chain.app.state
    passed = state.proposals[proposal.id]
    assert (passed.status, passed.decided_at, passed.subject) == (
        "passed",
        decided,
        f"param:{PARAM}",
    )
    assert state.need_to_know_from_height() == target
    assert not state.need_to_know_active(target - 1)
    assert state.need_to_know_active(target) and state.need_to_know_active(target + 1)
    [change] = state.param_changes
    assert (change.name, change.value, change.decided_at) == (PARAM, target, decided)
    assert change.record_ids[0] == proposal.id and state.changes == ()
    replay = _audit(chain)
    assert replay.params == {PARAM: target, **NEW_CATALOGUE}
    assert replay.proposals[proposal.id].status == "passed"


def test_a_rejected_vote_sets_nothing() -> None:
    chain = _legacy()
    proposal = _set(chain, "CN", chain.app.height + 50)
    chain.commit(proposal)
    chain.commit(_vote(chain, "FR", proposal.id, "no"))
    chain.commit(_vote(chain, "TH", proposal.id, "no"))
    assert chain.app.state.proposals[proposal.id].status == "rejected"
    assert chain.app.state.need_to_know_from_height() is None
    assert _audit(chain).params == NEW_CATALOGUE


def test_a_height_too_early_is_refused_at_the_proposal() -> None:
    chain = _legacy()
    # Committed in block h+1, decided in h+2 at the earliest: the value must exceed h+4.
    earliest = chain.app.height + 5
    refused = _set(chain, "CN", earliest - 1)
    assert _refusal(chain, refused) == (422, "height_too_early", "record.value")
    chain.app.check_record(_set(chain, "CN", earliest), utcnow())


def test_a_vote_that_passes_too_late_for_its_height_rejects_the_proposal() -> None:
    chain = _legacy()
    target = chain.app.height + 5
    proposal = _set(chain, "CN", target)
    chain.commit(proposal)
    chain.commit(_vote(chain, "CN", proposal.id))
    chain.commit(_vote(chain, "FR", proposal.id))
    decided = chain.commit(_vote(chain, "TH", proposal.id))
    assert decided + 2 >= target
    state = chain.app.state
    assert state.proposals[proposal.id].status == "rejected"
    assert state.need_to_know_from_height() is None and state.param_changes == ()
    replay = _audit(chain)
    assert replay.params == NEW_CATALOGUE and replay.proposals[proposal.id].status == "rejected"


def test_a_value_in_force_is_never_moved_and_a_future_one_may_be() -> None:
    new = Chain()
    assert _refusal(new, _set(new, "CN", 10**6)) == (409, "param_in_force", "record.name")
    chain = _legacy()
    first = _set(chain, "CN", chain.app.height + 100)
    chain.commit(first)
    # One open proposal per parameter.
    assert _refusal(chain, _set(chain, "FR", 10**6)) == (409, "proposal_open", "record.name")
    for voter in ("CN", "FR", "TH"):
        chain.commit(_vote(chain, voter, first.id))
    later = chain.app.height + 200
    second = _set(chain, "FR", later)
    chain.commit(second)
    for voter in ("CN", "FR", "TH"):
        chain.commit(_vote(chain, voter, second.id))
    assert chain.app.state.need_to_know_from_height() == later
    assert _audit(chain).params == {PARAM: later, **NEW_CATALOGUE}


def test_the_auditor_names_the_same_actions_and_parameters_as_the_node() -> None:
    assert audit_gov.SET_ACTIONS == govtypes.SET_ACTIONS
    assert audit_gov.SELF_ACTIONS == govtypes.SELF_ACTIONS
    assert audit_gov.PARAMS == govtypes.PARAMS
    assert set(govtypes.PARAMS) <= set(ConsensusParams.model_fields) & OPTIONAL_PARAMS
