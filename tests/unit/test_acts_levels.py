"""Authorisation levels per type (ledger/acts_levels.py) and against the signer's role.

Regulation (EU) 2023/1543 Art 4 (EPOC issuers by data category), Directive
2014/41/EU Art 2(c) (EIO issuers), seed 000 (no self-approved intrusive measure).
"""

from __future__ import annotations

from typing import Any

import pytest

from ledger.acts import MODELS, validate_act
from ledger.acts_context import check_act_context
from ledger.acts_levels import AUTHORISATION_POLICY, VALIDATED_TYPES
from ledger.errors import RecordInvalid
from tests.unit.test_acts import APPROVAL, make
from tests.unit.test_acts_context import CN_AUTH, CN_INV, FakeChain


def _level(level: str) -> dict[str, Any]:
    return {**APPROVAL, "level": level}


@pytest.mark.parametrize(
    ("type_", "level"),
    [
        ("technical_measure", "senior_police"),  # a police body approving itself
        ("technical_measure", "prosecutorial"),
        ("realtime_collection", "senior_police"),
        ("eio", "senior_police"),
        ("eio", "ministerial"),
        ("remote_inspection", "senior_police"),
        ("mla_request", "senior_police"),
    ],
)
def test_a_level_below_the_policy_is_refused(type_: str, level: str) -> None:
    with pytest.raises(RecordInvalid) as caught:
        validate_act(make(type_, authorisation=_level(level)))
    assert (caught.value.field, caught.value.code, caught.value.status) == (
        "record.authorisation.level",
        "invalid_act",
        422,
    )


@pytest.mark.parametrize(
    ("type_", "level"),
    [
        ("technical_measure", "independent"),
        ("realtime_collection", "prosecutorial"),
        ("eio", "prosecutorial"),
        ("mla_request", "central_authority"),
        ("production_order", "senior_police"),
        ("epoc", "prosecutorial"),  # subscriber data
        ("epoc_pr", "judicial"),  # content data
    ],
)
def test_a_level_the_policy_names_passes(type_: str, level: str) -> None:
    assert validate_act(make(type_, authorisation=_level(level))).type == type_


def test_policy_names_only_catalogue_types() -> None:
    assert set(AUTHORISATION_POLICY) <= set(MODELS)
    assert set(MODELS) >= VALIDATED_TYPES
    assert all(rule.levels and rule.source for rule in AUTHORISATION_POLICY.values())


def test_investigator_key_needs_a_dated_prior_validation() -> None:
    chain = FakeChain()
    late = {**APPROVAL, "approved_at": "2026-03-02T00:00:00Z"}  # after occurred_at
    undated = {k: v for k, v in APPROVAL.items() if k != "approved_at"}
    for authorisation in (late, undated):
        envelope = chain.make("epoc", CN_INV, "CN", authorisation=authorisation)
        with pytest.raises(RecordInvalid) as caught:
            check_act_context(envelope, chain)
        assert (caught.value.field, caught.value.code) == (
            "record.authorisation.approved_at",
            "validation_not_recorded",
        )
    chain.commit(chain.make("epoc", CN_INV, "CN"))  # validated at occurred_at
    chain.commit(chain.make("epoc", CN_AUTH, "CN", authorisation=undated))  # the issuer itself
