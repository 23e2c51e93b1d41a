"""A whole case on one in-memory chain (tests/audit_chain.py), with a reason of every kind.

For the console's tests of case bundles (tests/unit/test_console_js.py, where Node holds
caseclaims.js to ``verify_case_bundle``, and tests/integration/test_console_browser.py,
where Chromium checks it on the Verify page): CN preserves (naming an act of another
case), TH acknowledges, CN asks for MLA, TH answers with the evidence, and TH's custody
event of another case lists that evidence. So the bundle holds case records, answers, a
referenced record and a custody event (docs/AUDIT.md "Whole-case bundles"). The ids use
the names tests/integration/test_case_bundle.py's tampering functions look for.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from node import evidence
from node.case_bundle import case_bundle
from tests.audit_chain import AuditChain

CASE_REF = "CN-2026-7"
EVIDENCE = b"seized laptop image"


async def case_chain() -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    """(the case bundle as JSON, record ids by name, the genesis as GET /v1/genesis serves it)."""
    chain = AuditChain()
    h1 = hashlib.sha256(EVIDENCE).hexdigest()

    def commit(state: str, type_: str, key: str = "investigator", **fields: Any) -> str:
        signer = getattr(chain.members[state], key)
        envelope = chain.envelope(state, type_=type_, signer=signer, **fields)
        chain.commit([envelope])
        return chain.record_id(envelope)

    ids = {"other": commit("CN", "preservation_request", case_ref="OTHER-1")}
    ids["preservation"] = commit(
        "CN", "preservation_request", case_ref=CASE_REF, refs=[ids["other"]]
    )
    ids["ack"] = commit(
        "TH", "sovereignty_response", "authority", case_ref=CASE_REF, refs=[ids["preservation"]]
    )
    ids["mla"] = commit(
        "CN", "mla_request", "authority", case_ref=CASE_REF, refs=[ids["preservation"]]
    )
    ids["answer"] = commit(
        "TH",
        "mla_response",
        "authority",
        case_ref=CASE_REF,
        refs=[ids["mla"]],
        evidence=[{"sha256": h1}],
    )
    ids["examined"] = commit(
        "TH",
        "custody_event",
        case_ref="LAB-9",
        refs=[ids["answer"]],
        action="collected",
        territorial_states=["TH"],
        evidence=[{"sha256": h1}],
    )
    chain.grow(1)
    made = await case_bundle(evidence.view_of(chain.app), chain.genesis_json, CASE_REF)
    doc: dict[str, Any] = json.loads(json.dumps(made))
    return doc, ids, chain.genesis_json
