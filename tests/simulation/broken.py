"""Deliberately broken engines: negative controls proving the simulator can fail.

Each subclass breaks exactly one rule of Algorithm 1 (arXiv:1807.04938).
``tests/simulation/test_simulation.py`` asserts that the ordinary seeded
campaign finds an agreement violation for them within a fixed seed budget.
"""

from __future__ import annotations

from consensus.engine import Replica
from consensus.messages import PRECOMMIT, PREVOTE
from consensus.state import Step


class IgnoresLock(Replica):
    """R-propose-new / R-propose-valid-round without the lock: prevote any valid proposal."""

    def _rule_propose(self) -> bool:
        if self.step != Step.PROPOSE:
            return False
        for p in self.log.proposals_in(self.round):
            valid = self._validity.get(p.block_hash)
            if valid is None:
                continue
            self._sign_vote(PREVOTE, p.block_hash if valid else None)
            self.step = Step.PREVOTE
            return True
        return False


class WeakLock(Replica):
    """R-lock on f+1 prevotes instead of 2f+1: precommits without a polka."""

    def _rule_lock(self) -> bool:
        mark = ("lock", self.round)
        if self.step != Step.PREVOTE or mark in self._fired:
            return False
        for p in self.log.proposals_in(self.round):
            value = p.block_hash
            if self.log.count(self.round, PREVOTE, value) >= self.skip and self._validity.get(
                value
            ):
                self._fired.add(mark)
                self.locked_value, self.locked_round = value, self.round
                self.valid_value, self.valid_round = value, self.round
                self._sign_vote(PRECOMMIT, value)
                self.step = Step.PRECOMMIT
                return True
        return False


class ForgetsLock(Replica):
    """R-lock precommits id(v) but records neither lockedValue/Round nor validValue/Round."""

    def _rule_lock(self) -> bool:
        mark = ("lock", self.round)
        if self.step < Step.PREVOTE or mark in self._fired:
            return False
        for p in self.log.proposals_in(self.round):
            value = p.block_hash
            if self.log.count(self.round, PREVOTE, value) >= self.quorum and self._validity.get(
                value
            ):
                self._fired.add(mark)
                if self.step == Step.PREVOTE:
                    self._sign_vote(PRECOMMIT, value)
                    self.step = Step.PRECOMMIT
                return True
        return False


BROKEN: dict[str, type[Replica]] = {
    "ignores-lock": IgnoresLock,
    "forgets-lock": ForgetsLock,
    "weak-lock": WeakLock,
}
