"""Operator commands: ``comity tls``, ``comity db`` and ``comity compose``.

``tls init`` makes a consortium CA and node certificates (node/tls.py).
``db backup|restore|check`` copy, restore and verify a node's store
(node/backup.py): a running node is backed up through its API, a stopped
one by opening its store. ``compose init`` writes what docker/compose.yaml
mounts: keys, a genesis whose P2P URLs are the compose service names, node
configs and TLS certificates (docker/README.md).
"""

from __future__ import annotations

import json
import ssl
import sys
from pathlib import Path
from typing import Any

import click
import httpx

from ledger.errors import ComityError
from node.config import ConfigError, NodeConfig, dump_config, load_config
from node.genesis import load_genesis

COMPOSE_STATES = ("CN", "FR", "TH", "VN")
COMPOSE_CHAIN_ID = "comity-compose"
COMPOSE_API_PORT = 8000
COMPOSE_P2P_PORT = 8100
COMPOSE_DATA_DIR = "/var/lib/comity"
#: docker/compose.observers.yaml: CN's observer nodes, behind HAProxy.
COMPOSE_OBSERVER_STATE = "CN"
COMPOSE_OBSERVERS_MAX = 8


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _config(path: Path) -> NodeConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        _fail(str(exc))
        raise


# --- tls ---------------------------------------------------------------------------------


@click.group()
def tls() -> None:
    """TLS certificates for the consortium (a CA, one certificate per node)."""


@tls.command("init")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    required=True,
    help="where ca.pem, ca.key and <STATE>/node.pem, node-tls.key go",
)
@click.option("--state", "states", multiple=True, required=True, help="repeat per node")
@click.option(
    "--hosts",
    default="127.0.0.1,localhost",
    show_default=True,
    help="comma-separated names and IPs peers dial; {state_lower} is replaced",
)
def tls_init(directory: Path, states: tuple[str, ...], hosts: str) -> None:
    """Create the CA (or reuse DIR/ca.pem) and a certificate for each new state."""
    from node.tls import init_tls

    names = [h.strip() for h in hosts.split(",") if h.strip()]
    if not names:
        _fail("--hosts names no host")
    for files in init_tls(directory, [s.upper() for s in states], names):
        click.echo(f"{files.state}: {files.cert_path} {files.key_path}")
    click.echo(f"CA certificate (give it to every node): {directory / 'ca.pem'}")


# --- db ----------------------------------------------------------------------------------


@click.group()
def db() -> None:
    """Back up, restore and check a node's store."""


def _api_url(config: NodeConfig) -> str:
    host = config.api.host if config.api.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    scheme = "https" if config.tls is not None and config.tls.api else "http"
    return f"{scheme}://{host}:{config.api.port}"


def _api_verify(config: NodeConfig) -> ssl.SSLContext | bool:
    if config.tls is None:
        return True
    return ssl.create_default_context(cafile=str(config.tls.ca_path))


def _online_backup(config: NodeConfig, out: Path, token: str | None) -> dict[str, Any]:
    """Stream the running node's snapshot through ``POST /v1/admin/backup``."""
    from node.backup import BackupError, write_backup
    from node.tokens import create_token, revoke_token

    token_id = None
    if token is None:  # a one-off operator token, revoked as soon as the backup is done
        token_id, token = create_token(config.data_dir, "operator", "comity db backup")
    try:
        with (
            httpx.Client(verify=_api_verify(config), timeout=httpx.Timeout(30, read=300)) as client,
            client.stream(
                "POST",
                f"{_api_url(config)}/v1/admin/backup",
                headers={"authorization": f"Bearer {token}"},
            ) as reply,
        ):
            if reply.status_code != 200:
                raise BackupError(f"node answered {reply.status_code}: {reply.read()[:300]!r}")
            return write_backup(reply.iter_bytes(), out)
    finally:
        if token_id is not None:
            revoke_token(config.data_dir, token_id)


@db.command("backup")
@click.option("--config", "config_path", type=click.Path(path_type=Path), required=True)
@click.option(
    "--out", type=click.Path(path_type=Path), required=True, help="a new or empty directory"
)
@click.option(
    "--token",
    default=None,
    help="operator token (default: a one-off one is "
    "created in the node's data dir and revoked afterwards)",
)
@click.option("--offline", is_flag=True, help="the node is stopped: read its store directly")
def db_backup(config_path: Path, out: Path, token: str | None, offline: bool) -> None:
    """Take a consistent snapshot of the store, while the node runs or not."""
    from node.backup import offline_backup

    config = _config(config_path)
    extra = {"chain_id": load_genesis(config.genesis_path).chain_id, "state": config.state}
    try:
        if offline:
            manifest = offline_backup(config.data_dir, out, extra)
        else:
            manifest = _online_backup(config, out, token)
    except httpx.ConnectError as exc:
        _fail(
            f"node API at {_api_url(config)} unreachable ({exc}); "
            "if the node is stopped, pass --offline"
        )
        return
    except (ComityError, httpx.HTTPError, OSError) as exc:
        _fail(f"backup failed: {exc}")
        return
    click.echo(
        f"backup of {config.state} at height {manifest['height']} "
        f"({manifest['keys']} keys) written to {out}"
    )


@db.command("restore")
@click.option("--config", "config_path", type=click.Path(path_type=Path), required=True)
@click.option(
    "--from",
    "source",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="the backup directory to install",
)
@click.option("--force", is_flag=True, help="replace an existing store (kept aside)")
@click.option(
    "--signed-through",
    "signed_through",
    type=click.IntRange(min=0),
    default=None,
    help="the highest height this node's key may have signed at (the height "
    "its peers are working on); needed when the old store is gone",
)
@click.option(
    "--release-hold",
    "release_hold",
    is_flag=True,
    help="on its own: let the node sign again after a restore (check first: "
    "docs/OPERATIONS.md section 6)",
)
def db_restore(
    config_path: Path,
    source: Path | None,
    force: bool,
    signed_through: int | None,
    release_hold: bool,
) -> None:
    """Verify a backup, then install it as the node's store (node stopped)."""
    from node.backup import restore

    config = _config(config_path)
    if release_hold:
        if source is not None or force or signed_through is not None:
            _fail("--release-hold is used on its own, with the node stopped")
        _release_hold(config)
        return
    if source is None:
        _fail("--from is required (or --release-hold)")
        return
    try:
        manifest = restore(
            source,
            config.data_dir,
            load_genesis(config.genesis_path),
            force=force,
            signed_through=signed_through,
        )
    except (ComityError, OSError) as exc:
        _fail(str(exc))
        return
    click.echo(
        f"restored {config.state} to height {manifest['height']}; start the node: "
        "it block-syncs the rest of the chain from its peers"
    )
    through = manifest["signed_through"]
    if through is None:
        click.echo(
            "signing hold: the node signs nothing until released (nothing says how "
            "far its key got after the backup); see docs/OPERATIONS.md section 6"
        )
    else:
        click.echo(
            f"signing hold: the node signs nothing at heights up to {through}; it "
            "block-syncs them first"
        )


def _release_hold(config: NodeConfig) -> None:
    from ledger.store import Store
    from node.signing_hold import release

    path = config.data_dir / "ledger"
    if not path.is_dir():
        _fail(f"no store at {path}")
    try:
        with Store.open_leveldb(path) as store:
            hold = release(store)
    except ComityError as exc:
        _fail(f"cannot open {path} (stop the node first): {exc}")
        return
    if hold is None:
        click.echo("no signing hold on this store")
    else:
        click.echo(
            f"signing hold released (it held heights up to "
            f"{'any' if hold.signed_through is None else hold.signed_through})"
        )


@db.command("check")
@click.option("--config", "config_path", type=click.Path(path_type=Path), required=True)
@click.option(
    "--backup",
    "backup",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="check this backup instead of the node's store",
)
def db_check(config_path: Path, backup: Path | None) -> None:
    """Verify the whole store offline (node stopped); exit 1 if anything is wrong."""
    from ledger.store import Store
    from node.backup import check_store, verify_backup

    config = _config(config_path)
    genesis = load_genesis(config.genesis_path)
    try:
        if backup is not None:
            manifest, problems = verify_backup(backup, genesis)
            height = int(manifest.get("height", 0))
        else:
            path = config.data_dir / "ledger"
            if not path.is_dir():
                _fail(f"no store at {path}")
            with Store.open_leveldb(path) as store:
                height = store.height
                problems = check_store(store, genesis)
    except ComityError as exc:
        problems, height = [str(exc)], 0
    for problem in problems:
        click.echo(f"PROBLEM: {problem}")
    if problems:
        click.echo(f"store check FAILED: {len(problems)} problem(s)", err=True)
        sys.exit(1)
    click.echo(
        f"store OK: {height} blocks, certificates, records, Merkle roots and indexes verified"
    )


# --- compose -----------------------------------------------------------------------------


@click.group()
def compose() -> None:
    """Files for docker/compose.yaml (a 4-state consortium in containers)."""


@compose.command("init")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    default=Path("net"),
    show_default=True,
    help="docker/compose.yaml mounts ./net",
)
@click.option(
    "--observers",
    type=click.IntRange(0, COMPOSE_OBSERVERS_MAX),
    default=0,
    show_default=True,
    help="CN observer nodes for docker/compose.observers.yaml (net/CN-obs<i>)",
)
def compose_init(directory: Path, observers: int) -> None:
    """Keys, genesis (P2P at https://comity-<state>:8100), configs and TLS certificates."""
    rows = write_compose_net(directory)
    for row in rows:
        click.echo(f"{row['state']}: service {row['service']}, P2P {row['p2p_url']}")
    for name, pubkey in write_compose_observers(directory, observers):
        click.echo(
            f"{name}: service comity-{name.lower()}, observer node key {pubkey} "
            f"(admit it: comity propose --action add_observer --member "
            f"{COMPOSE_OBSERVER_STATE} --node-pubkey {pubkey} ...)"
        )
    click.echo(
        f"wrote {directory}; give the containers' user read access to the "
        "mounted files (docker/README.md)"
    )


def write_compose_net(directory: Path) -> list[dict[str, str]]:
    """The layout docker/compose.yaml mounts (reused, never overwritten, on a rerun)."""
    from api.cli.bootstrap import DEMO_STATES, MemberKeys, build_genesis
    from node.tls import init_tls

    names = dict(DEMO_STATES)
    directory.mkdir(parents=True, exist_ok=True)
    members = [MemberKeys.load_or_create(directory / s, s, names[s]) for s in COMPOSE_STATES]
    rows = [
        {
            "state": s,
            "service": f"comity-{s.lower()}",
            "p2p_url": f"https://comity-{s.lower()}:{COMPOSE_P2P_PORT}",
        }
        for s in COMPOSE_STATES
    ]
    genesis_path = directory / "genesis.json"
    if not genesis_path.exists():
        genesis = build_genesis(COMPOSE_CHAIN_ID, members, {r["state"]: r["p2p_url"] for r in rows})
        genesis_path.write_text(json.dumps(genesis, indent=2) + "\n")
    init_tls(directory / "tls", COMPOSE_STATES, ["comity-{state_lower}", "localhost", "127.0.0.1"])
    for state in COMPOSE_STATES:
        config = {
            "state": state,
            "genesis_path": "../genesis.json",
            "node_key_path": "node.key",
            "enc_key_path": "enc.key",
            "data_dir": COMPOSE_DATA_DIR,
            "open_read": False,
            "log_format": "json",
            "api": {"host": "0.0.0.0", "port": COMPOSE_API_PORT},
            "p2p": {"host": "0.0.0.0", "port": COMPOSE_P2P_PORT},
            "tls": {
                "ca_path": "../tls/ca.pem",
                "cert_path": f"../tls/{state}/node.pem",
                "key_path": f"../tls/{state}/node-tls.key",
            },
        }
        (directory / state / "node.toml").write_text(dump_config(config))
    return rows


def write_compose_observers(directory: Path, count: int) -> list[tuple[str, str]]:
    """``count`` observer nodes of CN (``net/CN-obs<i>``: a node key of its own, a config
    with ``role = "observer"`` reading CN's enc.key, a TLS certificate); reused on a
    rerun. Returns each one's folder name and node key."""
    from ledger.keys import SigningKey, load_signing_key, save_signing_key
    from node.tls import init_tls

    state = COMPOSE_OBSERVER_STATE
    names = [f"{state}-obs{i}" for i in range(1, count + 1)]
    init_tls(directory / "tls", names, ["comity-{state_lower}", "localhost", "127.0.0.1"])
    out = []
    for name in names:
        folder = directory / name
        folder.mkdir(exist_ok=True)
        key_path = folder / "node.key"
        if not key_path.exists():
            save_signing_key(key_path, SigningKey.generate())
        config = {
            "state": state,
            "role": "observer",
            "genesis_path": "../genesis.json",
            "node_key_path": "node.key",
            "enc_key_path": f"../{state}/enc.key",
            "data_dir": COMPOSE_DATA_DIR,
            "open_read": False,
            "log_format": "json",
            "api": {"host": "0.0.0.0", "port": COMPOSE_API_PORT},
            "p2p": {"host": "0.0.0.0", "port": COMPOSE_P2P_PORT},
            "tls": {
                "ca_path": "../tls/ca.pem",
                "cert_path": f"../tls/{name}/node.pem",
                "key_path": f"../tls/{name}/node-tls.key",
            },
        }
        (folder / "node.toml").write_text(dump_config(config))
        out.append((name, load_signing_key(key_path).public_hex))
    return out


__all__ = ["compose", "db", "tls"]
