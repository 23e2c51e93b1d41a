"""The CASE/UCO export mapping and its import (ledger/case_uco.py, ledger/case_uco_import.py;
docs/CASE_UCO.md). The export's validity against the CASE ontology is checked with
``case_validate`` on a real cluster's export (tests/integration/test_case_uco.py)."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from api.cli import case_uco as cli
from api.cli.case import case as case_group
from api.cli.client import ClientFailure
from ledger.case_uco import case_graph, dumps, node_id
from ledger.case_uco_import import ITEMS_MAX, evidence_items
from ledger.errors import ClientError, TooLarge
from tests.unit.case_uco_sample import CASE, EXTRACT, IMAGE, LETTER, _rid, acts, chains

UUID_END = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _doc() -> dict[str, Any]:
    return case_graph(CASE, acts(), chains())


def _node(doc: dict[str, Any], kind: str, key: str) -> dict[str, Any]:
    wanted = node_id(kind, key)
    nodes: list[dict[str, Any]] = [n for n in doc["@graph"] if n["@id"] == wanted]
    assert len(nodes) == 1, wanted
    return nodes[0]


def test_two_exports_of_the_same_chain_are_byte_identical() -> None:
    assert dumps(_doc()) == dumps(_doc())
    ids = [n["@id"] for n in _doc()["@graph"]]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    # UCO advises ids ending in a UUID (core:UcoThing-identifier-regex-shape)
    assert all(UUID_END.search(i) for i in ids)
    assert node_id("file", IMAGE).startswith(f"kb:file-{IMAGE}-")


def test_acts_map_to_investigative_actions_with_proof_links() -> None:
    doc = _doc()
    measure = _node(doc, "action", _rid(1))
    assert measure["@type"] == "case-investigation:InvestigativeAction"
    assert measure["uco-action:startTime"] == {
        "@type": "xsd:dateTime",
        "@value": "2026-03-01T08:00:00Z",
    }
    assert measure["uco-action:endTime"]["@value"] == "2026-04-01T08:00:00Z"
    assert measure["uco-action:location"] == [{"@id": node_id("location", "TH")}]
    assert (measure["comity:recordId"], measure["comity:height"], measure["comity:leafIndex"]) == (
        _rid(1),
        1,
        10,
    )
    assert measure["comity:ledgerRoot"] == "01" * 32
    assert measure["comity:bundle"] == f"/v1/records/{_rid(1)}/bundle"
    auth = _node(doc, "authorization", _rid(1))
    assert auth["case-investigation:authorizationIdentifier"] == "CN-AUTH-7"
    assert auth["case-investigation:authorizationType"] == "judicial"
    investigation = _node(doc, "investigation", hashlib.sha256(CASE.encode()).hexdigest()[:16])
    assert investigation["uco-core:name"] == CASE
    assert investigation["case-investigation:relevantAuthorization"] == [{"@id": auth["@id"]}]
    answer = _node(doc, "action", _rid(2))
    assert answer["case-investigation:wasInformedBy"] == [{"@id": measure["@id"]}]
    assert answer["comity:status"] == "evidence_transferred"
    assert {r["@id"] for r in answer["uco-action:result"]} == {
        node_id("file", IMAGE),
        node_id("file", EXTRACT),
    }
    assert answer["uco-action:instrument"] == [{"@id": _tool(doc)["@id"]}]


def _tool(doc: dict[str, Any]) -> dict[str, Any]:
    tools: list[dict[str, Any]] = [n for n in doc["@graph"] if n["@type"] == "uco-tool:Tool"]
    [tool] = tools
    assert (tool["uco-core:name"], tool["uco-tool:version"]) == ("FTK Imager", "4.7")
    return tool


def test_files_hashes_derivation_and_custody_provenance() -> None:
    doc = _doc()
    digest = _node(doc, "hash", IMAGE)
    assert digest["uco-types:hashMethod"] == "SHA256"
    assert digest["uco-types:hashValue"] == {"@type": "xsd:hexBinary", "@value": IMAGE}
    content = _node(doc, "content-data-facet", IMAGE)
    assert (content["uco-observable:sizeInBytes"], content["uco-observable:mimeType"]) == (
        1024,
        "application/octet-stream",
    )
    extract = _node(doc, "file", EXTRACT)
    assert extract["case-investigation:wasDerivedFrom"] == {"@id": node_id("file", IMAGE)}
    assert extract["prov:wasDerivedFrom"] == {"@id": node_id("file", IMAGE)}
    transfer = _node(doc, "provenance-record", _rid(4))
    assert transfer["case-investigation:exhibitNumber"] == _rid(4)
    assert transfer["case-investigation:rootExhibitNumber"] == [_rid(3)]
    assert transfer["uco-core:object"] == [{"@id": node_id("file", IMAGE)}]
    action = _node(doc, "action", _rid(4))
    assert {"@id": transfer["@id"]} in action["uco-action:result"]
    assert action["uco-action:participant"]["@id"].startswith("kb:organization-CN-")


def test_a_private_act_without_its_body_is_exported_as_its_header_says() -> None:
    header_only = _node(_doc(), "action", _rid(9))
    assert header_only["uco-core:name"] == "private_act"
    assert (header_only["comity:class"], header_only["comity:parties"]) == ("request", ["CN", "TH"])
    assert header_only["comity:commitment"] == "dd" * 32
    assert not {"uco-action:object", "uco-action:result", "uco-action:location"} & set(header_only)


def test_export_then_import_gives_back_the_evidence_items() -> None:
    items, warnings = evidence_items(json.loads(dumps(_doc())))
    assert warnings == []
    by_hash = {i["sha256"]: i for i in items}
    assert by_hash[IMAGE] == {
        "sha256": IMAGE,
        "role": "evidence",
        "size": 1024,
        "media_type": "application/octet-stream",
        "name": "disk.E01",
        "tool": "FTK Imager",
        "tool_version": "4.7",
    }
    assert by_hash[EXTRACT]["derived_from"] == IMAGE and by_hash[EXTRACT]["name"] == "chat.db"
    assert by_hash[LETTER] == {
        "sha256": LETTER,
        "role": "authorisation_document",
        "name": "order.pdf",
    }


TOOL_FILE: dict[str, Any] = {
    "@context": {
        "kb": "http://example.org/kb/",
        "uco-core": "https://ontology.unifiedcyberontology.org/uco/core/",
        "uco-observable": "https://ontology.unifiedcyberontology.org/uco/observable/",
        "uco-types": "https://ontology.unifiedcyberontology.org/uco/types/",
        "xsd": "http://www.w3.org/2001/XMLSchema#",
    },
    "@graph": [
        {
            "@id": "kb:file-1",
            "@type": "uco-observable:File",
            "uco-core:hasFacet": [
                {
                    "@id": "kb:facet-1",
                    "@type": "uco-observable:ContentDataFacet",
                    "uco-observable:sizeInBytes": {"@type": "xsd:integer", "@value": "77"},
                    "uco-observable:hash": [
                        {
                            "@id": "kb:hash-1",
                            "@type": "uco-types:Hash",
                            "uco-types:hashMethod": {"@value": "SHA256"},
                            "uco-types:hashValue": {"@type": "xsd:hexBinary", "@value": "AB" * 32},
                        }
                    ],
                }
            ],
        },
        {"@id": "kb:file-2", "@type": "uco-observable:File"},
    ],
}


def test_a_tool_file_with_inline_facets_and_typed_literals() -> None:
    items, warnings = evidence_items(TOOL_FILE)
    assert items == [{"sha256": "ab" * 32, "role": "evidence", "size": 77}]
    assert warnings == ["$['@graph'][1]: no SHA256 hash, not imported"]


def _hash_node(doc: dict[str, Any]) -> dict[str, Any]:
    hash_node: dict[str, Any] = doc["@graph"][0]["uco-core:hasFacet"][0]["uco-observable:hash"][0]
    return hash_node


HASH_PATH = "$['@graph'][0]['uco-core:hasFacet'][0]['uco-observable:hash'][0]"
FACET_PATH = "$['@graph'][0]['uco-core:hasFacet'][0]"


def _bad(change: Any) -> dict[str, Any]:
    doc = copy.deepcopy(TOOL_FILE)
    change(doc)
    return doc


HOSTILE: list[tuple[str, Any, str, str]] = [
    ("not an object", "CASE", "case_uco_invalid", "$"),
    (
        "remote context",
        {"@context": "https://example.org/ctx.jsonld", "@graph": []},
        "case_uco_invalid",
        "$['@context'][0]",
    ),
    (
        "short hash",
        _bad(lambda d: _hash_node(d).update({"uco-types:hashValue": "ab" * 31})),
        "case_uco_invalid",
        HASH_PATH,
    ),
    (
        "two hash values",
        _bad(lambda d: _hash_node(d).update({"uco-types:hashValue": ["ab" * 32, "cd" * 32]})),
        "case_uco_invalid",
        HASH_PATH,
    ),
    (
        "negative size",
        _bad(
            lambda d: d["@graph"][0]["uco-core:hasFacet"][0].update(
                {"uco-observable:sizeInBytes": -1}
            )
        ),
        "case_uco_invalid",
        FACET_PATH,
    ),
    (
        "boolean size",
        _bad(
            lambda d: d["@graph"][0]["uco-core:hasFacet"][0].update(
                {"uco-observable:sizeInBytes": True}
            )
        ),
        "case_uco_invalid",
        FACET_PATH,
    ),
    (
        "unknown role",
        _bad(lambda d: d["@graph"][0].update({"https://comity.invalid/ns#role": "suspect"})),
        "case_uco_invalid",
        "$['@graph'][0]",
    ),
    (
        "name too long",
        _bad(
            lambda d: d["@graph"][0]["uco-core:hasFacet"].append(
                {
                    "@id": "kb:ff",
                    "@type": "uco-observable:FileFacet",
                    "uco-observable:fileName": "x" * 201,
                }
            )
        ),
        "case_uco_invalid",
        "$['@graph'][0]",
    ),
    (
        "non-string id",
        {"@graph": [{"@id": 7, "@type": "x"}]},
        "case_uco_invalid",
        "$['@graph'][0]['@id']",
    ),
]


@pytest.mark.parametrize(("name", "doc", "code", "path"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_imports_fail_naming_the_json_path(
    name: str, doc: Any, code: str, path: str
) -> None:
    with pytest.raises(ClientError) as caught:
        evidence_items(doc)
    assert (caught.value.code, caught.value.field) == (code, path), caught.value.message


def test_too_deep_and_too_many_files_are_refused() -> None:
    deep: Any = {"@id": "kb:x", "@type": "x"}
    for _ in range(40):
        deep = {"@id": "kb:x", "p": deep}
    with pytest.raises(ClientError) as caught:
        evidence_items({"@graph": [deep]})
    assert caught.value.code == "case_uco_invalid" and "deeper" in caught.value.message
    many = copy.deepcopy(TOOL_FILE)
    template = many["@graph"][0]
    many["@graph"] = []
    for i in range(ITEMS_MAX + 1):
        node = copy.deepcopy(template)
        node["@id"] = f"kb:file-{i}"
        _hash_node({"@graph": [node]})["uco-types:hashValue"] = f"{i:064x}"
        many["@graph"].append(node)
    with pytest.raises(TooLarge) as too_many:
        evidence_items(many)
    assert too_many.value.code == "too_many_items"


def test_cli_import_prints_items_and_refuses_bad_files(tmp_path: Path) -> None:
    runner = CliRunner()
    good = tmp_path / "tool.jsonld"
    good.write_text(json.dumps(TOOL_FILE), encoding="utf-8")
    result = runner.invoke(case_group, ["import", "--format", "case-uco", str(good)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"role": "evidence", "sha256": "ab" * 32, "size": 77}]
    assert "no SHA256 hash" in result.stderr
    broken = tmp_path / "broken.jsonld"
    broken.write_text("{not json", encoding="utf-8")
    result = runner.invoke(case_group, ["import", "--format", "case-uco", str(broken)])
    assert result.exit_code == 2 and "error: not_json" in result.stderr
    big = tmp_path / "big.jsonld"
    big.write_bytes(b" " * (cli.DOCUMENT_BYTES_MAX + 1))
    result = runner.invoke(case_group, ["import", "--format", "case-uco", str(big)])
    assert result.exit_code == 2 and "error: too_large" in result.stderr


def test_every_comity_term_of_an_export_is_declared_in_the_comity_ontology() -> None:
    ttl = (Path(__file__).resolve().parents[2] / "docs" / "comity-case-uco.ttl").read_text()
    declared = set(re.findall(r"^comity:(\w+)\n\ta owl:", ttl, flags=re.MULTILINE))
    used = {
        key.removeprefix("comity:")
        for node in _doc()["@graph"]
        for key in node
        if key.startswith("comity:")
    }
    assert used and used <= declared, used - declared


class FakeNode:
    """A node's read views over the sample case, two records a page; private bodies 403."""

    def __init__(self, *, stuck: bool = False) -> None:
        self.acts = {a.id: a for a in acts()}
        self.stuck = stuck
        self.paths: list[str] = []

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        self.paths.append(path)
        ids = list(self.acts)
        if path == f"/v1/cases/{CASE}":
            start = 0 if "cursor" in params and self.stuck else int(params.get("cursor", -1)) + 1
            page = ids[start : start + 2]
            more = start + 2 < len(ids)
            return {
                "entries": [{"id": i} for i in page],
                "next_cursor": str(start + 1) if more else None,
            }
        record_id = path.split("/")[3]
        if path.startswith("/v1/evidence/"):
            return {
                "custody_chains": [{"ref": _rid(2), "events": [{"id": _rid(3)}, {"id": _rid(4)}]}]
            }
        act = self.acts[record_id]
        if path.endswith("/private"):
            raise ClientFailure(403, "case_not_allowed", "not this case")
        if path.endswith("/proof"):
            return dict(act.proof)
        view = {"height": act.height, "leaf_index": act.leaf_index, "commit_time": act.commit_time}
        return {**view, "envelope": {"record": dict(act.header)}}


def test_the_export_pages_the_case_and_reads_each_record_once() -> None:
    node = FakeNode()
    assert dumps(cli.export_case_uco(node, CASE)) == dumps(_doc())
    assert node.paths.count(f"/v1/cases/{CASE}") == 3  # five records, two a page
    assert node.paths.count(f"/v1/records/{_rid(9)}/private") == 1
    assert node.paths.count(f"/v1/evidence/{IMAGE}") == 1


def test_the_export_refuses_a_node_that_never_ends_and_a_bad_case_ref() -> None:
    with pytest.raises(ClientFailure) as caught:
        cli.export_case_uco(FakeNode(stuck=True), CASE)
    assert caught.value.code == "bad_reply"
    for bad in ("../v1/status", "a/../b", "", "x" * 129, "CN 1"):
        with pytest.raises(ClientError) as refused:
            cli.export_case_uco(FakeNode(), bad)
        assert (refused.value.code, refused.value.field) == ("bad_case_ref", "case_ref")


def test_cli_export_writes_the_document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Client(FakeNode):
        def __init__(self, url: str, token: str | None) -> None:
            super().__init__()
            assert (url, token) == ("http://node", "secret")

        def close(self) -> None:
            pass

    monkeypatch.setattr(cli, "NodeClient", Client)
    out = tmp_path / "case.jsonld"
    args = ["export", CASE, "--format", "case-uco", "--node", "http://node", "--token", "secret"]
    result = CliRunner().invoke(case_group, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == dumps(_doc())
    result = CliRunner().invoke(
        case_group,
        ["export", "../x", "--format", "case-uco", "--node", "http://node", "--token", "secret"],
    )
    assert result.exit_code == 2 and "case_ref must be" in result.stderr
