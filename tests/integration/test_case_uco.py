"""``comity case export --format case-uco`` on the 4-node in-process consortium, checked
with ``case_validate`` (case-utils, the CASE community's validator; docs/CASE_UCO.md).

CN preserves data in TH and intercepts under a judge's authorisation, files a private
production order, TH acknowledges and answers with a disk image and an extract derived
from it, and the image moves TH -> CN under custody events. The export of CN's node (with
a body reader's token) must conform with zero violations, be byte-identical to TH's and
to a second export, and give back the evidence items on import.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.cli.case_uco import export_case_uco
from api.cli.client import NodeClient
from ledger.acts_templates import template
from ledger.case_uco import dumps
from ledger.case_uco_import import evidence_items
from ledger.keys import SigningKey
from ledger.records import format_time
from node.authoring import private_submission
from node.clock import utcnow
from node.tokens import create_token
from tests.cluster import Cluster

pytestmark = pytest.mark.cluster(on_disk=True)

CASE = "CN-2026-UCO-9"
IMAGE, EXTRACT = "a1" * 32, "b2" * 32
ROOT = Path(__file__).resolve().parents[2]


class _Reader:
    """``NodeClient.get`` over a cluster node's in-process API, from a worker thread."""

    def __init__(
        self, api: httpx.AsyncClient, loop: asyncio.AbstractEventLoop, headers: dict[str, str]
    ) -> None:
        self.api, self.loop, self.headers = api, loop, headers

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        call = self.api.get(path, params=params, headers=self.headers)
        return NodeClient._json(asyncio.run_coroutine_threadsafe(call, self.loop).result(30))


async def _export(cluster: Cluster, state: str, headers: dict[str, str]) -> str:
    reader = _Reader(cluster.api[state], asyncio.get_running_loop(), headers)
    return dumps(await asyncio.to_thread(export_case_uco, reader, CASE))


def _token(cluster: Cluster, state: str, *cases: str) -> dict[str, str]:
    _, secret = create_token(
        cluster.nodes[state].config.data_dir, "investigator", state, state=state, cases=cases
    )
    return {"authorization": f"Bearer {secret}"}


async def _committed(cluster: Cluster, state: str, reply: httpx.Response) -> str:
    assert reply.status_code == 202, reply.text
    record_id: str = reply.json()["id"]
    view = await cluster.api[state].get(f"/v1/records/{record_id}", params={"wait": 20})
    assert view.json()["status"] == "committed", view.text
    await cluster.wait_height(view.json()["height"])
    return record_id


async def _commit(
    cluster: Cluster, state: str, type_: str, signer: SigningKey, **fields: Any
) -> str:
    envelope = cluster.envelope(
        state, type_=type_, signer=signer, **{"case_ref": CASE, "evidence": [], **fields}
    )
    return await _committed(
        cluster, state, await cluster.api[state].post("/v1/records", json=envelope)
    )


async def _private_order(cluster: Cluster) -> str:
    cluster.nonce += 1
    record = template("production_order", state="CN", territorial_states=("TH",), now=utcnow())
    record.update(
        chain_id=cluster.chain_id,
        nonce=f"uco{cluster.nonce:012d}",
        actor={"state": "CN", "agency": "CN cybercrime unit"},
        case_ref=CASE,
        evidence=[{"sha256": "c3" * 32, "role": "request_document", "name": "order.pdf"}],
    )
    until = format_time(utcnow() + timedelta(days=365))
    submission = private_submission(
        cluster.member("CN").investigator, record, retain_until=until, ref_parties=lambda _: []
    )
    return await _committed(
        cluster, "CN", await cluster.api["CN"].post("/v1/records", json=submission)
    )


async def _build_case(cluster: Cluster) -> dict[str, str]:
    cn, th = cluster.member("CN"), cluster.member("TH")
    ids = {
        "preservation": await _commit(
            cluster, "CN", "preservation_request", cn.investigator, territorial_states=["TH"]
        )
    }
    ids["ack"] = await _commit(
        cluster,
        "TH",
        "sovereignty_response",
        th.authority,
        territorial_states=["TH"],
        refs=[ids["preservation"]],
        response="acknowledged",
    )
    ids["measure"] = await _commit(
        cluster, "CN", "technical_measure", cn.investigator, territorial_states=["TH"]
    )
    ids["order"] = await _private_order(cluster)
    ids["mla"] = await _commit(
        cluster,
        "CN",
        "mla_request",
        cn.authority,
        territorial_states=["TH"],
        refs=[ids["preservation"]],
    )
    image = {
        "sha256": IMAGE,
        "role": "evidence",
        "size": 4096,
        "media_type": "application/octet-stream",
        "name": "disk.E01",
        "tool": "FTK Imager",
        "tool_version": "4.7",
    }
    extract = {"sha256": EXTRACT, "role": "evidence", "derived_from": IMAGE, "name": "chat.db"}
    ids["answer"] = await _commit(
        cluster,
        "TH",
        "mla_response",
        th.authority,
        territorial_states=["TH"],
        refs=[ids["mla"]],
        status="evidence_transferred",
        evidence=[image, extract],
    )
    custody = {"refs": [ids["answer"]], "evidence": [{"sha256": IMAGE}]}
    ids["collected"] = await _commit(
        cluster,
        "TH",
        "custody_event",
        th.investigator,
        territorial_states=["TH"],
        action="collected",
        **custody,
    )
    ids["transferred"] = await _commit(
        cluster,
        "TH",
        "custody_event",
        th.investigator,
        territorial_states=["TH"],
        action="transferred",
        to={"state": "CN", "agency": "CN forensic lab"},
        **custody,
    )
    return ids


def _case_validate(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    tool = Path(sys.executable).parent / "case_validate"
    if not tool.exists():
        pytest.skip("case_validate (case-utils, the test extra) is not installed")
    return subprocess.run(
        [str(tool), *extra, str(path)], capture_output=True, text=True, timeout=120, check=False
    )


async def test_case_export_conforms_to_case_and_round_trips(
    cluster: Cluster, tmp_path: Path
) -> None:
    ids = await _build_case(cluster)
    text = await _export(cluster, "CN", _token(cluster, "CN"))
    assert text == await _export(cluster, "CN", _token(cluster, "CN"))  # deterministic
    assert text == await _export(cluster, "TH", _token(cluster, "TH"))  # the same on each party
    doc = json.loads(text)
    actions = {
        n["comity:recordId"]: n
        for n in doc["@graph"]
        if n["@type"] == "case-investigation:InvestigativeAction"
    }
    assert set(actions) == set(ids.values())
    assert actions[ids["order"]]["comity:actType"] == "production_order"
    assert actions[ids["order"]]["comity:visibility"] == "parties"
    assert "comity:authorization" in actions[ids["measure"]]
    kinds = [n["@type"] for n in doc["@graph"]]
    assert kinds.count("case-investigation:ProvenanceRecord") == 2
    assert kinds.count("case-investigation:Authorization") == 1  # the measure's
    path = tmp_path / "case.jsonld"
    path.write_text(text, encoding="utf-8")
    for extra in ((), ("--ontology-graph", str(ROOT / "docs" / "comity-case-uco.ttl"))):
        result = _case_validate(path, *extra)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
        assert "Conforms: True" in result.stdout
        assert "Warning" not in result.stderr, result.stderr[-2000:]

    items = {i["sha256"]: i for i in evidence_items(doc)[0]}
    assert items[IMAGE] == {
        "sha256": IMAGE,
        "role": "evidence",
        "size": 4096,
        "media_type": "application/octet-stream",
        "name": "disk.E01",
        "tool": "FTK Imager",
        "tool_version": "4.7",
    }
    assert items[EXTRACT]["derived_from"] == IMAGE


async def test_without_a_body_reader_a_private_act_is_its_header_or_absent(
    cluster: Cluster,
) -> None:
    ids = await _build_case(cluster)
    elsewhere = json.loads(await _export(cluster, "CN", _token(cluster, "CN", "CN-OTHER")))
    [header] = [n for n in elsewhere["@graph"] if n.get("comity:recordId") == ids["order"]]
    assert (header["comity:actType"], header["comity:class"]) == ("private_act", "request")
    assert "uco-action:object" not in header
    public = json.loads(await _export(cluster, "FR", {}))
    exported = {n.get("comity:recordId") for n in public["@graph"]}
    assert ids["order"] not in exported and ids["answer"] in exported
    assert "order.pdf" not in json.dumps(public)
