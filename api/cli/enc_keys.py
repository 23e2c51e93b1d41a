"""``comity enc-key``: a member's X25519 encryption keys and the rotation ceremony.

The chain names each member's current ``enc_pubkey``; senders seal details to
it (``comity seal`` reads it from a node). Rotating it is a governance record
(``comity propose --action rotate_enc_key``, docs/GOVERNANCE.md "Rotating the
encryption key"); details sealed before stay under the old key, so
``rotate`` writes the new key together with a keyring holding every former
key sealed to the new one (``node.sealed_access``). Both files are created
0600 and never overwrite anything; the old files are left for the operator
to retire once the node runs on the new ones. ``open`` decrypts one record's
sealed details with one key file and nothing else (not its keyring), offline:
it tells which key a record was sealed to, and that a backup still opens the
details sealed before a rotation (docs/OPERATIONS.md §9).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from api.cli.bootstrap import _write_private
from ledger.canonical import parse_json
from ledger.errors import ClientError, ComityError
from ledger.sealed import SealedIntegrityError, open_sealed
from node.sealed_access import (
    keyring_path,
    load_enc_key,
    public_of,
    read_keyring,
    seal_keyring,
    write_keyring,
)

KeyFile = click.Path(exists=True, dir_okay=False, path_type=Path)
#: A record with sealed details is far smaller; a bigger file is not read at all.
RECORD_FILE_BYTES_MAX = 4 * 1024 * 1024


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _load(path: Path) -> bytes:
    try:
        return load_enc_key(path).private_bytes_raw()
    except (ValueError, TypeError) as exc:
        _fail(f"{path}: not an X25519 private key ({exc})")
        raise


def write_enc_key(path: Path, key: X25519PrivateKey) -> None:
    """PKCS#8 PEM, mode 0600, refused if ``path`` exists."""
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_private(path, pem)


@click.group("enc-key")
def enc_key() -> None:
    """X25519 keys that open sealed details, and their rotation."""


@enc_key.command("new")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def enc_key_new(out: Path) -> None:
    """Create an X25519 key file (0600); print its public key (the enc_pubkey, hex)."""
    key = X25519PrivateKey.generate()
    try:
        write_enc_key(out, key)
    except FileExistsError:
        _fail(f"{out} exists")
    click.echo(key.public_key().public_bytes_raw().hex())


@enc_key.command("pubkey")
@click.argument("key_file", type=KeyFile)
def enc_key_pubkey(key_file: Path) -> None:
    """Print the enc_pubkey (hex) of an X25519 key file."""
    click.echo(public_of(_load(key_file)).hex())


@enc_key.command("rotate")
@click.option("--enc-key", "old_path", type=KeyFile, required=True, help="the current key file")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="the new key file; its keyring is written beside it (NAME.keyring)",
)
def enc_key_rotate(old_path: Path, out: Path) -> None:
    """Make a new key and a keyring with every former key sealed to it; print its enc_pubkey.

    The keyring holds the key of --enc-key and every key of its own keyring
    (opened with it). Then: point the node's enc_key_path at --out, restart it,
    and propose the new enc_pubkey (comity propose --action rotate_enc_key).
    """
    new_ring = keyring_path(out, out.parent)
    for path in (out, new_ring):
        if path.exists():
            _fail(f"{path} exists; choose another --out")
    old = _load(old_path)
    try:
        former = [*read_keyring(keyring_path(old_path, old_path.parent), old), old]
    except ComityError as exc:
        _fail(f"the keyring of {old_path} cannot be opened: {exc}")
        return
    key = X25519PrivateKey.generate()
    new_public = key.public_key().public_bytes_raw()
    write_enc_key(out, key)
    write_keyring(new_ring, seal_keyring(new_public, former))
    click.echo(f"wrote {out} and {new_ring} ({len(former)} former key(s))", err=True)
    click.echo(new_public.hex())


@enc_key.command("show")
@click.option("--enc-key", "path", type=KeyFile, required=True)
def enc_key_show(path: Path) -> None:
    """Print the key's enc_pubkey, then each former key its keyring opens to."""
    key = _load(path)
    try:
        former = read_keyring(keyring_path(path, path.parent), key)
    except ComityError as exc:
        _fail(str(exc))
        return
    click.echo(f"current {public_of(key).hex()}")
    for old in former:
        click.echo(f"former  {public_of(old).hex()}")


def _sealed_of(path: Path) -> dict[str, Any]:
    """The ``sealed`` object of a record file, or of an envelope's record; exit 2 if none."""
    with path.open("rb") as handle:
        data = handle.read(RECORD_FILE_BYTES_MAX + 1)
    if len(data) > RECORD_FILE_BYTES_MAX:
        _fail(f"{path}: larger than {RECORD_FILE_BYTES_MAX} bytes")
    try:
        doc = parse_json(data)
    except ComityError as exc:
        _fail(f"{path}: not JSON ({exc})")
        raise
    sealed = _find_sealed(doc)
    if sealed is None:
        _fail(f"{path}: no record with a sealed object")
        raise AssertionError("unreachable")
    return sealed


#: Where a file's ``sealed`` object may be: a record, an envelope's record, then a
#: private act's (docs/PRIVACY.md), whose details are in its body and not in its
#: header: a ``GET /v1/records/{id}/private`` answer's content, a submission's
#: body, a body alone.
SEALED_PLACES: tuple[tuple[str, ...], ...] = (
    (),
    ("record",),
    ("content",),
    ("private", "act"),
    ("act",),
)


def _find_sealed(doc: Any) -> dict[str, Any] | None:
    for place in SEALED_PLACES:
        holder = doc
        for name in place:
            holder = holder.get(name) if isinstance(holder, dict) else None
        sealed = holder.get("sealed") if isinstance(holder, dict) else None
        if isinstance(sealed, dict):
            return sealed
    return None


@enc_key.command("open")
@click.option("--enc-key", "path", type=KeyFile, required=True, help="one key file, alone")
@click.option("--state", required=True, help="the recipient state the key is for")
@click.argument("record_file", type=KeyFile)
def enc_key_open(path: Path, state: str, record_file: Path) -> None:
    """Print the sealed details of RECORD_FILE opened with --enc-key.

    RECORD_FILE is a record or an envelope, or for a private act its body, its
    submission or a ``GET /v1/records/{id}/private`` answer (the details are in
    the body: the header on the chain has none).

    Only that key is tried, never its keyring: exit 2 (sealed_integrity) if the
    details were sealed to another key, so this shows which key a record was
    sealed to and whether a backup key still opens it.
    """
    key = _load(path)
    try:
        details = open_sealed(_sealed_of(record_file), state, key)
    except SealedIntegrityError as exc:  # the node's code for it (node.sealed_access)
        _fail(f"sealed_integrity: {exc}")
        return
    except ClientError as exc:
        _fail(f"{exc.code}: {exc}")
        return
    click.echo(json.dumps(details, indent=2, sort_keys=True))
