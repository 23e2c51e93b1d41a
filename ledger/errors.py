"""The one error tree of Comity.

Every exception class defined in ``ledger/``, ``consensus/``, ``node/`` and
``api/`` is drawn here under its real parent (tests/unit/test_error_tree.py
fails if one is missing or drawn elsewhere). Classes defined outside this
module name their module.

    ComityError
    ├── ClientError            bad input from a caller; maps to a 4xx with a stable ``code``
    │   ├── EncodingError        not JSON, or outside the canonical subset (400)
    │   ├── RecordInvalid        a well-formed record that breaks a rule (422)
    │   ├── QueryInvalid         a well-formed query whose values contradict each other (422)
    │   ├── SignatureInvalid     the Ed25519 signature does not verify (422)
    │   ├── Unauthorized         missing/bad credential (401)
    │   ├── Forbidden            credential or signer lacks the right (403)
    │   │   └── NotARecipient      ledger/sealed.py: the caller is not a recipient of it
    │   ├── NotFound             unknown id, height, ... (404)
    │   ├── Conflict             duplicate nonce, already committed (409)
    │   ├── TooLarge             a body, record or batch over its limit (413)
    │   ├── Overloaded           a bounded queue is full; retry later (503)
    │   ├── CustodyViolation     ledger/acts_custody.py: a custody event out of order (422)
    │   │                        or by a state that does not hold the evidence, or is not
    │   │                        the receiver a transfer in transit names (403)
    │   ├── EncKeyUnavailable    node/sealed_access.py: no encryption key configured (503)
    │   ├── SealedUnreadable     node/sealed_access.py: a stored sealed body fails to open (422)
    │   └── RateLimited          api/errors.py: a source or signer over its rate (429)
    ├── VerificationError      a proof, certificate or chain does not check out;
    │   ├── ProofError           RFC 6962 proof malformed or wrong root
    │   │   └── RootMismatchError  the proof leads to another root (expected, calculated)
    │   ├── CertificateError     commit certificate does not prove its block
    │   ├── ChainError           hash links, heights or roots of blocks disagree
    │   ├── SealedIntegrityError ledger/sealed.py: a sealed object does not open to its plaintext
    │   └── AuditFailure         ledger/audit/gov.py: the offline auditor's check failed
    ├── PeerFault              a peer sent something wrong (bad batch, bad block, bad reply)
    │   ├── PeerUnavailable      a peer could not be reached, timed out or broke the link
    │   │   └── PeerRemoved        node/peers.py: it left the validator set meanwhile
    │   ├── BodyMismatch         the envelopes held for a header are not its body
    │   ├── WireRefusal          node/wire.py: a P2P request fails authentication
    │   ├── ReplyNotAuthentic    node/peers.py: a reply not signed by the peer's node key
    │   └── ReplyTooLarge        node/peers.py: a reply over any honest reply's size
    ├── RemoteError            a node asked by a command-line tool refused or did not answer
    │   ├── ClientFailure        api/cli/client.py: the node API answered an error
    │   ├── FetchError           api/cli/audit_client.py: the auditor's fetch failed
    │   │   └── ResponseTooLarge   api/cli/audit_client.py: a reply over the auditor's cap
    │   └── DkimUnavailable      node/dkim_verify.py: the DNS gave no DKIM key answer
    ├── ConfigError            node/config.py: the configuration cannot be used
    │   └── ByzantineRefused     node/byzantine.py: fault-campaign flags used outside one
    ├── BackupError            node/backup.py: a backup cannot be made or restored
    ├── HsmError               node/hsm.py: a PKCS#11 module, token, PIN or key is unusable
    ├── VerifierUnavailable    node/verifier.py: the signature workers are gone (fall back)
    ├── StoreError             the local store is unusable or corrupt (refuse to start)
    └── InvariantViolation     a bug in this node: crash loudly, never mask

Client errors carry ``code`` (stable snake_case, part of the public API), the
``field`` they concern (a dotted path such as ``record.actor.state``) and a
human ``message`` that names that field. Verification errors carry the data
that disagreed (``height``, ``field``, ``expected``, ``actual``), in the manner
of RFC 6962 verifiers.

Local versus remote. The same check can fail on a client's input or a peer's:
a client's bad POST is its ``ClientError`` (a 4xx), while a record or block a
peer sent is that peer's fault, so the code that takes input from a peer
wraps what the checks raise in ``PeerFault`` at that boundary (``raise
PeerFault(...) from exc``: ``from_peer`` below). Library errors are
translated at the boundary in the same way: httpx and orjson in
``PeerSet.request`` (PeerUnavailable, PeerFault), plyvel in ledger/kv.py
(StoreError). The Merkle log draws the same line (ledger/merkle.py): its
builder, given only this node's own sizes and hashes, raises
``InvariantViolation``; its verifiers, given someone else's proof, raise
``ProofError``.

Catch rules.

- Catch the narrowest branch that you can act on: ``ClientError`` at the API
  (api/errors.py maps it), ``PeerFault`` where a peer's input is handled (log,
  count, penalise, carry on), ``VerificationError`` where a proof is checked.
- Never catch ``ComityError`` as a whole in a loop that carries on: that would
  swallow ``StoreError`` and ``InvariantViolation``. A command-line entry
  point may catch it to print it and exit non-zero.
- ``StoreError`` and ``InvariantViolation`` are never caught to carry on. In
  a background task they end it; its supervisor (node/runtime.py) marks the
  node failed, logs why at CRITICAL, and /readyz answers not ready. In a
  request handler they become a 500, logged with its traceback.
- Asserts are never used for invariants: ``python -O`` removes them. A state
  that must hold is checked with ``if ...: raise InvariantViolation(...)``
  naming the state. ``assert`` remains only to narrow a type for mypy where
  the value cannot be otherwise by construction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class ComityError(Exception):
    """Root of every error Comity raises on purpose."""


class ClientError(ComityError):
    """A caller's input is wrong. ``status`` is the HTTP status it maps to."""

    status = 400
    default_code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code or self.default_code

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return {"error": body}


class EncodingError(ClientError):
    status = 400
    default_code = "malformed_json"


class RecordInvalid(ClientError):
    status = 422
    default_code = "invalid_record"


class QueryInvalid(ClientError):
    """A query whose every parameter is well formed, but whose values contradict each
    other (a window that ends before it starts): no schema can say it, so 422, not 400."""

    status = 422
    default_code = "invalid_query"


class SignatureInvalid(ClientError):
    status = 422
    default_code = "bad_signature"


class Unauthorized(ClientError):
    status = 401
    default_code = "unauthorized"


class Forbidden(ClientError):
    status = 403
    default_code = "forbidden"


class NotFound(ClientError):
    status = 404
    default_code = "not_found"


class Conflict(ClientError):
    status = 409
    default_code = "conflict"


class TooLarge(ClientError):
    status = 413
    default_code = "too_large"


class Overloaded(ClientError):
    status = 503
    default_code = "overloaded"

    def __init__(
        self,
        message: str,
        *,
        retry_after_s: int = 1,
        field: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, field=field, code=code)
        self.retry_after_s = retry_after_s


class VerificationError(ComityError):
    """Something that should prove itself does not.

    ``height`` is where (if tied to a block), ``field`` what disagreed, and
    ``expected``/``actual`` the two values, for callers that act on them.
    """

    def __init__(
        self,
        message: str,
        *,
        height: int | None = None,
        field: str | None = None,
        expected: object = None,
        actual: object = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.height = height
        self.field = field
        self.expected = expected
        self.actual = actual


class ProofError(VerificationError):
    """An RFC 6962 proof is malformed or does not lead to the expected root."""


class RootMismatchError(ProofError):
    def __init__(self, expected: bytes, calculated: bytes) -> None:
        super().__init__(
            f"root mismatch: expected {expected.hex()}, calculated {calculated.hex()}",
            expected=expected,
            actual=calculated,
        )
        self.expected = expected
        self.calculated = calculated


class CertificateError(VerificationError):
    """A commit certificate does not prove its block."""


class ChainError(VerificationError):
    """Blocks do not link: wrong prev_hash, height, ledger root or size."""


class PeerFault(ComityError):
    """A peer sent a malformed, unsigned or invalid message or block."""


class PeerUnavailable(PeerFault):
    """A peer could not be reached, timed out, or broke the link (httpx transport
    errors, translated in node/peers.py ``PeerSet.request``)."""


class BodyMismatch(PeerFault):
    """The envelopes held for a block header are not that header's body.

    A block hash names a header, and the header's ledger root names the exact
    envelopes. A body rebuilt from the wrong envelopes (another signature of a
    record, or junk a peer attached) says nothing about the block itself: the
    receiver drops that body and fetches the real one, and never tells the
    engine the block is invalid because of it.
    """


class RemoteError(ComityError):
    """A node that a command-line tool asked (the CLI, the auditor) refused or did
    not answer. Not a verification failure: nothing it said was believed."""


class StoreError(ComityError):
    """The local store is corrupt or inconsistent; the node must not start."""


class InvariantViolation(ComityError):
    """A bug in this node. Never caught to carry on."""


#: What the checks raise on bad input (``from_peer``), and what reading a reply of
#: the wrong shape raises besides (``from_peer(..., parsing=True)``).
_CHECK_ERRORS = (ClientError, VerificationError)
_SHAPE_ERRORS = (ClientError, VerificationError, KeyError, TypeError, ValueError)


@contextlib.contextmanager
def from_peer(source: str, what: str, *, parsing: bool = False) -> Iterator[None]:
    """Blame on ``source`` (a peer) what goes wrong while checking ``what`` it sent.

    A check's ``ClientError`` or ``VerificationError`` becomes a ``PeerFault``
    raised ``from`` it: the same record that is a client's bad input (a 4xx)
    is, inside a peer's block, that peer's fault. With ``parsing``, the
    ``KeyError``, ``TypeError`` or ``ValueError`` of a reply of the wrong shape
    is the peer's fault too (use it only around code that reads peer data). A
    ``PeerFault`` passes as it is, and local faults (``StoreError``,
    ``InvariantViolation``) are never translated.
    """
    caught = _SHAPE_ERRORS if parsing else _CHECK_ERRORS
    try:
        yield
    except PeerFault:
        raise
    except caught as exc:
        raise PeerFault(f"{what} from {source}: {exc}") from exc
