"""The results table printed at the end of a run (``--json`` prints the raw dicts)."""

from __future__ import annotations

from typing import Any


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) < 1e5 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    cells = [header] + [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def _load_rows(results: list[dict[str, Any]]) -> list[str]:
    header = [
        "scenario",
        "N",
        "gen",
        "rec/s",
        "min/s",
        "max/s",
        "blk/s",
        "rec/blk",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "bound",
        "frac",
        "cpu% max",
        "rss MiB max",
        "etcd/s",
        "÷ etcd",
    ]
    rows = []
    for r in results:
        c, lat, load = r["committed"], r["latency_ms"], r["load"]
        anchor = r.get("anchor") or {}
        gen = f"{load['generator']} x{load['batch']}"
        rows.append(
            [
                r["scenario"],
                r["nodes"],
                gen,
                c["records_per_s"],
                c["per_second_min"],
                c["per_second_max"],
                c["blocks_per_s"],
                c["mean_block_records"],
                lat["p50"],
                lat["p95"],
                lat["p99"],
                r["bound"]["records_per_s"],
                r["bound"]["fraction"],
                max(n["cpu_percent"] for n in r["node_stats"]),
                max(n["peak_rss_mib"] for n in r["node_stats"]),
                anchor.get("puts_per_s"),
                anchor.get("ratio"),
            ]
        )
    lines = _table(header, rows)
    for r in results:
        lines.append(_load_notes(r))
    return lines


def _load_notes(r: dict[str, Any]) -> str:
    load, lat, c = r["load"], r["latency_ms"], r["committed"]
    parts = [
        f"{r['scenario']}: window {c['window_s']} s, {c['records']} "
        f"{r.get('visibility', 'consortium')} records committed",
        "nodes "
        + ", ".join(
            f"{n['state']} {n['cpu_percent']}% {n['peak_rss_mib']} MiB" for n in r["node_stats"]
        ),
        f"load-gen cpu {c['loadgen_cpu_percent']}%",
        f"probes {lat['samples']} ok / {lat['failed']} failed {lat.get('errors') or ''}",
        f"mempool at end {c['mempool_end']}",
    ]
    if load["generator"] == "wrk":
        parts.append(
            f"wrk {load['requests_per_s']} req/s, {load['overloaded']} x 503, "
            f"{load['item_errors']} item errors ({load['item_overloaded']} "
            "mempool_full), POST p99 <= "
            f"{load['post_latency_ms_p99_max']} ms"
        )
    else:
        parts.append(
            f"rate target {load['target_records_per_s']} rec/s, sender lag max "
            f"{load['lag_max_s']} s, {load['item_errors']} item errors"
        )
    drain = r.get("after_load")
    if drain:
        parts.append(
            f"after load: +{drain['records']} committed in {drain['seconds']} s, "
            f"{drain['mempool_left']} left pending, chain {drain['ledger_size']} "
            f"records / {drain['height']} blocks"
        )
    if load.get("exhausted"):
        parts.append("WARNING: pre-signed bodies ran out (raise --sizing-rate)")
    wan = r.get("wan")
    if wan:
        parts.append(
            f"WAN: {wan['links']} directed P2P links delayed {wan['delay_ms']} ms + "
            f"U(0, {wan['jitter_ms']}) ms each way, {wan['connections']} connections"
        )
    anchor = r.get("anchor")
    if anchor:
        parts.append(
            f"anchor {anchor['system']}, {anchor['members']} members, fsync on: "
            f"{anchor['puts']} puts in {anchor['window_s']} s, request p50 <= "
            f"{anchor['put_latency_ms_p50_max']} ms, cpu% "
            + "/".join(str(c) for c in anchor["cpu_percent"])
            + f", {anchor['non_2xx']} non-2xx"
        )
    return "  " + "; ".join(parts)


def _catchup_rows(results: list[dict[str, Any]]) -> list[str]:
    header = [
        "scenario",
        "records",
        "blocks",
        "seconds",
        "api up s",
        "rec/s",
        "blk/s",
        "cpu%",
        "rss MiB max",
    ]
    rows = [
        [
            r["scenario"],
            r["synced"]["records"],
            r["synced"]["blocks"],
            r["synced"]["seconds"],
            r["synced"]["api_up_s"],
            r["synced"]["records_per_s"],
            r["synced"]["blocks_per_s"],
            r["node_stats"][0]["cpu_percent"],
            r["node_stats"][0]["peak_rss_mib"],
        ]
        for r in results
    ]
    return _table(header, rows)


def _reads_rows(results: list[dict[str, Any]]) -> list[str]:
    header = ["request", "p50 ms", "p95 ms", "p99 ms", "seq req/s", "errors", "samples"]
    lines = []
    for r in results:
        chain, node = r["chain"], r["node_stats"][0]
        lines.append(
            f"reads: {chain['records']:,} records / {chain['blocks']:,} blocks, "
            f"store {chain['store_mib']} MiB, built in {chain['prebuild_s']} s, "
            f"node up in {chain['node_start_s']} s, RSS {node['rss_mib']} MiB "
            f"(peak {node['peak_rss_mib']} MiB)"
        )
        rows = [
            [name, q["p50"], q["p95"], q["p99"], q["sequential_per_s"], q["errors"], q["samples"]]
            for name, q in r["requests"].items()
        ]
        lines += _table(header, rows)
    return lines


def _observer_rows(results: list[dict[str, Any]]) -> list[str]:
    header = ["set-up", "nodes", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "cpu% each"]
    rows = []
    for r in results:
        for name, run in r["runs"].items():
            lat = run["latency_ms"]
            cpu = " ".join(f"{v:.0f}" for v in run["cpu_percent"].values())
            rows.append(
                [
                    name,
                    len(run["targets"]),
                    run["requests_per_s"],
                    lat["p50"],
                    lat["p95"],
                    lat["p99"],
                    run["errors"],
                    cpu,
                ]
            )
    return _table(header, rows)


def _profile_rows(results: list[dict[str, Any]]) -> list[str]:
    lines = []
    for r in results:
        prof = r.get("profile")
        if not prof:
            continue
        lines.append(
            f"profile of {r['node_stats'][0]['state']} in {r['scenario']} "
            f"({prof['samples']} samples, raw stacks: {prof['file']})"
        )
        for key in ("by_self", "by_total", "by_entry"):
            lines.append(
                f"  top by {key[3:]}" + (" (project code)" if key == "by_total" else "") + ":"
            )
            lines += [f"    {row['percent']:5.1f}%  {row['function']}" for row in prof[key]]
    return lines


def render(results: list[dict[str, Any]]) -> str:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by_kind.setdefault(r["kind"], []).append(r)
    lines: list[str] = []
    if "load" in by_kind:
        lines += [
            "",
            "== load (committed records/s over the window; latency = POST start -> "
            "committed, probe)",
            *_load_rows(by_kind["load"]),
        ]
        lines += [
            f"  bound = cores x Ed25519 verifies/s/core / N = "
            f"{by_kind['load'][0]['bound']['cores']} x "
            f"{by_kind['load'][0]['bound']['verify_per_s_per_core']:,} / N"
        ]
    if "catchup" in by_kind:
        lines += ["", "== catch-up of a wiped node", *_catchup_rows(by_kind["catchup"])]
    if "reads" in by_kind:
        lines += ["", "== read path (sequential client)", *_reads_rows(by_kind["reads"])]
    if "reads-observers" in by_kind:
        first = by_kind["reads-observers"][0]
        lines += [
            "",
            f"== reads: 1 validator vs 3 observers ({first['readers']} client threads, "
            f"GET record, {first['chain']['records']:,} records)",
            *_observer_rows(by_kind["reads-observers"]),
        ]
    lines += _profile_rows(by_kind.get("load", []) + by_kind.get("catchup", []))
    for r in by_kind.get("error", []):
        lines += ["", f"== {r['scenario']} FAILED", r["error"]]
    return "\n".join(lines)
