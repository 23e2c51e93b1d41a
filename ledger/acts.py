"""The act catalogue, schema ``comity/1``: one pydantic model per act type.

Theory of operation
-------------------
docs/DOMAIN.md ("Act types named in the sources") lists nineteen act types, and
issue 17 adds ``conditions_acknowledgement``; each has a model below
describing the whole record (common fields from ``ActBase`` plus its own). ``register_acts(registry)`` plugs one rule per
type into ``ledger.records.TypeRegistry``: the rule validates the record
with the type's model and turns the first pydantic error into
``RecordInvalid(field="record.<path>", code="invalid_act")``. Rules that need
the chain (what a ref points to, who may answer, custody order) are in
``ledger/acts_context.py``; this module sees one record only, so every node
reaches the same verdict without reading anything. An act that opts into
``visibility: "consortium"`` is also checked by ``ledger/acts_lint.py``: no
private field and no personal identifier in clear.

The catalogue is documented for humans in docs/ACTS.md and for machines by
``json_schemas()`` (served at ``GET /v1/schemas``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from functools import partial
from typing import Any, Final, Literal

from pydantic import BaseModel, Field, ValidationError

from ledger.acts_fields import (
    ACT_CODE,
    CATALOGUE_LATEST,
    DELIVERY_EVIDENCE_MAX,
    ActBase,
    Actor,
    ActPolicy,
    AnswerConditions,
    Authorisation,
    ChannelId,
    Consent,
    Custodian,
    DataCategory,
    DeliveryEvidence,
    DkimCheck,
    EvidenceItem,
    Hex32,
    LegalBasis,
    LongText,
    MediumLocation,
    Participant,
    Proportionality,
    ReceiptChannel,
    RequestBase,
    ShortText,
    StateCode,
    Strict,
    Text,
    Timestamp,
    TimeZone,
    UseConditions,
    check_dkim,
    fail,
    when,
)
from ledger.acts_grounds import Ground, check_ground
from ledger.acts_levels import check_level
from ledger.acts_lifecycle import GRANTING_STATUSES, PreservationStatus
from ledger.acts_lint import lint_clear_fields, refuse_private_fields_in_clear
from ledger.acts_versions import VERSIONS, refuse_newer, schema_for
from ledger.errors import RecordInvalid
from ledger.records import SCHEMA, TypeRegistry

Phase = Literal["initial", "extension", "termination"]


def _requires(model: ActBase, *names: str) -> None:
    for name in names:
        if getattr(model, name) in (None, []):
            fail(name, f"is required for {model.type}")


def _in_territory(model: ActBase, state: str | None, field: str) -> None:
    if state is not None and state not in model.territorial_states:
        fail(field, f"{state} must also be named in record.territorial_states")


def _conditions_rule(model: ActBase, granting: bool) -> None:
    """Budapest Art 27(6): an answer grants, wholly or partly, subject to conditions."""
    conditions: list[str] = getattr(model, "conditions", None) or []
    if len(set(conditions)) != len(conditions):
        fail("conditions", "must not repeat a value")
    if conditions and not granting:
        fail("conditions", "are only given with an answer that grants the request")


def _phase_rules(model: ActBase, phase: str) -> None:
    """An extension or early end is its own record, pointing at the act it changes."""
    if phase != "initial" and not model.refs:
        fail("refs", f"must name the {model.type} that this {phase} changes")


MeasureCode = Literal[
    "search_seizure",
    "production",
    "disclosure",
    "preservation",
    "realtime_traffic",
    "interception",
    "hearing",
    "video_hearing",
    "sap8_order",
    "other",
]


# --- formal mutual legal assistance (Budapest Arts 25-27, UNTOC Art 18) --------------------


class MlaRequest(RequestBase):
    type: Literal["mla_request"]
    legal_basis: LegalBasis
    requesting_authority: ShortText
    requested_state: StateCode
    requested_authority: ShortText
    measures: list[Text] = Field(min_length=1, max_length=50)
    #: Enumerated measures beside the free text (Budapest Arts 31, 33, 34; SAP Art 8).
    measure_codes: list[MeasureCode] | None = Field(None, min_length=1, max_length=10)
    #: Budapest Art 25(3) urgent means; Art 31(3) expedited where data are vulnerable.
    urgency: Literal["normal", "urgent", "expedited"] | None = None

    def rules(self, policy: ActPolicy) -> None:
        codes = self.measure_codes or []
        if len(set(codes)) != len(codes):
            fail("measure_codes", "must not repeat a value")
        if self.requested_state == self.actor.state:
            fail("requested_state", "must be a foreign state")
        _in_territory(self, self.requested_state, "requested_state")


class MlaResponse(RequestBase):
    type: Literal["mla_response"]
    status: Literal[
        "received", "executed", "partially_executed", "postponed", "refused", "evidence_transferred"
    ]
    ground: Ground | None = None
    reason: LongText | None = None
    conditions: AnswerConditions | None = None

    def rules(self, policy: ActPolicy) -> None:
        if not self.refs:
            fail("refs", "must name the request this response answers")
        if self.status == "refused":
            _requires(self, "ground", "reason")  # Budapest Art 27(7): give reasons
        elif self.ground is not None:
            fail("ground", "is only given with status 'refused'")
        check_ground(self.type, self.ground)
        _conditions_rule(self, self.status in GRANTING_STATUSES["mla_response"])
        if self.status == "postponed":
            _requires(self, "reason")  # Budapest Art 27(5)
        if self.status == "evidence_transferred" and policy.version >= 2:
            _requires(self, "evidence")  # the hashes of what was handed over


# --- expedited and direct measures --------------------------------------------------------


class PreservationRequest(RequestBase):
    """Budapest Art 16 (domestic) / Art 29 (on a foreign request)."""

    type: Literal["preservation_request"]
    custodian: Custodian
    data_category: list[DataCategory] = Field(min_length=1, max_length=3)
    expires_at: Timestamp
    phase: Phase = "initial"
    #: ``budapest_16``: domestic (at most 90 days); ``budapest_29``: on a foreign
    #: request, preserved at least 60 days (Art 29(7)); absent: the policy cap only.
    basis: Literal["budapest_16", "budapest_29", "other"] | None = None

    def rules(self, policy: ActPolicy) -> None:
        if policy.version >= 2:
            _in_territory(self, self.custodian.state, "custodian.state")
        _phase_rules(self, self.phase)
        start, end = when(self.occurred_at), when(self.expires_at)
        if self.phase == "termination":
            if end < start:
                fail("expires_at", "of a termination must not be before occurred_at")
            return
        if end <= start:
            fail("expires_at", "must be after occurred_at")
        minimum = timedelta(days=PRESERVATION_ART29_MIN_DAYS)
        if self.basis == "budapest_29" and self.phase == "initial" and end - start < minimum:
            fail(
                "expires_at",
                f"of an Art 29 request is less than {PRESERVATION_ART29_MIN_DAYS} days "
                "after occurred_at (Budapest Art 29(7))",
            )
        if end - start > timedelta(days=policy.preservation_days_max):
            fail(
                "expires_at",
                f"is more than {policy.preservation_days_max} days after "
                "occurred_at; extend by a new preservation_request (phase 'extension')",
            )


class ProductionOrder(RequestBase):
    """Budapest Art 18."""

    type: Literal["production_order"]
    legal_basis: LegalBasis
    custodian: Custodian
    data_category: list[DataCategory] = Field(min_length=1, max_length=3)

    def rules(self, policy: ActPolicy) -> None:
        if policy.version >= 2:
            _in_territory(self, self.custodian.state, "custodian.state")


class OnlineExtraction(ActBase):
    type: Literal["online_extraction"]
    medium_location: MediumLocation
    reason: LongText
    recordings: list[EvidenceItem] = Field(min_length=1, max_length=100)

    def rules(self, policy: ActPolicy) -> None:
        _in_territory(self, self.medium_location.state, "medium_location.state")


class RemoteInspection(ActBase):
    type: Literal["remote_inspection"]
    target: Text
    recordings: list[EvidenceItem] = Field(min_length=1, max_length=100)
    technical_measures_used: bool

    def rules(self, policy: ActPolicy) -> None:
        if self.technical_measures_used:
            _requires(self, "authorisation")


class TechnicalMeasure(ActBase):
    """Intrusive measures: approval, proportionality and a set end (002 §10, 004 §66)."""

    type: Literal["technical_measure"]
    measure: Literal["sniffing", "scraping", "interception", "other"]
    authorisation: Authorisation
    proportionality: Proportionality
    starts_at: Timestamp | None = None
    ends_at: Timestamp
    phase: Phase = "initial"

    def rules(self, policy: ActPolicy) -> None:
        _phase_rules(self, self.phase)
        start = when(self.starts_at or self.occurred_at)
        if self.phase != "termination" and when(self.ends_at) <= start:
            fail("ends_at", "must be after starts_at (or occurred_at)")


class SearchSeizure(ActBase):
    """Budapest Art 19."""

    type: Literal["search_seizure"]
    medium_identity: Text
    mode: Literal["on_site", "remote"]
    original_seized: bool


class RealtimeCollection(ActBase):
    """Budapest Art 20 (traffic data) and Art 21 (interception of content)."""

    type: Literal["realtime_collection"]
    authorisation: Authorisation
    data_category: list[DataCategory] = Field(min_length=1, max_length=2)
    starts_at: Timestamp
    ends_at: Timestamp
    time_zone: TimeZone

    def rules(self, policy: ActPolicy) -> None:
        if "subscriber" in self.data_category:
            fail("data_category", "of real-time collection is traffic and/or content data")
        if when(self.ends_at) <= when(self.starts_at):
            fail("ends_at", "must be after starts_at")


class Eio(RequestBase):
    """European Investigation Order, Directive 2014/41/EU."""

    type: Literal["eio"]
    issuing_state: StateCode
    executing_state: StateCode
    measures: list[Text] = Field(min_length=1, max_length=50)
    #: From catalogue version 2, ``authorisation`` is required: issued or validated by a
    #: judicial authority or prosecutor (Directive Art 2(c); ``ledger/acts_levels.py``).

    def rules(self, policy: ActPolicy) -> None:
        if self.issuing_state != self.actor.state:
            fail("issuing_state", "must be the actor's state")
        if self.executing_state == self.issuing_state:
            fail("executing_state", "must differ from issuing_state")
        _in_territory(self, self.executing_state, "executing_state")


class _ProviderOrder(RequestBase):
    """EU e-evidence orders sent straight to a provider (Regulation (EU) 2023/1543)."""

    custodian: Custodian
    establishment_state: StateCode
    substantial_connection: LongText
    data_category: list[DataCategory] = Field(min_length=1, max_length=4)
    #: From catalogue version 2, ``authorisation`` is required: issued or validated by a
    #: competent authority (Regulation Art 4).

    def rules(self, policy: ActPolicy) -> None:
        _in_territory(self, self.establishment_state, "establishment_state")
        if policy.version >= 2:
            _requires(self, "authorisation")
            _issuing_level(self)


def _issuing_level(order: _ProviderOrder) -> None:
    """Regulation (EU) 2023/1543 Art 4(1)-(2): a production order for traffic data (beyond
    identification) or content data is issued or validated by a judge, court or
    investigating judge; for subscriber or identification data also by a prosecutor.

    The same rule is applied to an ``epoc_pr``; Art 4(3) (preservation orders) was not read
    in a stored text, and a secondary text says it also admits a prosecutor for every data
    category (docs/ACTS.md "Sources read"), so this may be stricter than the Regulation."""
    heavy = {"traffic", "content"} & set(order.data_category)
    allowed = ("judicial",) if heavy else ("judicial", "prosecutorial")
    level = order.authorisation.level if order.authorisation is not None else None
    if level not in allowed:
        fail(
            "authorisation.level",
            f"of an {order.type} for {sorted(order.data_category)} data must be one of "
            f"{list(allowed)} (Regulation (EU) 2023/1543 Art 4)",
        )


class Epoc(_ProviderOrder):
    """A European Production Order Certificate.

    ``notification_required``: the enforcing state is notified (Art 8), so it may
    raise an Art 12 ground within 10 days (96 hours in an emergency) in an
    ``epoc_enforcing_decision``. ``emergency``: the 8-hour clock of Art 10(4).
    """

    type: Literal["epoc"]
    notification_required: bool | None = None
    emergency: bool | None = None


#: Regulation (EU) 2023/1543 Art 11(1): preservation ceases after 60 days unless the
#: issuing authority confirms a subsequent production request; it may extend by a
#: further 30 days where necessary to allow that request (Annex VI).
EPOC_PR_DAYS = 60
EPOC_PR_EXTENSION_DAYS = 30
#: Budapest Art 29(7): preservation on a foreign request lasts at least 60 days.
PRESERVATION_ART29_MIN_DAYS = 60


class EpocPr(_ProviderOrder):
    """A European Preservation Order.

    An ``extension`` names the initial order and ends at most 30 days after it
    (checked on the chain, ``ledger/acts_context.py``).
    """

    type: Literal["epoc_pr"]
    expires_at: Timestamp | None = None
    phase: Literal["initial", "extension", "production_confirmed", "termination"] = "initial"

    def rules(self, policy: ActPolicy) -> None:
        super().rules(policy)
        if policy.version < 2:  # version 1's EPOC-PR had no phase and no expiry
            return
        _phase_rules(self, self.phase)
        if self.phase == "production_confirmed":  # Annex V: kept as long as necessary
            if self.expires_at is not None:
                fail("expires_at", "is not given once production is confirmed (Art 11(2))")
            return
        _requires(self, "expires_at")
        start, end = when(self.occurred_at), when(self.expires_at or "")
        if self.phase == "termination":
            if end < start:
                fail("expires_at", "of a termination must not be before occurred_at")
            return
        if end <= start:
            fail("expires_at", "must be after occurred_at")
        if self.phase == "initial" and end - start > timedelta(days=EPOC_PR_DAYS):
            fail(
                "expires_at",
                f"is more than {EPOC_PR_DAYS} days after occurred_at (Regulation (EU) "
                "2023/1543 Art 11(1)); extend once by an epoc_pr of phase 'extension'",
            )


class Art32Access(ActBase):
    """Budapest Art 32: (a) publicly available data, (b) data disclosed with consent."""

    type: Literal["art32_access"]
    basis: Literal["publicly_available", "consent"]
    consent: Consent | None = None

    def rules(self, policy: ActPolicy) -> None:
        if self.basis == "consent":
            _requires(self, "consent")
        elif self.consent is not None:
            fail("consent", "is only given with basis 'consent'")


class EmergencyDisclosure(RequestBase):
    """Second Additional Protocol to the Budapest Convention, Arts 9-10."""

    type: Literal["emergency_disclosure"]
    justification: LongText
    respond_by: Timestamp

    def rules(self, policy: ActPolicy) -> None:
        if when(self.respond_by) <= when(self.occurred_at):
            fail("respond_by", "must be after occurred_at")


class SpontaneousInformation(RequestBase):
    """Budapest Art 26; ``conditions`` are the Art 26(2) conditions of use."""

    type: Literal["spontaneous_information"]
    receiving_states: list[StateCode] = Field(min_length=1, max_length=50)
    conditions: LongText | None = None

    def rules(self, policy: ActPolicy) -> None:
        if self.actor.state in self.receiving_states:
            fail("receiving_states", "must not include the sending (actor) state")
        for index, state in enumerate(self.receiving_states if policy.version >= 2 else ()):
            _in_territory(self, state, f"receiving_states[{index}]")


class VideoConference(RequestBase):
    """UNTOC Art 18(18); 004 on hearings by video."""

    type: Literal["video_conference"]
    legal_basis: LegalBasis
    national_coordinator: ShortText
    participants: list[Participant] = Field(min_length=1, max_length=50)
    recordings: list[EvidenceItem] = Field(min_length=1, max_length=20)


class JointInvestigation(ActBase):
    """UNTOC Art 19: a joint investigation team."""

    type: Literal["joint_investigation"]
    legal_basis: LegalBasis
    member_agencies: list[Actor] = Field(min_length=2, max_length=50)
    ends_at: Timestamp | None = None

    def rules(self, policy: ActPolicy) -> None:
        if self.actor.state not in {member.state for member in self.member_agencies}:
            fail("member_agencies", "must include an agency of the actor's state")
        for index, member in enumerate(self.member_agencies if policy.version >= 2 else ()):
            if member.state != self.actor.state:
                _in_territory(self, member.state, f"member_agencies[{index}].state")


#: Version 1 and 2's actions, then version 3's: ISO/IEC 27037's processes of
#: identification, acquisition and preservation (collection was ``collected``
#: already) and the receiver's acknowledgement of a transfer (docs/ACTS.md §5).
CustodyAction = Literal[
    "collected",
    "transferred",
    "examined",
    "translated",
    "returned",
    "destroyed",
    "identified",
    "acquired",
    "preserved",
    "received",
]
#: Actions that may make new items (an image, an extract, a translation) from the held one.
DERIVING_ACTIONS: Final = frozenset({"acquired", "translated", "examined"})


class CustodyLocation(Strict):
    """Where the item is at the event: the state and the place (a lab, a seal room)."""

    state: StateCode
    place: ShortText


class CustodyPurpose(Strict):
    """Why the step was taken: an enumerated reason and, for ``other`` at least, its text."""

    code: Literal[
        "investigation",
        "forensic_examination",
        "translation",
        "storage",
        "mutual_assistance",
        "court_proceedings",
        "return_to_owner",
        "disposal",
        "other",
    ]
    text: Text | None = None


class CustodyEvent(ActBase):
    """One step of the chain of custody of ONE evidence hash (002 §11, 004 on custody).

    From catalogue version 3 (docs/ACTS.md §5) every event says where
    (``location``) and why (``purpose``); a ``received`` names the transfer it
    acknowledges in ``refs[1]`` and the hash the receiver recomputed; an
    ``acquired``, ``examined`` or ``translated`` event may list, after the held
    item, the new items it made from it, each ``derived_from`` the held hash.
    """

    type: Literal["custody_event"]
    action: CustodyAction
    to: Actor | None = None
    location: CustodyLocation | None = None
    purpose: CustodyPurpose | None = None
    hash_check: Literal["verified", "mismatch"] | None = None
    recomputed_sha256: Hex32 | None = None

    def rules(self, policy: ActPolicy) -> None:
        v3 = policy.version >= 3
        if len(self.evidence) != 1 and not (
            v3 and self.action in DERIVING_ACTIONS and self.evidence
        ):
            fail(
                "evidence",
                "must hold exactly the one item whose custody this records (from catalogue "
                f"version 3 then the items {', '.join(sorted(DERIVING_ACTIONS))} made from it)",
            )
        receiving = v3 and self.action == "received"
        if len(self.refs) != (2 if receiving else 1):
            fail(
                "refs",
                "must name exactly one record that holds this evidence hash (a received "
                "then the transfer it acknowledges)",
            )
        if self.action == "transferred":
            _requires(self, "to")
        elif self.to is not None:
            fail("to", "is only given with action 'transferred'")
        if v3:
            self._v3_rules(receiving)

    def _v3_rules(self, receiving: bool) -> None:
        _requires(self, "location", "purpose")
        if self.purpose is not None and self.purpose.code == "other" and not self.purpose.text:
            fail("purpose.text", "says the purpose when purpose.code is 'other'")
        held = self.evidence[0].sha256
        for index, item in enumerate(self.evidence[1:], start=1):
            if item.derived_from != held:
                fail(f"evidence[{index}].derived_from", "of a new item is the held evidence[0]")
        if receiving:
            self._received_rules(held)
            return
        for name in ("hash_check", "recomputed_sha256"):
            if getattr(self, name) is not None:
                fail(name, "is only given with action 'received'")

    def _received_rules(self, held: str) -> None:
        _requires(self, "hash_check", "recomputed_sha256")
        matches = self.recomputed_sha256 == held
        if self.hash_check == "verified" and not matches:
            fail("recomputed_sha256", "differs from evidence[0].sha256: hash_check is 'mismatch'")
        if self.hash_check == "mismatch" and matches:
            fail("recomputed_sha256", "equals evidence[0].sha256: hash_check is 'verified'")


class SovereigntyResponse(ActBase):
    """A territorial state's answer to an act on its territory (docs/DOMAIN.md "Sovereignty")."""

    type: Literal["sovereignty_response"]
    response: Literal["acknowledged", "consented", "objected", "refused"]
    reason: LongText | None = None
    ground: Ground | None = None
    conditions: AnswerConditions | None = None

    def rules(self, policy: ActPolicy) -> None:
        if len(self.refs) != 1:
            fail("refs", "must name exactly the one act this answers")
        if self.territorial_states != [self.actor.state]:
            fail("territorial_states", "of a response must be exactly [actor.state]")
        if self.response in ("objected", "refused"):
            _requires(self, "reason")
        elif self.ground is not None:
            fail("ground", "is only given with response 'objected' or 'refused'")
        check_ground(self.type, self.ground)
        _conditions_rule(self, self.response == "consented")


class ConditionsAcknowledgement(ActBase):
    """A receiving state accepts the conditions of an act (Budapest Arts 26(2), 28(3)).

    ``refs[0]`` is the act; who may acknowledge it is a contextual rule
    (``ledger/acts_context.py``): a state the act concerns, never its author.
    ``use_conditions``, if given, lists the conditions accepted, as worded in
    the act; without it every condition of the act is accepted.
    """

    type: Literal["conditions_acknowledgement"]
    accepted: Literal[True]
    use_conditions: UseConditions | None = None

    def rules(self, policy: ActPolicy) -> None:
        if len(self.refs) != 1:
            fail("refs", "must name exactly the one act whose conditions are accepted")
        if self.territorial_states != [self.actor.state]:
            fail("territorial_states", "of an acknowledgement must be exactly [actor.state]")


# --- issue 18: request/answer pairs with their lifecycles (ledger/acts_lifecycle.py) -------


def _answer_rules(model: ActBase) -> None:
    """An answer names exactly its request and concerns only the answering state."""
    if len(model.refs) != 1:
        fail("refs", f"must name exactly the one request this {model.type} answers")
    if model.territorial_states != [model.actor.state]:
        fail("territorial_states", f"of a {model.type} must be exactly [actor.state]")


def _refusal_rules(model: ActBase, refused: bool) -> None:
    """A refusal names a ground of the answer's instrument and its reasons."""
    if refused:
        _requires(model, "ground", "reason")
    elif getattr(model, "ground", None) is not None:
        fail("ground", "is only given with a refusal")
    check_ground(model.type, getattr(model, "ground", None))


class PreservationResponse(ActBase):
    """The requested state's answer to a preservation request (Budapest Art 29(3)-(7)).

    ``preserved_until`` is the end of the preservation effected; on an Art 29
    request it is at least 60 days away (Art 29(7), checked on the chain).
    ``future_availability_not_ensured`` is the Art 29(6) warning.
    """

    type: Literal["preservation_response"]
    status: PreservationStatus
    preserved_until: Timestamp | None = None
    ground: Ground | None = None
    reason: LongText | None = None
    conditions: AnswerConditions | None = None

    def rules(self, policy: ActPolicy) -> None:
        _answer_rules(self)
        _refusal_rules(self, self.status == "refused")
        if self.status in ("preserved", "partially_preserved"):
            _requires(self, "preserved_until")
            if when(self.preserved_until or "") <= when(self.occurred_at):
                fail("preserved_until", "must be after occurred_at")
        elif self.preserved_until is not None:
            fail("preserved_until", "is only given when data are preserved")
        if self.status in ("partially_preserved", "future_availability_not_ensured"):
            _requires(self, "reason")
        _conditions_rule(self, self.status in GRANTING_STATUSES[self.type])


class TrafficPathDisclosure(ActBase):
    """Budapest Art 30: enough preserved traffic data to find the next provider and state.

    Every ``next_hop_states`` entry is in ``territorial_states``, so the third
    state becomes a party of the act and gets a sovereignty notice.
    """

    type: Literal["traffic_path_disclosure"]
    status: Literal["disclosed", "refused"]
    next_hop_states: list[StateCode] = Field(default_factory=list, max_length=50)
    ground: Ground | None = None
    reason: LongText | None = None

    def rules(self, policy: ActPolicy) -> None:
        if len(self.refs) != 1:
            fail("refs", "must name exactly the preservation request this discloses for")
        _refusal_rules(self, self.status == "refused")
        if self.status == "disclosed":
            _requires(self, "next_hop_states", "evidence")
        elif self.next_hop_states:
            fail("next_hop_states", "are only given with status 'disclosed'")
        if len(set(self.next_hop_states)) != len(self.next_hop_states):
            fail("next_hop_states", "must not repeat a value")
        for index, state in enumerate(self.next_hop_states):
            _in_territory(self, state, f"next_hop_states[{index}]")


class DirectProviderRequest(RequestBase):
    """An order or request sent straight to a provider in another state.

    SAP Art 6 (domain name registration data, to a registrar), SAP Art 7
    (subscriber information), Regulation (EU) 2023/1543 outside its own types,
    CLOUD-Act-type agreements, Budapest Art 18(1)(b). ``notification_required``:
    the provider's state asked to be notified (SAP Art 7(5)(a)); it may then
    answer ``instruct_not_to_disclose`` (``provider_request_answer``).
    """

    type: Literal["direct_provider_request"]
    basis: Literal["sap_6", "sap_7", "eu_regulation", "cloud_agreement", "budapest_18_1_b"]
    custodian: Custodian
    provider_state: StateCode
    data_category: list[DataCategory] = Field(min_length=1, max_length=4)
    notification_required: bool
    respond_by: Timestamp | None = None

    def rules(self, policy: ActPolicy) -> None:
        if self.provider_state == self.actor.state:
            fail("provider_state", "must be a foreign state")
        _in_territory(self, self.provider_state, "provider_state")
        _in_territory(self, self.custodian.state, "custodian.state")
        if self.basis in ("sap_6", "sap_7") and set(self.data_category) - {
            "subscriber",
            "identification",
        }:
            fail("data_category", f"of a {self.basis} request is subscriber information only")
        if self.basis == "sap_6" and self.custodian.kind != "registrar":
            fail("custodian.kind", "of an SAP Art 6 request is 'registrar'")
        if self.respond_by is not None and when(self.respond_by) <= when(self.occurred_at):
            fail("respond_by", "must be after occurred_at")


class ProviderRequestAnswer(ActBase):
    """The provider's state answers a notified direct request (SAP Art 7(5)(b)-(c))."""

    type: Literal["provider_request_answer"]
    decision: Literal["no_objection", "conditions", "instruct_not_to_disclose"]
    ground: Ground | None = None
    reason: LongText | None = None
    conditions: AnswerConditions | None = None

    def rules(self, policy: ActPolicy) -> None:
        _answer_rules(self)
        _refusal_rules(self, self.decision == "instruct_not_to_disclose")
        if self.decision == "conditions":
            _requires(self, "conditions")
        _conditions_rule(self, self.decision in GRANTING_STATUSES[self.type])


class EpocEnforcingDecision(ActBase):
    """The enforcing state's answer to a notified EPOC (Regulation (EU) 2023/1543 Art 12)."""

    type: Literal["epoc_enforcing_decision"]
    decision: Literal["no_ground_raised", "ground_raised"]
    ground: Ground | None = None
    reason: LongText | None = None

    def rules(self, policy: ActPolicy) -> None:
        _answer_rules(self)
        _refusal_rules(self, self.decision == "ground_raised")


#: Why an addressee cannot comply, reported on the Regulation (EU) 2023/1543 Annex III form.
#: Read: Annex III carries the addressee's immunities/privileges or press-freedom concern
#: (Art 11(4)) and the reasoned objection of a conflicting third-country obligation
#: (Art 17(1)). The Annex's own list of reasons was not read: the others are unverified.
Impossibility = Literal[
    "incomplete_or_manifest_errors",
    "data_not_held",
    "data_erased_before_receipt",
    "de_facto_impossible",
    "immunities_privileges",
    "conflicting_third_country_law",
    "other",
]


class AddresseeReport(ActBase):
    """The issuing state records what the addressee of its EPOC / EPOC-PR reported."""

    type: Literal["addressee_report"]
    outcome: Literal["delivered", "preserved", "impossible"]
    impossibility: Impossibility | None = None
    reason: LongText | None = None

    def rules(self, policy: ActPolicy) -> None:
        if len(self.refs) != 1:
            fail("refs", "must name exactly the order this report is about")
        if self.outcome == "impossible":
            _requires(self, "impossibility", "reason")
        elif self.impossibility is not None:
            fail("impossibility", "is only given with outcome 'impossible'")
        if self.outcome == "delivered":
            _requires(self, "evidence")  # the hashes of the data delivered


class EioResponse(ActBase):
    """The executing state's answer to an EIO (Directive 2014/41/EU Arts 11, 12, 16)."""

    type: Literal["eio_response"]
    status: Literal["acknowledged", "recognised", "refused", "executed"]
    ground: Ground | None = None
    reason: LongText | None = None
    conditions: AnswerConditions | None = None

    def rules(self, policy: ActPolicy) -> None:
        _answer_rules(self)
        _refusal_rules(self, self.status == "refused")
        _conditions_rule(self, self.status in GRANTING_STATUSES[self.type])


class JitAgreement(RequestBase):
    """A joint investigation team set up by agreement (SAP Art 12, UNTOC Art 19).

    The first state signs the agreement (``agreement_sha256``); every other
    member state is territorial (it gets the notice) and accedes with a
    ``jit_accession``. ``use_conditions`` are the agreed conditions of use.
    """

    type: Literal["jit_agreement"]
    legal_basis: LegalBasis
    member_states: list[StateCode] = Field(min_length=2, max_length=50)
    agreement_sha256: Hex32
    ends_at: Timestamp

    def rules(self, policy: ActPolicy) -> None:
        if len(set(self.member_states)) != len(self.member_states):
            fail("member_states", "must not repeat a value")
        if self.actor.state not in self.member_states:
            fail("member_states", "must include the actor's state")
        for index, state in enumerate(self.member_states):
            if state != self.actor.state:
                _in_territory(self, state, f"member_states[{index}]")
        if when(self.ends_at) <= when(self.occurred_at):
            fail("ends_at", "must be after occurred_at")


class JitAccession(ActBase):
    """A member state's authority accedes to a ``jit_agreement`` (refs[0])."""

    type: Literal["jit_accession"]
    agreement_sha256: Hex32

    def rules(self, policy: ActPolicy) -> None:
        _answer_rules(self)


# --- issue 19: anchoring what a channel carried (docs/CHANNELS.md) -------------------------


class ExchangeReceipt(ActBase):
    """Proof that a request or answer (``refs[0]``) travelled on a channel: the channel's
    message id, the SHA-256 of the business document, the delivery evidence (ETSI EN
    319 522 REM events) and the endpoints. Who may record it, and that one state records a
    message once, are chain rules (``ledger/acts_context.py``)."""

    type: Literal["exchange_receipt"]
    channel: ReceiptChannel
    external_id: ChannelId
    document_sha256: Hex32
    delivery_evidence: list[DeliveryEvidence] = Field(
        default_factory=list, max_length=DELIVERY_EVIDENCE_MAX
    )
    sender_endpoint: ChannelId
    recipient_endpoint: ChannelId
    #: The other state of the exchange (the one sent to, or received from): named, so a
    #: private receipt's parties include it (docs/PRIVACY.md "Parties").
    counterpart_state: StateCode
    sent_at: Timestamp
    dkim: DkimCheck | None = None

    def rules(self, policy: ActPolicy) -> None:
        if len(self.refs) != 1:
            fail("refs", "must name exactly the one request or answer this receipt anchors")
        if self.territorial_states != [self.actor.state]:
            fail("territorial_states", "of an exchange_receipt must be exactly [actor.state]")
        if self.counterpart_state == self.actor.state:
            fail("counterpart_state", "must be the other state of the exchange")
        recorded = when(self.occurred_at)
        if when(self.sent_at) > recorded:
            fail("sent_at", "must not be after occurred_at (a receipt records what happened)")
        seen: set[tuple[str, str]] = set()
        for index, item in enumerate(self.delivery_evidence):
            if (item.kind, item.sha256) in seen:
                fail(f"delivery_evidence[{index}]", "repeats an earlier item")
            seen.add((item.kind, item.sha256))
            if when(item.at) > recorded:
                fail(f"delivery_evidence[{index}].at", "must not be after occurred_at")
        if self.dkim is not None and self.channel != "email_24_7":
            fail("dkim", "is only given for channel 'email_24_7'")
        if self.dkim is not None:
            check_dkim(self.dkim)


MODELS: Final[dict[str, type[ActBase]]] = {
    "mla_request": MlaRequest,
    "mla_response": MlaResponse,
    "preservation_request": PreservationRequest,
    "production_order": ProductionOrder,
    "online_extraction": OnlineExtraction,
    "remote_inspection": RemoteInspection,
    "technical_measure": TechnicalMeasure,
    "search_seizure": SearchSeizure,
    "realtime_collection": RealtimeCollection,
    "eio": Eio,
    "epoc": Epoc,
    "epoc_pr": EpocPr,
    "art32_access": Art32Access,
    "emergency_disclosure": EmergencyDisclosure,
    "spontaneous_information": SpontaneousInformation,
    "video_conference": VideoConference,
    "joint_investigation": JointInvestigation,
    "custody_event": CustodyEvent,
    "sovereignty_response": SovereigntyResponse,
    "conditions_acknowledgement": ConditionsAcknowledgement,
    "preservation_response": PreservationResponse,
    "traffic_path_disclosure": TrafficPathDisclosure,
    "direct_provider_request": DirectProviderRequest,
    "provider_request_answer": ProviderRequestAnswer,
    "epoc_enforcing_decision": EpocEnforcingDecision,
    "addressee_report": AddresseeReport,
    "eio_response": EioResponse,
    "jit_agreement": JitAgreement,
    "jit_accession": JitAccession,
    "exchange_receipt": ExchangeReceipt,
}
ACT_TYPES: Final = frozenset(MODELS)
#: Acts that hand information to another state and may carry conditions on its use.
REQUEST_TYPES: Final = frozenset(
    name for name, model in MODELS.items() if issubclass(model, RequestBase)
)


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = "record"
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part not in MODELS and not part.startswith(("function-", "literal[")):
            path += f".{part}"
    return path


def validate_act(record: Mapping[str, Any], policy: ActPolicy | None = None) -> ActBase:
    """The record as its act model, or ``RecordInvalid`` naming the first bad field.

    Under ``policy.version`` (the catalogue version in force at the record's
    height, ``ledger/acts_versions.py``): what a later version adds is refused,
    and the rules a later version added are not applied.
    """
    chosen = policy or ActPolicy()
    if chosen.version < CATALOGUE_LATEST:
        refuse_newer(record, chosen.version)
    model = MODELS.get(str(record.get("type")))
    if model is None:
        raise RecordInvalid(
            f"record.type {record.get('type')!r} is not an act type",
            field="record.type",
            code="unknown_type",
        )
    try:
        act = model.model_validate(record, context={"policy": chosen})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = _field_path(tuple(first["loc"]))
        if first["type"] == "missing":
            message = f"{field} is missing ({model.__name__} requires it)"
        elif first["type"] == "extra_forbidden":
            message = f"{field} is not a field of {record.get('type')} (schema {SCHEMA})"
        else:
            message = f"{field}: {first['msg']}"
        raise RecordInvalid(message, field=field, code=ACT_CODE) from exc
    if chosen.version >= 2:
        check_level(record)  # the catalogue's authorisation policy (ledger/acts_levels.py)
    if act.visibility == "consortium":  # read in clear by every member: keep it clean
        refuse_private_fields_in_clear(record)
        lint_clear_fields(record)
    return act


def register_acts(registry: TypeRegistry, policy: ActPolicy | None = None) -> None:
    """Register (or replace) the rule of every act type in ``registry``: each checks a
    record under the catalogue version the registry's caller names (None: the latest)."""
    chosen = policy or ActPolicy()
    policies = {v: replace(chosen, version=v) for v in VERSIONS}
    for type_name in sorted(MODELS):
        registry.register_versioned(type_name, partial(_rule, policies=policies))


def _rule(
    record: Mapping[str, Any], version: int | None, *, policies: dict[int, ActPolicy]
) -> None:
    validate_act(record, policies[CATALOGUE_LATEST if version is None else version])


def json_schemas(version: int = CATALOGUE_LATEST) -> dict[str, Any]:
    """``GET /v1/schemas``: the JSON Schema of every act type of catalogue ``version``."""
    return {
        "schema": SCHEMA,
        "catalogue_version": version,
        "types": schema_for(version, _LATEST_SCHEMAS),
    }


def _schema_of(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(by_alias=True, mode="validation")


_LATEST_SCHEMAS: Final = {name: _schema_of(model) for name, model in sorted(MODELS.items())}
