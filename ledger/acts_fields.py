"""Field types shared by the act catalogue (``ledger/acts.py``), schema ``comity/1``.

Theory of operation
-------------------
Every act record is validated by a pydantic model that describes the WHOLE
record, including the common fields ``ledger/records.py`` already checks
(schema, type, chain_id, actor, nonce, occurred_at and the indexed optional
fields), so ``GET /v1/schemas`` publishes one complete JSON Schema per type:
the "common data standard across states" of docs/DOMAIN.md ("The proposal").
The limits here repeat those of ``ledger/records.py`` (never looser).

Models are ``strict`` (a JSON string is never coerced into a number or a
bool) and ``extra="forbid"`` at every level. There is deliberately no free
``details`` object in the clear: docs/DOMAIN.md "Safeguards" asks for minimal
metadata on the chain and no names in the clear, so anything outside the
catalogue goes into ``sealed`` (encrypted to named states, ``ledger/sealed.py``).

Cross-field rules raise ``RecordInvalid`` directly from ``model_validator``
hooks through ``fail``: pydantic lets non-``ValueError`` exceptions through
unchanged, so the error names the exact field (``record.expires_at``) rather
than the model root.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final, Literal, NoReturn

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    model_validator,
)

from ledger.errors import InvariantViolation, RecordInvalid
from ledger.records import SCHEMA, parse_time

ACT_CODE = "invalid_act"
#: Comity's default cap on one preservation (Budapest Art 16(2): "up to a maximum of
#: ninety days"); a consortium may configure another cap (``ActPolicy``).
PRESERVATION_DAYS_MAX = 90
#: The newest catalogue version (``ledger/acts_versions.py``): the models describe it.
CATALOGUE_LATEST = 3


@dataclass(frozen=True, slots=True)
class ActPolicy:
    """Consortium-configurable limits of the catalogue, passed as validation context.

    ``version``: the catalogue version in force at the act's height; rules a
    later version added are applied only from it (``ledger/acts_versions.py``).
    """

    preservation_days_max: int = PRESERVATION_DAYS_MAX
    version: int = CATALOGUE_LATEST

    def __post_init__(self) -> None:
        if not 1 <= self.version <= CATALOGUE_LATEST:
            raise InvariantViolation(
                f"catalogue version {self.version} is out of range [1, {CATALOGUE_LATEST}]"
            )
        if not 1 <= self.preservation_days_max <= 3660:
            raise InvariantViolation(
                f"preservation cap {self.preservation_days_max} days is out of range [1, 3660]"
            )


StateCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
Hex32 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=500)]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
#: Pseudonymous case number: no spaces, so a person's name does not fit by accident
#: (docs/DOMAIN.md "What an act record carries": no names of suspects in the clear).
CaseRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")]
#: An IANA time-zone name ("Asia/Bangkok", "UTC") or a fixed offset ("+07:00").
TimeZone = Annotated[
    str,
    StringConstraints(
        pattern=r"^([A-Za-z_]+(/[A-Za-z0-9_+-]+){0,2}|[+-]\d{2}:\d{2})$", max_length=64
    ),
]
#: 002 §11; ``identification``: data requested for the sole purpose of identifying the
#: user (Regulation (EU) 2023/1543 Art 3(10)), which changes who may issue an EPOC.
DataCategory = Literal["subscriber", "identification", "traffic", "content"]
#: ``consortium``: every member reads the act in clear (opt-in, linted by
#: ``ledger/acts_lint.py``); ``parties``: only the states the act concerns.
Visibility = Literal["consortium", "parties"]


def _check_time(value: str) -> str:
    try:
        parse_time(value, "time")
    except RecordInvalid as exc:
        raise ValueError("must be an RFC 3339 UTC time like 2026-01-31T12:00:00Z") from exc
    return value


Timestamp = Annotated[
    str,
    StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$"),
    AfterValidator(_check_time),
]


def fail(field: str, message: str, code: str = ACT_CODE) -> NoReturn:
    """Raise the catalogue's error for ``record.<field>``."""
    raise RecordInvalid(f"record.{field} {message}", field=f"record.{field}", code=code)


def when(value: str) -> datetime:
    """A validated ``Timestamp`` as a datetime."""
    return parse_time(value, "time")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Actor(Strict):
    state: StateCode
    agency: ShortText


#: What an attached item is to the case (docs/ACTS.md §14).
EvidenceRole = Literal[
    "request_document",
    "translation",
    "authorisation_document",
    "consent",
    "evidence",
    "recording",
    "report",
]
#: A BCP 47 language tag ("en", "th", "zh-Hans-CN"): a 2-3 letter primary
#: language and up to five 1-8 character subtags (RFC 5646 section 2.1, simplified).
LanguageTag = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,5}$", max_length=64)
]


class EvidenceItem(Strict):
    """One evidence item: its hash and, optionally, how it was made (docs/DOMAIN.md).

    ``role`` says what the item is (a request document, its translation, ...),
    ``language`` the language it is written or spoken in, ``derived_from`` the
    SHA-256 of the item it was made from (a translation's original, a report's
    recording); a translation always names its original.
    """

    sha256: Hex32
    role: EvidenceRole | None = None
    language: LanguageTag | None = None
    derived_from: Hex32 | None = None
    size: int | None = Field(None, ge=0, le=2**53 - 1)
    media_type: ShortText | None = None
    name: ShortText | None = None
    tool: ShortText | None = None
    tool_version: ShortText | None = None


class LegalBasis(Strict):
    instrument: ShortText  # e.g. "Budapest Convention"
    article: ShortText | None = None  # e.g. "Art 29"


class Authorisation(Strict):
    """Who approved an act, at what level, under what reference (002 §10, 004 §66)."""

    reference: ShortText
    approved_by: ShortText
    level: Literal[
        "judicial",
        "prosecutorial",
        "ministerial",
        "central_authority",
        "senior_police",
        "independent",
    ]
    approved_at: Timestamp | None = None


class Custodian(Strict):
    """The provider or other holder of the data; never a private person's name."""

    name: ShortText
    kind: Literal[
        "service_provider", "registrar", "financial_institution", "public_body", "other"
    ] = "service_provider"
    state: StateCode | None = None


class Proportionality(Strict):
    seriousness: LongText
    less_intrusive_alternatives: LongText
    scope: LongText | None = None


class Consent(Strict):
    """Budapest Art 32(b): the person with lawful authority to disclose, and proof."""

    given_by: ShortText  # a role or pseudonym, e.g. "account holder (subject A)"
    authority: Text  # why that person may lawfully disclose the data
    sha256: Hex32  # hash of the consent document or recording


class MediumLocation(Strict):
    state: StateCode | None = None  # None: location unknown ("loss of location")
    description: Text


class Participant(Strict):
    role: Literal[
        "witness",
        "expert",
        "suspect",
        "victim",
        "interpreter",
        "judge",
        "prosecutor",
        "defence",
        "investigator",
        "other",
    ]
    state: StateCode


class SealedDetails(Strict):
    """Details encrypted to some states; the byte format is in ``ledger/sealed.py``."""

    recipients: dict[StateCode, Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{160}$")]] = (
        Field(min_length=1, max_length=50)
    )
    nonce: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{48}$")]
    ciphertext: Annotated[
        str, StringConstraints(pattern=r"^([0-9a-f]{2}){16,}$", max_length=96 * 1024)
    ]
    plaintext_sha256: Hex32


class ActBase(Strict):
    """The fields every act carries (docs/DOMAIN.md "What an act record carries")."""

    schema_: Literal["comity/1"] = Field(alias="schema")
    type: str
    chain_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    actor: Actor
    nonce: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
    occurred_at: Timestamp
    case_ref: CaseRef
    territorial_states: list[StateCode] = Field(min_length=1, max_length=50)
    evidence: list[EvidenceItem] = Field(default_factory=list, max_length=1000)
    refs: list[Hex32] = Field(default_factory=list, max_length=100)
    legal_basis: LegalBasis | None = None
    authorisation: Authorisation | None = None
    custodian: Custodian | None = None
    data_category: list[DataCategory] | None = Field(None, min_length=1, max_length=4)
    approved_at: Timestamp | None = None
    executed_at: Timestamp | None = None
    sealed: SealedDetails | None = None
    #: Who may read the act's content (docs/ACTS.md "Visibility and clear fields"):
    #: absent on acts written before issue 17, which are not linted.
    visibility: Visibility | None = None

    @model_validator(mode="after")
    def _check_rules(self, info: ValidationInfo) -> ActBase:
        context = info.context if isinstance(info.context, dict) else {}
        policy = context.get("policy")
        self.common_rules()
        self.rules(policy if isinstance(policy, ActPolicy) else ActPolicy())
        return self

    def rules(self, policy: ActPolicy) -> None:
        """Type-specific cross-field rules; each act model overrides this."""

    def common_rules(self) -> None:
        for name in ("territorial_states", "refs", "data_category", "use_conditions"):
            values: list[Any] = getattr(self, name, None) or []
            if len(set(values)) != len(values):
                fail(name, "must not repeat a value")
        digests = [item.sha256 for item in self.evidence]
        if len(set(digests)) != len(digests):
            fail("evidence", "must not list the same sha256 twice")
        for index, item in enumerate(self.evidence):
            if item.derived_from == item.sha256:
                fail(f"evidence[{index}].derived_from", "must not be the item's own sha256")
            if item.role == "translation" and item.derived_from is None:
                fail(f"evidence[{index}].derived_from", "of a translation names its original")


#: How a request travels (issue 18, docs/ACTS.md §14): the Budapest Art 35 24/7 network or its
#: e-mail contact, a central authority (Art 27(2)), direct (Art 27(9)(a) between judicial
#: authorities), INTERPOL (Art 27(9)(b)), the EU e-CODEX system, or diplomatic channels.
Channel = Literal[
    "24_7_network",
    "email_24_7",
    "central_authority",
    "direct",
    "interpol",
    "e_codex",
    "diplomatic",
]

#: The channels an ``exchange_receipt`` anchors a transmission on (issue 19, docs/CHANNELS.md):
#: e-CODEX and the eEDES system over it (Regulation (EU) 2023/1543 Art 19), INTERPOL's
#: I-24/7, e-MLA platforms, 24/7 point-of-contact e-mail (Budapest Art 35), a provider's
#: law-enforcement portal, and diplomatic channels.
ReceiptChannel = Literal[
    "e_codex",
    "eedes",
    "i24_7",
    "e_mla",
    "email_24_7",
    "provider_portal",
    "diplomatic",
]
#: A channel's own identifier (a message id, an endpoint or party id): printable ASCII
#: without spaces, bounded, so no control character or line break reaches a log or a CSV.
ChannelId = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,256}$")]
#: The ETSI EN 319 522-1 REM evidence events (docs/CHANNELS.md "Delivery evidence").
EvidenceEvent = Literal["submission", "relay", "delivery", "retrieval", "acceptance", "rejection"]
#: Bound on the delivery evidence items of one receipt.
DELIVERY_EVIDENCE_MAX = 20


class DeliveryEvidence(Strict):
    """One delivery event of a transmission: what happened, the SHA-256 of its evidence
    (the REM evidence document, a connector's receipt, a mail server's DSN), and when."""

    kind: EvidenceEvent
    sha256: Hex32
    at: Timestamp


#: Why a DKIM check failed (docs/CHANNELS.md "The e-mail hasher").
DkimFailure = Literal[
    "body_hash_mismatch",
    "key_not_found",
    "bad_key",
    "key_too_small",
    "bad_signature",
    "signature_expired",
    "weak_algorithm",
    "malformed_signature",
]


class DkimCheck(Strict):
    """What an e-mail receipt's author checked of the message's DKIM-Signature (RFC 6376).

    ``body_hash``: the ``bh=`` tag against the canonicalised body, computed locally;
    ``signature``: whether the header signature was verified against the signer's
    key (``not_checked`` unless the author had the key). ``verified`` sums both up:
    ``signature`` (the header signature verifies, so does the body hash),
    ``body_hash_only`` (the body hash matches, the signature was not checked) or
    ``failed`` with its ``reason``; ``key_source`` (``dns`` or a saved ``file``) and
    ``key_sha256`` (of the TXT record) say which key was used. Receipts written
    before ``verified`` existed leave it out (ledger/acts.py checks the combination)."""

    domain: ShortText
    selector: ShortText
    body_hash: Literal["verified", "mismatch"]
    signature: Literal["not_checked", "verified", "failed"]
    verified: Literal["signature", "body_hash_only", "failed"] | None = None
    reason: DkimFailure | None = None
    key_source: Literal["dns", "file"] | None = None
    key_sha256: Hex32 | None = None


def check_dkim(dkim: DkimCheck) -> None:
    """``dkim``'s fields tell one story: ``verified`` agrees with ``body_hash`` and
    ``signature``, a failure names its reason, a checked signature names its key."""
    where = "dkim"
    if dkim.verified is None:  # the form before issue 19's verification
        for name in ("reason", "key_source", "key_sha256"):
            if getattr(dkim, name) is not None:
                fail(f"{where}.{name}", "is only given with dkim.verified")
        return
    if dkim.verified != "failed" and dkim.reason is not None:
        fail(f"{where}.reason", "is only given when dkim.verified is 'failed'")
    expected = _DKIM_STATES.get(dkim.verified)
    if expected is not None and (dkim.body_hash, dkim.signature) != expected:
        fail(f"{where}.verified", f"{dkim.verified!r} needs body_hash and signature {expected}")
    if dkim.verified == "failed":
        _check_dkim_failure(dkim)
    checked = dkim.signature != "not_checked"
    if checked != (dkim.key_source is not None):
        fail(f"{where}.key_source", "names the key exactly when the signature was checked")
    if dkim.verified == "signature" and dkim.key_sha256 is None:
        fail(f"{where}.key_sha256", "is required when the signature verified")
    if not checked and dkim.key_sha256 is not None:
        fail(f"{where}.key_sha256", "is only given when the signature was checked")


#: The (body_hash, signature) a verdict other than ``failed`` needs.
_DKIM_STATES: Final = {
    "signature": ("verified", "verified"),
    "body_hash_only": ("verified", "not_checked"),
}


def _check_dkim_failure(dkim: DkimCheck) -> None:
    if dkim.reason is None:
        fail("dkim.reason", "is required when dkim.verified is 'failed'")
    if (dkim.reason == "body_hash_mismatch") != (dkim.body_hash == "mismatch"):
        fail("dkim.reason", "is 'body_hash_mismatch' exactly when dkim.body_hash is 'mismatch'")
    wanted = "not_checked" if dkim.body_hash == "mismatch" else "failed"
    if dkim.signature != wanted:
        fail("dkim.signature", f"must be {wanted!r} for reason {dkim.reason!r}")


#: Bound on the conditions of use one act may carry (TigerStyle: a limit on everything).
USE_CONDITIONS_MAX = 20
UseConditions = Annotated[list[Text], Field(min_length=1, max_length=USE_CONDITIONS_MAX)]
#: The conditions an answer grants a request under (Budapest Art 27(6)).
AnswerConditions = Annotated[list[Text], Field(min_length=1, max_length=USE_CONDITIONS_MAX)]


class RequestBase(ActBase):
    """An act that hands information to another state, with the conditions it comes with.

    ``confidential``: keep the fact and subject of the request confidential
    (Budapest Art 27(8)). ``use_conditions``: the conditions the information or
    material is supplied under, e.g. use only for the investigation stated
    (Budapest Art 28(2)). ``onward_transfer``: whether the receiver may pass the
    personal data to another state or organisation only with the sender's prior
    authorisation (SAP Art 14(10)) or not at all. A receiving state accepts them
    with a ``conditions_acknowledgement`` (Budapest Art 28(3): once it accepts a
    condition, it is bound by it).
    """

    confidential: bool | None = None
    use_conditions: UseConditions | None = None
    onward_transfer: Literal["prohibited", "with_consent"] | None = None
    channel: Channel | None = None
    #: The languages the request is written in (its documents and translations).
    languages: list[LanguageTag] | None = Field(None, min_length=1, max_length=10)

    def common_rules(self) -> None:
        super().common_rules()
        languages = self.languages or []
        if len(set(languages)) != len(languages):
            fail("languages", "must not repeat a value")
        for index, item in enumerate(self.evidence):
            written = item.role in ("request_document", "translation") and item.language
            if languages and written and item.language not in languages:
                fail(
                    f"evidence[{index}].language",
                    f"{item.language} is not one of the request's languages {languages}",
                )
        if self.confidential and self.visibility == "consortium":
            # Every member would read what the requester asked to keep confidential.
            fail(
                "visibility",
                "of a confidential act must be 'parties' (Budapest Art 27(8))",
                code="confidential_in_clear",
            )


if SCHEMA != "comity/1":
    raise InvariantViolation(f"the act catalogue is written for schema comity/1, not {SCHEMA}")
