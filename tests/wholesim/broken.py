"""Deliberately broken engines, run by the real node (``node.driver.Replica`` patched).

Each subclass breaks one rule of Algorithm 1 (arXiv:1807.04938). They were
the negative controls of the engine-only simulator (with its idealised driver,
removed in issue 15); here the production driver, application and store run
them, over the whole-node simulator's network:

* ``SmallQuorum`` (every threshold f+1): the control of the equivocate and
  equivocate_compact classes (tests/wholesim/controls.py) must find an
  agreement violation: an equivocating proposer's two blocks each gather a
  "quorum" that shares no honest validator;
* ``ForgetsLock``: the ``forgets_lock`` control; the ordinary campaign of the
  equivocate classes breaks agreement with it rarely (seed 212 in 0..348);
* ``IgnoresLock``, ``WeakLock``: not caught in the budgets tried
  (docs/RELIABILITY.md, "Broken engines under the whole node").

``scripts/simulate --broken NAME`` runs a campaign with any of them.
"""

from __future__ import annotations

from collections.abc import Sequence

from consensus.engine import Replica
from consensus.messages import PRECOMMIT, PREVOTE
from consensus.state import Step
from consensus.votelog import VoteLog
from ledger.block import Validator


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


class SmallQuorum(Replica):
    """Every threshold f+1 instead of 2f+1 (a quorum that forgot the 2f): two quorums
    need not share an honest validator, so one equivocator splits them."""

    def _reset_height(self, height: int, validators: Sequence[Validator]) -> None:
        super()._reset_height(height, validators)
        self.quorum = self.skip
        self.log = VoteLog(height, self.quorum, self.skip)


BROKEN: dict[str, type[Replica]] = {
    "ignores-lock": IgnoresLock,
    "forgets-lock": ForgetsLock,
    "weak-lock": WeakLock,
    "small-quorum": SmallQuorum,
}
