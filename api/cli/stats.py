"""``comity stats``: a node's statistics for central authorities, as a table, CSV or JSON.

The figures are the node's ``GET /v1/stats`` (docs/STATISTICS.md): time to first
and to final answer, and backlog, by requested state, instrument and type. The
command only fetches and prints them; ``--csv`` prints the node's own CSV
unchanged, ``--json`` its JSON. The table is for a terminal: text that came from
the chain (an instrument is free text any member's signer wrote) has its control
characters replaced, so it cannot move the cursor or recolour the screen.

Exit status: 0 with the figures printed; 2 when the node cannot be reached or
refuses the query (its error code and message go to stderr).
"""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

import click
import httpx

from api.cli.client import ClientFailure, NodeClient

#: Table columns after the group's own: (heading, figure, sub-figure).
_FIGURES: tuple[tuple[str, str, str | None], ...] = (
    ("requests", "requests", None),
    ("answered", "answered", None),
    ("final", "final", None),
    ("first median h", "first_answer_hours", "median"),
    ("first p90 h", "first_answer_hours", "p90"),
    ("first mean h", "first_answer_hours", "mean"),
    ("final median h", "final_answer_hours", "median"),
    ("final p90 h", "final_answer_hours", "p90"),
    ("final mean h", "final_answer_hours", "mean"),
    ("backlog", "backlog", None),
    ("oldest h", "backlog_oldest_hours", None),
)
#: Chain text is cut to this many characters in the table (the CSV and JSON keep it all).
CELL_CHARS_MAX = 40


def printable(value: object) -> str:
    """A value for a terminal: control and other non-printing characters become "?"."""
    if value is None:
        return "-"
    text = str(value)
    clean = "".join("?" if unicodedata.category(c).startswith("C") else c for c in text)
    return clean if len(clean) <= CELL_CHARS_MAX else clean[: CELL_CHARS_MAX - 1] + "…"


def _figure(row: Mapping[str, Any], name: str, sub: str | None) -> object:
    value = row.get(name)
    return value.get(sub) if sub is not None and isinstance(value, Mapping) else value


def table(result: Mapping[str, Any]) -> str:
    """The figures as an aligned text table: the groups, then an overall line."""
    group_by: Sequence[str] = result.get("group_by") or []
    headings = [*group_by, *(h for h, _, _ in _FIGURES)]
    rows = [
        [printable(g.get(d)) for d in group_by]
        + [printable(_figure(g, n, s)) for _, n, s in _FIGURES]
        for g in result.get("groups") or []
    ]
    overall = result.get("overall") or {}
    rows.append(
        ["(all)" if i == 0 else "" for i in range(len(group_by))]
        + [printable(_figure(overall, n, s)) for _, n, s in _FIGURES]
    )
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headings)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headings, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    window = f"requests committed in [{result.get('from') or '-'}, {result.get('to') or '-'})"
    lines.append(f"{window}, as of {result.get('at')}")
    if result.get("truncated"):
        lines.append("TRUNCATED: the node's scan bound was reached; the figures are partial")
    return "\n".join(line.rstrip() for line in lines)


@click.command("stats")
@click.option("--node", "url", required=True, help="API URL of a node")
@click.option("--token", default=None, help="bearer token (private acts need a body reader's)")
@click.option("--from", "from_time", default=None, help="RFC 3339 UTC: requests from (block time)")
@click.option("--to", "to_time", default=None, help="RFC 3339 UTC: requests before")
@click.option("--at", default=None, help="RFC 3339 UTC: as of (default: the node's now)")
@click.option(
    "--group-by",
    default="state,instrument,type",
    show_default=True,
    help="comma-separated: state, instrument, type",
)
@click.option("--csv", "as_csv", is_flag=True, help="print the node's CSV")
@click.option("--json", "as_json", is_flag=True, help="print the node's JSON")
def stats(
    url: str,
    token: str | None,
    from_time: str | None,
    to_time: str | None,
    at: str | None,
    group_by: str,
    as_csv: bool,
    as_json: bool,
) -> None:
    """Time to first and final answer, and backlog, by requested state, instrument, type."""
    if as_csv and as_json:
        click.echo("error: give --csv or --json, not both", err=True)
        sys.exit(2)
    given = {"from": from_time, "to": to_time, "at": at, "group_by": group_by}
    params = {k: v for k, v in given.items() if v is not None}
    client = NodeClient(url, token)
    try:
        if as_csv:
            click.echo(client.text("/v1/stats", **params, format="csv"), nl=False)
            return
        result = client.get("/v1/stats", **params)
    except (ClientFailure, httpx.HTTPError, OSError) as exc:
        click.echo(f"error: {url}: {exc}", err=True)
        sys.exit(2)
    finally:
        client.close()
    click.echo(json.dumps(result, indent=2, sort_keys=True) if as_json else table(result))
