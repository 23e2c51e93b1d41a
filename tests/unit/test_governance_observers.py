"""Issue 23 governance: admitting and removing observer nodes (docs/GOVERNANCE.md).

An ``add_observer`` proposal is voted like membership; once passed, the
observer's node key is admitted (peers serve its sync requests) and is a used
key for ever; ``remove_observer`` ends the admission. Neither changes the
validator set or any signing right. Each refusal is checked by status, code
and field, and the offline auditor's replay must agree with the node.
"""

from __future__ import annotations

from typing import Any

import pytest

from ledger.errors import RecordInvalid
from ledger.keys import SigningKey
from ledger.records import Envelope
from node import govshapes, govtypes
from tests.unit.test_governance import Chain
from tests.unit.test_governance_enc_params import _audit, _refusal, _vote

KEY = "cd" * 32


def _observer(
    chain: Chain, actor: str, action: str, state: str, key: str, **extra: Any
) -> Envelope:
    fields: dict[str, Any] = {"action": action, "state": state, "node_pubkey": key, **extra}
    if action == "add_observer":
        fields.setdefault("label", f"{state} court reader")
    return chain.admin(actor, "member_proposal", **fields)


def _pass(chain: Chain, proposal: Envelope) -> int:
    """Commit ``proposal`` and three yes votes of four members; the deciding height."""
    chain.commit(proposal)
    for voter in ("CN", "FR"):
        chain.commit(_vote(chain, voter, proposal.id))
    return chain.commit(_vote(chain, "TH", proposal.id))


@pytest.mark.parametrize(
    ("record", "code", "field"),
    [
        ({"action": "add_observer", "state": "CN", "label": "court"}, "bad_hex",
         "record.node_pubkey"),
        ({"action": "add_observer", "state": "CN", "node_pubkey": KEY}, "bad_type",
         "record.label"),
        ({"action": "add_observer", "state": "CN", "node_pubkey": KEY, "label": ""}, "bad_type",
         "record.label"),
        ({"action": "add_observer", "state": "CN", "node_pubkey": KEY, "label": "x" * 201},
         "bad_type", "record.label"),
        ({"action": "add_observer", "node_pubkey": KEY, "label": "court"}, "bad_state",
         "record.state"),
        ({"action": "remove_observer", "state": "CN", "node_pubkey": "CD" * 32}, "bad_hex",
         "record.node_pubkey"),
    ],
)  # fmt: skip
def test_observer_shapes_refuse_with_422_naming_the_field(
    record: dict[str, Any], code: str, field: str
) -> None:
    with pytest.raises(RecordInvalid) as info:
        govshapes.check_member_proposal(record)
    assert (info.value.status, info.value.code, info.value.field) == (422, code, field)


def test_the_subject_of_an_observer_proposal_is_its_state() -> None:
    record = {"action": "add_observer", "state": "CH", "node_pubkey": KEY, "label": "x"}
    govshapes.check_member_proposal(record)
    assert govtypes.proposal_subject(record) == "CH"


def test_an_observer_is_admitted_only_once_the_vote_passes_and_changes_no_set() -> None:
    chain = Chain()
    sets_before = dict(chain.app.state.validators_by_height)
    proposal = _observer(chain, "CN", "add_observer", "CN", KEY, label="CN auditors")
    chain.commit(proposal)
    chain.commit(_vote(chain, "CN", proposal.id))
    assert chain.app.state.observer(KEY) is None  # 1 of 4: not yet
    chain.commit(_vote(chain, "FR", proposal.id))
    decided = chain.commit(_vote(chain, "TH", proposal.id))
    state = chain.app.state
    info = state.observer(KEY)
    assert info is not None
    assert (info.state, info.label, info.since_height, info.record_id) == (
        "CN",
        "CN auditors",
        decided + 1,
        proposal.id,
    )
    assert state.observer_party_state(KEY) == "CN"  # a member's own observer: a party node
    row = state.proposals[proposal.id]
    assert (row.status, row.decided_at) == ("passed", decided)
    assert dict(state.validators_by_height) == sets_before and state.changes == ()
    assert state.key_in_use(KEY)
    replay = _audit(chain)
    assert replay.proposals[proposal.id].status == "passed" and replay.observers == {KEY: "CN"}


def test_a_foreign_observer_sees_headers_and_any_member_may_propose_it() -> None:
    chain = Chain()
    _pass(chain, _observer(chain, "FR", "add_observer", "CH", KEY))
    state = chain.app.state
    assert state.observer(KEY) is not None and state.observer_party_state(KEY) is None


def test_a_members_own_observer_is_proposed_by_that_member_only() -> None:
    chain = Chain()
    refused = _observer(chain, "FR", "add_observer", "CN", KEY)
    assert _refusal(chain, refused) == (403, "wrong_state", "record.state")


def test_an_observer_key_is_never_a_key_in_use() -> None:
    chain = Chain()
    members = [
        chain.keys("CN").node.public_hex,
        chain.keys("CN").admin.public_hex,
        chain.keys("FR").investigator.public_hex,
    ]
    for key in members:
        refused = _observer(chain, "CN", "add_observer", "CN", key)
        assert _refusal(chain, refused) == (409, "key_in_use", "record")
    _pass(chain, _observer(chain, "CN", "add_observer", "CN", KEY))
    again = _observer(chain, "CN", "add_observer", "CN", KEY)
    assert _refusal(chain, again) == (409, "key_in_use", "record")
    rekey = chain.admin("FR", "member_proposal", action="rotate_key", state="FR", node_pubkey=KEY)
    assert _refusal(chain, rekey) == (409, "key_in_use", "record")


def test_removal_ends_the_admission_and_the_key_stays_used() -> None:
    chain = Chain()
    _pass(chain, _observer(chain, "CN", "add_observer", "CN", KEY))
    wrong_state = _observer(chain, "CN", "remove_observer", "FR", KEY)
    assert _refusal(chain, wrong_state) == (422, "not_an_observer", "record.node_pubkey")
    removal = _observer(chain, "FR", "remove_observer", "CN", KEY)
    decided = _pass(chain, removal)
    state = chain.app.state
    assert state.observer(KEY) is None and state.observers[KEY].until_height == decided + 1
    assert state.key_in_use(KEY)
    twice = _observer(chain, "CN", "remove_observer", "CN", KEY)
    assert _refusal(chain, twice) == (422, "not_an_observer", "record.node_pubkey")
    replay = _audit(chain)
    assert replay.proposals[removal.id].status == "passed" and replay.observers == {}


def test_a_key_taken_while_the_vote_was_open_rejects_the_admission_on_both_replays() -> None:
    chain = Chain()
    key = SigningKey.generate().public_hex
    first = _observer(chain, "FR", "add_observer", "CH", key)
    chain.commit(first)
    # Another subject's admission of the same key passes first (checked at its own
    # ingress against a state where the key was still free).
    second = _observer(chain, "CN", "add_observer", "CN", key)
    _pass(chain, second)
    for voter in ("CN", "FR", "TH"):
        chain.commit(_vote(chain, voter, first.id))
    state = chain.app.state
    assert state.proposals[first.id].status == "rejected"
    assert state.observers[key].state == "CN"
    replay = _audit(chain)
    assert replay.proposals[first.id].status == "rejected"
    assert replay.observers == {key: "CN"}


def test_a_member_whose_node_key_an_observer_took_meanwhile_is_rejected_on_both_replays() -> None:
    chain = Chain()
    key = SigningKey.generate().public_hex
    admit = chain.admin(
        "CN",
        "member_proposal",
        action="add",
        state="BR",
        name="Brazil",
        node_pubkey=key,
        admin_pubkeys=[SigningKey.generate().public_hex],
        enc_pubkey="ef" * 32,
        p2p_url="http://br.p2p",
    )
    chain.commit(admit)
    _pass(chain, _observer(chain, "FR", "add_observer", "CH", key))  # passes first
    for voter in ("CN", "FR", "TH"):
        chain.commit(_vote(chain, voter, admit.id))
    state = chain.app.state
    assert state.proposals[admit.id].status == "rejected" and "BR" not in state.members
    replay = _audit(chain)
    assert replay.proposals[admit.id].status == "rejected"
    assert "BR" not in {seat.state for seat in replay.validators(state.height + 2)}
