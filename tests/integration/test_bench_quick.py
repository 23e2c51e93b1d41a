"""scripts/bench.py --quick drives a real 4-node devnet end to end.

Checks the harness, not the node: the JSON has every field the report
promises and records really were committed. No timing is asserted: the
figures of a 5-second run on a shared machine mean nothing.

With ``--visibility parties`` the same run files private acts: every committed
record is a header, each body is at its two parties' nodes and nowhere else.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("wrk") is None or shutil.which("etcd") is None,
        reason="wrk or etcd is not installed (scripts/bench installs them: "
        "apt-get install wrk etcd-server)",
    ),
]


@pytest.mark.parametrize("visibility", ["consortium", "parties"])
def test_quick_n4_batch_commits_and_reports(tmp_path: Path, visibility: str) -> None:
    # The anchor once (with the clear acts): it is the same whatever Comity files.
    anchor = [] if visibility == "consortium" else ["--no-anchor"]
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench.py"),
            "--quick",
            "--scenario",
            "n4-batch",
            "--visibility",
            visibility,
            "--json",
            "--workdir",
            str(tmp_path),
            *anchor,
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["quick"] is True
    assert report["visibility"] == visibility
    [result] = report["results"]
    assert result["kind"] == "load", result.get("error")
    assert result["scenario"] == "n4-batch"
    assert result["nodes"] == 4
    assert result["visibility"] == visibility

    committed = result["committed"]
    for key in (
        "window_s",
        "records",
        "records_per_s",
        "blocks",
        "blocks_per_s",
        "mean_block_records",
        "per_second_min",
        "per_second_max",
        "timeline",
    ):
        assert key in committed
    # Records were committed: under load, or once it stopped (a saturated
    # node may order nothing until its backlog drains; that is a finding,
    # not a harness failure).
    after = result["after_load"]
    assert set(after) >= {"seconds", "records", "mempool_left", "ledger_size", "height"}
    assert after["ledger_size"] > 0 and after["height"] > 0

    latency = result["latency_ms"]
    assert set(latency) >= {"p50", "p95", "p99", "samples", "failed", "errors"}

    assert [n["state"] for n in result["node_stats"]] == ["CN", "FR", "TH", "VN"]
    for node in result["node_stats"]:
        assert node["cpu_percent"] > 0
        assert node["peak_rss_mib"] > 0

    bound = result["bound"]
    assert bound["cores"] >= 1 and bound["verify_per_s_per_core"] > 0
    assert bound["records_per_s"] > 0 and "fraction" in bound

    load = result["load"]
    assert load["generator"] == "wrk" and load["batch"] == 100
    assert load["ok2xx"] > 0
    assert isinstance(load["exhausted"], bool)

    if visibility == "parties":
        _assert_bodies_at_parties_only(result["private"], after["ledger_size"])
        assert "anchor" not in result
    else:
        assert "private" not in result
        _assert_the_anchor_ran(result["anchor"], committed["records_per_s"])


def _assert_the_anchor_ran(anchor: dict[str, Any], comity_per_s: float) -> None:
    """etcd, 4 members, took the same batches as 100-put txns and committed some."""
    assert str(anchor["system"]).startswith("etcd 3.4"), anchor
    assert anchor["members"] == 4 and anchor["fsync"] is True
    assert isinstance(anchor["puts"], int) and anchor["puts"] > 0
    assert anchor["puts"] % 100 == 0  # whole txns of 100 puts: one revision each
    assert anchor["non_2xx"] == 0 and anchor["requests"] > 0
    per_s = anchor["puts_per_s"]
    assert isinstance(per_s, float) and per_s > 0
    assert anchor["ratio"] == round(comity_per_s / per_s, 3)
    assert len(anchor["cpu_percent"]) == 4


def _assert_bodies_at_parties_only(private: dict[str, dict[str, int]], size: int) -> None:
    """Each act is private, with two parties (the actor's state and TH, or FR for
    TH's own acts), and each node holds exactly the bodies of its acts."""
    assert sorted(private) == ["CN", "FR", "TH", "VN"]
    for node in private.values():
        assert node["records"] == node["private_acts"] == size
        assert node["bodies_not_party"] == 0
        assert node["kept"] + node["wanted"] + node["void"] == node["party_of"]
        assert node["void"] == 0
        assert node["bodies_held"] == node["kept"]
    assert private["TH"]["party_of"] == size
    assert sum(node["party_of"] for node in private.values()) == 2 * size


def test_quick_wan4_delays_every_p2p_link(tmp_path: Path) -> None:
    """wan4: every directed P2P link runs through a relay that delays it 50 ms or more
    each way, so no record can commit faster than the three message delays of a
    height (proposal, prevote, precommit: 150 ms), and records still commit."""
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench.py"),
            "--quick",
            "--scenario",
            "wan4",
            "--json",
            "--workdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    [result] = json.loads(proc.stdout)["results"]
    assert result["kind"] == "load", result.get("error")
    assert result["wan"]["links"] == 12 and result["wan"]["connections"] >= 12
    assert (result["wan"]["delay_ms"], result["wan"]["jitter_ms"]) == (50.0, 10.0)
    assert result["load"]["generator"] == "python-rate"
    assert result["load"]["target_records_per_s"] == 100.0
    assert result["committed"]["records"] > 0
    assert result["latency_ms"]["samples"] > 0
    assert result["latency_ms"]["p50"] >= 150
    assert "anchor" not in result  # a latency scenario: no saturating load to compare
