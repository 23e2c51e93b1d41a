"""Value types crossing the engine boundary: parameters, timeouts, commits, Ready.

Everything here is a frozen dataclass so that a ``Ready`` handed to the node
cannot be changed behind the engine's back (etcd raft's ``Ready``, h11's
events). ``PersistedState`` is what must survive a crash; its JSON form is
for the node's store.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final

from consensus.messages import Equivocation, Proposal, Vote, message_from_json
from ledger.block import CommitCertificate
from ledger.errors import EncodingError

TIMEOUT_KINDS: Final = ("propose", "prevote", "precommit")


class Step(IntEnum):
    """step_p of Algorithm 1; ordered, since R-lock fires for ``step >= prevote``."""

    PROPOSE = 0
    PREVOTE = 1
    PRECOMMIT = 2


@dataclass(frozen=True, slots=True)
class TimeoutParams:
    """timeoutX(r) = X_initial_ms + r * X_delta_ms (docs/CONSENSUS.md "Timeouts")."""

    propose_initial_ms: int = 3000
    propose_delta_ms: int = 500
    prevote_initial_ms: int = 1000
    prevote_delta_ms: int = 500
    precommit_initial_ms: int = 1000
    precommit_delta_ms: int = 500

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise ValueError(f"TimeoutParams.{name} must be a non-negative integer")

    def delay_ms(self, kind: str, round_: int) -> int:
        initial: int = getattr(self, f"{kind}_initial_ms")
        delta: int = getattr(self, f"{kind}_delta_ms")
        return initial + round_ * delta


@dataclass(frozen=True, slots=True)
class Timeout:
    """Schedule ``OnTimeout<kind>(height, round)`` after ``delay_ms``, then call on_timeout."""

    kind: str  # "propose" | "prevote" | "precommit"
    height: int
    round: int
    delay_ms: int


@dataclass(frozen=True, slots=True)
class Commit:
    """R-decide: ``block_hash`` is decided at ``height``; the certificate proves it."""

    height: int
    round: int
    block_hash: str
    certificate: CommitCertificate


@dataclass(frozen=True, slots=True)
class PersistedState:
    """What a replica must find again after a crash (docs/CONSENSUS.md "Persist before send")."""

    height: int
    round: int
    step: Step
    locked_value: str | None
    locked_round: int
    valid_value: str | None
    valid_round: int
    votes: tuple[Vote, ...]  # every vote this replica signed at ``height``
    proposals: tuple[Proposal, ...]  # every proposal this replica signed at ``height``
    # PROPOSAL(validRound, validValue) and its 2f+1 prevotes: the justification our
    # re-proposal needs (R-propose-valid-round) must survive a crash too.
    valid_proof: tuple[Proposal | Vote, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "round": self.round,
            "step": int(self.step),
            "locked_value": self.locked_value,
            "locked_round": self.locked_round,
            "valid_value": self.valid_value,
            "valid_round": self.valid_round,
            "votes": [v.to_json() for v in self.votes],
            "proposals": [p.to_json() for p in self.proposals],
            "valid_proof": [m.to_json() for m in self.valid_proof],
        }

    @classmethod
    def from_json(cls, obj: Any) -> PersistedState:
        try:
            state = cls(
                obj["height"],
                obj["round"],
                Step(obj["step"]),
                obj["locked_value"],
                obj["locked_round"],
                obj["valid_value"],
                obj["valid_round"],
                tuple(Vote.from_json(v) for v in obj["votes"]),
                tuple(Proposal.from_json(p) for p in obj["proposals"]),
                # absent in states written before valid_proof existed
                tuple(message_from_json(m) for m in obj.get("valid_proof", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise EncodingError(
                f"malformed persisted consensus state: {exc}", field="consensus_state"
            ) from exc
        messages = (*state.votes, *state.proposals, *state.valid_proof)
        if any(msg.height != state.height for msg in messages):
            raise EncodingError("persisted message for another height", field="consensus_state")
        return state


@dataclass(frozen=True, slots=True)
class Ready:
    """What the node must do after one engine call, in this order.

    1. durably store ``persist`` (if not None) -- BEFORE anything in ``send``;
    2. broadcast ``send`` to all validators;
    3. apply ``commits`` (then call ``enter_height(h + 1, ...)``);
    4. schedule ``timeouts``; answer ``validate`` via ``on_validated``;
       answer ``need_proposal`` via ``propose``; gossip ``evidence``;
       block-sync if ``behind`` is set.
    """

    persist: PersistedState | None = None
    send: tuple[Proposal | Vote, ...] = ()
    commits: tuple[Commit, ...] = ()
    timeouts: tuple[Timeout, ...] = ()
    validate: tuple[str, ...] = ()
    need_proposal: tuple[int, int] | None = None
    evidence: tuple[Equivocation, ...] = ()
    behind: int | None = None  # f+1 validators are at this height > ours

    def is_empty(self) -> bool:
        return self == EMPTY


EMPTY: Final = Ready()
