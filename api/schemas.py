"""HTTP response schemas (pydantic, ``extra="forbid"``), kept apart from the ledger types.

They document the API in OpenAPI with examples and check what handlers
return; the ledger's own types (``Envelope``, ``BlockHeader``...) stay free of
HTTP concerns. JSON objects whose members the ledger defines (envelopes,
headers, certificates) are typed loosely here and pinned in docs/PROTOCOL.md.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

H64 = "a3f1" + "0" * 60
SIG = "5e" * 64
ENVELOPE_EXAMPLE = {
    "record": {
        "schema": "comity/1",
        "type": "preservation_request",
        "chain_id": "comity-demo",
        "actor": {"state": "FR", "agency": "Gendarmerie nationale"},
        "nonce": "n-0001-8f2c",
        "occurred_at": "2026-11-22T06:10:10Z",
        "case_ref": "FR-2026-0001",
        "territorial_states": ["FR", "TH"],
        "evidence": [{"sha256": H64}],
    },
    "signer": "7d" * 32,
    "signature": SIG,
}


def _model(example: dict[str, Any]) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [example]})


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    model_config = _model(
        {
            "error": {
                "code": "bad_signature",
                "field": "signature",
                "message": "signature does not verify for signer over JCS(record)",
            }
        }
    )
    error: ErrorDetail


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the error statuses a route can answer."""
    return {status: {"model": ErrorBody} for status in statuses}


class SubmitResult(BaseModel):
    model_config = _model({"id": H64, "status": "pending"})
    id: str
    status: Literal["pending", "committed"]


class BatchRequest(BaseModel):
    """Documented shape of POST /v1/records/batch (parsed by the canonical-JSON reader)."""

    model_config = _model({"envelopes": [ENVELOPE_EXAMPLE]})
    envelopes: list[dict[str, Any]]


class BatchItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    index: int
    id: str | None = None
    status: Literal["pending", "committed"] | None = None
    error: ErrorDetail | None = None


class BatchResult(BaseModel):
    model_config = _model(
        {
            "results": [
                {"index": 0, "id": H64, "status": "pending"},
                {
                    "index": 1,
                    "error": {
                        "code": "duplicate_nonce",
                        "field": "record.nonce",
                        "message": "record.nonce was already used by this signer",
                    },
                },
            ]
        }
    )
    results: list[BatchItem]


class RecordView(BaseModel):
    model_config = _model(
        {
            "id": H64,
            "status": "committed",
            "envelope": ENVELOPE_EXAMPLE,
            "height": 12,
            "leaf_index": 40,
        }
    )
    id: str
    status: Literal["pending", "committed"]
    envelope: dict[str, Any]
    height: int | None
    leaf_index: int | None


class InclusionProof(BaseModel):
    model_config = _model(
        {
            "id": H64,
            "leaf_index": 40,
            "tree_size": 43,
            "audit_path": [H64, H64],
            "root": H64,
            "height": 12,
            "checkpoint_height": 12,
        }
    )
    id: str
    leaf_index: int
    tree_size: int
    audit_path: list[str]
    root: str
    height: int
    checkpoint_height: int | None


class ConsistencyProof(BaseModel):
    model_config = _model(
        {"first": 40, "second": 43, "first_root": H64, "second_root": H64, "proof": [H64]}
    )
    first: int
    second: int
    first_root: str
    second_root: str
    proof: list[str]


class BlockView(BaseModel):
    model_config = _model(
        {
            "hash": H64,
            "record_ids": [H64],
            "header": {
                "chain_id": "comity-demo",
                "height": 12,
                "time": "2026-11-22T06:10:10.123Z",
                "prev_hash": H64,
                "proposer": "FR",
                "record_count": 1,
                "ledger_size": 41,
                "ledger_root": H64,
                "validators_hash": H64,
            },
            "commit": {
                "height": 12,
                "round": 0,
                "block_hash": H64,
                "signatures": [{"validator": "7d" * 32, "signature": SIG}],
            },
        }
    )
    hash: str
    header: dict[str, Any]
    record_ids: list[str]
    commit: dict[str, Any]


class BlocksPage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    blocks: list[BlockView]
    next_from: int | None


class ValidatorRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: str
    pubkey: str


class ValidatorChangeRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    height: int
    decided_at: int
    action: str
    state: str
    record_ids: list[str]


class ValidatorSet(BaseModel):
    model_config = _model(
        {
            "height": 13,
            "validators": [{"state": "FR", "pubkey": "7d" * 32}],
            "since_height": 1,
            "changes": [],
        }
    )
    height: int
    validators: list[ValidatorRow]
    since_height: int
    changes: list[ValidatorChangeRow]


class SearchRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    height: int | None
    leaf_index: int
    type: str
    actor_state: str


class SearchPage(BaseModel):
    model_config = _model(
        {
            "results": [
                {
                    "id": H64,
                    "height": 12,
                    "leaf_index": 40,
                    "type": "preservation_request",
                    "actor_state": "FR",
                }
            ],
            "next_cursor": "40",
        }
    )
    results: list[SearchRow]
    next_cursor: str | None


class Readiness(BaseModel):
    model_config = _model(
        {
            "ready": True,
            "started": True,
            "syncing": False,
            "peers_up": 3,
            "peers_needed": 2,
            "height": 12,
        }
    )
    ready: bool
    started: bool
    syncing: bool
    peers_up: int
    peers_needed: int
    height: int
    failed: str | None = Field(
        None,
        description="why the node stopped taking part in "
        "consensus (a background task died); absent while it runs",
    )
