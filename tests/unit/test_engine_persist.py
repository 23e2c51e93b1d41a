"""Persist before send survives a handler that fails after signing (finding B3).

docs/CONSENSUS.md "Persist before send": every message a replica sends must be
in a ``Ready.persist`` the node stored no later than the send, or a crash
could let the restarted replica sign a different vote for the same slot.
"""

from __future__ import annotations

import pytest

from consensus.messages import PREVOTE, Proposal, Vote
from consensus.state import Ready
from consensus.votelog import VoteLog
from ledger.errors import InvariantViolation
from tests.unit.consensus_fixtures import Driver, replica


def _own_sent_unpersisted(d: Driver) -> list[Proposal | Vote]:
    """Own messages a Ready sent that neither it nor an earlier Ready asked to persist."""
    persisted: set[Proposal | Vote] = set()
    bad: list[Proposal | Vote] = []
    for ready in d.readies:
        if ready.persist is not None:
            persisted = {*ready.persist.votes, *ready.persist.proposals}
        bad.extend(m for m in ready.send if m.signer == d.replica.me and m not in persisted)
    return bad


def _fail_after_signing(d: Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the next call that signs a vote raise right after ``_sign_vote`` signed it."""
    log = d.replica.log

    def broken(v: Vote, current_round: int) -> tuple[str, None]:
        raise InvariantViolation("injected: failure after signing")

    monkeypatch.setattr(log, "add_vote", broken)
    with pytest.raises(InvariantViolation):
        d.fire("propose", 0)  # OnTimeoutPropose signs PREVOTE nil, then fails
    monkeypatch.setattr(log, "add_vote", VoteLog.add_vote.__get__(log))


def test_rebroadcast_never_sends_a_vote_signed_in_a_failed_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """B3: the vote signed in a call that raised reaches the node's store before any send."""
    d = replica()
    _fail_after_signing(d, monkeypatch)
    assert (0, PREVOTE) in d.replica.own_votes  # signed, but no Ready carried it
    ready = d.take(d.replica.rebroadcast())
    assert d.replica.own_votes[(0, PREVOTE)] in ready.send
    assert ready.persist is not None
    assert d.replica.own_votes[(0, PREVOTE)] in ready.persist.votes
    assert _own_sent_unpersisted(d) == []


def test_any_later_call_persists_what_a_failed_call_signed(monkeypatch: pytest.MonkeyPatch) -> None:
    """B3: the persist is worked out against what was last handed to the node, not per call."""
    d = replica()
    _fail_after_signing(d, monkeypatch)
    ready: Ready = d.take(d.replica.on_validated("00" * 32, True))  # changes nothing itself
    assert ready.persist is not None and ready.persist.votes
    assert d.take(d.replica.on_validated("11" * 32, True)).persist is None  # nothing new
