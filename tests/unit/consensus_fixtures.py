"""Fixtures for engine rule tests: four Ed25519 validators and a replica under test.

Validators are AT, BE, CZ, DE (sorted by state code, so index i is key i).
proposer(h, r) = index (h + r) mod 4: at height 1, round 0 that is BE (1);
the replica under test is AT (0), so it proposes at (1, 3), (2, 2), (3, 1), (4, 0).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from consensus.engine import Replica
from consensus.messages import PRECOMMIT, PREVOTE, Proposal, Vote
from consensus.signing import Ed25519Signer, Ed25519Verifier
from consensus.state import PersistedState, Ready, Timeout, TimeoutParams
from ledger.block import Validator
from ledger.keys import SigningKey

CHAIN = "comity-test"
KEYS = tuple(SigningKey(bytes([i + 1]) * 32) for i in range(4))
STATES = ("AT", "BE", "CZ", "DE")
VALIDATORS = tuple(Validator(s, k.public_hex) for s, k in zip(STATES, KEYS, strict=True))
OUTSIDER = SigningKey(bytes([99]) * 32)
PARAMS = TimeoutParams(
    propose_initial_ms=300,
    propose_delta_ms=100,
    prevote_initial_ms=200,
    prevote_delta_ms=50,
    precommit_initial_ms=200,
    precommit_delta_ms=50,
)
ME = 0


def block(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


A, B = block("A"), block("B")


def vote(
    i: int,
    vote_type: str,
    height: int,
    round_: int,
    value: str | None,
    key: SigningKey | None = None,
) -> Vote:
    signer = key or KEYS[i]
    unsigned = Vote(vote_type, height, round_, value, signer.public_hex, "")
    sig = signer.sign(unsigned.sign_bytes(CHAIN)).hex()
    return Vote(vote_type, height, round_, value, signer.public_hex, sig)


def prevote(i: int, round_: int, value: str | None, height: int = 1) -> Vote:
    return vote(i, PREVOTE, height, round_, value)


def precommit(i: int, round_: int, value: str | None, height: int = 1) -> Vote:
    return vote(i, PRECOMMIT, height, round_, value)


def proposal(
    round_: int, value: str, valid_round: int = -1, height: int = 1, i: int | None = None
) -> Proposal:
    """PROPOSAL signed by proposer(height, round) unless ``i`` says otherwise."""
    signer = KEYS[(height + round_) % 4 if i is None else i]
    unsigned = Proposal(height, round_, value, valid_round, signer.public_hex, "")
    sig = signer.sign(unsigned.sign_bytes(CHAIN)).hex()
    return Proposal(height, round_, value, valid_round, signer.public_hex, sig)


@dataclass
class Driver:
    """Feeds a replica and records everything it returned (no network)."""

    replica: Replica
    readies: list[Ready] = field(default_factory=list)
    valid: dict[str, bool] = field(default_factory=dict)

    def take(self, ready: Ready) -> Ready:
        self.readies.append(ready)
        for h in ready.validate:
            if h in self.valid:
                self.take(self.replica.on_validated(h, self.valid[h]))
        return ready

    def feed(self, *msgs: Proposal | Vote) -> None:
        for msg in msgs:
            self.take(self.replica.on_message(msg))

    def fire(self, kind: str, round_: int, height: int = 1) -> Ready:
        return self.take(self.replica.on_timeout(Timeout(kind, height, round_, 0)))

    def sent(self) -> list[Proposal | Vote]:
        return [m for r in self.readies for m in r.send]

    def own_votes(self, vote_type: str, round_: int) -> list[Vote]:
        me = self.replica.me
        return [
            m
            for m in self.sent()
            if isinstance(m, Vote)
            and m.validator == me
            and m.type == vote_type
            and m.round == round_
        ]

    def timeouts(self) -> list[Timeout]:
        return [t for r in self.readies for t in r.timeouts]

    def last_persist(self) -> PersistedState | None:
        persisted = [r.persist for r in self.readies if r.persist is not None]
        return persisted[-1] if persisted else None


def replica(
    me: int = ME,
    height: int = 1,
    restored: PersistedState | None = None,
    valid: dict[str, bool] | None = None,
) -> Driver:
    r = Replica(CHAIN, Ed25519Signer(KEYS[me]), Ed25519Verifier(), PARAMS, restored=restored)
    d = Driver(r, valid={A: True, B: True} if valid is None else valid)
    d.take(r.enter_height(height, VALIDATORS))
    return d


def lock_on(d: Driver, value: str, round_: int = 0) -> None:
    """Drive ``d`` from step propose of ``round_`` to locked on ``value`` (R-propose-new, R-lock)."""
    d.feed(proposal(round_, value))
    d.feed(*(prevote(i, round_, value) for i in (1, 2)))


def next_round_by_nil_precommits(d: Driver, round_: int) -> None:
    """f+1... 2f+1 nil precommits then OnTimeoutPrecommit: StartRound(round_ + 1)."""
    d.feed(*(precommit(i, round_, None) for i in (1, 2, 3)))
    d.fire("precommit", round_)
