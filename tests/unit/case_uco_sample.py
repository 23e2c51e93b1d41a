"""A small case as the export reads it (``ledger/case_uco.ActView``): shared by the unit
tests of the CASE/UCO mapping and its import."""

from __future__ import annotations

from typing import Any

from ledger.case_uco import ActView, CustodyChain

CASE = "CN-2026-UCO-1"
IMAGE = "a1" * 32
EXTRACT = "b2" * 32
LETTER = "c3" * 32
T0 = "2026-03-01T08:00:00Z"


def _rid(n: int) -> str:
    return f"{n:064x}"


def _act(n: int, state: str, type_: str, **fields: Any) -> ActView:
    record = {
        "schema": "comity/1",
        "type": type_,
        "chain_id": "comity-test",
        "actor": {"state": state, "agency": f"{state} cybercrime unit"},
        "nonce": f"nonce{n:08d}",
        "occurred_at": f"2026-03-0{n}T08:00:00Z",
        "case_ref": CASE,
        "visibility": "consortium",
        **fields,
    }
    proof = {"tree_size": 10 + n, "root": f"{n:02x}" * 32, "checkpoint_height": n}
    return ActView(_rid(n), n, 9 + n, f"2026-03-0{n}T08:00:01Z", record, record, proof)


def acts() -> list[ActView]:
    approval = {
        "reference": "CN-AUTH-7",
        "approved_by": "investigating judge",
        "level": "judicial",
        "approved_at": T0,
    }
    private_header = {
        "schema": "comity/1",
        "type": "private_act",
        "class": "request",
        "chain_id": "comity-test",
        "actor": {"state": "CN", "agency": "CN cybercrime unit"},
        "nonce": "nonce00000009",
        "occurred_at": "2026-03-09T08:00:00Z",
        "visibility": "parties",
        "parties": ["CN", "TH"],
        "commitment": "dd" * 32,
        "retain_until": "2027-03-09T08:00:00Z",
        "refs": [_rid(1)],
    }
    return [
        _act(
            1,
            "CN",
            "technical_measure",
            territorial_states=["TH"],
            measure="interception",
            authorisation=approval,
            ends_at="2026-04-01T08:00:00Z",
            evidence=[{"sha256": LETTER, "role": "authorisation_document", "name": "order.pdf"}],
        ),
        _act(
            2,
            "TH",
            "mla_response",
            territorial_states=["TH"],
            refs=[_rid(1)],
            status="evidence_transferred",
            evidence=[
                {
                    "sha256": IMAGE,
                    "role": "evidence",
                    "size": 1024,
                    "media_type": "application/octet-stream",
                    "name": "disk.E01",
                    "tool": "FTK Imager",
                    "tool_version": "4.7",
                },
                {
                    "sha256": EXTRACT,
                    "role": "evidence",
                    "derived_from": IMAGE,
                    "name": "chat.db",
                },
            ],
        ),
        _act(
            3,
            "TH",
            "custody_event",
            territorial_states=["TH"],
            refs=[_rid(2)],
            action="collected",
            evidence=[{"sha256": IMAGE}],
        ),
        _act(
            4,
            "TH",
            "custody_event",
            territorial_states=["TH"],
            refs=[_rid(2)],
            action="transferred",
            to={"state": "CN", "agency": "CN forensic lab"},
            evidence=[{"sha256": IMAGE}],
        ),
        ActView(
            _rid(9),
            9,
            18,
            "2026-03-09T08:00:01Z",
            private_header,
            None,
            {"tree_size": 19, "root": "99" * 32, "checkpoint_height": 9},
        ),
    ]


def chains() -> list[CustodyChain]:
    return [CustodyChain(IMAGE, _rid(2), (_rid(3), _rid(4)), "transferred", "TH")]
