"""HTTP response schemas (pydantic, ``extra="forbid"``), kept apart from the ledger types.

They document the API in OpenAPI with examples and check what handlers
return; the ledger's own types (``Envelope``, ``BlockHeader``...) stay free of
HTTP concerns. JSON objects whose members the ledger defines (envelopes,
headers, certificates) are typed loosely here and pinned in docs/PROTOCOL.md.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from node.receipts import WebhookReceipt

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


class SubmitWarning(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str
    field: str
    message: str


class SubmitResult(BaseModel):
    model_config = _model({"id": H64, "status": "pending"})
    id: str
    status: Literal["pending", "committed"]
    warnings: list[SubmitWarning] | None = None


class BatchItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    index: int
    id: str | None = None
    status: Literal["pending", "committed"] | None = None
    warnings: list[SubmitWarning] | None = None
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
    #: The receipts that anchor a committed record (docs/CHANNELS.md "The trail").
    channel_trail: dict[str, Any] | None = None


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
    envelopes: list[dict[str, Any]] = Field(
        [], description="with `envelopes=true` only: the block's envelopes, in block order"
    )


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


# --- request bodies and parameters --------------------------------------------------------

HEX64 = "^[0-9a-f]{64}$"
HEX128 = "^[0-9a-f]{128}$"
STATE = "^[A-Z]{2}$"
RECORD_TYPE = "^[a-z][a-z0-9_]{0,63}$"
#: RFC 3339 UTC as Comity writes and reads it (ledger/records.py); the date must be real.
UTC_TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$"
#: A page cursor: a leaf index from a previous page's ``next_cursor``.
CURSOR = "^[0-9]{1,18}$"
MAX_SAFE_INT = 2**53 - 1


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def webhook_schemas() -> dict[str, Any]:
    """``WebhookReceipt`` (the receipt webhook's body) and the models it uses."""
    schema = WebhookReceipt.model_json_schema(ref_template="#/components/schemas/{model}")
    return {"WebhookReceipt": schema, **schema.pop("$defs", {})}


def request_schemas(chain_id: str, max_batch_records: int) -> dict[str, Any]:
    """JSON Schemas of the bodies the write routes read raw, for this node's chain
    and limits."""
    return {
        **webhook_schemas(),
        "CanonicalValue": {
            "description": "A value of the canonical-JSON subset (docs/PROTOCOL.md): "
            "integers within +-(2^53-1) written without fraction or exponent (JSON "
            "Schema's integer also admits 1.0, which the subset refuses with 400 "
            "`float_not_allowed`), no other numbers, nested at most 32 levels.",
            "anyOf": [
                {"type": "string"},
                {"type": "integer", "minimum": -MAX_SAFE_INT, "maximum": MAX_SAFE_INT},
                {"type": "boolean"},
                {"type": "null"},
                {"type": "array", "items": _ref("CanonicalValue")},
                {"type": "object", "additionalProperties": _ref("CanonicalValue")},
            ],
        },
        "Record": {
            "type": "object",
            "description": "The fields every record has; each type adds its own (GET "
            "/v1/schemas, docs/ACTS.md, docs/GOVERNANCE.md). Type rules, the chain "
            "(members, keys, refs, nonces) and the signature are checked on "
            "admission: 422, 403 or 409 with the field named.",
            "required": ["schema", "type", "chain_id", "actor", "nonce", "occurred_at"],
            "properties": {
                "schema": {"const": "comity/1"},
                "type": {"type": "string", "pattern": RECORD_TYPE},
                "chain_id": {"const": chain_id},
                "actor": {
                    "type": "object",
                    "required": ["state", "agency"],
                    "properties": {
                        "state": {"type": "string", "pattern": STATE},
                        "agency": {"type": "string", "minLength": 1, "maxLength": 200},
                    },
                    "additionalProperties": False,
                },
                "nonce": {"type": "string", "pattern": "^[A-Za-z0-9_-]{8,64}$"},
                "occurred_at": {"type": "string", "format": "date-time", "pattern": UTC_TIME},
            },
            "additionalProperties": _ref("CanonicalValue"),
        },
        "Envelope": {
            "type": "object",
            "required": ["record", "signer", "signature"],
            "properties": {
                "record": _ref("Record"),
                "signer": {
                    "type": "string",
                    "pattern": HEX64,
                    "description": "Ed25519 public key of the signing key",
                },
                "signature": {
                    "type": "string",
                    "pattern": HEX128,
                    "description": "Ed25519 signature over JCS(record)",
                },
            },
            "additionalProperties": False,
            "examples": [ENVELOPE_EXAMPLE],
        },
        "BatchRequest": {
            "type": "object",
            "required": ["envelopes"],
            "properties": {
                "envelopes": {
                    "type": "array",
                    "maxItems": max_batch_records,
                    "description": "Envelopes (see Envelope). An item that is not a valid "
                    "envelope gets its own error in `results`; it does not refuse the batch.",
                    "items": _ref("CanonicalValue"),
                }
            },
            "additionalProperties": False,
            "examples": [{"envelopes": [ENVELOPE_EXAMPLE]}],
        },
    }
