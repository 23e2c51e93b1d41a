"""The Tendermint replica: Algorithm 1 of arXiv:1807.04938 as a pure state machine.

Theory of operation
-------------------
A ``Replica`` is one validator's instance of Algorithm 1 (Buchman, Kwon,
Milosevic, "The latest gossip on BFT consensus", arXiv:1807.04938), restated
with rule names in docs/CONSENSUS.md "The algorithm". It does no I/O, reads no clock
and draws no randomness: every input is a method call (a peer message, a
timeout that fired, the node's answer to "is this block valid?" or "here is
the block I built") and every call returns a ``Ready`` that tells the node
what to do, in the manner of etcd raft's ``Ready``.

Persist before send. The node MUST durably store ``Ready.persist`` before it
sends anything in ``Ready.send``. ``persist`` holds the height, round, step,
lock and valid value, and every vote and proposal this replica signed at the
height. A replica built with ``restored=`` that state re-sends its stored
messages and, because signing always looks up the slot first
(``_sign_vote``/``_sign_proposal``), never signs a different vote for the same
(h, r, type) nor a different proposal for (h, r) -- the property that makes a
crash indistinguishable from a slow network (docs/CONSENSUS.md "Persist before
send"). If the node crashed after persisting but before sending, the restored
replica simply sends the same messages again. ``persist`` is set whenever the
state differs from the one the previous ``Ready`` handed over, so a call that
raised after signing leaves its vote to the next ``Ready``, ahead of any
re-send of it.

Rules. After every input the engine re-evaluates the rules against the
per-height ``VoteLog`` until none fires (``_RULES``; each rule is a method
named after its R- name and paper line). Conditions that say "for the first
time in this round" are remembered in ``_fired``. R-decide is checked for
every round whose precommits reached 2f+1, not just the current one.

Decisions. R-decide emits a ``Commit`` whose certificate is the 2f+1
precommits, then the replica waits: the node applies the block and calls
``enter_height(h + 1, validators)``. Messages for h+1 that arrive before that
are buffered (bounded per validator); messages further ahead are dropped but
remembered per validator, and when f+1 validators are seen above our height
``Ready.behind`` tells the node to block-sync (``adopt_commit``).

Validity. ``valid(v)`` is the node's check; the engine asks once per block
hash through ``Ready.validate`` and waits for ``on_validated``. A block the
node built itself (``propose``) is valid by construction.

Gossip. The paper assumes every message a correct process received reaches
all correct processes. ``rebroadcast`` (called periodically by the node)
re-sends our own messages, the justification of our round and the polka
behind our valid value (the simulator found liveness failures without each,
docs/CONSENSUS.md), and the proposal our votes name. A replica left at an
old height is not helped by the engine, which forgets a height once it moves
on, and the real node pushes nothing to it: it *pulls* by block sync
(node/sync.py polls peers' heights, also on ``Ready.behind``) and applies
certified blocks. Only the simulator's node pushes (``SimNode.push_catchup``).

Deviations (liveness only): every replica, the proposer included, schedules
OnTimeoutPropose at StartRound, so a node that never builds a block cannot
stall its own round (prevoting nil on a timeout is always allowed). A
validator's conflicting second vote is counted for a proposed value (the
paper counts distinct senders per value), see ``consensus.votelog``.

Rejected inputs (not a validator, bad signature, wrong proposer, malformed,
old height, duplicate, stale timeout, ...) are ignored and counted in
``rejections`` by reason; they are peer faults or races, never our bugs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from consensus.ingress import Ingress
from consensus.messages import PRECOMMIT, PREVOTE, Proposal, Vote
from consensus.outbox import Outbox
from consensus.signing import Signer, Verifier
from consensus.state import Commit, PersistedState, Ready, Step, Timeout, TimeoutParams
from consensus.votelog import ADDED, VoteLog
from ledger.block import CommitCertificate, CommitSignature, Validator, sorted_validators
from ledger.errors import InvariantViolation
from ledger.quorum import quorum, skip_threshold


class Replica:
    """One validator running Algorithm 1. Attributes are read-only for callers."""

    def __init__(
        self,
        chain_id: str,
        signer: Signer,
        verifier: Verifier,
        params: TimeoutParams,
        *,
        restored: PersistedState | None = None,
    ) -> None:
        self.chain_id = chain_id
        self.params = params
        self.me = signer.public_hex
        self._signer = signer
        self._verifier = verifier
        self._restored = restored
        self.rejections: Counter[str] = Counter()
        self.ingress = Ingress(chain_id, verifier, self.rejections)
        self.height = 0  # no height entered yet
        self.decision: str | None = None
        self._out = Outbox()
        # Bound by name so a subclass (the simulator's negative control) can override a rule.
        self._rules = tuple(getattr(self, name) for name in _RULES)
        self._reset_height(0, ())
        self._handed_key = self._persist_key()  # of the last Ready.persist (none at height 0)

    def _reset_height(self, height: int, validators: Sequence[Validator]) -> None:
        self.height = height
        self.validators = sorted_validators(validators)
        n = max(len(self.validators), 1)
        self.quorum, self.skip = quorum(n), skip_threshold(n)
        self.round, self.step = 0, Step.PROPOSE
        self.decision = None
        self.locked_value: str | None = None
        self.locked_round = -1
        self.valid_value: str | None = None
        self.valid_round = -1
        self.log = VoteLog(height, self.quorum, self.skip)
        self.own_votes: dict[tuple[int, str], Vote] = {}
        self.own_proposals: dict[int, Proposal] = {}
        self._validity: dict[str, bool] = {}
        self._asked: set[str] = set()
        self._fired: set[tuple[str, int]] = set()
        self._decided_round = -1

    # -- public inputs ----------------------------------------------------------

    def enter_height(self, height: int, validators: Sequence[Validator]) -> Ready:
        """Start ``height`` with its validator set: StartRound(0), or resume a restored state."""
        if height <= self.height:
            raise InvariantViolation(f"enter_height({height}) at height {self.height}")
        if not validators:
            raise InvariantViolation("a height needs at least one validator")
        return self._run(self._enter_height, height, validators)

    def propose(self, height: int, round_: int, block_hash: str) -> Ready:
        """The node's answer to ``need_proposal``: PROPOSAL(h, r, v, -1) for a new block."""
        return self._run(self._propose, height, round_, block_hash)

    def on_message(self, msg: Proposal | Vote) -> Ready:
        """A peer's message; its signature and sender are checked here."""
        return self._run(self._on_message, msg)

    def on_validated(self, block_hash: str, valid: bool) -> Ready:
        """The node's valid(v) for a hash the engine asked about in ``Ready.validate``."""
        return self._run(self._on_validated, block_hash, valid)

    def on_timeout(self, t: Timeout) -> Ready:
        return self._run(self._on_timeout, t)

    def rebroadcast(self) -> Ready:
        """Re-send what other correct replicas may be missing (call periodically).

        The paper assumes gossip: whatever one correct process received, all
        eventually receive. Re-sending only our own messages is not enough
        after message loss (the simulator found both cases), so this sends:

        * our own proposal and votes of the current round (and of the round
          we decided in, while waiting for ``enter_height``), and the
          proposal those votes name: a replica that could not log it on
          arrival needs it for R-lock and R-decide;
        * the justification of our round: the 2f+1 precommits of round - 1
          (R-precommit-any, or R-skip for replicas further behind), or else
          the f+1 messages of this round that made us skip (R-skip);
        * the proof of our valid value: its proposal and its 2f+1 prevotes,
          which may include Byzantine prevotes that other correct replicas
          never got and need for R-propose-valid-round.
        """
        return self._run(self._rebroadcast)

    def adopt_commit(self, cert: CommitCertificate) -> Ready:
        """Block sync found a certified block for our height: decide it (docs/CONSENSUS.md "Replay")."""
        return self._run(self._adopt_commit, cert)

    # -- call plumbing ------------------------------------------------------------

    def _run(self, handler: Callable[..., None], *args: object) -> Ready:
        self._out = Outbox()
        handler(*args)
        self._progress()
        # Compared with what the last Ready handed over, not with the state at the start
        # of this call: a handler that raised after ``_sign_vote`` returned no Ready, so
        # its vote must ride with the next one, before any send (rebroadcast) of it (B3).
        key = self._persist_key()
        if key == self._handed_key:
            return self._out.ready(None)
        self._handed_key = key
        return self._out.ready(self.persisted_state())

    def _persist_key(self) -> tuple[object, ...]:
        return (
            self.height,
            self.round,
            self.step,
            self.locked_value,
            self.locked_round,
            self.valid_value,
            self.valid_round,
            len(self.own_votes),
            len(self.own_proposals),
        )

    def persisted_state(self) -> PersistedState:
        return PersistedState(
            self.height,
            self.round,
            self.step,
            self.locked_value,
            self.locked_round,
            self.valid_value,
            self.valid_round,
            tuple(self.own_votes.values()),
            tuple(self.own_proposals.values()),
            self._valid_proof(),
        )

    def _valid_proof(self) -> tuple[Proposal | Vote, ...]:
        """PROPOSAL(validRound, validValue) and its 2f+1 prevotes, if we have a valid value."""
        if self.valid_value is None:
            return ()
        proposal = self.log.proposal_for(self.valid_round, self.valid_value)
        votes = self.log.votes_for(self.valid_round, PREVOTE, self.valid_value)
        return (*(() if proposal is None else (proposal,)), *votes)

    def proposer(self, round_: int) -> str:
        """proposer(h, r): validators sorted by state code, index (h + r) mod n."""
        return self.validators[(self.height + round_) % len(self.validators)].pubkey

    # -- handlers -------------------------------------------------------------------

    def _enter_height(self, height: int, validators: Sequence[Validator]) -> None:
        buffered = self.ingress.take_buffer(height)
        self._reset_height(height, validators)
        self.ingress.set_height(height, self.validators, self.skip)
        restored, self._restored = self._restored, None
        if restored is not None and restored.height > height:
            raise InvariantViolation(
                f"persisted consensus state is at height {restored.height}, node at {height}"
            )
        if restored is not None and restored.height == height:
            self._resume(restored)
        else:
            self._start_round(0)
        for msg in buffered:
            self._on_message(msg)

    def _resume(self, state: PersistedState) -> None:
        """Restart: restore lock/valid/own messages, re-send them, continue the step."""
        self.locked_value, self.locked_round = state.locked_value, state.locked_round
        self.valid_value, self.valid_round = state.valid_value, state.valid_round
        for p in state.proposals:
            self.own_proposals[p.round] = p
            self._validity[p.block_hash] = True  # we built it, or it was our validValue
            self.log.add_proposal(p, state.round)
        for v in state.votes:
            self.own_votes[(v.round, v.type)] = v
            self.log.add_vote(v, state.round)
        # Without the polka behind our lock, R-propose-valid-round could never fire
        # for our own re-proposal after a restart (a deadlock the simulator found).
        for msg in state.valid_proof:
            if msg.signer in self.ingress.members:
                self._log_restored(msg, state.round)
        if state.valid_value is not None:
            self._validity[state.valid_value] = True  # R-lock checked valid(v)
        self._out.send.extend((*state.proposals, *state.votes))
        if state.step == Step.PROPOSE:
            self._start_round(state.round)
        else:
            self.round, self.step = state.round, state.step

    def _log_restored(self, msg: Proposal | Vote, round_: int) -> None:
        if isinstance(msg, Proposal):
            self.log.add_proposal(msg, round_)
        else:
            self.log.add_vote(msg, round_)

    def _propose(self, height: int, round_: int, block_hash: str) -> None:
        if (
            (height, round_) != (self.height, self.round)
            or self.step != Step.PROPOSE
            or self.decision is not None
            or self.proposer(round_) != self.me
            or round_ in self.own_proposals
        ):
            self.rejections["stale_propose"] += 1
            return
        self._validity[block_hash] = True  # the node built it
        self._sign_proposal(round_, block_hash, -1)

    def _on_message(self, msg: Proposal | Vote) -> None:
        if not self.ingress.admit(msg, self.decision is not None, self.log):
            if msg.height > self.height:
                hint = self.ingress.behind_hint(self.decision is not None)
                if hint is not None:
                    self._out.behind = hint
            return
        if isinstance(msg, Proposal):
            if msg.proposer != self.proposer(msg.round):
                self.rejections["wrong_proposer"] += 1
                return
            result, evidence = self.log.add_proposal(msg, self.round)
            # A proposal above our round may yet be evicted (consensus.votelog), so it is
            # validated only once we reach its round or it could be decided: a proposer
            # running ahead must not make the node validate block after block.
            if msg.round <= self.round and self.log.proposal_for(msg.round, msg.block_hash) == msg:
                self._ask_validity(msg.block_hash)
        else:
            result, evidence = self.log.add_vote(msg, self.round)
        if evidence is not None:
            self._out.evidence.append(evidence)
        if result != ADDED:
            self.rejections[result] += 1

    def _on_validated(self, block_hash: str, valid: bool) -> None:
        self._validity[block_hash] = valid

    def _on_timeout(self, t: Timeout) -> None:
        current = t.height == self.height and t.round == self.round and self.decision is None
        action = _TIMEOUT_ACTIONS.get(t.kind)
        if action is None or not current or not getattr(self, action)():
            self.rejections["stale_timeout"] += 1

    def _timeout_propose(self) -> bool:
        """OnTimeoutPropose (line 57): still in propose: prevote nil."""
        if self.step != Step.PROPOSE:
            return False
        self._sign_vote(PREVOTE, None)
        self.step = Step.PREVOTE
        return True

    def _timeout_prevote(self) -> bool:
        """OnTimeoutPrevote (line 61): still in prevote: precommit nil."""
        if self.step != Step.PREVOTE:
            return False
        self._sign_vote(PRECOMMIT, None)
        self.step = Step.PRECOMMIT
        return True

    def _timeout_precommit(self) -> bool:
        """OnTimeoutPrecommit (line 65): StartRound(r + 1)."""
        self._start_round(self.round + 1)
        return True

    def _rebroadcast(self) -> None:
        if self.height == 0:
            return
        send = self._out.send
        rounds = {self.round, self._decided_round}
        send.extend(p for r, p in self.own_proposals.items() if r in rounds)
        send.extend(v for (r, _), v in self.own_votes.items() if r in rounds)
        # The proposal our own votes name: a replica that could not log it when it came
        # (the per-round limit, B4) logs it now that a quorum's votes back it.
        named = dict.fromkeys(
            self.log.proposal_for(r, v.block_hash)
            for (r, _), v in self.own_votes.items()
            if r in rounds and v.block_hash is not None
        )
        send.extend(p for p in named if p is not None and p.signer != self.me)
        if self.round > 0 and self.decision is None:
            previous = self.log.votes_in(self.round - 1, PRECOMMIT)
            if len({v.validator for v in previous}) >= self.quorum:
                send.extend(previous)
            else:
                send.extend(m for m in self.log.messages_in(self.round) if m.signer != self.me)
        if 0 <= self.valid_round < self.round and self.valid_value is not None:
            proof = self.log.proposal_for(self.valid_round, self.valid_value)
            if proof is not None:
                send.append(proof)
            send.extend(self.log.votes_for(self.valid_round, PREVOTE, self.valid_value))
        self._out.behind = self.ingress.behind_hint(self.decision is not None, force=True)

    def _adopt_commit(self, cert: CommitCertificate) -> None:
        if cert.height != self.height or self.decision is not None:
            self.rejections["stale_commit"] += 1
            return
        if not self.ingress.certificate_ok(cert, self.validators, self.quorum):
            self.rejections["bad_certificate"] += 1
            return
        self._commit(cert)

    # -- StartRound and signing -------------------------------------------------------

    def _start_round(self, round_: int) -> None:
        """StartRound(r) (lines 11-21)."""
        self.round, self.step = round_, Step.PROPOSE
        for p in self.log.proposals_in(round_):
            self._ask_validity(p.block_hash)
        if self.proposer(round_) == self.me:
            existing = self.own_proposals.get(round_)
            if existing is not None:
                self._out.send.append(existing)  # restored: never a second proposal
            elif self.valid_value is not None:
                self._sign_proposal(round_, self.valid_value, self.valid_round)
            else:
                self._out.need_proposal = (self.height, round_)
        self._schedule("propose", round_)

    def _schedule(self, kind: str, round_: int) -> None:
        delay_ms = self.params.delay_ms(kind, round_)
        self._out.timeouts.append(Timeout(kind, self.height, round_, delay_ms))

    def _sign_proposal(self, round_: int, value: str, valid_round: int) -> None:
        unsigned = Proposal(self.height, round_, value, valid_round, self.me, "")
        signature = self._signer.sign(unsigned.sign_bytes(self.chain_id))
        p = Proposal(self.height, round_, value, valid_round, self.me, signature)
        self.own_proposals[round_] = p
        self._out.send.append(p)
        self.log.add_proposal(p, self.round)

    def _sign_vote(self, vote_type: str, value: str | None) -> None:
        existing = self.own_votes.get((self.round, vote_type))
        if existing is not None:
            # Only reachable after a restart: re-send, never sign a second vote.
            if existing.block_hash != value:
                self.rejections["refused_double_sign"] += 1
            self._out.send.append(existing)
            return
        unsigned = Vote(vote_type, self.height, self.round, value, self.me, "")
        signature = self._signer.sign(unsigned.sign_bytes(self.chain_id))
        vote = Vote(vote_type, self.height, self.round, value, self.me, signature)
        self.own_votes[(self.round, vote_type)] = vote
        self._out.send.append(vote)
        self.log.add_vote(vote, self.round)

    def _ask_validity(self, block_hash: str) -> None:
        if block_hash not in self._validity and block_hash not in self._asked:
            self._asked.add(block_hash)
            self._out.validate.append(block_hash)

    # -- the rules ------------------------------------------------------------------------

    def _progress(self) -> None:
        """Fire rules until none applies (each firing changes state or marks ``_fired``)."""
        while self.height > 0 and self.decision is None:
            if not any(rule() for rule in self._rules):
                return

    def _rule_decide(self) -> bool:
        """R-decide (line 49): PROPOSAL(h, r, v, *) and 2f+1 PRECOMMIT(h, r, id(v)), any r."""
        for round_, value in sorted(self.log.decide_candidates):
            if self.log.proposal_for(round_, value) is not None:
                self._ask_validity(value)
            if self.log.proposal_for(round_, value) is not None and self._validity.get(value):
                votes = sorted(
                    self.log.votes_for(round_, PRECOMMIT, value), key=lambda v: v.validator
                )
                sigs = tuple(CommitSignature(v.validator, v.signature) for v in votes)
                self._commit(CommitCertificate(self.height, round_, value, sigs))
                return True
        return False

    def _commit(self, cert: CommitCertificate) -> None:
        self.decision = cert.block_hash
        self._decided_round = cert.round
        self._out.commits.append(Commit(cert.height, cert.round, cert.block_hash, cert))

    def _rule_skip(self) -> bool:
        """R-skip (line 55): f+1 messages of any type for (h, r), r > round: StartRound(r)."""
        target = self.log.highest_skip_round(self.round)
        if target is None:
            return False
        self._start_round(target)
        return True

    def _rule_propose(self) -> bool:
        """R-propose-new (line 22) and R-propose-valid-round (line 28), in step propose."""
        if self.step != Step.PROPOSE:
            return False
        for p in self.log.proposals_in(self.round):
            vr, value = p.valid_round, p.block_hash
            if vr >= 0 and self.log.count(vr, PREVOTE, value) < self.quorum:
                continue  # line 28 needs 2f+1 PREVOTE(h, vr, id(v))
            valid = self._validity.get(value)
            if valid is None:
                continue  # wait for the node's valid(v)
            free = self.locked_round == -1 if vr < 0 else self.locked_round <= vr
            ok = valid and (free or self.locked_value == value)
            self._sign_vote(PREVOTE, value if ok else None)
            self.step = Step.PREVOTE
            return True
        return False

    def _rule_prevote_any(self) -> bool:
        """R-prevote-any (line 34): 2f+1 PREVOTE(h, round, *) in step prevote, first time."""
        mark = ("prevote_any", self.round)
        if (
            self.step != Step.PREVOTE
            or mark in self._fired
            or self.log.total(self.round, PREVOTE) < self.quorum
        ):
            return False
        self._fired.add(mark)
        self._schedule("prevote", self.round)
        return True

    def _rule_lock(self) -> bool:
        """R-lock (line 36): proposal, 2f+1 PREVOTE(h, round, id(v)), valid(v), step >= prevote."""
        mark = ("lock", self.round)
        if self.step < Step.PREVOTE or mark in self._fired:
            return False
        for p in self.log.proposals_in(self.round):
            value = p.block_hash
            if self.log.count(self.round, PREVOTE, value) < self.quorum or not self._validity.get(
                value
            ):
                continue
            self._fired.add(mark)
            if self.step == Step.PREVOTE:
                self.locked_value, self.locked_round = value, self.round
                self._sign_vote(PRECOMMIT, value)
                self.step = Step.PRECOMMIT
            self.valid_value, self.valid_round = value, self.round
            return True
        return False

    def _rule_prevote_nil(self) -> bool:
        """R-prevote-nil (line 44): 2f+1 PREVOTE(h, round, nil) in step prevote."""
        if self.step != Step.PREVOTE or self.log.count(self.round, PREVOTE, None) < self.quorum:
            return False
        self._sign_vote(PRECOMMIT, None)
        self.step = Step.PRECOMMIT
        return True

    def _rule_precommit_any(self) -> bool:
        """R-precommit-any (line 47): 2f+1 PRECOMMIT(h, round, *), first time."""
        mark = ("precommit_any", self.round)
        if mark in self._fired or self.log.total(self.round, PRECOMMIT) < self.quorum:
            return False
        self._fired.add(mark)
        self._schedule("precommit", self.round)
        return True


# R-decide first: once decided, nothing else may fire at this height.
_RULES: tuple[str, ...] = (
    "_rule_decide",
    "_rule_skip",
    "_rule_propose",
    "_rule_prevote_any",
    "_rule_lock",
    "_rule_prevote_nil",
    "_rule_precommit_any",
)

_TIMEOUT_ACTIONS: dict[str, str] = {
    "propose": "_timeout_propose",
    "prevote": "_timeout_prevote",
    "precommit": "_timeout_precommit",
}
