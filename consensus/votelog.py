"""The message log of one height, across all rounds (docs/CONSENSUS.md "State").

Algorithm 1's rules are conditions over "2f+1 PREVOTE(h, r, id(v))" and the
like for *any* round r (R-decide, R-propose-valid-round look back; R-skip looks
ahead), so the log keeps every round of the height and maintains the counts
the rules ask for incrementally:

* per (round, type): each validator's votes by value and a tally per value
  (``None`` is nil). As in the paper, "2f+1 PREVOTE(h, r, id(v))" counts
  distinct validators that sent a prevote for id(v), so a duplicate never
  counts twice and a validator counts at most once per value and once in
  ``total``;
* per round: the distinct validators that sent anything (R-skip, f+1);
* the (round, value) pairs whose precommits reached a quorum (R-decide
  candidates) and the rounds that reached the skip threshold.

A second, different message from one key in one (round, kind) slot is an
equivocation, returned once per slot as evidence. The first vote always
counts. A conflicting vote counts only for a value that a logged proposal at
or below the replica's round carries: only proposed values can satisfy
R-lock, R-decide or R-propose-valid-round, and without it a replica that
first heard a Byzantine validator's vote for junk could never count the same
validator's vote in a polka relayed to it later -- a liveness failure the
simulator found (a lock formed with Byzantine help, unlockable by the
others). It cannot hurt safety: the paper lets Byzantine validators send
anything, the proofs count distinct senders per value.

Bounds. A validator may occupy at most ``FUTURE_ROUNDS_MAX`` rounds above
the replica's current round; when it sends a newer one, its lowest future
round is forgotten (``_room_for`` says why that is safe), so a Byzantine
validator cannot fill memory with far rounds and an honest one is never shut
out (finding A3). A round keeps at most ``PROPOSALS_PER_ROUND_MAX`` proposals
plus the two a quorum may back (``_make_room``, finding B4). Proposals at or
below the current round are evicted only when no vote names their value, and
only ``PROPOSALS_PER_ROUND_MAX`` times per round, so the proposals a round
ever logs, and the conflicting votes they admit, stay bounded.

The log checks no signatures and no membership: the engine does that first.
"""

from __future__ import annotations

from collections import Counter
from typing import Final

from consensus.messages import PRECOMMIT, PREVOTE, Equivocation, Proposal, Vote

FUTURE_ROUNDS_MAX: Final = 4
# A Byzantine proposer may sign many values for one round; keeping a few is
# enough for R-lock/R-decide on the one honest validators actually voted for.
PROPOSALS_PER_ROUND_MAX: Final = 4
# Beyond the limit, a proposal whose value a quorum voted for in its round is
# still logged (R-lock, R-decide need it). With at most f Byzantine validators
# at most one value per (round, type) reaches 2f+1, so this adds at most two.
PROPOSALS_BACKED_MAX: Final = PROPOSALS_PER_ROUND_MAX + 2

ADDED: Final = "added"
DUPLICATE: Final = "duplicate"
EQUIVOCATION: Final = "equivocation"
FUTURE_FULL: Final = "future_round_window_full"


class VoteLog:
    """Counts for one height. ``quorum`` is 2f+1, ``skip`` is f+1 (ledger.quorum)."""

    def __init__(self, height: int, quorum: int, skip: int) -> None:
        self.height = height
        self.quorum = quorum
        self.skip = skip
        self._proposals: dict[int, dict[str, Proposal]] = {}
        self._votes: dict[tuple[int, str], dict[str, dict[str | None, Vote]]] = {}
        # value -> lowest round of a logged proposal for it (conflicting votes, see above)
        self._proposed: dict[str, int] = {}
        # value -> logged votes naming it, any round or type (B4: which proposals matter)
        self._named: Counter[str | None] = Counter()
        self._tally: dict[tuple[int, str], Counter[str | None]] = {}
        self._senders: dict[int, set[str]] = {}
        self._rounds_of: dict[str, set[int]] = {}
        self._reported: set[tuple[str, int, str]] = set()
        self._replaced: dict[int, int] = {}  # round -> unvoted proposals forgotten
        self.decide_candidates: set[tuple[int, str]] = set()
        self.skip_rounds: set[int] = set()

    # -- adding ---------------------------------------------------------------

    def add_proposal(self, p: Proposal, current_round: int) -> tuple[str, Equivocation | None]:
        """Add PROPOSAL(h, r, v, vr); the caller checked p came from proposer(h, r)."""
        by_value = self._proposals.get(p.round, {})
        same = by_value.get(p.block_hash)
        if same is not None:
            return self._conflict(same, p, "proposal")
        if not self._room_for(p.proposer, p.round, current_round):
            return FUTURE_FULL, None
        evidence = None
        if by_value:
            _, evidence = self._conflict(next(iter(by_value.values())), p, "proposal")
            if len(by_value) >= PROPOSALS_PER_ROUND_MAX and not self._make_room(p):
                return EQUIVOCATION, evidence
        self._proposals.setdefault(p.round, {})[p.block_hash] = p
        self._proposed[p.block_hash] = min(p.round, self._proposed.get(p.block_hash, p.round))
        self._note_sender(p.proposer, p.round)
        return (EQUIVOCATION if evidence or len(by_value) > 1 else ADDED), evidence

    def add_vote(self, v: Vote, current_round: int) -> tuple[str, Equivocation | None]:
        key = (v.round, v.type)
        by_value = self._votes.get(key, {}).get(v.validator)
        evidence = None
        if by_value is not None:
            same = by_value.get(v.block_hash)
            if same is not None:
                return DUPLICATE, None
            first = next(iter(by_value.values()))
            _, evidence = self._conflict(first, v, v.type)
            if not self._counts_twice(v.block_hash, current_round):
                return EQUIVOCATION, evidence  # only the first vote counts
        elif not self._room_for(v.validator, v.round, current_round):
            return FUTURE_FULL, None
        self._votes.setdefault(key, {}).setdefault(v.validator, {})[v.block_hash] = v
        tally = self._tally.setdefault(key, Counter())
        tally[v.block_hash] += 1
        self._named[v.block_hash] += 1
        if v.type == PRECOMMIT and v.block_hash is not None and tally[v.block_hash] >= self.quorum:
            self.decide_candidates.add((v.round, v.block_hash))
        self._note_sender(v.validator, v.round)
        return (ADDED if evidence is None and by_value is None else EQUIVOCATION), evidence

    def _counts_twice(self, value: str | None, current_round: int) -> bool:
        """A conflicting vote counts for a value proposed at or below our round.

        Those proposals are never evicted (``_room_for``), so the conflicting
        votes a validator can place stay bounded by them; a proposal above our
        round may be evicted, and if it let votes in, a proposer running ahead
        could let a conflicting voter add votes without end. A vote refused
        here comes again by rebroadcast once our round reaches the proposal.
        """
        lowest = None if value is None else self._proposed.get(value)
        return lowest is not None and lowest <= current_round

    def _conflict(
        self, first: Proposal | Vote, second: Proposal | Vote, kind: str
    ) -> tuple[str, Equivocation | None]:
        if first == second:
            return DUPLICATE, None
        mark = (second.signer, second.round, kind)
        if mark in self._reported:
            return EQUIVOCATION, None  # one piece of evidence per slot is enough
        self._reported.add(mark)
        return EQUIVOCATION, Equivocation(first, second)

    def _note_sender(self, validator: str, round_: int) -> None:
        self._rounds_of.setdefault(validator, set()).add(round_)
        senders = self._senders.setdefault(round_, set())
        senders.add(validator)
        if len(senders) >= self.skip:
            self.skip_rounds.add(round_)

    # -- bounds: the future-round window (A3) and the proposals of a round (B4) -------

    def _room_for(self, validator: str, round_: int, current_round: int) -> bool:
        """May ``validator`` occupy ``round_``? A full window gives up its lowest round.

        An honest validator's rounds only grow, so its newest rounds are the
        useful ones: refusing them (rather than forgetting older ones) let a
        replica whose windows filled up before GST refuse every honest message
        after it (finding A3). A message older than everything kept is the
        least useful and is refused.

        Safety: only rounds *above* ``current_round`` are ever evicted. The
        replica has acted on none of them: every rule it fires reads the
        current round, or R-decide, which fires the moment its condition holds
        (and then nothing more happens at the height), or R-skip, which would
        have made that round the current one. Forgetting a message the replica
        never acted on is the same as receiving it later, which the paper's
        asynchrony before GST allows; the lock, the valid value and our own
        signed messages, which safety rests on, are kept by the engine, not
        here. Votes of the current round or below are never evicted.
        """
        rounds = self._rounds_of.get(validator, set())
        if round_ <= current_round or round_ in rounds:
            return True
        future = [r for r in rounds if r > current_round]
        if len(future) < FUTURE_ROUNDS_MAX:
            return True
        lowest = min(future)
        if round_ < lowest:
            return False
        self._evict_round(validator, lowest)
        return True

    def _evict_round(self, validator: str, round_: int) -> None:
        for p in [p for p in self._proposals.get(round_, {}).values() if p.signer == validator]:
            self._drop_proposal(p)
        for vote_type in (PREVOTE, PRECOMMIT):
            for v in list(self._votes.get((round_, vote_type), {}).get(validator, {}).values()):
                self._drop_vote(v)
        for kind in ("proposal", PREVOTE, PRECOMMIT):
            self._reported.discard((validator, round_, kind))
        if round_ not in self._proposals:
            self._replaced.pop(round_, None)

    def _make_room(self, p: Proposal) -> bool:
        """At ``PROPOSALS_PER_ROUND_MAX``: room for ``p`` if a proposal can go, or a quorum backs it.

        A proposal whose value no logged vote names (in any round) is
        forgotten first, at most ``PROPOSALS_PER_ROUND_MAX`` times per round:
        nothing has used it, and no conflicting vote was counted for it (B4).
        Otherwise ``p`` is logged only if 2f+1 prevotes or
        precommits of its round name its value: R-lock and R-decide need it.
        """
        by_value = self._proposals[p.round]
        idle = next((q for q in by_value.values() if not self._named[q.block_hash]), None)
        # A budget per round: each logged proposal may cost the node a validation.
        if idle is not None and self._replaced.get(p.round, 0) < PROPOSALS_PER_ROUND_MAX:
            self._replaced[p.round] = self._replaced.get(p.round, 0) + 1
            self._drop_proposal(idle)
            return True
        backed = any(
            self.count(p.round, t, p.block_hash) >= self.quorum for t in (PREVOTE, PRECOMMIT)
        )
        return backed and len(by_value) < PROPOSALS_BACKED_MAX

    def _drop_proposal(self, p: Proposal) -> None:
        by_value = self._proposals[p.round]
        del by_value[p.block_hash]
        if not by_value:
            del self._proposals[p.round]
        rounds = [r for r, logged in self._proposals.items() if p.block_hash in logged]
        if rounds:
            self._proposed[p.block_hash] = min(rounds)
        else:
            del self._proposed[p.block_hash]
        self._forget_sender(p.signer, p.round)

    def _drop_vote(self, v: Vote) -> None:
        key = (v.round, v.type)
        votes = self._votes[key]
        by_value = votes[v.validator]
        del by_value[v.block_hash]
        if not by_value:
            del votes[v.validator]
        if not votes:
            del self._votes[key]
        tally = self._tally[key]
        tally[v.block_hash] -= 1
        if tally[v.block_hash] < self.quorum and v.block_hash is not None:
            self.decide_candidates.discard((v.round, v.block_hash))
        if tally[v.block_hash] <= 0:
            del tally[v.block_hash]
        if not tally:
            del self._tally[key]
        self._named[v.block_hash] -= 1
        if not self._named[v.block_hash]:
            del self._named[v.block_hash]
        self._forget_sender(v.validator, v.round)

    def _forget_sender(self, validator: str, round_: int) -> None:
        """Drop ``validator`` from ``round_``'s senders if nothing of it is logged there."""
        if any(q.signer == validator for q in self._proposals.get(round_, {}).values()) or any(
            validator in self._votes.get((round_, t), {}) for t in (PREVOTE, PRECOMMIT)
        ):
            return
        self._rounds_of[validator].discard(round_)
        senders = self._senders[round_]
        senders.discard(validator)
        if not senders:
            del self._senders[round_]
        if len(senders) < self.skip:
            self.skip_rounds.discard(round_)

    # -- queries the rules ask ---------------------------------------------------

    def contains(self, msg: Proposal | Vote) -> bool:
        """True if this exact message (signature included) is already logged."""
        if isinstance(msg, Proposal):
            return self._proposals.get(msg.round, {}).get(msg.block_hash) == msg
        by_value = self._votes.get((msg.round, msg.type), {}).get(msg.validator, {})
        return by_value.get(msg.block_hash) == msg

    def proposals_in(self, round_: int) -> tuple[Proposal, ...]:
        """Proposals logged for ``round_``, in arrival order (more than one only if equivocated)."""
        return tuple(self._proposals.get(round_, {}).values())

    def proposal_for(self, round_: int, value: str) -> Proposal | None:
        return self._proposals.get(round_, {}).get(value)

    def count(self, round_: int, vote_type: str, value: str | None) -> int:
        """Distinct validators that sent ``vote_type`` for ``value`` (None = nil) in ``round_``."""
        tally = self._tally.get((round_, vote_type))
        return 0 if tally is None else tally.get(value, 0)

    def total(self, round_: int, vote_type: str) -> int:
        """Distinct validators that sent ``vote_type`` for any value in ``round_``."""
        votes = self._votes.get((round_, vote_type))
        return 0 if votes is None else len(votes)

    def votes_for(self, round_: int, vote_type: str, value: str | None) -> tuple[Vote, ...]:
        votes = self._votes.get((round_, vote_type), {})
        return tuple(by_value[value] for by_value in votes.values() if value in by_value)

    def votes_in(self, round_: int, vote_type: str) -> tuple[Vote, ...]:
        votes = self._votes.get((round_, vote_type), {})
        return tuple(v for by_value in votes.values() for v in by_value.values())

    def messages_in(self, round_: int) -> tuple[Proposal | Vote, ...]:
        return (
            *self.proposals_in(round_),
            *self.votes_in(round_, PREVOTE),
            *self.votes_in(round_, PRECOMMIT),
        )

    def senders(self, round_: int) -> int:
        return len(self._senders.get(round_, ()))

    def highest_skip_round(self, above: int) -> int | None:
        """Highest round > ``above`` with f+1 distinct senders (R-skip), if any."""
        rounds = [r for r in self.skip_rounds if r > above]
        return max(rounds) if rounds else None
