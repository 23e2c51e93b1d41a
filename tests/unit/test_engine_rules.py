"""Algorithm 1 of arXiv:1807.04938, rule by rule (names from docs/CONSENSUS.md "Rules").

n = 4, f = 1, 2f+1 = 3, f+1 = 2. The replica under test is AT (index 0).
"""

from __future__ import annotations

import pytest

from consensus.engine import Replica
from consensus.messages import PRECOMMIT, PREVOTE, Proposal, Vote, is_equivocation
from consensus.signing import Ed25519Verifier
from consensus.state import PersistedState, Step, Timeout
from ledger.block import CommitCertificate, CommitSignature, verify_certificate
from tests.unit.consensus_fixtures import (
    CHAIN,
    KEYS,
    OUTSIDER,
    PARAMS,
    VALIDATORS,
    A,
    B,
    lock_on,
    next_round_by_nil_precommits,
    precommit,
    prevote,
    proposal,
    replica,
    vote,
)


def test_proposer_rotation() -> None:
    """StartRound / docs/DESIGN.md: proposer(h, r) = sorted by state code, index (h + r) mod n."""
    d = replica()
    r = d.replica
    shuffled = (VALIDATORS[2], VALIDATORS[0], VALIDATORS[3], VALIDATORS[1])
    r2 = Replica(CHAIN, r._signer, Ed25519Verifier(), PARAMS)
    r2.enter_height(1, shuffled)
    for rnd, idx in [(0, 1), (1, 2), (2, 3), (3, 0), (4, 1)]:
        assert r.proposer(rnd) == r2.proposer(rnd) == KEYS[idx].public_hex


def test_start_round_schedules_propose_timeout() -> None:
    """StartRound (line 21): not proposer -> schedule OnTimeoutPropose(h, 0) after timeoutPropose(0)."""
    d = replica()
    assert d.timeouts() == [Timeout("propose", 1, 0, 300)]
    assert d.readies[0].need_proposal is None
    assert d.readies[0].persist is not None  # new height is persisted


def test_proposer_asks_node_then_signs_new_proposal() -> None:
    """StartRound (lines 14-19): proposer with validValue nil gets a new block: PROPOSAL(h, r, v, -1)."""
    d = replica(height=4)  # (4 + 0) mod 4 = AT
    assert d.readies[0].need_proposal == (4, 0)
    ready = d.take(d.replica.propose(4, 0, A))
    assert ready.persist is not None and ready.persist.proposals[0].block_hash == A
    (p,) = [m for m in ready.send if isinstance(m, Proposal)]
    assert (p.height, p.round, p.block_hash, p.valid_round) == (4, 0, A, -1)
    assert d.own_votes(PREVOTE, 0)[0].block_hash == A  # own proposal feeds R-propose-new
    assert d.take(d.replica.propose(4, 0, B)).send == ()  # never a second proposal for (h, r)
    assert d.replica.rejections["stale_propose"] == 1


def test_r_propose_new_prevotes_valid_value() -> None:
    """R-propose-new (line 22-24): valid(v), lockedRound = -1 -> PREVOTE(h, r, id(v)); step prevote."""
    d = replica(valid={})
    d.feed(proposal(0, A))
    assert d.readies[-1].validate == (A,)
    assert d.own_votes(PREVOTE, 0) == []  # waits for the node's valid(v)
    d.take(d.replica.on_validated(A, True))
    assert [v.block_hash for v in d.own_votes(PREVOTE, 0)] == [A]
    assert d.replica.step == Step.PREVOTE


def test_r_propose_new_invalid_prevotes_nil() -> None:
    """R-propose-new (line 26): not valid(v) -> PREVOTE nil."""
    d = replica(valid={A: False})
    d.feed(proposal(0, A))
    assert [v.block_hash for v in d.own_votes(PREVOTE, 0)] == [None]


def test_r_propose_new_locked_on_other_value_prevotes_nil() -> None:
    """R-propose-new (line 23): lockedRound != -1 and lockedValue != v -> PREVOTE nil."""
    d = replica()
    lock_on(d, A)
    assert (d.replica.locked_value, d.replica.locked_round) == (A, 0)
    next_round_by_nil_precommits(d, 0)
    d.feed(proposal(1, B))
    assert [v.block_hash for v in d.own_votes(PREVOTE, 1)] == [None]


def test_r_propose_new_locked_on_same_value_prevotes_it() -> None:
    """R-propose-new (line 23): lockedValue = v -> PREVOTE id(v)."""
    d = replica()
    lock_on(d, A)
    next_round_by_nil_precommits(d, 0)
    d.feed(proposal(1, A))
    assert [v.block_hash for v in d.own_votes(PREVOTE, 1)] == [A]


def test_r_propose_valid_round_unlocks_for_newer_polka() -> None:
    """R-propose-valid-round (line 28-30): 2f+1 PREVOTE(vr, v), lockedRound <= vr -> prevote v."""
    d = replica()
    lock_on(d, A)  # locked A in round 0
    next_round_by_nil_precommits(d, 0)
    d.fire("propose", 1)  # round 1: no proposal seen, prevote nil
    d.feed(*(prevote(i, 1, B) for i in (1, 2, 3)))  # polka for B in round 1
    d.fire("prevote", 1)
    next_round_by_nil_precommits(d, 1)
    d.feed(proposal(2, B, valid_round=1))
    assert [v.block_hash for v in d.own_votes(PREVOTE, 2)] == [B]
    assert d.replica.locked_value == A  # the lock itself only moves in R-lock


def test_r_propose_valid_round_locked_later_prevotes_nil() -> None:
    """R-propose-valid-round (line 32): lockedRound > vr and lockedValue != v -> prevote nil."""
    d = replica()
    d.feed(*(prevote(i, 0, B) for i in (1, 2, 3)))  # polka for B in round 0, proposal unseen
    d.fire("propose", 0)
    d.fire("prevote", 0)
    next_round_by_nil_precommits(d, 0)
    lock_on(d, A, round_=1)  # locked A in round 1
    assert d.replica.locked_round == 1
    next_round_by_nil_precommits(d, 1)
    d.feed(proposal(2, B, valid_round=0))
    assert [v.block_hash for v in d.own_votes(PREVOTE, 2)] == [None]


def test_r_propose_valid_round_waits_for_polka() -> None:
    """R-propose-valid-round (line 28): without 2f+1 PREVOTE(h, vr, id(v)) no rule fires in propose."""
    d = replica()
    next_round_by_nil_precommits(d, 0)
    d.feed(proposal(1, B, valid_round=0), prevote(1, 0, B), prevote(2, 0, B))
    assert d.own_votes(PREVOTE, 1) == []
    d.feed(prevote(3, 0, B))
    assert [v.block_hash for v in d.own_votes(PREVOTE, 1)] == [B]


def test_r_prevote_any_schedules_once() -> None:
    """R-prevote-any (line 34): 2f+1 PREVOTE(h, r, *) in step prevote -> timeoutPrevote, first time only."""
    d = replica()
    d.fire("propose", 0)
    d.feed(prevote(1, 0, A), prevote(2, 0, B))
    assert [t for t in d.timeouts() if t.kind == "prevote"] == [Timeout("prevote", 1, 0, 200)]
    d.feed(prevote(3, 0, None))
    assert len([t for t in d.timeouts() if t.kind == "prevote"]) == 1


def test_r_lock_precommits_and_locks() -> None:
    """R-lock (line 36-43): proposal + 2f+1 PREVOTE(id(v)) + valid, step prevote -> lock, precommit."""
    d = replica()
    lock_on(d, A)
    r = d.replica
    assert [v.block_hash for v in d.own_votes(PRECOMMIT, 0)] == [A]
    assert (r.locked_value, r.locked_round, r.valid_value, r.valid_round) == (A, 0, A, 0)
    assert r.step == Step.PRECOMMIT
    persist = d.last_persist()
    assert persist is not None and (persist.locked_value, persist.locked_round) == (A, 0)


def test_r_lock_in_step_precommit_only_updates_valid() -> None:
    """R-lock (line 42-43): step already precommit -> no lock, no precommit; validValue/validRound set."""
    d2 = replica()
    d2.fire("propose", 0)
    d2.feed(prevote(1, 0, A), prevote(2, 0, A))
    d2.fire("prevote", 0)
    d2.feed(prevote(3, 0, A), proposal(0, A))  # now 3 prevotes for A, step precommit
    r = d2.replica
    assert [v.block_hash for v in d2.own_votes(PRECOMMIT, 0)] == [None]
    assert (r.locked_value, r.locked_round) == (None, -1)
    assert (r.valid_value, r.valid_round) == (A, 0)


def test_r_lock_requires_valid() -> None:
    """R-lock (line 36): valid(v) is part of the condition."""
    d = replica(valid={A: False})
    d.feed(proposal(0, A), *(prevote(i, 0, A) for i in (1, 2, 3)))
    assert d.replica.locked_value is None
    assert d.own_votes(PRECOMMIT, 0) == []


def test_r_prevote_nil_precommits_nil() -> None:
    """R-prevote-nil (line 44-46): 2f+1 PREVOTE(h, r, nil) in step prevote -> PRECOMMIT nil."""
    d = replica()
    d.fire("propose", 0)
    d.feed(prevote(1, 0, None), prevote(2, 0, None))
    assert [v.block_hash for v in d.own_votes(PRECOMMIT, 0)] == [None]
    assert d.replica.step == Step.PRECOMMIT


def test_r_precommit_any_schedules_once() -> None:
    """R-precommit-any (line 47): 2f+1 PRECOMMIT(h, r, *) -> timeoutPrecommit, first time only."""
    d = replica()
    d.feed(precommit(1, 0, A), precommit(2, 0, None), precommit(3, 0, B))
    assert [t for t in d.timeouts() if t.kind == "precommit"] == [Timeout("precommit", 1, 0, 200)]
    d.feed(precommit(0, 0, None))  # own key replayed from the wire: duplicate slot, no new timer
    assert len([t for t in d.timeouts() if t.kind == "precommit"]) == 1


def test_r_decide_in_earlier_round_with_valid_certificate() -> None:
    """R-decide (line 49): 2f+1 PRECOMMIT(h, r, id(v)) for a round r other than round_p -> commit."""
    d = replica()
    d.feed(*(prevote(i, 5, None) for i in (1, 2)))  # R-skip to round 5
    assert d.replica.round == 5
    d.feed(proposal(0, A), *(precommit(i, 0, A) for i in (1, 2, 3)))
    (commit,) = [c for r in d.readies for c in r.commits]
    assert (commit.height, commit.round, commit.block_hash) == (1, 0, A)
    verify_certificate(commit.certificate, CHAIN, VALIDATORS, A, 1)
    assert d.replica.decision == A


def test_r_decide_requires_proposal_and_valid() -> None:
    """R-decide (line 49-50): needs PROPOSAL(h, r, v, *) from proposer(h, r) and valid(v)."""
    d = replica(valid={A: False})
    d.feed(*(precommit(i, 0, A) for i in (1, 2, 3)))
    assert not [c for r in d.readies for c in r.commits]
    d.feed(proposal(0, A))
    assert not [c for r in d.readies for c in r.commits]


def test_r_skip_needs_f_plus_one() -> None:
    """R-skip (line 55): f+1 messages of any type for round r > round_p -> StartRound(r)."""
    d = replica()
    d.feed(precommit(1, 3, None))
    assert d.replica.round == 0
    d.feed(prevote(2, 3, B))
    assert d.replica.round == 3 and d.replica.step == Step.PROPOSE
    assert d.timeouts()[-1] == Timeout("propose", 1, 3, 300 + 3 * 100)


@pytest.mark.parametrize(
    ("kind", "round_", "delay_ms"),
    [("propose", 0, 300), ("propose", 4, 700), ("prevote", 2, 300), ("precommit", 3, 350)],
)
def test_timeouts_grow_with_round(kind: str, round_: int, delay_ms: int) -> None:
    """Timeouts: timeoutX(r) = timeoutX_initial + r * timeoutX_delta."""
    assert PARAMS.delay_ms(kind, round_) == delay_ms


def test_on_timeout_propose_prevotes_nil() -> None:
    """OnTimeoutPropose (line 57): h, round, step propose -> PREVOTE nil."""
    d = replica()
    d.fire("propose", 0)
    assert [v.block_hash for v in d.own_votes(PREVOTE, 0)] == [None]


def test_on_timeout_prevote_precommits_nil() -> None:
    """OnTimeoutPrevote (line 61): h, round, step prevote -> PRECOMMIT nil."""
    d = replica()
    d.fire("propose", 0)
    d.fire("prevote", 0)
    assert [v.block_hash for v in d.own_votes(PRECOMMIT, 0)] == [None]


def test_on_timeout_precommit_starts_next_round() -> None:
    """OnTimeoutPrecommit (line 65): h, round -> StartRound(round + 1)."""
    d = replica()
    d.fire("precommit", 0)
    assert d.replica.round == 1 and d.replica.step == Step.PROPOSE


@pytest.mark.parametrize(
    ("kind", "height", "round_"),
    [
        ("propose", 1, 1),
        ("propose", 2, 0),
        ("prevote", 1, 0),
        ("precommit", 1, 1),
        ("precommit", 0, 0),
        ("bogus", 1, 0),
    ],
)
def test_stale_timeouts_ignored(kind: str, height: int, round_: int) -> None:
    """Timeouts: each acts only if h = h_p, r = round_p (and the step) still hold."""
    d = replica()
    ready = d.fire(kind, round_, height)
    assert ready.send == () and ready.persist is None
    assert d.replica.rejections["stale_timeout"] == 1
    assert (d.replica.round, d.replica.step) == (0, Step.PROPOSE)


def test_equivocation_reported_and_first_vote_counted() -> None:
    """Practical points, "Equivocation": report the pair, keep the first vote for counting."""
    d = replica()
    d.fire("propose", 0)  # AT prevotes nil
    d.feed(prevote(1, 0, A), prevote(1, 0, B), prevote(2, 0, B))
    (ev,) = [e for r in d.readies for e in r.evidence]
    assert isinstance(ev.first, Vote) and ev.first.block_hash == A
    assert is_equivocation(ev, CHAIN, Ed25519Verifier())
    assert d.replica.log.count(0, PREVOTE, B) == 1  # BE's second vote not counted
    d.feed(prevote(1, 0, None))  # same slot again: no second evidence
    assert len([e for r in d.readies for e in r.evidence]) == 1


def test_non_validator_rejected() -> None:
    """Model: only the n validators' messages count (2f+1 of distinct validators)."""
    d = replica()
    d.fire("propose", 0)
    d.feed(vote(0, PREVOTE, 1, 0, None, key=OUTSIDER), prevote(1, 0, None))
    assert d.replica.rejections["not_validator"] == 1
    assert d.replica.step == Step.PREVOTE  # 2 nil prevotes: no R-prevote-nil


def test_bad_signature_and_wrong_proposer_rejected() -> None:
    """Model/PROPOSAL: messages are signed; a PROPOSAL counts only from proposer(h, r)."""
    d = replica()
    good = prevote(1, 0, A)
    forged = Vote(good.type, 1, 0, B, good.validator, good.signature)
    d.feed(forged, proposal(0, A, i=2))
    assert d.replica.rejections["bad_signature"] == 1
    assert d.replica.rejections["wrong_proposer"] == 1
    assert d.replica.log.total(0, PREVOTE) == 0 and d.replica.log.proposals_in(0) == ()


def test_next_height_buffered_far_height_hints_behind() -> None:
    """Practical points, "Messages for the future": buffer h+1, block-sync further ahead."""
    d = replica()
    d.feed(prevote(1, 0, None, height=2))
    d.feed(prevote(1, 0, None, height=7))
    assert d.replica.rejections["far_future_height"] == 1
    d.feed(prevote(2, 0, None, height=7))  # f+1 = 2 validators at height 7
    assert d.readies[-1].behind == 7
    d.feed(proposal(0, A), *(precommit(i, 0, A) for i in (1, 2, 3)))
    d.take(d.replica.enter_height(2, VALIDATORS))
    assert d.replica.height == 2
    assert d.replica.log.total(0, PREVOTE) == 1  # BE's buffered height-2 prevote replayed


def test_adopt_commit_decides_and_rejects_bad_certificate() -> None:
    """Practical points, "Replay": a block with a valid certificate for h_p is adopted."""
    d = replica()
    good = [precommit(i, 2, A) for i in (1, 2, 3)]
    cert = CommitCertificate(
        1, 2, A, tuple(CommitSignature(v.validator, v.signature) for v in good)
    )
    short = CommitCertificate(1, 2, A, cert.signatures[:2])
    assert d.take(d.replica.adopt_commit(short)).commits == ()
    assert d.replica.rejections["bad_certificate"] == 1
    (commit,) = d.take(d.replica.adopt_commit(cert)).commits
    assert commit.block_hash == A and d.replica.decision == A


def test_persist_before_send_covers_every_own_message() -> None:
    """Practical points, "Persist before send": every signed message is in persist of its Ready."""
    d = replica(height=4)
    d.take(d.replica.propose(4, 0, A))
    d.feed(*(prevote(i, 0, A, height=4) for i in (1, 2)))
    me = d.replica.me
    sent: list[Proposal | Vote] = []
    for ready in d.readies:
        own = [m for m in ready.send if m.signer == me]
        if own:
            assert ready.persist is not None
            assert set(own) <= set(ready.persist.votes) | set(ready.persist.proposals)
        sent += own
    # The loop above checks something: the replica did sign and send its proposal,
    # its prevote and (after 2f+1 prevotes) its precommit for A at (4, 0).
    assert sorted(
        (m.type if isinstance(m, Vote) else "proposal", m.height, m.round, m.block_hash)
        for m in sent
    ) == [("precommit", 4, 0, A), ("prevote", 4, 0, A), ("proposal", 4, 0, A)]


def test_restart_resends_and_never_double_signs() -> None:
    """Practical points, "Persist before send": after a crash re-send, never sign another vote."""
    d = replica()
    lock_on(d, A)
    state = d.last_persist()
    assert state is not None and state.step == Step.PRECOMMIT
    d2 = replica(restored=state)
    r = d2.replica
    assert (r.locked_value, r.locked_round, r.round, r.step) == (A, 0, 0, Step.PRECOMMIT)
    assert set(d2.readies[0].send) == set(state.votes)
    d2.fire("propose", 0)
    d2.fire("prevote", 0)
    d2.feed(*(prevote(i, 0, None) for i in (1, 2, 3)))
    assert {v.block_hash for v in d2.own_votes(PREVOTE, 0)} == {A}
    assert {v.block_hash for v in d2.own_votes(PRECOMMIT, 0)} == {A}


def test_restart_in_propose_step_with_signed_prevote_resends_it() -> None:
    """Never sign a different vote for (h, r, type): the slot is looked up before signing."""
    d = replica()
    d.feed(proposal(0, A))
    (pv,) = d.own_votes(PREVOTE, 0)
    state = PersistedState(1, 0, Step.PROPOSE, None, -1, None, -1, (pv,), ())
    d2 = replica(restored=state)
    d2.fire("propose", 0)  # would prevote nil on a fresh replica
    assert {v.block_hash for v in d2.own_votes(PREVOTE, 0)} == {A}
    assert d2.replica.rejections["refused_double_sign"] == 1


def test_restored_proposer_never_signs_second_proposal() -> None:
    """Persist before send: a proposer stores its proposal for (h, r); after restart it re-sends it."""
    d = replica(height=4)
    d.take(d.replica.propose(4, 0, A))
    persisted = [r.persist for r in d.readies if r.persist is not None and r.persist.proposals]
    state = PersistedState(4, 0, Step.PROPOSE, None, -1, None, -1, (), persisted[0].proposals)
    d2 = replica(height=4, restored=state)
    assert d2.readies[0].need_proposal is None
    (p,) = {m for m in d2.sent() if isinstance(m, Proposal)}
    assert p.block_hash == A
    assert d2.take(d2.replica.propose(4, 0, B)).send == ()
