"""The per-validator future-round window of the vote log (finding A3).

Algorithm 1 (arXiv:1807.04938, section 3, Lemma 5 / termination) promises a
decision after GST once a quorum of correct replicas can talk. The log keeps
at most ``FUTURE_ROUNDS_MAX`` rounds above the replica's round per validator;
it must keep each validator's *newest* rounds, or a replica whose windows were
filled before GST can refuse every honest message for ever.
"""

from __future__ import annotations

from consensus.messages import PRECOMMIT, PREVOTE, Proposal, Vote
from consensus.votelog import FUTURE_FULL, FUTURE_ROUNDS_MAX, VoteLog
from tests.unit.consensus_fixtures import KEYS, A, block, precommit, prevote, proposal, replica
from tests.unit.engine_schedule import Schedule

AT, BE, CZ, DE = range(4)
# Before GST, DE hears only AT's rounds 1-4, BE's 5-8 and CZ's 9-12: one sender per round.
SEEN_BY_DE = {AT: range(1, 5), BE: range(5, 9), CZ: range(9, 13)}
SIGNER_INDEX = {key.public_hex: i for i, key in enumerate(KEYS)}


def _pre_gst_then_perfect(
    sender: int, receiver: int, msg: Proposal | Vote, after_gst: bool
) -> bool:
    if after_gst:
        return True
    if isinstance(msg, Proposal) or sender == DE:
        return False  # proposals lost: rounds end on nil votes; DE is cut off
    if receiver == DE:  # whoever relays it: DE gets only these signers' rounds
        signer = SIGNER_INDEX[msg.signer]
        return signer in SEEN_BY_DE and msg.round in SEEN_BY_DE[signer]
    return True


def test_filled_windows_do_not_stop_termination_after_gst() -> None:
    """A3 (termination after GST): DE's windows are full of rounds with one sender each;
    after CZ crashes, AT, BE and DE (a quorum) must still decide."""
    s = Schedule(_pre_gst_then_perfect)
    s.run_until(lambda: min(s.replicas[i].round for i in (AT, BE, CZ)) >= 14, 120_000)
    assert min(s.replicas[i].round for i in (AT, BE, CZ)) >= 14
    assert s.replicas[DE].round == 0 and not s.decided
    s.crashed.add(CZ)
    s.gst_ms = s.now_ms
    s.run_until(lambda: {AT, BE, DE} <= s.decided.keys(), s.gst_ms + 120_000)
    assert {AT, BE, DE} <= s.decided.keys(), (
        f"no decision 120 s after GST; rounds {[r.round for r in s.replicas]}, DE refused "
        f"{s.replicas[DE].rejections[FUTURE_FULL]} messages for a full window"
    )
    assert len({value for _, value in s.decided.values()}) == 1
    assert max(ms for ms, _ in s.decided.values()) - s.gst_ms < 10_000


def _log_vote(log: VoteLog, i: int, round_: int, current_round: int) -> str:
    result, _ = log.add_vote(prevote(i, round_, None), current_round)
    return result


def test_window_keeps_each_validators_newest_rounds() -> None:
    """A3: a full window evicts the validator's lowest future round, never its newest."""
    log = VoteLog(1, quorum=3, skip=2)
    for round_ in range(1, 1 + FUTURE_ROUNDS_MAX + 6):
        _log_vote(log, 1, round_, current_round=0)
    kept = [r for r in range(1, 11) if log.total(r, PREVOTE)]
    assert kept == list(range(11 - FUTURE_ROUNDS_MAX, 11))
    assert _log_vote(log, 1, 2, current_round=0) == FUTURE_FULL  # older than all kept
    assert log.total(2, PREVOTE) == 0


def test_window_never_evicts_current_or_past_rounds() -> None:
    """A3 safety: votes at or below the replica's round stay, however far a validator runs."""
    log = VoteLog(1, quorum=3, skip=2)
    for round_ in range(3):
        log.add_vote(prevote(1, round_, A), current_round=2)
        log.add_vote(precommit(1, round_, A), current_round=2)
    for round_ in range(3, 200):
        log.add_vote(prevote(1, round_, None), current_round=2)
    for round_ in range(3):
        assert log.count(round_, PREVOTE, A) == 1 and log.count(round_, PRECOMMIT, A) == 1
    assert [r for r in range(3, 200) if log.total(r, PREVOTE)] == list(range(196, 200))


def test_eviction_forgets_skip_and_decide_counts_of_the_round() -> None:
    """R-skip (line 55) and R-decide (line 49) count only what is still logged."""
    log = VoteLog(1, quorum=3, skip=2)
    for i in (1, 2, 3):
        log.add_vote(precommit(i, 5, A), current_round=0)
    assert (5, A) in log.decide_candidates and log.highest_skip_round(0) == 5
    for round_ in range(6, 6 + FUTURE_ROUNDS_MAX):  # BE runs ahead: round 5 goes
        log.add_vote(prevote(1, round_, None), current_round=0)
    assert log.count(5, PRECOMMIT, A) == 2
    assert (5, A) not in log.decide_candidates
    assert log.highest_skip_round(0) == 5  # CZ and DE are still there


def test_window_eviction_drops_future_proposals_and_their_eligibility() -> None:
    """Memory stays bounded: a proposer running ahead keeps only its newest future rounds, and
    a value proposed only above our round does not let a conflicting vote count (the count
    of conflicting votes must be bounded by proposals that are never evicted)."""
    d = replica()
    log = d.replica.log
    rounds = (2, 6, 10, 14, 18)  # DE is proposer(1, r) for r = 2 mod 4
    d.feed(*(proposal(round_, A) for round_ in rounds))
    assert [r for r in rounds if log.proposal_for(r, A)] == list(rounds[-FUTURE_ROUNDS_MAX:])
    d.feed(prevote(CZ, 0, None), prevote(CZ, 0, A))
    assert log.count(0, PREVOTE, A) == 0 and log.count(0, PREVOTE, None) == 1


def test_a_proposer_running_ahead_costs_no_validation_until_its_round() -> None:
    """Put a limit on everything: future proposals churn through the window, so the node is
    asked valid(v) only for a round the replica reaches (or a value 2f+1 precommitted)."""
    d = replica(valid={})
    d.feed(*(proposal(r, block(f"ahead{r}")) for r in range(2, 400, 4)))  # DE's rounds
    assert [h for r in d.readies for h in r.validate] == []
    d.feed(*(prevote(i, 398, None) for i in (1, 2)))  # R-skip to 398
    assert d.replica.round == 398
    assert [h for r in d.readies for h in r.validate] == [block("ahead398")]
