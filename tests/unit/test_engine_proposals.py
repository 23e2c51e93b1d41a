"""The per-round proposal limit against a Byzantine proposer (finding B4).

R-lock (line 36) and R-decide (line 49) of Algorithm 1 (arXiv:1807.04938)
need PROPOSAL(h, r, v, *) itself, not only the 2f+1 votes for id(v). A
proposer that signs many values for one round must not be able to keep the
one the others vote for out of a replica's log.
"""

from __future__ import annotations

from consensus.messages import PRECOMMIT, Vote
from consensus.votelog import PROPOSALS_PER_ROUND_MAX
from tests.unit.consensus_fixtures import (
    A,
    block,
    lock_on,
    precommit,
    prevote,
    proposal,
    replica,
)

BE, CZ, DE = 1, 2, 3  # BE is proposer(1, 0) and Byzantine here
JUNK = tuple(block(f"junk{i}") for i in range(PROPOSALS_PER_ROUND_MAX))


def test_junk_proposals_first_do_not_keep_the_real_one_out() -> None:
    """B4: 4 junk proposals, then the real one that 2f+1 prevote: AT still locks and decides
    in round 0 (R-lock, R-decide)."""
    d = replica(valid={A: True, **dict.fromkeys(JUNK, False)})
    d.feed(*(proposal(0, junk) for junk in JUNK))
    d.feed(proposal(0, A))
    d.feed(*(prevote(i, 0, A) for i in (BE, CZ, DE)))
    assert d.replica.locked_value == A and d.replica.locked_round == 0
    assert [v.block_hash for v in d.own_votes(PRECOMMIT, 0)] == [A]
    d.feed(precommit(CZ, 0, A), precommit(DE, 0, A))
    assert d.replica.decision == A
    assert d.readies[-1].commits[0].round == 0


def test_a_proposal_a_quorum_backs_is_logged_beyond_the_limit() -> None:
    """B4: every kept junk proposal is named by BE's own precommits, so none can go; the real
    proposal, relayed again once 2f+1 prevote it, is logged all the same."""
    d = replica(valid={A: True, **dict.fromkeys(JUNK, False)})
    d.feed(*(proposal(0, junk) for junk in JUNK))
    d.feed(*(precommit(BE, 0, junk) for junk in JUNK))
    d.feed(proposal(0, A))  # no room yet, nothing backs it
    assert d.replica.log.proposal_for(0, A) is None
    d.feed(*(prevote(i, 0, A) for i in (BE, CZ, DE)))
    d.feed(proposal(0, A))  # relayed by CZ's rebroadcast
    assert d.replica.log.proposal_for(0, A) is not None
    assert d.replica.locked_value == A
    d.feed(precommit(CZ, 0, A), precommit(DE, 0, A))
    assert d.replica.decision == A


def test_proposals_of_a_round_stay_bounded() -> None:
    """Put a limit on everything: a proposer signing 50 values keeps at most the limit."""
    d = replica(valid={})
    d.feed(*(proposal(0, block(f"spam{i}")) for i in range(50)))
    assert len(d.replica.log.proposals_in(0)) == PROPOSALS_PER_ROUND_MAX
    asked = [h for r in d.readies for h in r.validate]  # each may cost a block validation
    assert len(asked) == 2 * PROPOSALS_PER_ROUND_MAX


def test_rebroadcast_relays_the_proposal_our_votes_name() -> None:
    """Gossip (section 2): a replica that could not log PROPOSAL(h, r, v) gets it again from
    the replicas that voted for v."""
    d = replica()
    lock_on(d, A)
    sent = d.take(d.replica.rebroadcast()).send
    assert proposal(0, A) in sent
    assert all(isinstance(m, Vote) for m in sent if m.signer == d.replica.me)
