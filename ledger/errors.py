"""The one error tree of Comity.

    ComityError
    ├── ClientError            bad input from a caller; maps to a 4xx with a stable ``code``
    │   ├── EncodingError        not JSON, or outside the canonical subset (400)
    │   ├── RecordInvalid        a well-formed record that breaks a rule (422)
    │   ├── SignatureInvalid     the Ed25519 signature does not verify (422)
    │   ├── Unauthorized         missing/bad credential (401)
    │   ├── Forbidden            credential or signer lacks the right (403)
    │   ├── NotFound             unknown id, height, ... (404)
    │   ├── Conflict             duplicate nonce, already committed (409)
    │   ├── TooLarge             a body, record or batch over its limit (413)
    │   └── Overloaded           a bounded queue is full; retry later (503)
    ├── VerificationError      a proof, certificate or chain does not check out;
    │   ├── ProofError           RFC 6962 proof malformed or wrong root
    │   ├── CertificateError     commit certificate does not prove its block
    │   └── ChainError           hash links, heights or roots of blocks disagree
    ├── PeerFault              a peer sent something wrong (bad batch, bad block)
    │   └── BodyMismatch         the envelopes held for a header are not its body
    ├── StoreError             the local store is unusable or corrupt (refuse to start)
    └── InvariantViolation     a bug in this node: crash loudly, never mask

Client errors carry ``code`` (stable snake_case, part of the public API), the
``field`` they concern (a dotted path such as ``record.actor.state``) and a
human ``message`` that names that field. Verification errors carry the data
that disagreed (expected vs calculated), in the manner of RFC 6962 verifiers.
"""

from __future__ import annotations


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
    """Something that should prove itself does not."""


class ProofError(VerificationError):
    """An RFC 6962 proof is malformed or does not lead to the expected root."""


class RootMismatchError(ProofError):
    def __init__(self, expected: bytes, calculated: bytes) -> None:
        super().__init__(f"root mismatch: expected {expected.hex()}, calculated {calculated.hex()}")
        self.expected = expected
        self.calculated = calculated


class CertificateError(VerificationError):
    """A commit certificate does not prove its block."""


class ChainError(VerificationError):
    """Blocks do not link: wrong prev_hash, height, ledger root or size."""


class PeerFault(ComityError):
    """A peer sent a malformed, unsigned or invalid message or block."""


class BodyMismatch(PeerFault):
    """The envelopes held for a block header are not that header's body.

    A block hash names a header, and the header's ledger root names the exact
    envelopes. A body rebuilt from the wrong envelopes (another signature of a
    record, or junk a peer attached) says nothing about the block itself: the
    receiver drops that body and fetches the real one, and never tells the
    engine the block is invalid because of it.
    """


class StoreError(ComityError):
    """The local store is corrupt or inconsistent; the node must not start."""


class InvariantViolation(ComityError):
    """A bug in this node. Never caught to carry on."""
