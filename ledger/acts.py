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
from datetime import timedelta
from functools import partial
from typing import Any, Final, Literal

from pydantic import BaseModel, Field, ValidationError

from ledger.acts_fields import (
    ACT_CODE,
    ActBase,
    Actor,
    ActPolicy,
    Authorisation,
    Consent,
    Custodian,
    DataCategory,
    EvidenceItem,
    LegalBasis,
    LongText,
    MediumLocation,
    Participant,
    Proportionality,
    RequestBase,
    ShortText,
    StateCode,
    Text,
    Timestamp,
    TimeZone,
    UseConditions,
    fail,
    when,
)
from ledger.acts_lint import lint_clear_fields, refuse_private_fields_in_clear
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


def _phase_rules(model: ActBase, phase: str) -> None:
    """An extension or early end is its own record, pointing at the act it changes."""
    if phase != "initial" and not model.refs:
        fail("refs", f"must name the {model.type} that this {phase} changes")


# --- formal mutual legal assistance (Budapest Arts 25-27, UNTOC Art 18) --------------------


class MlaRequest(RequestBase):
    type: Literal["mla_request"]
    legal_basis: LegalBasis
    requesting_authority: ShortText
    requested_state: StateCode
    requested_authority: ShortText
    measures: list[Text] = Field(min_length=1, max_length=50)

    def rules(self, policy: ActPolicy) -> None:
        if self.requested_state == self.actor.state:
            fail("requested_state", "must be a foreign state")
        _in_territory(self, self.requested_state, "requested_state")


#: Grounds of refusal: Budapest Art 27(4)(a) political offence, 27(4)(b) sovereignty,
#: security, ordre public or essential interests; Art 25(4) grounds of the requested
#: state's law or treaties (e.g. dual criminality); 004 §40 incomplete requests.
RefusalGround = Literal[
    "political_offence",
    "sovereignty_security_ordre_public",
    "dual_criminality",
    "insufficient_information",
    "treaty_ground",
    "other",
]


class MlaResponse(RequestBase):
    type: Literal["mla_response"]
    status: Literal[
        "received", "executed", "partially_executed", "postponed", "refused", "evidence_transferred"
    ]
    ground: RefusalGround | None = None
    reason: LongText | None = None

    def rules(self, policy: ActPolicy) -> None:
        if not self.refs:
            fail("refs", "must name the request this response answers")
        if self.status == "refused":
            _requires(self, "ground", "reason")  # Budapest Art 27(7): give reasons
        elif self.ground is not None:
            fail("ground", "is only given with status 'refused'")
        if self.status == "postponed":
            _requires(self, "reason")  # Budapest Art 27(5)


# --- expedited and direct measures --------------------------------------------------------


class PreservationRequest(RequestBase):
    """Budapest Art 16 (domestic) / Art 29 (on a foreign request)."""

    type: Literal["preservation_request"]
    custodian: Custodian
    data_category: list[DataCategory] = Field(min_length=1, max_length=3)
    expires_at: Timestamp
    phase: Phase = "initial"
    channel: Literal["24_7_network", "central_authority", "direct"] | None = None

    def rules(self, policy: ActPolicy) -> None:
        _phase_rules(self, self.phase)
        start, end = when(self.occurred_at), when(self.expires_at)
        if self.phase == "termination":
            if end < start:
                fail("expires_at", "of a termination must not be before occurred_at")
            return
        if end <= start:
            fail("expires_at", "must be after occurred_at")
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
    data_category: list[DataCategory] = Field(min_length=1, max_length=3)

    def rules(self, policy: ActPolicy) -> None:
        _in_territory(self, self.establishment_state, "establishment_state")


class Epoc(_ProviderOrder):
    type: Literal["epoc"]


class EpocPr(_ProviderOrder):
    type: Literal["epoc_pr"]


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


CustodyAction = Literal[
    "collected", "transferred", "examined", "translated", "returned", "destroyed"
]


class CustodyEvent(ActBase):
    """One step of the chain of custody of ONE evidence hash (002 §11, 004 on custody)."""

    type: Literal["custody_event"]
    action: CustodyAction
    to: Actor | None = None

    def rules(self, policy: ActPolicy) -> None:
        if len(self.evidence) != 1:
            fail("evidence", "must hold exactly the one item whose custody this records")
        if len(self.refs) != 1:
            fail("refs", "must name exactly one record that holds this evidence hash")
        if self.action == "transferred":
            _requires(self, "to")
        elif self.to is not None:
            fail("to", "is only given with action 'transferred'")


class SovereigntyResponse(ActBase):
    """A territorial state's answer to an act on its territory (docs/DOMAIN.md "Sovereignty")."""

    type: Literal["sovereignty_response"]
    response: Literal["acknowledged", "consented", "objected", "refused"]
    reason: LongText | None = None

    def rules(self, policy: ActPolicy) -> None:
        if len(self.refs) != 1:
            fail("refs", "must name exactly the one act this answers")
        if self.territorial_states != [self.actor.state]:
            fail("territorial_states", "of a response must be exactly [actor.state]")
        if self.response in ("objected", "refused"):
            _requires(self, "reason")


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
    """The record as its act model, or ``RecordInvalid`` naming the first bad field."""
    model = MODELS.get(str(record.get("type")))
    if model is None:
        raise RecordInvalid(
            f"record.type {record.get('type')!r} is not an act type",
            field="record.type",
            code="unknown_type",
        )
    try:
        act = model.model_validate(record, context={"policy": policy or ActPolicy()})
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
    if act.visibility == "consortium":  # read in clear by every member: keep it clean
        refuse_private_fields_in_clear(record)
        lint_clear_fields(record)
    return act


def register_acts(registry: TypeRegistry, policy: ActPolicy | None = None) -> None:
    """Register (or replace) the rule of every act type in ``registry``."""
    chosen = policy or ActPolicy()
    for type_name in sorted(MODELS):
        registry.register(type_name, partial(_rule, policy=chosen))


def _rule(record: Mapping[str, Any], *, policy: ActPolicy) -> None:
    validate_act(record, policy)


def json_schemas() -> dict[str, Any]:
    """``GET /v1/schemas``: the JSON Schema of every act type, by type name."""
    return {
        "schema": SCHEMA,
        "types": {name: _schema_of(model) for name, model in sorted(MODELS.items())},
    }


def _schema_of(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(by_alias=True, mode="validation")
