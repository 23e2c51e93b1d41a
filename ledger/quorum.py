"""Quorum arithmetic for n validators of equal voting power.

From Buchman, Kwon, Milosevic, "The latest gossip on BFT consensus"
(arXiv:1807.04938), section 2: n >= 3f + 1; "2f+1" means more than two thirds
of the voting power and "f+1" more than one third. With equal power these are
``floor(2n/3) + 1`` and ``floor(n/3) + 1`` validators (docs/DESIGN.md, "Voting").
This module imports nothing: it sits in the bottom layer so the block verifier,
the offline auditor, the engine and governance all use the one rule.

Governance votes use the same rule (docs/GOVERNANCE.md, "Membership and the
validator set"): ``vote_outcome`` is what the node's ``member_vote`` effect and
the auditor's replay both call, so the thresholds are written once.
"""

from __future__ import annotations

from typing import Literal

Outcome = Literal["passed", "rejected", "open"]


def quorum(n: int) -> int:
    """Smallest number of validators holding more than 2/3 of n equal votes."""
    if n < 1:
        raise ValueError("a validator set has at least one member")
    return 2 * n // 3 + 1


def skip_threshold(n: int) -> int:
    """Smallest number of validators holding more than 1/3 of n equal votes."""
    if n < 1:
        raise ValueError("a validator set has at least one member")
    return n // 3 + 1


def max_faulty(n: int) -> int:
    """Largest f with n >= 3f + 1."""
    if n < 1:
        raise ValueError("a validator set has at least one member")
    return (n - 1) // 3


def has_quorum(votes: int, n: int) -> bool:
    return votes >= quorum(n)


def vote_outcome(yes: int, no: int, n: int) -> Outcome:
    """A member vote among n states: ``passed`` once more than 2/3 voted yes,
    ``rejected`` once the remaining votes can no longer make 2/3, else ``open``."""
    if has_quorum(yes, n):
        return "passed"
    if not has_quorum(n - no, n):
        return "rejected"
    return "open"
