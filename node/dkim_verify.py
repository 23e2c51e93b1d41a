"""DKIM header signature verification of an e-mail receipt (RFC 6376, RFC 8463).

Theory of operation
-------------------
``node/receipt_sources.py`` checks a DKIM-Signature's body hash ``bh=``
itself; this module checks the header signature ``b=`` with dkimpy
(rsa-sha256, RFC 6376 §3.3; ed25519-sha256, RFC 8463), against the signer's
public key: the TXT record at ``<s>._domainkey.<d>`` (RFC 6376 §3.6.2). The
record comes from a ``KeySource``: the live DNS (the CLI's ``--dkim
verify``) or a TXT record saved to a file (``--dkim-key``), so this module
does no I/O of its own and the tests pass their own record.

Every outcome is a ``DkimOutcome`` the receipt records (docs/CHANNELS.md
"The e-mail hasher"): ``signature`` when the signature verifies under the
key, or ``failed`` with one stable ``reason``. The SHA-256 of the key record
used is kept, because a domain rotates its selectors: the receipt pins which
key the signature was checked against. A DNS that does not answer (a
timeout, no resolver) is ``DkimUnavailable``, not a failure: a receipt is
permanent, and a transient network fault says nothing about the message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

import dkim  # dkimpy

from ledger.acts_fields import DkimFailure
from ledger.errors import RemoteError

#: Why a signature failed, as the receipt records it.
DkimReason = DkimFailure
#: RFC 8301 §3.2: verifiers MUST NOT consider signatures with RSA keys under 1024 bits valid.
RSA_KEY_BITS_MIN: Final = 1024
#: Bound on one DNS lookup of a selector's key.
DNS_TIMEOUT_S: Final = 5
#: Bound on a key record (a 4096-bit RSA key is about 800 base64 characters).
KEY_RECORD_BYTES_MAX: Final = 8 * 1024
#: Bound on the verifier's message shown to the operator.
DETAIL_CHARS_MAX: Final = 300


class DkimUnavailable(RemoteError):
    """The key could not be looked up (DNS timeout or no resolver): nothing was checked."""


@dataclass(frozen=True, slots=True)
class KeySource:
    """Where a selector's key record comes from: ``dns`` or a saved ``file``.

    ``lookup(name)`` gets the DNS name (``sel._domainkey.example.org.``) and returns
    the TXT record's bytes, ``None`` when there is none, or raises
    ``DkimUnavailable``."""

    kind: Literal["dns", "file"]
    lookup: Callable[[str], bytes | None]


@dataclass(frozen=True, slots=True)
class DkimOutcome:
    verified: Literal["signature", "failed"]
    reason: DkimReason | None = None
    key_sha256: str | None = None
    detail: str = ""  # the library's words, for the operator's terminal only


class _Collect:
    """A logger for dkimpy that keeps its error lines (the why of a False)."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def debug(self, *_: Any) -> None:
        return None

    def error(self, message: Any, *_: Any) -> None:
        self.errors.append(str(message))

    def isEnabledFor(self, _: int) -> bool:
        return False


def verify_signature(raw: bytes, source: KeySource, algorithm: str) -> DkimOutcome:
    """Verify the first (outermost) DKIM-Signature of ``raw`` (its ``a=`` is ``algorithm``)
    with the key ``source`` gives. ``rsa-sha1`` fails as ``weak_algorithm`` unlooked-up:
    RFC 8301 §3.1 retires it for signing and verifying, and dkimpy still accepts it."""
    if algorithm == "rsa-sha1":
        return DkimOutcome("failed", "weak_algorithm", detail="rsa-sha1 (RFC 8301 §3.1)")
    seen: dict[str, bytes] = {}

    def dnsfunc(name: bytes, timeout: int = DNS_TIMEOUT_S) -> bytes | None:
        del timeout  # the source owns its bound
        record = source.lookup(name.decode("ascii", "replace"))
        if record is not None:
            if len(record) > KEY_RECORD_BYTES_MAX:
                record = b""  # refused as a bad key below, never parsed
            seen["record"] = record
        return record

    log = _Collect()
    try:
        checker = dkim.DKIM(raw, logger=log, minkey=RSA_KEY_BITS_MIN, timeout=DNS_TIMEOUT_S)
        good = bool(checker.verify(idx=0, dnsfunc=dnsfunc))
    except dkim.DnsTimeoutError as exc:
        raise DkimUnavailable(str(exc)) from exc
    except dkim.DKIMException as exc:
        return _failed(_reason_of(exc, "record" in seen), seen, _printable(str(exc)))
    if good:
        return DkimOutcome("signature", key_sha256=_sha256(seen))
    detail = _printable("; ".join(log.errors))
    if "record" not in seen or not seen["record"]:
        return _failed("key_not_found" if "record" not in seen else "bad_key", seen, detail)
    return _failed("bad_key" if log.errors else "bad_signature", seen, detail)


def _printable(text: str) -> str:
    """The library's message for a terminal: it quotes the DNS record and the header,
    which are hostile, so only printable ASCII, and bounded."""
    clean = "".join(c if " " <= c <= "~" else "?" for c in text)
    return clean if len(clean) <= DETAIL_CHARS_MAX else clean[: DETAIL_CHARS_MAX - 3] + "..."


def _reason_of(exc: Exception, has_key: bool) -> DkimReason:
    text = str(exc)
    if isinstance(exc, dkim.KeyFormatError):
        return "key_too_small" if "too small" in text else "bad_key"
    if "body hash mismatch" in text:
        return "body_hash_mismatch"
    if "x= value is past" in text:
        return "signature_expired"
    if isinstance(exc, dkim.UnknownKeyTypeError) and has_key:
        return "bad_key"
    return "malformed_signature"


def _failed(reason: DkimReason, seen: dict[str, bytes], detail: str) -> DkimOutcome:
    return DkimOutcome("failed", reason, _sha256(seen), detail)


def _sha256(seen: dict[str, bytes]) -> str | None:
    record = seen.get("record")
    return hashlib.sha256(record).hexdigest() if record else None


def dns_source() -> KeySource:
    """The live DNS, asked with dnspython, each lookup bounded by ``DNS_TIMEOUT_S``.

    Only a definite "no such record" (NXDOMAIN, or no TXT record at the name) is
    ``None``, so ``key_not_found``; a server failure (SERVFAIL), a timeout or no
    resolver is ``DkimUnavailable``. (dkimpy's own lookup also answers ``None`` to a
    SERVFAIL, which would write a permanent ``key_not_found`` for a transient fault.)"""
    import dns.exception
    import dns.resolver

    def lookup(name: str) -> bytes | None:
        try:
            answer = dns.resolver.resolve(
                name, "TXT", raise_on_no_answer=False, lifetime=DNS_TIMEOUT_S, search=False
            )
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        except (dns.exception.DNSException, OSError) as exc:
            raise DkimUnavailable(f"{type(exc).__name__}: {exc}") from exc
        for rdata in answer.rrset or ():
            # RFC 6376 §3.6.2.2: a record's strings are joined with nothing between
            return b"".join(getattr(rdata, "strings", ()))
        return None

    return KeySource("dns", lookup)


def parse_key_record(data: bytes) -> bytes:
    """A saved TXT record: either its value as is (``v=DKIM1; k=rsa; p=...``), or as DNS
    tools print it, in quoted strings (``dig +short TXT``, a zone file line), which are
    joined with nothing between them (RFC 6376 §3.6.2.2: a record's strings are
    concatenated before use); ``ValueError`` when it is too long, not ASCII or has no
    key."""
    if len(data) > KEY_RECORD_BYTES_MAX:
        raise ValueError(f"the key record is over {KEY_RECORD_BYTES_MAX} bytes")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise ValueError("the key record is not ASCII") from exc
    if '"' in text:
        parts = text.split('"')
        if len(parts) % 2 == 0:
            raise ValueError("the key record has an unbalanced quote")
        text = "".join(parts[1::2])
    value = " ".join(text.split())
    if "p=" not in value:
        raise ValueError("the key record has no p= tag (RFC 6376 §3.6.1)")
    return value.encode("ascii")


def file_source(record: bytes) -> KeySource:
    """A saved key record (``parse_key_record``), given for the one selector looked up."""
    value = parse_key_record(record)
    return KeySource("file", lambda _name: value)
