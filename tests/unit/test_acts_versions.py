"""Catalogue versions (issue 18): old acts keep validating under the version they were
written in, version 2 applies from a height the consortium votes, and GET /v1/schemas
serves every version.

Each check is made both ways: what version 1 accepts and version 2 refuses (the
stricter rules), what version 1 refuses (anything version 2 adds), and a chain
written under version 1 replays (``db check``) after version 2 is voted in, where
the same blocks checked under version 2 would be refused.
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest

from ledger.acts import ACT_TYPES, json_schemas, validate_act
from ledger.acts_fields import ActPolicy
from ledger.acts_templates import template
from ledger.acts_versions import FIELDS_ADDED, TYPES_ADDED, VERSIONS, refuse_newer
from ledger.errors import ClientError, InvariantViolation, RecordInvalid
from ledger.store import Store
from node.application import Application
from node.clock import utcnow
from node.rules import build_registry
from tests.unit.test_governance import Chain

V1, V2 = ActPolicy(version=1), ActPolicy(version=2)
PARAM = "catalogue_v2_from_height"


def _act(type_: str, **fields: Any) -> dict[str, Any]:
    record = template(type_, state="CN", territorial_states=("TH",), now=utcnow())
    record.update(chain_id="unit-chain", nonce="nonce-000001", visibility="consortium")
    for name, value in fields.items():
        outer, _, inner = name.partition(".")
        if inner:
            record[outer] = {**record[outer], inner: value}
        else:
            record[name] = value
    return {k: v for k, v in record.items() if v is not None}


def _refusal(record: dict[str, Any], policy: ActPolicy) -> tuple[str, str | None]:
    with pytest.raises(RecordInvalid) as info:
        validate_act(record, policy)
    return info.value.code, info.value.field


# --- what version 2 made stricter: accepted under 1, refused under 2 ------------------------

STRICTER = [
    pytest.param(
        "preservation_request",
        {"custodian": {"name": "Provider", "state": "FR"}},
        "record.custodian.state",
        id="custodian-state-not-territorial",
    ),
    pytest.param(
        "production_order",
        {"custodian": {"name": "Provider", "state": "FR"}},
        "record.custodian.state",
        id="production-custodian-not-territorial",
    ),
    pytest.param("eio", {"authorisation": None}, "record.authorisation", id="eio-no-authorisation"),
    pytest.param(
        "epoc", {"authorisation": None}, "record.authorisation", id="epoc-no-authorisation"
    ),
    pytest.param(
        "epoc_pr",
        {"authorisation": None, "expires_at": None},
        "record.authorisation",
        id="epoc-pr-v1-shape",
    ),
    pytest.param(
        "mla_response",
        {"status": "evidence_transferred", "evidence": [], "refs": ["ab" * 32]},
        "record.evidence",
        id="evidence-transferred-without-hashes",
    ),
    pytest.param(
        "spontaneous_information",
        {"receiving_states": ["FR"]},
        "record.receiving_states[0]",
        id="receiver-not-territorial",
    ),
    pytest.param(
        "technical_measure",
        {"authorisation.level": "senior_police"},
        "record.authorisation.level",
        id="level-below-the-type's",
    ),
]


@pytest.mark.parametrize(("type_", "fields", "field"), STRICTER)
def test_a_version_1_act_stays_valid_under_1_and_is_refused_under_2(
    type_: str, fields: dict[str, Any], field: str
) -> None:
    record = _act(type_, **fields)
    assert validate_act(record, V1).type == type_
    assert _refusal(record, V2) == ("invalid_act", field)


# --- what version 2 added: refused under 1, naming the field --------------------------------

NEWER = [
    pytest.param(_act("preservation_response"), "record.type", id="new-type"),
    pytest.param(_act("mla_request", urgency="urgent"), "record.urgency", id="new-field"),
    pytest.param(
        _act("mla_request", evidence=[{"sha256": "cd" * 32, "role": "request_document"}]),
        "record.evidence[0].role",
        id="new-evidence-field",
    ),
    pytest.param(
        _act("production_order", data_category=["identification"]),
        "record.data_category[0]",
        id="new-data-category",
    ),
    pytest.param(
        _act(
            "mla_response",
            status="refused",
            ground="ne_bis_in_idem",
            reason="tried",
            refs=["ab" * 32],
        ),
        "record.ground",
        id="new-ground",
    ),
    pytest.param(
        _act("preservation_request", channel="interpol"), "record.channel", id="new-channel"
    ),
    pytest.param(_act("eio", channel="e_codex"), "record.channel", id="channel-on-a-request"),
]


@pytest.mark.parametrize(("record", "field"), NEWER)
def test_what_version_2_adds_is_refused_under_1_naming_the_field(
    record: dict[str, Any], field: str
) -> None:
    assert _refusal(record, V1) == ("not_in_catalogue_version", field)
    validate_act(record, V2)  # and each is a valid version-2 act


def test_version_1_keeps_what_it_had() -> None:
    """The 24/7 channel was a preservation field in version 1; its old values pass."""
    refuse_newer(_act("preservation_request", channel="24_7_network"), 1)
    refuse_newer(_act("mla_response", status="refused", ground="dual_criminality"), 1)
    with pytest.raises(InvariantViolation):
        ActPolicy(version=4)


def test_every_version_2_type_is_refused_under_1() -> None:
    assert TYPES_ADDED[2] < ACT_TYPES
    for type_ in sorted(TYPES_ADDED[2]):
        assert refuse_newer_code(_act(type_)) == "not_in_catalogue_version", type_


def refuse_newer_code(record: dict[str, Any]) -> str:
    with pytest.raises(RecordInvalid) as info:
        refuse_newer(record, 1)
    return info.value.code


# --- GET /v1/schemas: every version ---------------------------------------------------------


def test_each_version_has_its_own_schemas() -> None:
    v1, v2 = json_schemas(1), json_schemas(2)
    assert (v1["catalogue_version"], v2["catalogue_version"]) == (1, 2)
    assert set(v2["types"]) == ACT_TYPES
    assert set(v1["types"]) == ACT_TYPES - TYPES_ADDED[2] and len(v1["types"]) == 20
    assert "authorisation" in v2["types"]["eio"]["required"]
    assert "authorisation" not in v1["types"]["eio"]["required"]
    for type_, fields in FIELDS_ADDED[2].items():
        if type_ == "*":
            continue
        for name in fields:
            assert name in v2["types"][type_]["properties"], (type_, name)
            assert name not in v1["types"][type_]["properties"], (type_, name)
    item = v1["types"]["mla_request"]["$defs"]["EvidenceItem"]["properties"]
    assert set(item) == {"sha256", "size", "media_type", "name", "tool", "tool_version"}


@pytest.mark.parametrize(("type_", "fields", "field"), STRICTER[:5])
def test_the_schemas_accept_and_refuse_as_the_catalogue_does(
    type_: str, fields: dict[str, Any], field: str
) -> None:
    """Version 1's schema takes a version-1 act; version 2's refuses the new fields under 1."""
    record = _act(type_, **fields)
    assert jsonschema_rs.is_valid(json_schemas(1)["types"][type_], record)
    newer = _act("mla_request", urgency="urgent")
    assert jsonschema_rs.is_valid(json_schemas(2)["types"]["mla_request"], newer)
    assert not jsonschema_rs.is_valid(json_schemas(1)["types"]["mla_request"], newer)
    if field == "record.authorisation":
        assert not jsonschema_rs.is_valid(json_schemas(2)["types"][type_], record)


# --- on a chain: the voted height, then replay ------------------------------------------------


def _refused(chain: Chain, envelope: Any) -> tuple[str, str | None]:
    with pytest.raises(ClientError) as info:
        chain.app.check_record(envelope, utcnow())
    return info.value.code, info.value.field


def test_version_2_applies_from_the_voted_height_and_old_blocks_still_replay() -> None:
    chain = Chain(catalogue_v2_from_height=None, catalogue_v3_from_height=None)
    assert PARAM not in chain.genesis.to_json()["consensus"]
    state = chain.app.state
    assert [state.catalogue_version(h) for h in (1, 10**6)] == [1, 1]
    investigator, authority = chain.keys("CN").investigator, chain.keys("TH").authority
    custodian = {"name": "Provider", "state": "FR"}  # not territorial: version 1 allowed it
    old = chain.env("CN", investigator, custodian=custodian)
    chain.commit(old)
    answer = chain.env(
        "TH",
        authority,
        "preservation_response",
        refs=[old.id],
        case_ref=old.record["case_ref"],
        territorial_states=["TH"],
    )
    assert _refused(chain, answer) == ("not_in_catalogue_version", "record.type")

    target = chain.app.height + 10
    proposal = chain.admin("CN", "member_proposal", action="set_param", name=PARAM, value=target)
    chain.commit(proposal)
    for voter in ("CN", "FR", "TH"):
        chain.commit(chain.admin(voter, "member_vote", proposal=proposal.id, vote="yes"))
    assert chain.app.state.param(PARAM) == target
    assert chain.app.catalogue_version() == 1
    chain.commit(chain.env("CN", investigator, custodian=custodian))  # still version 1
    while chain.app.height + 1 < target:
        chain.commit(chain.env("FR", chain.keys("FR").investigator))  # valid under both
    assert chain.app.catalogue_version() == 2
    assert _refused(chain, chain.env("CN", investigator, custodian=custodian)) == (
        "invalid_act",
        "record.custodian.state",
    )
    answer = chain.env(
        "TH",
        authority,
        "preservation_response",
        refs=[old.id],
        case_ref=old.record["case_ref"],
        territorial_states=["TH"],
    )
    chain.commit(answer)

    # A node replaying the chain (sync, restore, db check) checks every block under the
    # version of its height: the old ones pass.
    replay = Application(chain.genesis, Store.open_memory(), build_registry())
    for height in range(1, chain.app.height + 1):
        stored = chain.app.stored_block(height)
        assert stored is not None
        replay.validate_block(stored[0], now=None)
        replay.commit(*stored)
    assert replay.height == chain.app.height and replay.catalogue_version() == 2
    # ...which they would not under version 2 alone.
    assert _refusal(dict(old.record), V2) == ("invalid_act", "record.custodian.state")


def test_a_new_chain_starts_on_the_latest_version() -> None:
    chain = Chain()
    assert chain.genesis.to_json()["consensus"][PARAM] == 1
    assert chain.app.catalogue_version() == max(VERSIONS)
