"""The ``comity`` command line: keys, genesis, node config, running, devnet, submitting."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from api.cli import devnet as devnet_mod
from api.cli.access_log import access_log
from api.cli.acts import act, seal
from api.cli.audit import bundle, verify, watch
from api.cli.case import case
from api.cli.client import ClientFailure, NodeClient
from api.cli.directory import directory
from api.cli.enc_keys import enc_key
from api.cli.hsm import key_signer, pkcs11_key, pkcs11_options
from api.cli.ops import compose, db, tls
from api.cli.receipts import receipt
from api.cli.stats import stats
from ledger.canonical import parse_json
from ledger.errors import ComityError
from ledger.keys import (
    KeySigner,
    SigningKey,
    load_signing_key,
    public_key_from_text,
    save_signing_key,
)
from ledger.private import ACT_TYPES
from ledger.retention import default_retain_until
from ledger.roles import ROLES
from node.authoring import complete_record, hash_file, private_submission, sign_envelope
from node.config import ConfigError, dump_config, load_config
from node.genesis import Genesis, full_consensus, load_genesis
from node.govtypes import PARAMS


def fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Comity: a permissioned cross-border evidence ledger."""


@main.command()
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path),
    default=None,
    help="where to write the PKCS#8 PEM private key (mode 0600)",
)
@click.option("--force", is_flag=True, help="overwrite an existing file")
@click.option(
    "--pkcs11",
    "in_token",
    is_flag=True,
    help="create the key pair in a PKCS#11 token instead (--pkcs11-* options)",
)
@pkcs11_options
def keygen(out: Path | None, force: bool, in_token: bool) -> None:
    """Create an Ed25519 key; print its public key (hex).

    With --pkcs11 the pair is made inside the token (sensitive, never extractable,
    CKA_SIGN) under --pkcs11-label, and no private key file is written."""
    if in_token:
        if out is not None or force:
            fail("--out and --force are for key files; a --pkcs11 key stays in its token")
        from node.hsm import generate_keypair

        try:
            click.echo(generate_keypair(pkcs11_key()).public_hex)
        except ComityError as exc:
            fail(str(exc))
        return
    if out is None:
        fail("give --out (a key file) or --pkcs11 (a key in a token)")
        return
    key = SigningKey.generate()
    try:
        save_signing_key(out, key, overwrite=force)
    except FileExistsError:
        fail(f"{out} exists; pass --force to overwrite it")
    click.echo(key.public_hex)


@main.command()
@click.argument("key_file", required=False, type=click.Path(exists=True, path_type=Path))
@pkcs11_options
def pubkey(key_file: Path | None) -> None:
    """Print the public key (hex) of a private key file, or of a key in a token."""
    click.echo(key_signer(key_file, "KEY_FILE").public_hex)


@main.group()
def genesis() -> None:
    """Create and inspect a genesis document."""


@genesis.command("new")
@click.option("--chain-id", required=True)
@click.option("--out", type=click.Path(path_type=Path), required=True)
def genesis_new(chain_id: str, out: Path) -> None:
    """Start a genesis with no members yet (add them with add-member)."""
    from ledger.records import format_time
    from node import clock

    if out.exists():
        fail(f"{out} exists")
    out.write_text(
        json.dumps(
            {
                "chain_id": chain_id,
                "genesis_time": format_time(clock.utcnow()),
                "consensus": full_consensus(),
                "members": [],
                "enrollments": [],
            },
            indent=2,
        )
    )
    click.echo(f"wrote {out}")


def _edit_genesis(path: Path, change: Any) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    if doc["members"]:
        try:
            Genesis.model_validate(doc)
        except ValueError as exc:
            fail(f"the genesis would be invalid: {exc}")
    path.write_text(json.dumps(doc, indent=2) + "\n")


@genesis.command("add-member")
@click.option("--genesis", "path", type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--state", required=True, help="ISO 3166-1 alpha-2 code")
@click.option("--name", required=True)
@click.option("--node-pubkey", required=True, help="hex or SPKI PEM file")
@click.option("--admin-pubkey", "admins", multiple=True, required=True)
@click.option("--enc-pubkey", required=True, help="X25519 public key, 64 hex (comity enc-key new)")
@click.option("--p2p-url", required=True)
def genesis_add_member(
    path: Path,
    state: str,
    name: str,
    node_pubkey: str,
    admins: tuple[str, ...],
    enc_pubkey: str,
    p2p_url: str,
) -> None:
    """Add a member state (its node key becomes a validator key)."""
    member = {
        "state": state,
        "name": name,
        "node_pubkey": _pubkey_arg(node_pubkey),
        "admin_pubkeys": [_pubkey_arg(a) for a in admins],
        "enc_pubkey": enc_pubkey,
        "p2p_url": p2p_url,
    }
    _edit_genesis(path, lambda doc: doc["members"].append(member))
    click.echo(f"added {state} to {path}")


@genesis.command("enroll")
@click.option("--genesis", "path", type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--state", required=True)
@click.option("--pubkey", required=True, help="hex or SPKI PEM file")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    type=click.Choice(list(ROLES)),
)
@click.option("--agency", required=True)
def genesis_enroll(
    path: Path, state: str, pubkey: str, roles: tuple[str, ...], agency: str
) -> None:
    """Enrol a signing key at genesis."""
    row = {"state": state, "pubkey": _pubkey_arg(pubkey), "roles": list(roles), "agency": agency}
    _edit_genesis(path, lambda doc: doc["enrollments"].append(row))
    click.echo(f"enrolled {row['pubkey']} for {state}")


@genesis.command("hash")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
def genesis_hash_cmd(path: Path) -> None:
    """Validate a genesis file and print its hash (block 1's prev_hash)."""
    try:
        click.echo(load_genesis(path).hash())
    except ComityError as exc:
        fail(str(exc))


def _pubkey_arg(text: str) -> str:
    """64 hex, an SPKI PEM public key file, or a PKCS#8 private key file (its public half)."""
    candidate = Path(text)
    try:
        if len(text) != 64 and candidate.is_file():
            data = candidate.read_bytes()
            if b"PRIVATE KEY" in data:
                return load_signing_key(candidate).public_hex
            return public_key_from_text(data)
        return public_key_from_text(text)
    except ComityError as exc:
        fail(str(exc))
        raise


@main.command()
@click.option("--state", required=True)
@click.option(
    "--genesis", "genesis_path", type=click.Path(exists=True, path_type=Path), required=True
)
@click.option(
    "--node-key",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="the node key file (or a key in a token: --pkcs11-*); with --observer a "
    "missing file is created (0600)",
)
@pkcs11_options
@click.option("--data-dir", type=click.Path(path_type=Path), required=True)
@click.option("--api", "api_addr", default="127.0.0.1:8000", show_default=True)
@click.option("--p2p", "p2p_addr", default="127.0.0.1:8100", show_default=True)
@click.option("--open-read/--no-open-read", default=False, show_default=True)
@click.option(
    "--observer",
    is_flag=True,
    help="an observer node: follows the chain and serves reads, never votes "
    "(admitted by an add_observer vote; docs/OPERATIONS.md)",
)
@click.option(
    "--enc-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="the state's X25519 key (an agency's own node or observer opens sealed details)",
)
@click.option("--out", type=click.Path(path_type=Path), required=True)
def init(
    state: str,
    genesis_path: Path,
    node_key: Path | None,
    data_dir: Path,
    api_addr: str,
    p2p_addr: str,
    open_read: bool,
    observer: bool,
    enc_key: Path | None,
    out: Path,
) -> None:
    """Write a node config (TOML). Peers default to the genesis members.

    With --pkcs11-label the node key is a key pair in a token ([node_key_pkcs11]);
    the key must exist (comity keygen --pkcs11), and its public key is checked.
    With --observer the node follows and serves reads, never votes: a key file
    that does not exist yet is created for it."""
    if node_key is not None and not node_key.exists():
        if not observer:
            fail(f"--node-key {node_key} does not exist")
        save_signing_key(node_key, SigningKey.generate())
    doc: dict[str, Any] = {
        "state": state,
        **({"role": "observer"} if observer else {}),
        "genesis_path": str(genesis_path.resolve()),
        **({"enc_key_path": str(enc_key.resolve())} if enc_key is not None else {}),
        "data_dir": str(data_dir.resolve()),
        "open_read": open_read,
        "api": _listen(api_addr),
        "p2p": _listen(p2p_addr),
    }
    public = key_signer(node_key, "--node-key").public_hex  # usable before we name it
    if node_key is not None:
        doc["node_key_path"] = str(node_key.resolve())
    else:
        in_token = pkcs11_key()
        table = in_token.model_dump(exclude_none=True)
        for name in ("module", "pin_file"):
            if name in table:
                table[name] = str(Path(table[name]).resolve())
        doc["node_key_pkcs11"] = table
    out.write_text(dump_config(doc))
    try:
        config = load_config(out)
        genesis = load_genesis(config.genesis_path)
        member_states = [m.state for m in genesis.members]
    except ComityError as exc:
        out.unlink()
        fail(str(exc))
        return
    if observer:
        if any(m.node_pubkey == public for m in genesis.members):
            out.unlink()
            fail(f"{public} is a validator's node key; an observer needs a key of its own")
        click.echo(
            f"observer node key {public}\nadmit it by a vote: comity propose "
            f"--action add_observer --member {state} --node-pubkey {public} "
            '--label "..." (then comity vote by the member states)',
            err=True,
        )
    elif state not in member_states:
        # A state admitted later by a vote runs from the same genesis: it syncs and
        # validates from the height its admission takes effect (docs/GOVERNANCE.md).
        click.echo(
            f"note: {state} is not a genesis member; the node follows the chain "
            "and validates once admitted by a member_proposal vote",
            err=True,
        )
    click.echo(f"wrote {out}")


def _listen(addr: str) -> dict[str, Any]:
    host, _, port = addr.rpartition(":")
    if not port.isdigit():
        fail(f"address {addr!r} must be HOST:PORT")
    return {"host": host or "127.0.0.1", "port": int(port)}


@main.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), required=True)
@click.option("--log-format", type=click.Choice(["json", "text"]), default=None)
@click.option(
    "--insecure",
    is_flag=True,
    help="allow a P2P listener off loopback without mutual TLS (plaintext P2P)",
)
@click.option(
    "--byzantine",
    default=None,
    hidden=True,
    help="fault campaigns only: comma-separated behaviours of node/byzantine.py "
    "(also needs COMITY_BYZANTINE_TESTING=1)",
)
@click.option(
    "--byzantine-signer",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    hidden=True,
    help="an enrolled key of this state, for the behaviours that sign",
)
def run(
    config_path: Path,
    log_format: str | None,
    insecure: bool,
    byzantine: str | None,
    byzantine_signer: Path | None,
) -> None:
    """Run one node in the foreground (SIGTERM or Ctrl-C stops it cleanly)."""
    from api.serve import ByzantineOptions
    from api.serve import run as serve_run
    from node.logs import setup_logging
    from node.tls import check_p2p_exposure

    try:
        config = load_config(config_path)
        check_p2p_exposure(config, insecure=insecure)
    except ConfigError as exc:
        fail(str(exc))
        return
    attack: ByzantineOptions | None = None
    if byzantine is not None:
        from node.byzantine import ByzantineRefused, parse_behaviours

        signer = load_signing_key(byzantine_signer) if byzantine_signer else None
        try:
            attack = (parse_behaviours(byzantine, signer), signer)
        except ByzantineRefused as exc:
            fail(str(exc))
            return
    setup_logging(config.state, config.log_level, log_format or config.log_format)
    try:
        serve_run(config, attack)
    except ComityError as exc:
        fail(f"node {config.state} cannot start: {exc}")


@main.command()
@click.option("--nodes", default=4, show_default=True, type=click.IntRange(1, 16))
@click.option(
    "--dir", "directory", type=click.Path(path_type=Path), default=None, help="default: ./devnet"
)
@click.option("--base-port", type=int, default=None, help="default: a free block from 7000")
@click.option("--no-run", is_flag=True, help="only write keys, genesis and configs")
@click.option(
    "--observers",
    is_flag=True,
    help="also one observer node per state, admitted by a vote once the validators run",
)
def devnet(
    nodes: int, directory: Path | None, base_port: int | None, no_run: bool, observers: bool
) -> None:
    """Create and run a local consortium of demo states, one process per node."""
    directory = (directory or Path("devnet")).resolve()
    existing = directory / "nodes.json"
    if base_port is None and existing.exists():
        base_port = int(json.loads(existing.read_text())[0]["api_url"].rsplit(":", 1)[1])
    base_port = base_port or devnet_mod.find_base_port(nodes * 2 if observers else nodes)
    try:
        rows = devnet_mod.prepare(directory, nodes, base_port)
    except ValueError as exc:
        fail(str(exc))
        return
    watchers = devnet_mod.prepare_observers(directory, rows) if observers else []
    click.echo(devnet_mod.hint(directory, rows, watchers))
    if not no_run:
        sys.exit(devnet_mod.run_nodes(directory, rows, watchers))


def submit_and_wait(
    client: NodeClient,
    key: KeySigner,
    record: dict[str, Any],
    wait_s: float,
    *,
    visibility: str = "consortium",
    retain_until: str | None = None,
) -> None:
    """Sign and submit ``record``; print its id, and with ``wait_s`` its commit.

    An act with ``visibility`` ``parties`` goes as a private act (docs/PRIVACY.md):
    the header signed, the body beside it, to this node (which must be a party's)."""
    if visibility == "legacy":
        submission = sign_envelope(key, record)
    elif record.get("type") in ACT_TYPES and visibility == "parties":
        record.pop("visibility", None)
        submission = private_submission(
            key,
            record,
            retain_until=retain_until or default_retain_until(record),
            ref_parties=lambda ref: client.record(ref)["envelope"]["record"].get("parties", []),
        )
    else:
        if record.get("type") in ACT_TYPES:
            record["visibility"] = "consortium"
        submission = sign_envelope(key, record)
    reply = client.submit(submission)
    click.echo(reply["id"])
    for warning in reply.get("warnings") or []:  # admitted, but worth a look
        click.echo(
            f"warning: {warning['code']} ({warning['field']}): {warning['message']}", err=True
        )
    if wait_s > 0:
        view = client.record(reply["id"], wait_s)
        if view["status"] != "committed":
            fail(f"not committed after {wait_s} s (status {view['status']})")
        click.echo(f"committed at height {view['height']}, leaf {view['leaf_index']}")


@main.command()
@click.option("--node", "url", required=True, help="API URL of a node")
@click.option(
    "--key",
    "key_path",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="the signer's key file (or a key in a token: --pkcs11-*)",
)
@pkcs11_options
@click.option("--state", help="actor state (default: from the record file)")
@click.option("--agency", default=None)
@click.option("--type", "type_", default=None)
@click.option("--case-ref", default=None)
@click.option("--territorial-state", "territorial", multiple=True)
@click.option(
    "--evidence-file",
    "evidence",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option("--wait", "wait_s", type=float, default=0, help="seconds to wait for commit")
@click.option("--token", default=None, help="bearer token for reads")
@click.option(
    "--visibility",
    type=click.Choice(["parties", "consortium"]),
    default="parties",
    show_default=True,
    help="an act's content for its parties only (a private act), or for every member",
)
@click.option(
    "--retain-until",
    default=None,
    help="when the parties erase a private act's body (default: the type's, docs/ACTS.md)",
)
@click.argument("record_file", required=False, type=click.Path(exists=True, path_type=Path))
def submit(
    url: str,
    key_path: Path | None,
    state: str | None,
    agency: str | None,
    type_: str | None,
    case_ref: str | None,
    territorial: tuple[str, ...],
    evidence: tuple[Path, ...],
    wait_s: float,
    token: str | None,
    visibility: str,
    retain_until: str | None,
    record_file: Path | None,
) -> None:
    """Sign a record (a JSON file and/or flags) and submit it; print its id.

    An act is private by default: submit it to the node of one of its parties."""
    record: dict[str, Any] = parse_json(record_file.read_bytes()) if record_file else {}
    if type_:
        record["type"] = type_
    if state or agency or "actor" not in record:
        actor = dict(record.get("actor", {}))
        actor["state"] = state or actor.get("state")
        actor["agency"] = agency or actor.get("agency") or "investigations"
        record["actor"] = actor
    if case_ref:
        record["case_ref"] = case_ref
    if territorial:
        record["territorial_states"] = list(territorial)
    if evidence:
        record["evidence"] = [hash_file(p) for p in evidence]
    signer = key_signer(key_path, "--key")
    client = NodeClient(url, token)
    try:
        status = client.status()
        record = complete_record(record, chain_id=status["chain_id"])
        if record.get("visibility") in ("parties", "consortium"):
            visibility = str(record["visibility"])  # the file's own choice wins
        if not status.get("need_to_know", True):
            visibility = "legacy"  # a chain before its need-to-know height: acts in clear
        submit_and_wait(
            client,
            signer,
            record,
            wait_s,
            visibility=visibility,
            retain_until=retain_until,
        )
    except (ClientFailure, ComityError) as exc:
        fail(str(exc))
    finally:
        client.close()


@main.command()
@click.option("--node", "url", required=True)
@click.option("--token", default=None)
def status(url: str, token: str | None) -> None:
    """Print a human summary of a node and its peers."""
    client = NodeClient(url, token)
    try:
        info = client.status()
    except (ClientFailure, OSError) as exc:
        fail(f"{url}: {exc}")
        return
    finally:
        client.close()
    click.echo(
        f"{info['state']} on chain {info['chain_id']}: height {info['height']}, "
        f"ledger size {info['ledger_size']}, mempool {info['mempool']['records']}"
    )
    for peer in info.get("peers", []):
        mark = "up" if peer["up"] else f"DOWN ({peer.get('last_error') or 'never reached'})"
        click.echo(f"  peer {peer['state']}: height {peer['height']}, {mark}")


# --- governance: keys and membership ----------------------------------------------------


def _submit_governance(
    url: str,
    admin_key: Path | None,
    state: str,
    body: dict[str, Any],
    wait_s: float,
    token: str | None,
) -> None:
    """Sign ``body`` with the admin key (a file, or a token's) as ``state``'s
    administration and submit it.

    Prints the record id; with ``--wait`` exits 0 only once the record is committed.
    """
    signer = key_signer(admin_key, "--admin-key")
    client = NodeClient(url, token)
    try:
        record = complete_record(
            {**body, "actor": {"state": state, "agency": "administration"}},
            chain_id=client.status()["chain_id"],
        )
        submit_and_wait(client, signer, record, wait_s)
    except (ClientFailure, ComityError, OSError) as exc:
        fail(str(exc))
    finally:
        client.close()


def _governance_options(command: Any) -> Any:
    for option in reversed(
        (
            click.option("--node", "url", required=True, help="API URL of a node"),
            click.option(
                "--admin-key",
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                default=None,
                help="PKCS#8 PEM private key of an admin of --state (or --pkcs11-*)",
            ),
            pkcs11_options,
            click.option("--state", required=True, help="the admin's state (record.actor)"),
            click.option(
                "--wait",
                "wait_s",
                type=float,
                default=0,
                help="seconds to wait for the commit; exit 0 only if committed",
            ),
            click.option("--token", default=None, help="bearer token for reads"),
        )
    ):
        command = option(command)
    return command


@main.command()
@_governance_options
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    type=click.Choice(list(ROLES)),
)
@click.option("--pubkey", required=True, help="hex, SPKI PEM file or private key file")
@click.option("--agency", required=True)
@click.option("--not-after", default=None, help="RFC 3339 UTC end of validity")
def enroll(
    url: str,
    admin_key: Path | None,
    state: str,
    wait_s: float,
    token: str | None,
    roles: tuple[str, ...],
    pubkey: str,
    agency: str,
    not_after: str | None,
) -> None:
    """Enrol a signing key for your state with roles (an enroll_key record)."""
    body: dict[str, Any] = {
        "type": "enroll_key",
        "pubkey": _pubkey_arg(pubkey),
        "roles": list(dict.fromkeys(roles)),
        "agency": agency,
    }
    if not_after:
        body["not_after"] = not_after
    _submit_governance(url, admin_key, state, body, wait_s, token)


@main.command()
@_governance_options
@click.option("--pubkey", required=True, help="hex, SPKI PEM file or private key file")
@click.option("--reason", default=None)
def revoke(
    url: str,
    admin_key: Path | None,
    state: str,
    wait_s: float,
    token: str | None,
    pubkey: str,
    reason: str | None,
) -> None:
    """Revoke one of your state's keys (effective from the next block)."""
    body: dict[str, Any] = {"type": "revoke_key", "pubkey": _pubkey_arg(pubkey)}
    if reason:
        body["reason"] = reason
    _submit_governance(url, admin_key, state, body, wait_s, token)


@main.command()
@_governance_options
@click.option(
    "--action",
    required=True,
    type=click.Choice(
        ["add", "remove", "rotate_key", "rotate_enc_key", "add_observer", "remove_observer"]
    ),
)
@click.option(
    "--member",
    "member",
    required=True,
    help="the state added/removed/re-keyed, or an observer's state",
)
@click.option("--name", default=None, help="add: the state's name")
@click.option(
    "--node-pubkey",
    default=None,
    help="add, rotate_key: the (new) node key; add_observer, remove_observer: the observer's",
)
@click.option("--admin-pubkey", "admins", multiple=True, help="add: admin keys")
@click.option(
    "--enc-pubkey",
    default=None,
    help="add, rotate_enc_key: the (new) X25519 key, 64 hex or an X25519 key file",
)
@click.option("--p2p-url", default=None, help="add: the new node's P2P URL")
@click.option("--label", default=None, help="add_observer: who runs it (1-200 characters)")
def propose(
    url: str,
    admin_key: Path | None,
    state: str,
    wait_s: float,
    token: str | None,
    action: str,
    member: str,
    name: str | None,
    node_pubkey: str | None,
    admins: tuple[str, ...],
    enc_pubkey: str | None,
    p2p_url: str | None,
    label: str | None,
) -> None:
    """Propose to add or remove a member state or an observer node, or rotate your own
    node or encryption key."""
    body: dict[str, Any] = {"type": "member_proposal", "action": action, "state": member}
    if node_pubkey:
        body["node_pubkey"] = _pubkey_arg(node_pubkey)
    enc = _enc_pubkey_arg(enc_pubkey) if enc_pubkey else None
    if action == "add":
        body.update(
            name=name,
            admin_pubkeys=[_pubkey_arg(a) for a in admins],
            enc_pubkey=enc,
            p2p_url=p2p_url,
        )
    if action == "rotate_enc_key":
        body["enc_pubkey"] = enc
    if action == "add_observer":
        body["label"] = label
    _submit_governance(url, admin_key, state, body, wait_s, token)


def _enc_pubkey_arg(text: str) -> str:
    """64 hex, or an X25519 private key file (its public half)."""
    candidate = Path(text)
    if len(text) != 64 and candidate.is_file():
        from node.sealed_access import load_enc_key

        try:
            return load_enc_key(candidate).public_key().public_bytes_raw().hex()
        except (ValueError, TypeError) as exc:
            fail(f"{text}: not an X25519 private key ({exc})")
    return text


@main.command("set-param")
@_governance_options
@click.option("--name", "param", required=True, type=click.Choice(list(PARAMS)))
@click.option("--value", required=True, type=click.IntRange(1), help="a block height")
def set_param(
    url: str,
    admin_key: Path | None,
    state: str,
    wait_s: float,
    token: str | None,
    param: str,
    value: int,
) -> None:
    """Propose a consortium parameter (voted like membership; comity vote)."""
    body = {"type": "member_proposal", "action": "set_param", "name": param, "value": value}
    _submit_governance(url, admin_key, state, body, wait_s, token)


@main.command()
@_governance_options
@click.option("--proposal", required=True, help="record id of the member_proposal")
@click.option("--vote", "choice", required=True, type=click.Choice(["yes", "no"]))
def vote(
    url: str,
    admin_key: Path | None,
    state: str,
    wait_s: float,
    token: str | None,
    proposal: str,
    choice: str,
) -> None:
    """Vote on a membership proposal for your state (one vote per state)."""
    _submit_governance(
        url,
        admin_key,
        state,
        {"type": "member_vote", "proposal": proposal, "vote": choice},
        wait_s,
        token,
    )


@main.group()
def token() -> None:
    """Bearer tokens for reading a node's API (stored only as hashes)."""


def _data_dir(config_path: Path) -> Path:
    try:
        return load_config(config_path).data_dir
    except ConfigError as exc:
        fail(str(exc))
        raise


@token.command("create")
@click.option("--config", "config_path", type=click.Path(path_type=Path), required=True)
@click.option(
    "--role",
    type=click.Choice(["auditor", "authority", "investigator", "operator"]),
    required=True,
)
@click.option("--label", default="", help="who the token is for")
@click.option(
    "--case",
    "cases",
    multiple=True,
    help="bind the token to this case_ref (repeatable; none: every case of the state)",
)
def token_create(config_path: Path, role: str, label: str, cases: tuple[str, ...]) -> None:
    """Issue a token bound to the node's state; the secret is printed once, never stored."""
    from node.tokens import create_token

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        fail(str(exc))
        return
    config.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        token_id, secret = create_token(
            config.data_dir, role, label or role, state=config.state, cases=cases
        )
    except ComityError as exc:
        fail(str(exc))
        return
    scope = f"cases {', '.join(cases)}" if cases else "every case"
    click.echo(
        f"token id {token_id} ({role}, {config.state}, {scope}); secret (shown once):", err=True
    )
    click.echo(secret)


@token.command("list")
@click.option("--config", "config_path", type=click.Path(path_type=Path), required=True)
def token_list(config_path: Path) -> None:
    """List tokens (ids, roles, labels; never secrets)."""
    from node.tokens import list_tokens

    for row in list_tokens(_data_dir(config_path)):
        click.echo(json.dumps(row))


@token.command("revoke")
@click.option("--config", "config_path", type=click.Path(path_type=Path), required=True)
@click.argument("token_id")
def token_revoke(config_path: Path, token_id: str) -> None:
    """Revoke a token; a running node refuses it from its next request."""
    from node.tokens import revoke_token

    try:
        revoke_token(_data_dir(config_path), token_id)
    except ComityError as exc:
        fail(str(exc))
    click.echo(f"revoked {token_id}")


main.add_command(act)
main.add_command(seal)
main.add_command(enc_key)
main.add_command(verify)
main.add_command(bundle)
main.add_command(case)
main.add_command(watch)
main.add_command(tls)
main.add_command(db)
main.add_command(compose)
main.add_command(access_log)
main.add_command(receipt)
main.add_command(stats)
main.add_command(directory)
main.add_command(case)


if __name__ == "__main__":
    main()
