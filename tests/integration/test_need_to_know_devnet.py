"""Need to know on a 4-node devnet of real processes (``comity devnet`` layout, LevelDB).

The issue's end-to-end check as a user runs it, with the ``comity`` commands: CN's
investigator files ``example-act.json`` (a preservation request about a provider in
TH) with a unique marker, a private act by default. TH sees the notice and its
authority answers it; FR and VN serve only the header, the marker is nowhere in their
data directories (in clear or base64), and ``comity verify`` passes against all four
nodes. After ``retain_until`` the marker leaves CN's and TH's stores too, and a bundle
CN exported before the purge still verifies offline.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from api.cli.main import main
from ledger.records import format_time
from node.clock import utcnow
from node.config import load_config
from node.tokens import create_token
from tests.integration.test_need_to_know import _files_holding, _needles
from tests.procnet import ProcNet

pytestmark = pytest.mark.slow

RETAIN_S = 25


def _comity(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def _token(net: ProcNet, state: str, role: str) -> dict[str, str]:
    _, secret = create_token(net.root / state / "data", role, f"{state} {role}", state=state)
    return {"authorization": f"Bearer {secret}"}


def _fast_purge(net: ProcNet) -> None:
    """Scan for ended retention every half second instead of every 30 s."""
    for state in net.states:
        path = net.root / state / "node.toml"
        text = path.read_text()
        assert "[timing]" not in text
        path.write_text(text + "\n[timing]\npurge_scan_interval_ms = 500\n")
        assert load_config(path).timing.purge_scan_interval_ms == 500


def _wait(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_need_to_know_on_a_devnet_of_processes(tmp_path: Path) -> None:
    net = ProcNet(tmp_path / "net")
    _fast_purge(net)
    marker = f"MARKER-{secrets.token_hex(8)}"
    act = json.loads((net.root / "example-act.json").read_text())
    assert act["actor"]["state"] == "CN"
    act["territorial_states"] = ["TH"]  # a provider in Thailand
    act["custodian"].update(name=f"Provider {marker}", state="TH")
    act["case_ref"] = f"CN-{marker}"
    act_file = tmp_path / "act.json"
    act_file.write_text(json.dumps(act))
    net.start()
    until = format_time(utcnow() + timedelta(seconds=RETAIN_S))
    try:
        out = _comity(
            "submit",
            "--node",
            net.urls["CN"],
            "--key",
            str(net.root / "CN" / "investigator.key"),
            "--retain-until",
            until,
            "--wait",
            "20",
            str(act_file),
        )
        act_id = out.split()[0]
        for state in net.states:
            net.wait_committed(state, act_id)

        # TH: a party. It reads the body and sees the notice; its authority answers.
        th = _token(net, "TH", "authority")
        body = httpx.get(f"{net.urls['TH']}/v1/records/{act_id}/private", headers=th).json()
        assert body["content"]["custodian"]["name"] == f"Provider {marker}", body
        notices = httpx.get(f"{net.urls['TH']}/v1/sovereignty/notices", headers=th).json()
        assert [n["id"] for n in notices["notices"]] == [act_id]
        answer = tmp_path / "answer.json"
        answer.write_text(
            _comity(
                "act", "new", "sovereignty_response", "--state", "TH", "--territorial-state", "TH"
            )
        )
        record = json.loads(answer.read_text())
        record.update(refs=[act_id], case_ref=act["case_ref"], evidence=[])
        answer.write_text(json.dumps(record))
        out = _comity(
            "submit",
            "--node",
            net.urls["TH"],
            "--key",
            str(net.root / "TH" / "authority.key"),
            "--retain-until",
            format_time(utcnow() + timedelta(seconds=5)),
            "--wait",
            "20",
            str(answer),
        )
        answer_id = out.split()[0]
        net.wait_committed("CN", answer_id)
        answered = httpx.get(f"{net.urls['TH']}/v1/sovereignty/notices", headers=th).json()
        assert answered["notices"][0]["status"] == "answered", answered

        # FR and VN: the header only, the marker nowhere in their data directories.
        for state in ("FR", "VN"):
            net.wait_committed(state, answer_id)
            view = httpx.get(f"{net.urls[state]}/v1/records/{act_id}").json()
            assert view["envelope"]["record"]["type"] == "private_act"
            refused = httpx.get(
                f"{net.urls[state]}/v1/records/{act_id}/private",
                headers=_token(net, state, "investigator"),
            )
            assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_a_party"
            assert _files_holding(net.root / state / "data", _needles(marker)) == [], state

        # comity verify passes against every node; CN exports a bundle with the body.
        for state in net.states:
            _comity(
                "verify", "--node", net.urls[state], "--genesis", str(net.root / "genesis.json")
            )
        bundle = tmp_path / "bundle.json"
        _comity(
            "bundle",
            "export",
            "--node",
            net.urls["CN"],
            "--record",
            act_id,
            "--token",
            _token(net, "CN", "investigator")["authorization"].split()[1],
            "--out",
            str(bundle),
        )
        assert act_id in json.loads(bundle.read_text())["private"]

        # Retention ends: CN's and TH's nodes purge, by records on the chain.
        def purged() -> bool:
            return all(
                httpx.get(
                    f"{net.urls[s]}/v1/records/{i}/private", headers=_token(net, s, "authority")
                ).status_code
                == 404
                for s in ("CN", "TH")
                for i in (act_id, answer_id)
            )

        _wait(purged, RETAIN_S + 40, "the purge on CN and TH")
        purges = httpx.get(f"{net.urls['FR']}/v1/search", params={"type": "body_purge"}).json()
        assert {r["actor_state"] for r in purges["results"]} == {"CN", "TH"}, purges
        for state in net.states:
            _comity(
                "verify", "--node", net.urls[state], "--genesis", str(net.root / "genesis.json")
            )
    finally:
        net.stop_all()
    for state in net.states:  # every node stopped: its files are all there is
        assert _files_holding(net.root / state / "data", _needles(marker)) == [], state
    report = _comity("bundle", "verify", "--genesis", str(net.root / "genesis.json"), str(bundle))
    assert marker in report
