"""``comity act new TYPE`` (a valid record template) and ``comity seal`` (sealed details).

``comity seal`` takes the recipients' X25519 keys from a node's chain state
(``GET /v1/members``), not from a genesis file: members admitted later and
keys rotated by ``rotate_enc_key`` are found there (FINDINGS L5).

Register in ``api/cli/main.py``::

    from api.cli.acts import act, seal
    main.add_command(act)
    main.add_command(seal)

A template leaves out ``chain_id`` and ``nonce``; ``comity submit`` fills them
(``node.authoring.complete_record``), so ``comity act new preservation_request
--state CN --territorial-state TH > r.json``, edited, then ``comity submit
--key investigator.key r.json`` is the whole workflow.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import httpx

from api.cli.client import ClientFailure, NodeClient
from ledger.acts import MODELS
from ledger.acts_templates import template
from ledger.canonical import parse_json
from ledger.errors import ComityError
from ledger.sealed import seal as seal_details


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


@click.group()
def act() -> None:
    """Work with act records (the catalogue in docs/ACTS.md)."""


@act.command("new")
@click.argument("type_", metavar="TYPE", type=click.Choice(sorted(MODELS)))
@click.option("--state", default="XX", show_default=True, help="actor state (ISO 3166-1)")
@click.option("--agency", default="cybercrime unit", show_default=True)
@click.option("--case-ref", default="CASE-2026-0001", show_default=True)
@click.option(
    "--territorial-state",
    "territorial",
    multiple=True,
    help="a state on whose territory the act happens (repeat)",
)
def act_new(
    type_: str, state: str, agency: str, case_ref: str, territorial: tuple[str, ...]
) -> None:
    """Print a valid JSON template of an act of TYPE."""
    record = template(
        type_, state=state, agency=agency, case_ref=case_ref, territorial_states=territorial
    )
    click.echo(json.dumps(record, indent=2, ensure_ascii=False))


@act.command("types")
def act_types() -> None:
    """List the act types."""
    for name in sorted(MODELS):
        click.echo(name)


def recipient_keys(client: NodeClient, states: tuple[str, ...]) -> dict[str, bytes]:
    """Each state's current enc_pubkey, as the node's chain state has it (not genesis).

    A member admitted by a vote, or one that rotated its key, is found the same
    way; a removed member is refused.
    """
    members = {row["state"]: row for row in client.members()["members"]}
    unknown = sorted(s for s in states if s not in members)
    if unknown:
        _fail(f"not members of this chain: {', '.join(unknown)}")
    removed = sorted(s for s in states if members[s]["until_height"] is not None)
    if removed:
        _fail(f"removed from the consortium: {', '.join(removed)}")
    return {state: bytes.fromhex(members[state]["enc_pubkey"]) for state in states}


@click.command()
@click.option(
    "--to",
    "recipients",
    multiple=True,
    required=True,
    help="a recipient state (repeat); its current enc_pubkey is read from --node",
)
@click.option("--node", "url", required=True, help="API URL of a node (GET /v1/members)")
@click.option("--token", default=None, help="bearer token for reads")
@click.option(
    "--record",
    "record_path",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="print this record with the sealed object set in it",
)
@click.argument("details_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def seal(
    recipients: tuple[str, ...],
    url: str,
    token: str | None,
    record_path: Path | None,
    details_file: Path,
) -> None:
    """Encrypt a JSON details file to the given states; print the `sealed` object."""
    client = NodeClient(url, token)
    try:
        keys = recipient_keys(client, recipients)
        details = parse_json(details_file.read_bytes())
        if not isinstance(details, dict):
            _fail("the details file must hold a JSON object")
        sealed = seal_details(details, keys)
        if record_path is None:
            click.echo(json.dumps(sealed, indent=2))
            return
        record = parse_json(record_path.read_bytes())
        if not isinstance(record, dict):
            _fail("the record file must hold a JSON object")
        record["sealed"] = sealed
        click.echo(json.dumps(record, indent=2, ensure_ascii=False))
    except (ClientFailure, ComityError, OSError, httpx.HTTPError) as exc:
        _fail(str(exc))
    finally:
        client.close()
