"""The case bundle's builder and verifier on one in-memory chain (tests/audit_chain.py).

Fast-tier companions of tests/integration/test_case_bundle.py: which records a case
bundle holds and why (node/case_bundle.py), its bounds, and the shape checks of the
``case`` section (ledger/audit/case.py, docs/AUDIT.md "Whole-case bundles").
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ledger.audit.bundle import FORMAT, verify_bundle
from ledger.audit.case import verify_case_bundle
from ledger.audit.chain import genesis_hash
from ledger.audit.gov import AuditFailure
from ledger.audit_source import StoreSource, build_bundle
from ledger.errors import NotFound, TooLarge
from node import evidence
from node.case_bundle import case_bundle
from tests.audit_chain import AuditChain


class Built:
    def __init__(self) -> None:
        self.chain = AuditChain()
        other = self.commit(case_ref="OTHER-1")
        self.first = self.commit(case_ref="CASE-1")
        self.second = self.commit(case_ref="CASE-1", refs=[self.first, other])
        self.other = other

    def commit(self, **fields: Any) -> str:
        record = self.chain.envelope("CN", **fields)
        self.chain.commit([record])
        return self.chain.record_id(record)

    async def bundle(self, **options: Any) -> dict[str, Any]:
        view = evidence.view_of(self.chain.app)
        return await case_bundle(view, self.chain.genesis_json, "CASE-1", **options)

    def verify(self, doc: Any) -> Any:
        return verify_case_bundle(doc, pinned_genesis_hash=genesis_hash(self.chain.genesis_json))


@pytest.fixture
def built() -> Built:
    return Built()


async def test_a_case_holds_its_records_and_what_they_reference(built: Built) -> None:
    doc = await built.bundle()
    assert doc["records"] == [built.other, built.first, built.second]  # commit order
    report = built.verify(doc)
    assert report.reasons[built.first] == (
        {"reason": "case_record"},
        {"reason": "referenced", "by": built.second},
    )
    assert report.reasons[built.other] == ({"reason": "referenced", "by": built.second},)
    assert doc["latest"] is not None and "private" not in doc


async def test_a_case_over_the_cap_or_unknown_is_refused(built: Built) -> None:
    with pytest.raises(TooLarge) as caught:
        await built.bundle(records_max=2)
    assert (caught.value.code, caught.value.field) == ("case_too_large", "case_ref")
    view = evidence.view_of(built.chain.app)
    with pytest.raises(NotFound) as missing:
        await case_bundle(view, built.chain.genesis_json, "NO-SUCH-CASE")
    assert missing.value.code == "case_not_found"


def _no_case(doc: dict[str, Any]) -> None:
    del doc["case"]


def _bad_row(doc: dict[str, Any]) -> None:
    doc["case"]["records"][0]["reasons"] = [{"reason": "because"}]


def _no_reasons(doc: dict[str, Any]) -> None:
    doc["case"]["records"][0]["reasons"] = []


def _extra_key(doc: dict[str, Any]) -> None:
    doc["case"]["records"][0]["reasons"][0]["note"] = "x"


def _other_list(doc: dict[str, Any]) -> None:
    doc["records"] = doc["records"][:-1]


def _not_ids(doc: dict[str, Any]) -> None:
    doc["records"] = [{"id": doc["records"][0]}]


def _old_format(doc: dict[str, Any]) -> None:
    doc["format"] = FORMAT


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        (_no_case, "bad_case"),
        (_bad_row, "bad_case"),
        (_no_reasons, "bad_case"),
        (_extra_key, "bad_case"),
        (_other_list, "case_mismatch"),
        (_not_ids, "case_mismatch"),
        (_old_format, "bad_bundle"),
    ],
)
async def test_a_malformed_case_section_is_refused(built: Built, tamper: Any, code: str) -> None:
    doc = copy.deepcopy(await built.bundle())
    tamper(doc)
    with pytest.raises(AuditFailure) as caught:
        built.verify(doc)
    assert caught.value.code == code, str(caught.value)


async def test_a_single_record_bundle_still_verifies(built: Built) -> None:
    """Old comity-bundle/1 files are untouched by the case format."""
    source = StoreSource(built.chain.app.store, built.chain.genesis_json)
    doc = await build_bundle(source, [built.first])
    assert doc["format"] == FORMAT
    assert [r.id for r in verify_bundle(doc).records] == [built.first]
