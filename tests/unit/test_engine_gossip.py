"""Wire formats, persistence and the gossip the paper assumes (docs/CONSENSUS.md "Practical points").

The paper (arXiv:1807.04938, section 2) assumes that a message received by
one correct process is eventually received by every correct process;
``Replica.rebroadcast`` is how the engine provides the messages that matter.
"""

from __future__ import annotations

from typing import Any

import pytest

from consensus.messages import (
    PRECOMMIT,
    PREVOTE,
    Proposal,
    Vote,
    message_from_json,
)
from consensus.state import PersistedState
from ledger.errors import EncodingError
from tests.unit.consensus_fixtures import (
    A,
    B,
    lock_on,
    next_round_by_nil_precommits,
    precommit,
    prevote,
    proposal,
    replica,
)


def test_messages_round_trip_json() -> None:
    """Messages table: PROPOSAL(h, r, v, vr), PREVOTE/PRECOMMIT(h, r, id(v) | nil)."""
    for msg in (proposal(2, A, valid_round=1), prevote(1, 0, None), precommit(2, 3, B)):
        assert message_from_json(msg.to_json()) == msg


GOOD_VOTE: dict[str, Any] = {
    "kind": "vote",
    "type": "prevote",
    "height": 1,
    "round": 0,
    "block_hash": None,
    "validator": "ab" * 32,
    "signature": "cd" * 64,
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"height": True}, "vote.height"),  # bool is not an integer
        ({"height": 0}, "vote.height"),
        ({"round": -1}, "vote.round"),
        ({"type": "commit"}, "vote.type"),
        ({"block_hash": "AB" * 32}, "vote.block_hash"),  # uppercase hex
        ({"block_hash": "ab" * 31}, "vote.block_hash"),  # truncated
        ({"validator": "ab" * 33}, "vote.validator"),
        ({"signature": "cd" * 64 + "00"}, "vote.signature"),  # trailing garbage
        ({"extra": 1}, "vote"),
    ],
)
def test_vote_from_json_rejects_hostile_input(change: dict[str, Any], field: str) -> None:
    """Messages: strict reader; peer input outside the format is an EncodingError naming the field."""
    with pytest.raises(EncodingError) as info:
        Vote.from_json({**GOOD_VOTE, **change})
    assert info.value.field == field


@pytest.mark.parametrize("valid_round", [2, 3, -2])
def test_proposal_valid_round_must_be_below_round(valid_round: int) -> None:
    """PROPOSAL: vr = -1 or 0 <= vr < r (line 28 needs vr < round_p)."""
    good = proposal(2, A, valid_round=1).to_json()
    with pytest.raises(EncodingError):
        Proposal.from_json({**good, "valid_round": valid_round})


def test_persisted_state_round_trips() -> None:
    """Persist before send: the stored state reads back identical."""
    d = replica()
    lock_on(d, A)
    state = d.last_persist()
    assert state is not None and state.votes
    assert PersistedState.from_json(state.to_json()) == state
    with pytest.raises(EncodingError):
        PersistedState.from_json({**state.to_json(), "height": 2})  # votes of another height


def test_conflicting_vote_counts_for_a_proposed_value() -> None:
    """Counting: 2f+1 PREVOTE(h, r, id(v)) are distinct senders per value; evidence still reported."""
    d = replica()
    d.fire("propose", 0)  # AT prevotes nil
    d.feed(prevote(1, 0, B), proposal(0, A), prevote(1, 0, A), prevote(2, 0, A))
    assert len([e for r in d.readies for e in r.evidence]) == 1
    assert d.replica.log.count(0, PREVOTE, A) == 2  # BE's second vote is for a proposed value
    assert d.replica.log.total(0, PREVOTE) == 3  # but BE is one sender


def test_rebroadcast_resends_own_votes_of_current_round() -> None:
    """Gossip: a replica's own messages are re-sent until others have them."""
    d = replica()
    lock_on(d, A)
    sent = d.take(d.replica.rebroadcast()).send
    me = d.replica.me
    assert {(m.type, m.block_hash) for m in sent if isinstance(m, Vote) and m.signer == me} == {
        (PREVOTE, A),
        (PRECOMMIT, A),
    }


def test_rebroadcast_relays_round_justification() -> None:
    """R-precommit-any / R-skip for stragglers: relay the 2f+1 precommits that ended round r-1."""
    d = replica()
    next_round_by_nil_precommits(d, 0)
    sent = d.take(d.replica.rebroadcast()).send
    relayed = {
        m.validator for m in sent if isinstance(m, Vote) and m.round == 0 and m.type == PRECOMMIT
    }
    assert len(relayed) >= 3


def test_rebroadcast_relays_polka_of_valid_value() -> None:
    """R-propose-valid-round (line 28): others need PROPOSAL(vr) and 2f+1 PREVOTE(vr, id(v))."""
    d = replica()
    lock_on(d, A)
    next_round_by_nil_precommits(d, 0)
    sent = d.take(d.replica.rebroadcast()).send
    assert proposal(0, A) in sent
    assert {
        m.validator
        for m in sent
        if isinstance(m, Vote) and m.round == 0 and m.type == PREVOTE and m.block_hash == A
    } >= {prevote(i, 0, A).validator for i in (1, 2)}


def test_decided_replica_ignores_current_height() -> None:
    """R-decide: a committed height never restarts; late messages of it are ignored."""
    d = replica()
    d.feed(proposal(0, A), *(precommit(i, 0, A) for i in (1, 2, 3)))
    assert d.replica.decision == A
    ready = d.take(d.replica.on_message(prevote(3, 1, B)))
    assert ready.send == () and ready.commits == ()
    assert d.replica.rejections["old_height"] == 1
    assert d.fire("precommit", 0).send == ()
    assert d.replica.rejections["stale_timeout"] == 1 and d.replica.round == 0


def test_restart_keeps_the_polka_behind_the_lock() -> None:
    """Persist before send + R-propose-valid-round (line 28): the 2f+1 PREVOTE(vr, id(v)) behind
    validValue survive a crash, or a restarted locked replica could never accept its re-proposal."""
    d = replica()
    lock_on(d, A)
    state = d.last_persist()
    assert state is not None
    assert proposal(0, A) in state.valid_proof
    assert len({m.signer for m in state.valid_proof if isinstance(m, Vote)}) >= 3
    d2 = replica(restored=state)
    next_round_by_nil_precommits(d2, 0)
    d2.feed(proposal(1, A, valid_round=0))
    assert [v.block_hash for v in d2.own_votes(PREVOTE, 1)] == [A]
