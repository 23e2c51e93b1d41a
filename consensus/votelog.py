"""The message log of one height, across all rounds (TENDERMINT.md "State of node p").

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
counts. A conflicting vote counts only for a value some logged proposal of
this height carries: only such values can satisfy R-lock, R-decide or
R-propose-valid-round, and without it a replica that first heard a
Byzantine validator's vote for junk could never count the same validator's
vote in a polka relayed to it later -- a liveness failure the simulator
found (a lock formed with Byzantine help, unlockable by the others). This
keeps memory bounded by the number of proposals, and it cannot hurt safety:
the paper lets Byzantine validators send anything, the proofs count
distinct senders per value. The log is bounded: a validator may occupy at most
``FUTURE_ROUNDS_MAX`` rounds above the replica's current round, so a
Byzantine validator cannot fill memory with messages for far rounds; each
round holds at most three messages per validator.

The log checks no signatures and no membership: the engine does that first.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Final

from consensus.messages import PRECOMMIT, PREVOTE, Equivocation, Proposal, Vote

FUTURE_ROUNDS_MAX: Final = 4
# A Byzantine proposer may sign many values for one round; keeping a few is
# enough for R-lock/R-decide on the one honest validators actually voted for.
PROPOSALS_PER_ROUND_MAX: Final = 4

ADDED: Final = "added"
DUPLICATE: Final = "duplicate"
EQUIVOCATION: Final = "equivocation"
FUTURE_FULL: Final = "future_round_window_full"


class VoteLog:
    """Counts for one height. ``quorum`` is 2f+1, ``skip`` is f+1 (consensus.quorum)."""

    def __init__(self, height: int, quorum: int, skip: int) -> None:
        self.height = height
        self.quorum = quorum
        self.skip = skip
        self._proposals: dict[int, dict[str, Proposal]] = defaultdict(dict)
        self._votes: dict[tuple[int, str], dict[str, dict[str | None, Vote]]] = \
            defaultdict(dict)
        self._proposed: set[str] = set()
        self._tally: dict[tuple[int, str], dict[str | None, int]] = defaultdict(
            lambda: defaultdict(int))
        self._senders: dict[int, set[str]] = defaultdict(set)
        self._rounds_of: dict[str, set[int]] = defaultdict(set)
        self._reported: set[tuple[str, int, str]] = set()
        self.decide_candidates: set[tuple[int, str]] = set()
        self.skip_rounds: set[int] = set()

    # -- adding ---------------------------------------------------------------

    def add_proposal(self, p: Proposal, current_round: int) -> tuple[str, Equivocation | None]:
        """Add PROPOSAL(h, r, v, vr); the caller checked p came from proposer(h, r)."""
        by_value = self._proposals[p.round]
        same = by_value.get(p.block_hash)
        if same is not None:
            return self._conflict(same, p, "proposal")
        if not self._room_for(p.proposer, p.round, current_round):
            return FUTURE_FULL, None
        evidence = None
        if by_value:
            _, evidence = self._conflict(next(iter(by_value.values())), p, "proposal")
            if len(by_value) >= PROPOSALS_PER_ROUND_MAX:
                return EQUIVOCATION, evidence
        by_value[p.block_hash] = p
        self._proposed.add(p.block_hash)
        self._note_sender(p.proposer, p.round)
        return (EQUIVOCATION if evidence or len(by_value) > 1 else ADDED), evidence

    def add_vote(self, v: Vote, current_round: int) -> tuple[str, Equivocation | None]:
        key = (v.round, v.type)
        by_value = self._votes[key].get(v.validator)
        evidence = None
        if by_value is not None:
            same = by_value.get(v.block_hash)
            if same is not None:
                return DUPLICATE, None
            first = next(iter(by_value.values()))
            _, evidence = self._conflict(first, v, v.type)
            if v.block_hash not in self._proposed:
                return EQUIVOCATION, evidence   # only the first vote counts
        elif not self._room_for(v.validator, v.round, current_round):
            return FUTURE_FULL, None
        self._votes[key].setdefault(v.validator, {})[v.block_hash] = v
        tally = self._tally[key]
        tally[v.block_hash] += 1
        if (v.type == PRECOMMIT and v.block_hash is not None
                and tally[v.block_hash] >= self.quorum):
            self.decide_candidates.add((v.round, v.block_hash))
        self._note_sender(v.validator, v.round)
        return (ADDED if evidence is None and by_value is None else EQUIVOCATION), evidence

    def _conflict(self, first: Proposal | Vote, second: Proposal | Vote,
                  kind: str) -> tuple[str, Equivocation | None]:
        if first == second:
            return DUPLICATE, None
        mark = (second.signer, second.round, kind)
        if mark in self._reported:
            return EQUIVOCATION, None  # one piece of evidence per slot is enough
        self._reported.add(mark)
        return EQUIVOCATION, Equivocation(first, second)

    def _room_for(self, validator: str, round_: int, current_round: int) -> bool:
        rounds = self._rounds_of[validator]
        if round_ <= current_round or round_ in rounds:
            return True
        return sum(1 for r in rounds if r > current_round) < FUTURE_ROUNDS_MAX

    def _note_sender(self, validator: str, round_: int) -> None:
        self._rounds_of[validator].add(round_)
        senders = self._senders[round_]
        senders.add(validator)
        if len(senders) >= self.skip:
            self.skip_rounds.add(round_)

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
        return (*self.proposals_in(round_), *self.votes_in(round_, PREVOTE),
                *self.votes_in(round_, PRECOMMIT))

    def senders(self, round_: int) -> int:
        return len(self._senders.get(round_, ()))

    def highest_skip_round(self, above: int) -> int | None:
        """Highest round > ``above`` with f+1 distinct senders (R-skip), if any."""
        rounds = [r for r in self.skip_rounds if r > above]
        return max(rounds) if rounds else None
