"""The consortium directory: one member's authorities, channels, languages and treaties.

Theory of operation
-------------------
A ``directory_entry`` record (a governance type, signed by the member's own
admin key, docs/DIRECTORY.md) says, for one state, what a desk officer of
another member needs before sending a request: which authority is competent
for which instrument and how to reach it, its 24/7 point of contact (Budapest
Art 35), the EU enforcing authorities (Regulation (EU) 2023/1543), the
languages it accepts, the instruments in force for it (``ledger/instruments.py``)
and its declarations and reservations. The fields follow the Council of
Europe PC-OC national-procedures form and the UNODC SHERLOC directory of
competent national authorities (docs/DIRECTORY.md cites both).

``parse_entry`` validates the WHOLE record with a strict pydantic model (no
coercion, ``extra="forbid"`` at every level, a bound on every list and
string) and raises ``RecordInvalid`` naming the first bad field, code
``invalid_directory_entry`` (or a cross-field code named in the rule). The
rules that need the chain (the signer's state, an unchanged entry) are in
``node/governance.py``; the treaty-matrix rules that read the directory are in
``ledger/acts_context.py``.

``content_of`` is the part of the record that says something (everything but
the envelope fields: schema, chain, actor, nonce, time): two entries with the
same content are the same entry, so an import is idempotent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from ledger.acts_fields import LanguageTag, ShortText, StateCode, Text, Timestamp
from ledger.canonical import canonical_bytes
from ledger.errors import RecordInvalid
from ledger.hashing import sha256_hex
from ledger.instruments import INSTRUMENT_ID_PATTERN, INSTRUMENTS_PER_ENTRY_MAX, kind_of

ENTRY_CODE: Final = "invalid_directory_entry"
AUTHORITIES_MAX: Final = 32
CHANNELS_MAX: Final = 8
DECLARATIONS_MAX: Final = 64
LANGUAGES_MAX: Final = 16
#: Fields of a directory_entry that belong to the envelope, not to what it says.
ENVELOPE_FIELDS: Final = frozenset({"schema", "type", "chain_id", "actor", "nonce", "occurred_at"})

InstrumentId = Annotated[str, StringConstraints(pattern=INSTRUMENT_ID_PATTERN)]
AuthorityId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
#: How a request reaches the authority (issue 19): e-CODEX and its EU reference
#: implementation eEDES, INTERPOL's I-24/7, e-MLA, the 24/7 network's e-mail, a
#: provider's law-enforcement portal, or diplomatic channels.
ChannelKind = Literal[
    "e_codex", "eedes", "i24_7", "e_mla", "email_24_7", "provider_portal", "diplomatic"
]
#: What an authority is for the instruments it lists: the central authority for MLA
#: (Budapest Art 27(2)(a), UNTOC Art 18(13)), another competent authority, the 24/7
#: point of contact (Budapest Art 35), an EU enforcing authority (Regulation (EU)
#: 2023/1543: the one an EPOC is notified to, Art 8), or an issuing, validating or
#: executing authority.
AuthorityRole = Literal[
    "central_authority",
    "competent_authority",
    "contact_24_7",
    "enforcing_authority",
    "issuing_authority",
    "validating_authority",
    "executing_authority",
]
Requirement = Literal["required", "accepted", "not_supported"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Channel(_Strict):
    """One way to reach an authority (PC-OC form: means and channels of communication)."""

    kind: ChannelKind
    endpoint: ShortText  # an e-CODEX party id, an I-24/7 address, a mailbox, a URL
    encryption: Requirement = "accepted"
    signature: Literal["qualified", "advanced", "none"] = "none"
    notes: Text | None = None


class Authority(_Strict):
    """A competent or central authority, or a point of contact (SHERLOC: one CNA)."""

    id: AuthorityId
    name: ShortText
    roles: list[AuthorityRole] = Field(min_length=1, max_length=7)
    instruments: list[InstrumentId] = Field(
        default_factory=list, max_length=INSTRUMENTS_PER_ENTRY_MAX
    )
    address: Text | None = None
    hours: ShortText | None = None  # "24/7", "Mon-Fri 08:00-17:00 Europe/Paris"
    channels: list[Channel] = Field(min_length=1, max_length=CHANNELS_MAX)
    languages: list[LanguageTag] | None = Field(None, min_length=1, max_length=LANGUAGES_MAX)


class InForce(_Strict):
    """An instrument in force for the state, from when, and under what title locally."""

    instrument: InstrumentId
    since: Timestamp | None = None
    note: Text | None = None


class Declaration(_Strict):
    """A declaration or reservation the state made under an instrument.

    ``sap_7_5_a_notification``: orders to providers on its territory are to be
    notified to it (SAP Art 7(5)(a)); ``dual_criminality_29_4``: it may refuse
    preservation without dual criminality (Budapest Art 29(4));
    ``languages``: the languages it accepts requests in under that instrument;
    ``other``: free text, with the article.
    """

    kind: Literal["sap_7_5_a_notification", "dual_criminality_29_4", "languages", "other"]
    instrument: InstrumentId
    article: ShortText
    text: Text | None = None
    languages: list[LanguageTag] | None = Field(None, min_length=1, max_length=LANGUAGES_MAX)
    #: SAP Art 7(5)(a): "in every case or in identified circumstances".
    circumstances: Text | None = None


class Actor(_Strict):
    state: StateCode
    agency: ShortText


class Entry(_Strict):
    """A whole ``directory_entry`` record (docs/DIRECTORY.md)."""

    schema_: Literal["comity/1"] = Field(alias="schema")
    type: Literal["directory_entry"]
    chain_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    actor: Actor
    nonce: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
    occurred_at: Timestamp
    state: StateCode
    name: ShortText
    languages: list[LanguageTag] = Field(min_length=1, max_length=LANGUAGES_MAX)
    authorities: list[Authority] = Field(min_length=1, max_length=AUTHORITIES_MAX)
    instruments: list[InForce] = Field(default_factory=list, max_length=INSTRUMENTS_PER_ENTRY_MAX)
    declarations: list[Declaration] = Field(default_factory=list, max_length=DECLARATIONS_MAX)
    links: list[Annotated[str, StringConstraints(pattern=r"^https://\S{1,290}$")]] = Field(
        default_factory=list, max_length=8
    )

    def instrument_ids(self) -> frozenset[str]:
        return frozenset(i.instrument for i in self.instruments)

    def declared(self, kind: str, instrument: str | None = None) -> bool:
        return any(
            d.kind == kind and (instrument is None or d.instrument == instrument)
            for d in self.declarations
        )

    def accepted_languages(self) -> frozenset[str]:
        """Every language it accepts: the entry's, and those of its language declarations."""
        out = {tag.casefold() for tag in self.languages}
        for declaration in self.declarations:
            out.update(tag.casefold() for tag in declaration.languages or [])
        return frozenset(out)

    def authority_for(self, instrument: str | None, role: str | None = None) -> Authority | None:
        """The first authority competent for ``instrument`` (by kind), or with ``role``."""
        for authority in self.authorities:
            if role is not None and role in authority.roles:
                return authority
            if instrument is not None and instrument in {kind_of(i) for i in authority.instruments}:
                return authority
        return None


def _fail(field: str, message: str, code: str = ENTRY_CODE) -> RecordInvalid:
    return RecordInvalid(f"{field} {message}", field=field, code=code)


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = "record"
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not str(part).startswith(("function-", "literal[")):
            path += f".{'schema' if part == 'schema_' else part}"
    return path


def parse_entry(record: Mapping[str, Any]) -> Entry:
    """The record as an ``Entry``, or ``RecordInvalid`` naming the first bad field."""
    try:
        entry = Entry.model_validate(record)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = _field_path(tuple(first["loc"]))
        if first["type"] == "missing":
            raise _fail(field, "is missing") from exc
        if first["type"] == "extra_forbidden":
            raise _fail(field, "is not a field of directory_entry") from exc
        raise _fail(field, f": {first['msg']}") from exc
    _check_unique(entry)
    return entry


def _check_unique(entry: Entry) -> None:
    """No list repeats a value; the authorities' ids are distinct; one 24/7 contact."""
    ids = [a.id for a in entry.authorities]
    if len(set(ids)) != len(ids):
        raise _fail("record.authorities", "must not repeat an id", "duplicate_authority")
    listed = [i.instrument for i in entry.instruments]
    if len(set(listed)) != len(listed):
        raise _fail("record.instruments", "must not list an instrument twice")
    if len({t.casefold() for t in entry.languages}) != len(entry.languages):
        raise _fail("record.languages", "must not repeat a value")
    for index, authority in enumerate(entry.authorities):
        if len(set(authority.roles)) != len(authority.roles):
            raise _fail(f"record.authorities[{index}].roles", "must not repeat a value")
        if len(set(authority.instruments)) != len(authority.instruments):
            raise _fail(f"record.authorities[{index}].instruments", "must not repeat a value")
    _check_instruments(entry)
    if sum("contact_24_7" in a.roles for a in entry.authorities) > 1:
        raise _fail("record.authorities", "name at most one contact_24_7 (Budapest Art 35)")
    for index, declaration in enumerate(entry.declarations):
        if declaration.kind == "languages" and not declaration.languages:
            raise _fail(f"record.declarations[{index}].languages", "is required for kind languages")
        if declaration.kind == "other" and declaration.text is None:
            raise _fail(f"record.declarations[{index}].text", "is required for kind other")
        if (
            declaration.kind == "sap_7_5_a_notification"
            and declaration.instrument != "budapest_sap"
        ):
            raise _fail(f"record.declarations[{index}].instrument", "must be budapest_sap")
        if declaration.kind == "dual_criminality_29_4" and declaration.instrument != "budapest":
            raise _fail(f"record.declarations[{index}].instrument", "must be budapest")


def _check_instruments(entry: Entry) -> None:
    """Authorities and declarations name instruments the entry says are in force; a
    bilateral instrument's partner is another state."""
    listed = entry.instrument_ids()
    for index, in_force in enumerate(entry.instruments):
        if in_force.instrument.partition(":")[2] == entry.state:
            raise _fail(f"record.instruments[{index}].instrument", "names the state itself")
    for index, authority in enumerate(entry.authorities):
        for at, instrument in enumerate(authority.instruments):
            if instrument not in listed:
                raise _fail(
                    f"record.authorities[{index}].instruments[{at}]",
                    f"{instrument} is not in record.instruments (in force for the state)",
                )
    for index, declaration in enumerate(entry.declarations):
        if declaration.instrument not in listed:
            raise _fail(
                f"record.declarations[{index}].instrument",
                f"{declaration.instrument} is not in record.instruments (in force for the state)",
            )


def content_of(record: Mapping[str, Any]) -> dict[str, Any]:
    """What the entry says (module docstring): the record without its envelope fields."""
    return {k: v for k, v in record.items() if k not in ENVELOPE_FIELDS}


def content_hash(record: Mapping[str, Any]) -> str:
    return sha256_hex(canonical_bytes(content_of(record)))


# --- the import/export document (docs/DIRECTORY.md) --------------------------------------

FORMAT: Final = "comity-directory/1"
DOCUMENT_ENTRIES_MAX: Final = 200


def document(entries: list[Mapping[str, Any]], height: int | None = None) -> dict[str, Any]:
    """The export document: each entry's content (``content_of``), by state."""
    out: dict[str, Any] = {"format": FORMAT}
    if height is not None:
        out["height"] = height
    out["entries"] = sorted((content_of(e) for e in entries), key=lambda c: str(c.get("state")))
    return out


def document_entry(obj: Any, state: str) -> dict[str, Any]:
    """The content ``state`` has in an import document; ``RecordInvalid`` naming the field.

    The document's other entries are not checked here: each state signs its own.
    """
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise RecordInvalid(
            f'the document must be an object with "format": "{FORMAT}"',
            field="format",
            code="bad_document",
        )
    if set(obj) - {"format", "height", "entries"}:
        raise RecordInvalid(
            f"the document has unknown members {sorted(set(obj) - {'format', 'height', 'entries'})}",
            field="document",
            code="bad_document",
        )
    entries = obj.get("entries")
    if not isinstance(entries, list) or not 1 <= len(entries) <= DOCUMENT_ENTRIES_MAX:
        raise RecordInvalid(
            f"entries must be a list of 1-{DOCUMENT_ENTRIES_MAX} entries",
            field="entries",
            code="bad_document",
        )
    found = [e for e in entries if isinstance(e, dict) and e.get("state") == state]
    if len(found) != 1:
        raise RecordInvalid(
            f"the document must hold exactly one entry for {state}, it holds {len(found)}",
            field="entries",
            code="no_entry_for_state",
        )
    content = found[0]
    if set(content) & ENVELOPE_FIELDS:
        raise RecordInvalid(
            f"an entry holds envelope fields {sorted(set(content) & ENVELOPE_FIELDS)}",
            field="entries",
            code="bad_document",
        )
    return dict(content)
