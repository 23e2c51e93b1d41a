"""The genesis document: who the members are and the consensus parameters.

Every node pins the genesis hash (SHA-256 of JCS(genesis)); block 1's
``prev_hash`` is that hash, so two nodes with different genesis files can
never accept each other's blocks. The parameters under ``consensus`` are
consortium-wide: every node must apply the same block limits and clock-skew
bound or they would disagree on ``valid(v)``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from ledger.block import Validator, genesis_hash, sorted_validators
from ledger.canonical import MAX_SAFE_INT, parse_json
from ledger.errors import EncodingError

StateCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
HexKey = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Role = Literal["investigator", "authority", "integration", "auditor", "admin"]

_TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")


DEFAULT_MAX_BACKDATE_MS = 30 * 24 * 3600 * 1000
MAX_BACKDATE_MS_LIMIT = 3660 * 24 * 3600 * 1000  # ten years: a timedelta, not an overflow
#: Parameters a genesis file may leave out (they postdate the first files).
OPTIONAL_PARAMS = frozenset(
    {
        "max_backdate_ms",
        "need_to_know_from_height",
        "catalogue_v2_from_height",
        "catalogue_v3_from_height",
    }
)
#: What a NEW genesis (``comity genesis new``, ``comity devnet``) writes for them:
#: new consortia start under the need-to-know rules and the latest act catalogue
#: from block 1.
NEW_CHAIN_PARAMS: dict[str, Any] = {
    "max_backdate_ms": DEFAULT_MAX_BACKDATE_MS,
    "need_to_know_from_height": 1,
    "catalogue_v2_from_height": 1,
    "catalogue_v3_from_height": 1,
}


class ConsensusParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Timeouts only cost time when something fails; they must exceed the time a
    # loaded node needs to receive and validate a full block, or rounds fail.
    propose_timeout_ms: int = Field(3000, ge=10, le=600_000)
    propose_timeout_delta_ms: int = Field(500, ge=0, le=600_000)
    prevote_timeout_ms: int = Field(1000, ge=10, le=600_000)
    prevote_timeout_delta_ms: int = Field(500, ge=0, le=600_000)
    precommit_timeout_ms: int = Field(1000, ge=10, le=600_000)
    precommit_timeout_delta_ms: int = Field(500, ge=0, le=600_000)
    max_block_records: int = Field(1000, ge=1, le=100_000)
    max_block_bytes: int = Field(8 * 1024 * 1024, ge=64 * 1024, le=64 * 1024 * 1024)
    max_record_bytes: int = Field(64 * 1024, ge=1024, le=1024 * 1024)
    max_clock_skew_ms: int = Field(10 * 60 * 1000, ge=1000)
    block_time_skew_ms: int = Field(30_000, ge=100)
    heartbeat_interval_ms: int = Field(60_000, ge=100)
    proposal_expiry_blocks: int = Field(1000, ge=1)
    # How far before the block time (at ingress: the node's clock) a record's
    # occurred_at may be; without a bound a state backdates acts into periods
    # another state has already reported on. Added after genesis files existed:
    # a file that leaves it out keeps its hash (None is not written) and runs
    # with DEFAULT_MAX_BACKDATE_MS, a protocol constant that never changes.
    max_backdate_ms: int | None = Field(None, ge=3_600_000, le=MAX_BACKDATE_MS_LIMIT)
    # The first height whose acts follow the need-to-know rules (issue 17). Left
    # out (a chain written before them): not active until a passed set_param
    # proposal names a height (docs/GOVERNANCE.md, "Consortium parameters").
    need_to_know_from_height: int | None = Field(None, ge=1, le=MAX_SAFE_INT)
    # The first height whose acts follow act catalogue version 2 (issue 18,
    # ledger/acts_versions.py). Left out: version 1 until a passed set_param.
    catalogue_v2_from_height: int | None = Field(None, ge=1, le=MAX_SAFE_INT)
    # Version 3 (issue 20: custody both sides sign, docs/ACTS.md §5): the same way.
    catalogue_v3_from_height: int | None = Field(None, ge=1, le=MAX_SAFE_INT)

    @model_validator(mode="before")
    @classmethod
    def _no_null(cls, value: object) -> object:
        if isinstance(value, dict):
            for name in sorted(OPTIONAL_PARAMS):
                if name in value and value[name] is None:
                    raise ValueError(f"{name} may not be null; leave it out instead")
        return value

    @model_validator(mode="after")
    def _versions_in_order(self) -> ConsensusParams:
        # A catalogue version builds on the one before: it applies no earlier.
        v2, v3 = self.catalogue_v2_from_height, self.catalogue_v3_from_height
        if v3 is not None and (v2 is None or v3 < v2):
            raise ValueError("catalogue_v3_from_height needs catalogue_v2_from_height, not later")
        return self

    @property
    def backdate_bound_ms(self) -> int:
        """The lower bound on ``occurred_at``: block time minus this many ms."""
        return DEFAULT_MAX_BACKDATE_MS if self.max_backdate_ms is None else self.max_backdate_ms


def full_consensus(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every consensus parameter of a new chain: this software's defaults, then ``overrides``.

    An optional parameter overridden with None is left out (as a chain written
    before it has it), so ``{"need_to_know_from_height": None}`` makes a genesis
    that starts under the rules before need to know.
    """
    values = {**NEW_CHAIN_PARAMS, **(overrides or {})}
    kept = {k: v for k, v in values.items() if not (k in OPTIONAL_PARAMS and v is None)}
    return ConsensusParams(**kept).model_dump(exclude_none=True)


class Member(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    state: StateCode
    name: str = Field(min_length=1, max_length=200)
    node_pubkey: HexKey
    admin_pubkeys: tuple[HexKey, ...] = Field(min_length=1, max_length=16)
    enc_pubkey: HexKey
    p2p_url: str = Field(min_length=1, max_length=300)


class Enrollment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    state: StateCode
    pubkey: HexKey
    roles: tuple[Role, ...] = Field(min_length=1)
    agency: str = Field(min_length=1, max_length=200)


class Genesis(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    chain_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    genesis_time: str
    consensus: ConsensusParams
    members: tuple[Member, ...] = Field(min_length=1, max_length=500)
    enrollments: tuple[Enrollment, ...]

    @field_validator("consensus", mode="before")
    @classmethod
    def _explicit(cls, value: object) -> object:
        # The genesis hash covers the document as written. If a parameter were
        # left to this software's default, two versions with different
        # defaults would hash (and run) the same file differently.
        if isinstance(value, dict):
            missing = sorted(set(ConsensusParams.model_fields) - set(value) - OPTIONAL_PARAMS)
            if missing:
                raise ValueError(f"consensus must list every parameter; missing {missing}")
        return value

    @field_validator("genesis_time")
    @classmethod
    def _rfc3339(cls, value: str) -> str:
        if not _TIME_RE.fullmatch(value):
            raise ValueError("genesis_time must be RFC 3339 UTC, e.g. 2026-01-01T00:00:00Z")
        return value

    @model_validator(mode="after")
    def _unique(self) -> Genesis:
        states = [m.state for m in self.members]
        if len(set(states)) != len(states):
            raise ValueError("member states must be unique")
        keys = [m.node_pubkey for m in self.members]
        if len(set(keys)) != len(keys):
            raise ValueError("member node_pubkeys must be unique")
        for enrollment in self.enrollments:
            if enrollment.state not in states:
                raise ValueError(f"enrollment for {enrollment.state}, which is not a member")
        return self

    def validators(self) -> tuple[Validator, ...]:
        return sorted_validators(Validator(m.state, m.node_pubkey) for m in self.members)

    def to_json(self) -> dict[str, Any]:
        # exclude_none: an optional parameter the file leaves out stays out of the
        # document, and so out of the hash (nothing else in a genesis is optional).
        return self.model_dump(mode="json", exclude_none=True)

    def hash(self) -> str:
        return genesis_hash(self.to_json())


def load_genesis(path: str | Path) -> Genesis:
    """Read and validate a genesis file; raise ``EncodingError`` with the reason."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise EncodingError(
            f"cannot read genesis file {path}: {exc.strerror}", field="genesis"
        ) from exc
    obj = parse_json(raw)
    try:
        return Genesis.model_validate(obj)
    except ValueError as exc:
        raise EncodingError(f"invalid genesis file {path}: {exc}", field="genesis") from exc
