"""Clear fields stay clean: personal identifiers are refused in a ``consortium`` act.

Theory of operation
-------------------
An act with ``visibility: "consortium"`` is read in clear by every member's
node and kept for ever (docs/ACTS.md "Visibility and clear fields"). Two checks
keep what names a person, an account or a device out of such an act:

* ``refuse_private_fields_in_clear``: the fields of the catalogue that exist to
  name a system, device, account or person (``PRIVATE_FIELDS``) must not be in
  clear at all (422 ``private_field_in_clear``); they belong in the private body
  of a ``parties`` act, or in ``sealed``.
* ``lint_clear_fields``: every other string is searched for obvious personal
  identifiers: e-mail addresses, phone numbers, IPv4 and IPv6 addresses, IBANs
  (mod-97 checked) and payment card numbers (Luhn checked). The first hit is a
  422 ``personal_identifier`` naming the dotted path of the string
  (``record.measures[0]``); the message says what kind of identifier was found
  but never repeats it, so the refusal does not leak into logs.

The linter is deliberately narrow: it must never refuse what the ledger itself
writes (hex hashes and record ids, nonces, RFC 3339 times, state codes, case
references) nor ordinary text with dates and numbers. Fields that are ledger
identifiers by design are skipped by name (``SKIPPED_KEYS``), and any string
that is wholly a hash, a time or a state code is skipped by shape. Phone numbers
are matched only in shapes that dates and references do not take: a leading
``+`` or ``00``, a national trunk ``0`` with phone-like grouping, a Chinese
mobile number, or the North American ``(NXX) NXX-XXXX``. Both functions are
pure: the verdict depends on the record only, so every node reaches the same.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

from ledger.errors import RecordInvalid

#: Catalogue fields that name a system, device, account or person (ledger/acts.py,
#: ledger/acts_fields.py). Dotted paths below the record.
PRIVATE_FIELDS: Final = frozenset(
    {
        "target",  # remote_inspection: the system or account inspected
        "medium_identity",  # search_seizure: the device or medium seized
        "medium_location.description",  # online_extraction: where the data sits
        "consent.given_by",  # art32_access: the person who consented (Art 32(b))
        "consent.authority",  # art32_access: why that person may disclose
    }
)

#: Keys whose values are identifiers of the ledger by design, never free text.
SKIPPED_KEYS: Final = frozenset(
    {
        "schema",
        "type",
        "chain_id",
        "nonce",
        "case_ref",
        "visibility",
        "sealed",
        "signer",
        "signature",
        "sha256",
        "refs",
        "size",
        "media_type",
        "tool_version",
        "time_zone",
        "state",
        "territorial_states",
        "requested_state",
        "issuing_state",
        "executing_state",
        "establishment_state",
        "receiving_states",
        "parties",
        "commitment",
        "salt",
        "occurred_at",
        "approved_at",
        "executed_at",
        "expires_at",
        "starts_at",
        "ends_at",
        "respond_by",
        "retain_until",
    }
)

_LEDGER_VALUE = re.compile(
    r"^(?:[0-9a-f]{64}|[A-Z]{2}|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z)$"
)

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\w]|\.\d)")
_IPV6_CANDIDATE = re.compile(r"(?<![\w:.])[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(?![\w:])")

#: Start and end of a phone-number or card candidate: not inside a word, a
#: hash, a dotted number or a dashed reference.
_B = r"(?<![\w+./:-])"
_E = r"(?![\w/:-]|[.-]\d)"
_PHONES = (
    # E.164 (also after "tel:") and the international prefix 00: 8-15 digits.
    re.compile(r"(?<![\w+])\+[1-9](?:[ .-]?\(?\d\)?){7,14}" + _E),
    *(
        re.compile(_B + pattern + _E)
        for pattern in (
            r"00[1-9](?:[ .-]?\(?\d\)?){7,14}",
            # North America: (NXX) NXX-XXXX or NXX-NXX-XXXX with separators.
            r"(?:\([2-9]\d{2}\) ?|[2-9]\d{2}[ .-])[2-9]\d{2}[ .-]\d{4}",
            # Chinese mobile: 1[3-9]X XXXX XXXX, grouped 3-4-4 or not at all.
            r"1[3-9]\d(?:\d{8}|[ -]\d{4}[ -]\d{4})",
            # A national trunk 0: (0XX) XXX XXXX, 0X XX XX XX XX, 0XX-XXX-XXXX, 0XXXXXXXXX.
            r"\(0\d{1,4}\) ?\d{3,4}[ .-]?\d{3,4}",
            r"0[1-9](?:[ .]\d{2}){4}",
            r"0\d{1,3}-\d{3,4}-\d{4}",
            r"0[1-9]\d{8,9}",
        )
    ),
)

_IBAN = re.compile(
    r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])"
)
_CARD = re.compile(
    _B + r"(?:\d{13,19}|\d{4}(?:[ -]\d{4}){2}[ -]\d{1,7}|\d{4}[ -]\d{6}[ -]\d{4,5})" + _E
)


def refuse_private_fields_in_clear(record: Mapping[str, Any]) -> None:
    """Raise 422 ``private_field_in_clear`` if a ``PRIVATE_FIELDS`` field is present."""
    for path in sorted(PRIVATE_FIELDS):
        value: Any = record
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is not None:
            raise RecordInvalid(
                f"record.{path} names a person, account or device and must not be in "
                "clear in a consortium act: file the act with visibility 'parties' "
                "or put the detail in record.sealed",
                field=f"record.{path}",
                code="private_field_in_clear",
            )


def lint_clear_fields(record: Mapping[str, Any]) -> None:
    """Raise 422 ``personal_identifier`` naming the first string that holds one."""
    for path, text in _strings(record, "record"):
        kind = identifier_kind(text)
        if kind is not None:
            raise RecordInvalid(
                f"{path} holds what looks like {kind}; a consortium act is read in "
                "clear by every member: file it with visibility 'parties' or put "
                "the detail in record.sealed",
                field=path,
                code="personal_identifier",
            )


def identifier_kind(text: str) -> str | None:
    """The kind of the first personal identifier found in ``text``, or None."""
    if _LEDGER_VALUE.match(text):
        return None
    for kind, found in _DETECTORS:
        if found(text):
            return kind
    return None


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key in sorted(value):
            if key not in SKIPPED_KEYS:
                yield from _strings(value[key], f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def _has_email(text: str) -> bool:
    return _EMAIL.search(text) is not None


def _has_ipv4(text: str) -> bool:
    return _IPV4.search(text) is not None


def _has_ipv6(text: str) -> bool:
    for match in _IPV6_CANDIDATE.finditer(text):
        candidate = match.group().rstrip(".")
        if not re.search(r"[0-9A-Fa-f]", candidate):
            continue
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        return True
    return False


def _has_phone(text: str) -> bool:
    return any(pattern.search(text) for pattern in _PHONES)


def _has_iban(text: str) -> bool:
    for match in _IBAN.finditer(text):
        iban = match.group().replace(" ", "")
        if 15 <= len(iban) <= 34 and _mod97(iban) == 1:
            return True
    return False


def _mod97(iban: str) -> int:
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(char, 36)) for char in moved)) % 97


def _has_card(text: str) -> bool:
    for match in _CARD.finditer(text):
        digits = re.sub(r"[ -]", "", match.group())
        if 13 <= len(digits) <= 19 and digits[0] in "23456" and _luhn(digits):
            return True
    return False


def _luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


#: Checked in this order; a card number is tried before a phone number, which
#: it may resemble, and an IBAN before both.
_DETECTORS: Final[tuple[tuple[str, Callable[[str], bool]], ...]] = (
    ("an e-mail address", _has_email),
    ("an IBAN", _has_iban),
    ("a payment card number", _has_card),
    ("an IPv6 address", _has_ipv6),
    ("an IPv4 address", _has_ipv4),
    ("a phone number", _has_phone),
)
