"""Node configuration: one TOML file, validated once at start-up into a frozen model.

Paths in the file are relative to the file's own directory. Every duration
and size carries its unit in its name. A bad or missing value stops the node
with a message naming the key (``ConfigError``), never a traceback.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ledger.errors import ComityError
from node.hsm import Pkcs11Key


class ConfigError(ComityError):
    """The node's configuration is unusable."""


class Listen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)


class Peer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    state: str = Field(pattern=r"^[A-Z]{2}$")
    p2p_url: str


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # A few blocks' worth: past that, refusing early (503) keeps CPU for ordering.
    max_pending_records: int = Field(10_000, ge=1, le=10_000_000)
    max_pending_bytes: int = Field(256 * 1024 * 1024, ge=1024)
    max_request_bytes: int = Field(8 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024)
    max_batch_records: int = Field(1000, ge=1, le=10_000)
    max_p2p_batch_bytes: int = Field(32 * 1024 * 1024, ge=64 * 1024)
    peer_queue_messages_max: int = Field(100_000, ge=100)
    inbox_events_max: int = Field(100_000, ge=100)
    sync_batch_blocks: int = Field(50, ge=1, le=1000)
    # Worker processes that check record signatures (0: threads in the node
    # process, slower next to a busy event loop; see node/verifier.py).
    verify_processes: int = Field(1, ge=0, le=64)
    sse_subscribers_max: int = Field(100, ge=1)
    long_poll_max_s: int = Field(60, ge=0, le=600)
    # Mempool shares (node/mempool.py): the slice only governance records may use,
    # and a signer's part of its state's share (pool / member states).
    mempool_governance_reserve_percent: int = Field(5, ge=0, le=50)
    mempool_signer_share_percent: int = Field(50, ge=1, le=100)
    # Write routes (POST /v1/records[/batch]): token buckets per client IP (requests)
    # and per signer (records); 0 turns one off. At most rate_limit_sources_max
    # buckets of each kind are kept (least recently used go first). Loopback
    # clients are exempt unless a reverse proxy on this host fronts the API
    # (see docs/OPERATIONS.md, "Admission limits").
    ip_write_requests_per_s: int = Field(50, ge=0, le=1_000_000)
    ip_write_burst_requests: int = Field(200, ge=1, le=1_000_000)
    signer_records_per_s: int = Field(1000, ge=0, le=1_000_000)
    signer_burst_records: int = Field(5000, ge=1, le=10_000_000)
    rate_limit_sources_max: int = Field(10_000, ge=1, le=1_000_000)
    rate_limit_exempt_loopback: bool = True
    # P2P sync requests (status, blocks, block, bodies) of each admitted observer node:
    # a token bucket per observer key; past it, 429 observer_rate_limited
    # (docs/OPERATIONS.md, "Observer nodes"). Validators are never limited here.
    observer_requests_per_s: int = Field(50, ge=1, le=100_000)
    observer_burst_requests: int = Field(200, ge=1, le=1_000_000)


class Timing(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    gossip_flush_ms: int = Field(5, ge=0, le=1000)
    rebroadcast_interval_ms: int = Field(1000, ge=50)
    peer_status_interval_ms: int = Field(1000, ge=50)
    peer_backoff_max_ms: int = Field(5000, ge=10)
    peer_request_timeout_ms: int = Field(10_000, ge=100)
    #: How often kept private bodies are scanned for ended retention (docs/PRIVACY.md).
    purge_scan_interval_ms: int = Field(30_000, ge=100)


class Tls(BaseModel):
    """TLS on both listeners; mutual TLS on P2P (see node/tls.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_path: Path  # the consortium CA: peers' certificates must chain to it
    cert_path: Path  # this node's certificate (server and client)
    key_path: Path
    require_client_cert: bool = True  # P2P refuses TLS clients without a CA-signed cert
    api: bool = True  # serve the API over HTTPS too (no client certs there)


class Receipts(BaseModel):
    """The receipt webhook (docs/CHANNELS.md, node/receipts.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The HMAC secret shared with the calling system: a file of mode 0600.
    webhook_secret_path: Path
    #: A signing key enrolled for this state with role ``integration``.
    integration_key_path: Path
    #: ``actor.agency`` of the receipts the webhook writes.
    agency: str = Field("integration adapter", min_length=1, max_length=200)


class NodeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    state: str = Field(pattern=r"^[A-Z]{2}$")
    #: ``observer``: follow the chain by block sync and serve reads, never vote or
    #: propose (docs/OPERATIONS.md, "Observer nodes"); ``state`` is the state it
    #: belongs to, and ``node_key_path`` its own node key, admitted by an
    #: ``add_observer`` vote and never a validator's.
    role: Literal["validator", "observer"] = "validator"
    genesis_path: Path
    #: The node key: a PKCS#8 PEM file (mode 0600), or a key pair in a PKCS#11 token
    #: (``[node_key_pkcs11]``, node/hsm.py); exactly one of the two.
    node_key_path: Path | None = None
    node_key_pkcs11: Pkcs11Key | None = None
    enc_key_path: Path | None = None  # X25519 key that opens sealed details for this state
    data_dir: Path
    api: Listen
    p2p: Listen
    peers: tuple[Peer, ...] = ()
    open_read: bool = False
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] = "json"
    limits: Limits = Limits()
    timing: Timing = Timing()
    tls: Tls | None = None
    receipts: Receipts | None = None

    @model_validator(mode="after")
    def _one_node_key(self) -> Self:
        if (self.node_key_path is None) == (self.node_key_pkcs11 is None):
            raise ValueError("give exactly one of node_key_path and [node_key_pkcs11]")
        if self.role == "observer" and self.receipts is not None:
            raise ValueError(
                "role = observer takes no records: the receipt webhook ([receipts]) "
                "belongs on a validator"
            )
        return self


def load_config(path: str | Path) -> NodeConfig:
    """Load and validate ``path``; relative paths resolve against its directory."""
    file = Path(path)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {file}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {file} is not valid TOML: {exc}") from exc
    base = file.resolve().parent
    for key in ("genesis_path", "node_key_path", "enc_key_path", "data_dir"):
        if key in raw and isinstance(raw[key], str):
            raw[key] = str((base / raw[key]).resolve())
    tls = raw.get("tls")
    if isinstance(tls, dict):
        for key in ("ca_path", "cert_path", "key_path"):
            if isinstance(tls.get(key), str):
                tls[key] = str((base / tls[key]).resolve())
    hsm = raw.get("node_key_pkcs11")
    if isinstance(hsm, dict):
        for key in ("module", "pin_file"):
            if isinstance(hsm.get(key), str):
                hsm[key] = str((base / hsm[key]).resolve())
    receipts = raw.get("receipts")
    if isinstance(receipts, dict):
        for key in ("webhook_secret_path", "integration_key_path"):
            if isinstance(receipts.get(key), str):
                receipts[key] = str((base / receipts[key]).resolve())
    try:
        config = NodeConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"invalid config file {file}: {_describe(exc)}") from exc
    for key in ("genesis_path", "node_key_path", "enc_key_path"):
        target: Path | None = getattr(config, key)
        if target is not None and not target.is_file():
            raise ConfigError(f"config {file}: {key} = {target} does not exist")
    if config.node_key_pkcs11 is not None:
        module = config.node_key_pkcs11.module
        if not module.is_file():
            raise ConfigError(f"config {file}: node_key_pkcs11.module = {module} does not exist")
    if config.receipts is not None:
        for key in ("webhook_secret_path", "integration_key_path"):
            target = getattr(config.receipts, key)
            if not target.is_file():
                raise ConfigError(f"config {file}: receipts.{key} = {target} does not exist")
            if target.stat().st_mode & 0o077:  # a secret or a private key: owner only
                raise ConfigError(
                    f"config {file}: receipts.{key} = {target} is readable or writable by "
                    "group or others; chmod 600 it"
                )
    if config.tls is not None:
        for key in ("ca_path", "cert_path", "key_path"):
            if not getattr(config.tls, key).is_file():
                raise ConfigError(
                    f"config {file}: tls.{key} = {getattr(config.tls, key)} does not exist"
                )
    return config


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def dump_config(config: dict[str, Any]) -> str:
    """Write a config dict as TOML (flat tables only; enough for ``comity init``)."""
    lines: list[str] = []
    tables: list[tuple[str, Any]] = []
    for key, value in config.items():
        if isinstance(value, dict) or (
            isinstance(value, list) and value and isinstance(value[0], dict)
        ):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for key, value in tables:
        if isinstance(value, dict):
            lines.append(f"\n[{key}]")
            lines.extend(f"{k} = {_toml_value(v)}" for k, v in value.items())
        else:
            for row in value:
                lines.append(f"\n[[{key}]]")
                lines.extend(f"{k} = {_toml_value(v)}" for k, v in row.items())
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str | Path):
        text = str(value).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{text}"'
    raise TypeError(f"cannot write {type(value).__name__} to TOML")
