"""Admission of peer messages: membership, signatures, heights, the next-height buffer.

Every message passes here before the rules see it. The checks are ordered
cheapest first, and a message identical to one already logged is dropped
before its signature is verified, since rebroadcasts make duplicates the
common case.

Heights (docs/CONSENSUS.md "Messages for the future"):

* current height, not yet decided: admitted after the checks;
* height + 1: verified and buffered, at most ``BUFFER_PER_VALIDATOR_MAX`` per
  validator, and replayed by ``enter_height``;
* further ahead: verified, dropped, and remembered per validator so that f+1
  validators seen above our height yield a block-sync hint (``behind``).
  f+1 means at least one correct validator is there, so the heights between
  are committed and can be fetched with certificates.

Only members of the *current* validator set are admitted or buffered, which
bounds the buffer by n; a validator set change at the next height is rare and
messages lost this way come again by rebroadcast.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Final

from consensus.messages import PRECOMMIT, VOTE_TYPES, Proposal, Vote
from consensus.signing import Verifier
from consensus.votelog import VoteLog
from ledger.block import CommitCertificate, Validator, vote_sign_bytes

BUFFER_PER_VALIDATOR_MAX: Final = 12


class Ingress:
    def __init__(self, chain_id: str, verifier: Verifier, rejections: Counter[str]) -> None:
        self.chain_id = chain_id
        self._verifier = verifier
        self._rejections = rejections
        self.height = 0
        self.members: frozenset[str] = frozenset()
        self._skip = 1
        self._buffer: dict[str, list[Proposal | Vote]] = {}
        self._peer_heights: dict[str, int] = {}
        self._last_hint: int | None = None

    def set_height(self, height: int, validators: Sequence[Validator], skip: int) -> None:
        self.height = height
        self.members = frozenset(v.pubkey for v in validators)
        self._skip = skip
        self._buffer = {}
        self._last_hint = None

    def take_buffer(self, height: int) -> list[Proposal | Vote]:
        """Buffered messages, if ``height`` is the one they were buffered for."""
        if height != self.height + 1:
            return []
        return [msg for msgs in self._buffer.values() for msg in msgs]

    def admit(self, msg: Proposal | Vote, decided: bool, log: VoteLog) -> bool:
        """True if ``msg`` is for the current, undecided height and genuine."""
        reason = self._check(msg, decided, log)
        if reason is None:
            return True
        self._rejections[reason] += 1
        return False

    def _check(self, msg: Proposal | Vote, decided: bool, log: VoteLog) -> str | None:
        if not _well_formed(msg):
            return "malformed"
        if msg.signer not in self.members:
            return "not_validator"
        if msg.height < self.height or (msg.height == self.height and decided):
            return "old_height"
        if msg.height == self.height and log.contains(msg):
            return "duplicate"
        if not self._verifier.verify(msg.signer, msg.sign_bytes(self.chain_id), msg.signature):
            return "bad_signature"
        if msg.height == self.height:
            return None
        self._peer_heights[msg.signer] = max(msg.height, self._peer_heights.get(msg.signer, 0))
        if msg.height > self.height + 1:
            return "far_future_height"
        queue = self._buffer.setdefault(msg.signer, [])
        if msg in queue:
            return "duplicate"
        if len(queue) >= BUFFER_PER_VALIDATOR_MAX:
            return "buffer_full"
        queue.append(msg)
        return "buffered_next_height"

    def behind_hint(self, decided: bool, *, force: bool = False) -> int | None:
        """Height H > ours that f+1 validators have reached, when it is news (or ``force``)."""
        if decided:
            return None
        above = sorted(
            (h for v, h in self._peer_heights.items() if h > self.height and v in self.members),
            reverse=True,
        )
        if len(above) < self._skip:
            return None
        hint = above[self._skip - 1]
        if force or hint != self._last_hint:
            self._last_hint = hint
            return hint
        return None

    def certificate_ok(
        self, cert: CommitCertificate, validators: Sequence[Validator], quorum: int
    ) -> bool:
        """Same checks as ledger.block.verify_certificate, through our Verifier."""
        members = {v.pubkey for v in validators}
        message = vote_sign_bytes(
            PRECOMMIT, self.chain_id, cert.height, cert.round, cert.block_hash
        )
        seen: set[str] = set()
        for sig in cert.signatures:
            if sig.validator not in members or sig.validator in seen:
                return False
            if not self._verifier.verify(sig.validator, message, sig.signature):
                return False
            seen.add(sig.validator)
        return len(seen) >= quorum


def _well_formed(msg: Proposal | Vote) -> bool:
    """Shape checks for messages built in code rather than parsed by from_json."""
    if type(msg.height) is not int or type(msg.round) is not int or msg.height < 1 or msg.round < 0:
        return False
    if isinstance(msg, Proposal):
        return (
            type(msg.valid_round) is int
            and -1 <= msg.valid_round < msg.round
            and isinstance(msg.block_hash, str)
        )
    return msg.type in VOTE_TYPES and (msg.block_hash is None or isinstance(msg.block_hash, str))
