"""``comity act new TYPE`` (a valid record template) and ``comity seal`` (sealed details).

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

from ledger.acts import MODELS
from ledger.acts_templates import template
from ledger.canonical import parse_json
from ledger.errors import ComityError
from ledger.sealed import seal as seal_details
from node.genesis import load_genesis


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


@click.command()
@click.option(
    "--to",
    "recipients",
    multiple=True,
    required=True,
    help="a recipient state (repeat); its enc_pubkey is read from genesis",
)
@click.option(
    "--genesis", "genesis_path", type=click.Path(exists=True, path_type=Path), required=True
)
@click.option(
    "--record",
    "record_path",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="print this record with the sealed object set in it",
)
@click.argument("details_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def seal(
    recipients: tuple[str, ...], genesis_path: Path, record_path: Path | None, details_file: Path
) -> None:
    """Encrypt a JSON details file to the given states; print the `sealed` object."""
    try:
        genesis = load_genesis(genesis_path)
        keys = {m.state: bytes.fromhex(m.enc_pubkey) for m in genesis.members}
        unknown = sorted(set(recipients) - set(keys))
        if unknown:
            _fail(f"not members of this genesis: {', '.join(unknown)}")
        details = parse_json(details_file.read_bytes())
        if not isinstance(details, dict):
            _fail("the details file must hold a JSON object")
        sealed = seal_details(details, {state: keys[state] for state in recipients})
        if record_path is None:
            click.echo(json.dumps(sealed, indent=2))
            return
        record = parse_json(record_path.read_bytes())
        if not isinstance(record, dict):
            _fail("the record file must hold a JSON object")
        record["sealed"] = sealed
        click.echo(json.dumps(record, indent=2, ensure_ascii=False))
    except ComityError as exc:
        _fail(str(exc))
