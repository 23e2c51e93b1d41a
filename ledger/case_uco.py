"""A case as CASE/UCO JSON-LD: the exchange standard of forensic tools (docs/CASE_UCO.md).

Theory of operation
-------------------
``case_graph(case_ref, acts, chains)`` maps what a node's read views say about
one case (``api/cli/case_uco.py`` fetches them) to one JSON-LD document of the
Cyber-investigation Analysis Standard Expression (CASE 1.5.0) and the Unified
Cyber Ontology it extends. It does no I/O.

* The case is a ``case-investigation:Investigation`` whose ``uco-core:object``
  lists every node below; each act, answer and custody event is a
  ``case-investigation:InvestigativeAction`` (performer: the acting agency,
  location: each territorial state, times, files as object or result, tools as
  instrument, ``wasInformedBy`` its refs); an authorisation is a
  ``case-investigation:Authorization``; a custody event's action also results
  in a ``case-investigation:ProvenanceRecord``.
* Every evidence hash is one ``uco-observable:File`` with a SHA-256
  ``uco-types:Hash``; ``derived_from`` is ``case-investigation:wasDerivedFrom``
  (and ``prov:wasDerivedFrom``, for PROV-O readers).
* What CASE has no term for (record id, height, leaf index, ledger root, the
  bundle's path, an answer's response) goes into the ``comity:`` namespace
  (``COMITY_NS``, described by ``docs/comity-case-uco.ttl``).

Identifiers are deterministic: ``kb:<kind>-<key>-<uuid>``, where the key is a
record id, a SHA-256 or a state code, and the UUID is a version 5 UUID of
(kind, key) under ``ID_NAMESPACE`` (UCO advises ids that end in a UUID). The
graph is sorted by ``@id`` and every list in it is sorted, so two exports of
the same chain are byte-identical (``dumps``).

A private act whose body the caller may not read (``content is None``) is
exported as what its header says: an action named ``private_act`` with its
class, commitment and parties, its performer and time, and no files.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from ledger.records import parse_time

#: The namespace of Comity's own terms; ``docs/comity-case-uco.ttl`` defines each.
COMITY_NS: Final = "https://comity.invalid/ns#"
#: The knowledge base of one export: every node's ``@id`` is in it.
KB_NS: Final = "https://comity.invalid/kb/"
#: The UUID namespace of ``@id`` suffixes (uuid5 of the DNS name "comity.invalid").
ID_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_DNS, "comity.invalid")
CASE_VERSION: Final = "1.5.0"

CONTEXT: Final[Mapping[str, str]] = {
    "case-investigation": "https://ontology.caseontology.org/case/investigation/",
    "comity": COMITY_NS,
    "kb": KB_NS,
    "prov": "http://www.w3.org/ns/prov#",
    "uco-action": "https://ontology.unifiedcyberontology.org/uco/action/",
    "uco-core": "https://ontology.unifiedcyberontology.org/uco/core/",
    "uco-identity": "https://ontology.unifiedcyberontology.org/uco/identity/",
    "uco-location": "https://ontology.unifiedcyberontology.org/uco/location/",
    "uco-observable": "https://ontology.unifiedcyberontology.org/uco/observable/",
    "uco-tool": "https://ontology.unifiedcyberontology.org/uco/tool/",
    "uco-types": "https://ontology.unifiedcyberontology.org/uco/types/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}

#: Custody actions (and answers) whose files come out of the action, not into it.
RESULT_ACTIONS: Final = frozenset(
    {"identification", "collection", "acquisition", "identified", "collected", "acquired"}
)
#: Characterizations of an object, not objects: the investigation does not list them.
_NOT_OBJECTS: Final = frozenset(
    {
        "uco-types:Hash",
        "uco-observable:ContentDataFacet",
        "uco-observable:FileFacet",
        "uco-location:SimpleAddressFacet",
    }
)
_START_FIELDS: Final = ("starts_at", "executed_at")
_END_FIELDS: Final = ("ends_at",)
#: Act fields copied as ``comity:`` literals when present (strings only).
_LITERALS: Final = (
    "status",
    "response",
    "decision",
    "outcome",
    "ground",
    "reason",
    "action",
    "channel",
    "expires_at",
    "respond_by",
    "requested_state",
    "purpose",
)


@dataclass(frozen=True, slots=True)
class ActView:
    """One committed record of the case as the caller may see it.

    ``content`` is the act (a clear record, or a private act's content); None for a
    private act whose body the caller may not read, with ``header`` its signed header.
    ``proof`` is the record's inclusion proof (``GET /v1/records/{id}/proof``).
    """

    id: str
    height: int
    leaf_index: int
    commit_time: str
    header: Mapping[str, Any]
    content: Mapping[str, Any] | None
    proof: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class CustodyChain:
    """One custody chain of a hash (``GET /v1/evidence/{sha256}``): its event ids in order."""

    sha256: str
    ref: str
    event_ids: tuple[str, ...]
    status: str | None = None
    holder: str | None = None


def node_id(kind: str, key: str) -> str:
    """``kb:<kind>-<key>-<uuid5(kind:key)>``: the same key always names the same node."""
    suffix = uuid.uuid5(ID_NAMESPACE, f"{kind}:{key}")
    return f"kb:{kind}-{key}-{suffix}"


def _short(text: str) -> str:
    """A free text (an agency, a tool) as a short key for ``node_id``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _ref(node: str) -> dict[str, str]:
    return {"@id": node}


def _refs(nodes: Iterable[str]) -> list[dict[str, str]]:
    return [_ref(n) for n in sorted(set(nodes))]


def _time(value: str) -> dict[str, str]:
    return {"@type": "xsd:dateTime", "@value": value}


@dataclass
class _Graph:
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # sha256 -> node id

    def add(self, node: dict[str, Any]) -> str:
        """Add ``node`` unless a node of its id is there (the first one wins)."""
        self.nodes.setdefault(node["@id"], node)
        return str(node["@id"])

    def state(self, state: str) -> str:
        return self.add(
            {
                "@id": node_id("organization", state),
                "@type": "uco-identity:Organization",
                "uco-core:name": state,
                "comity:state": state,
            }
        )

    def agency(self, actor: Mapping[str, Any]) -> str:
        state, agency = str(actor["state"]), str(actor["agency"])
        key = f"{state}-{_short(agency)}"
        agency_id = self.add(
            {
                "@id": node_id("organization", key),
                "@type": "uco-identity:Organization",
                "uco-core:name": agency,
                "comity:state": state,
            }
        )
        self.add(
            {
                "@id": node_id("relationship", key),
                "@type": "uco-core:Relationship",
                "uco-core:source": _ref(agency_id),
                "uco-core:target": _ref(self.state(state)),
                "uco-core:kindOfRelationship": "Part_Of",
                "uco-core:isDirectional": True,
            }
        )
        return agency_id

    def location(self, state: str) -> str:
        facet = self.add(
            {
                "@id": node_id("simple-address-facet", state),
                "@type": "uco-location:SimpleAddressFacet",
                "uco-location:country": state,
            }
        )
        return self.add(
            {
                "@id": node_id("location", state),
                "@type": "uco-location:Location",
                "uco-core:name": state,
                "uco-core:hasFacet": _ref(facet),
            }
        )

    def tool(self, name: str, version: str | None) -> str:
        node: dict[str, Any] = {
            "@id": node_id("tool", _short(f"{name}\n{version or ''}")),
            "@type": "uco-tool:Tool",
            "uco-core:name": name,
        }
        if version is not None:
            node["uco-tool:version"] = version
        return self.add(node)

    def file(self, item: Mapping[str, Any]) -> str:
        """The File of ``item``'s hash (its first-seen size, type and name stay)."""
        sha = str(item["sha256"])
        if sha in self.files:
            return self.files[sha]
        hash_id = self.add(
            {
                "@id": node_id("hash", sha),
                "@type": "uco-types:Hash",
                "uco-types:hashMethod": "SHA256",
                "uco-types:hashValue": {"@type": "xsd:hexBinary", "@value": sha},
            }
        )
        content: dict[str, Any] = {
            "@id": node_id("content-data-facet", sha),
            "@type": "uco-observable:ContentDataFacet",
            "uco-observable:hash": _ref(hash_id),
        }
        facets = [self.add(content)]
        if isinstance(item.get("size"), int):
            content["uco-observable:sizeInBytes"] = item["size"]
        if isinstance(item.get("media_type"), str):
            content["uco-observable:mimeType"] = item["media_type"]
        if isinstance(item.get("name"), str):
            facets.append(
                self.add(
                    {
                        "@id": node_id("file-facet", sha),
                        "@type": "uco-observable:FileFacet",
                        "uco-observable:fileName": item["name"],
                    }
                )
            )
        node: dict[str, Any] = {
            "@id": node_id("file", sha),
            "@type": "uco-observable:File",
            "uco-core:hasFacet": _refs(facets),
        }
        for key in ("role", "language"):
            if isinstance(item.get(key), str):
                node[f"comity:{key}"] = item[key]
        self.files[sha] = self.add(node)
        return self.files[sha]

    def derive(self, item: Mapping[str, Any]) -> None:
        source = item.get("derived_from")
        if not isinstance(source, str):
            return
        node = self.nodes[self.files[str(item["sha256"])]]
        origin = _ref(self.file({"sha256": source}))
        for term in ("case-investigation:wasDerivedFrom", "prov:wasDerivedFrom"):
            node.setdefault(term, origin)


def _proof_terms(act: ActView) -> dict[str, Any]:
    return {
        "comity:recordId": act.id,
        "comity:height": act.height,
        "comity:leafIndex": act.leaf_index,
        "comity:treeSize": act.proof["tree_size"],
        "comity:ledgerRoot": act.proof["root"],
        "comity:checkpointHeight": act.proof["checkpoint_height"],
        "comity:commitTime": _time(act.commit_time),
        "comity:bundle": f"/v1/records/{act.id}/bundle",
    }


def _times(record: Mapping[str, Any]) -> dict[str, Any]:
    start = next((record[f] for f in _START_FIELDS if isinstance(record.get(f), str)), None)
    end = next((record[f] for f in _END_FIELDS if isinstance(record.get(f), str)), None)
    out = {"uco-action:startTime": _time(str(start or record["occurred_at"]))}
    if end is not None:
        out["uco-action:endTime"] = _time(end)
    return out


def _evidence_terms(graph: _Graph, record: Mapping[str, Any]) -> dict[str, Any]:
    items = [i for i in record.get("evidence") or [] if isinstance(i, Mapping)]
    files = [graph.file(item) for item in items]
    for item in items:
        graph.derive(item)
    tools = [
        graph.tool(str(i["tool"]), i.get("tool_version"))
        for i in items
        if isinstance(i.get("tool"), str)
    ]
    out: dict[str, Any] = {}
    if files:
        collected = str(record.get("action")) in RESULT_ACTIONS or "status" in record
        out["uco-action:result" if collected else "uco-action:object"] = _refs(files)
    if tools:
        out["uco-action:instrument"] = _refs(tools)
    return out


def _authorisation(graph: _Graph, act_id: str, record: Mapping[str, Any]) -> str | None:
    auth = record.get("authorisation")
    if not isinstance(auth, Mapping):
        return None
    node: dict[str, Any] = {
        "@id": node_id("authorization", act_id),
        "@type": "case-investigation:Authorization",
        "case-investigation:authorizationIdentifier": str(auth["reference"]),
        "case-investigation:authorizationType": str(auth["level"]),
        "comity:approvedBy": str(auth["approved_by"]),
    }
    if isinstance(auth.get("approved_at"), str):
        node["uco-core:startTime"] = _time(auth["approved_at"])
    return graph.add(node)


def _provenance(
    graph: _Graph, act: ActView, record: Mapping[str, Any], roots: Mapping[str, str]
) -> str:
    """The custody event's ``ProvenanceRecord``: its files, its exhibit number (the
    event's record id) and the root exhibit number of each chain (its first event)."""
    files = [graph.file(i) for i in record.get("evidence") or [] if isinstance(i, Mapping)]
    node: dict[str, Any] = {
        "@id": node_id("provenance-record", act.id),
        "@type": "case-investigation:ProvenanceRecord",
        "case-investigation:exhibitNumber": act.id,
        "uco-core:object": _refs(files),
        "comity:custodyAction": str(record.get("action")),
    }
    first = sorted({roots.get(f"{act.id}/{i.get('sha256')}", act.id) for i in record["evidence"]})
    if first:
        node["case-investigation:rootExhibitNumber"] = first
    return graph.add(node)


def _private_header_terms(header: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "uco-core:name": "private_act",
        "comity:actType": "private_act",
        "comity:class": str(header.get("class")),
        "comity:commitment": str(header.get("commitment")),
        "comity:visibility": "parties",
        "comity:parties": sorted(str(p) for p in header.get("parties") or []),
        "uco-action:startTime": _time(str(header["occurred_at"])),
    }


def _action(graph: _Graph, act: ActView, exported: frozenset[str], roots: Mapping[str, str]) -> str:
    record = act.content if act.content is not None else act.header
    node: dict[str, Any] = {
        "@id": node_id("action", act.id),
        "@type": "case-investigation:InvestigativeAction",
        "uco-action:performer": _ref(graph.agency(record["actor"])),
        "comity:actorState": str(record["actor"]["state"]),
        **_proof_terms(act),
    }
    refs = [str(r) for r in record.get("refs") or []]
    informed = [node_id("action", r) for r in refs if r in exported]
    if informed:
        node["case-investigation:wasInformedBy"] = _refs(informed)
    if refs:
        node["comity:refs"] = sorted(set(refs))
    if act.content is None:
        node.update(_private_header_terms(act.header))
        return graph.add(node)
    node.update(_times(record))
    node.update(_evidence_terms(graph, record))
    node["uco-core:name"] = node["comity:actType"] = str(record["type"])
    node["comity:visibility"] = str(record.get("visibility") or "consortium")
    node.update({f"comity:{k}": record[k] for k in _LITERALS if isinstance(record.get(k), str)})
    states = [str(s) for s in record.get("territorial_states") or []]
    if states:
        node["uco-action:location"] = _refs(graph.location(s) for s in states)
    to = record.get("to")
    if isinstance(to, Mapping) and isinstance(to.get("agency"), str):
        node["uco-action:participant"] = _ref(graph.agency(to))  # a transfer's receiver
    auth = _authorisation(graph, act.id, record)
    if auth is not None:
        node["comity:authorization"] = _ref(auth)
    if record["type"] == "custody_event" and record.get("evidence"):
        node.setdefault("uco-action:result", [])
        prov = _provenance(graph, act, record, roots)
        node["uco-action:result"] = sorted(
            [*node["uco-action:result"], _ref(prov)], key=lambda r: r["@id"]
        )
    return graph.add(node)


def _roots(chains: Sequence[CustodyChain]) -> dict[str, str]:
    """``"<event id>/<sha256>"`` -> the first event id of that event's chain of the hash."""
    return {
        f"{event}/{chain.sha256}": chain.event_ids[0]
        for chain in chains
        if chain.event_ids
        for event in chain.event_ids
    }


def case_graph(
    case_ref: str, acts: Sequence[ActView], chains: Sequence[CustodyChain] = ()
) -> dict[str, Any]:
    """The JSON-LD document of a case (``acts`` in commit order)."""
    graph = _Graph()
    exported = frozenset(a.id for a in acts)
    roots = _roots(chains)
    for act in acts:
        _action(graph, act, exported, roots)
    auths = [n for n, v in graph.nodes.items() if v["@type"] == "case-investigation:Authorization"]
    investigation: dict[str, Any] = {
        "@id": node_id("investigation", _short(case_ref)),
        "@type": "case-investigation:Investigation",
        "uco-core:name": case_ref,
        "case-investigation:investigationForm": "case",
        "uco-core:object": _refs(
            n for n, v in graph.nodes.items() if n not in auths and v["@type"] not in _NOT_OBJECTS
        ),
        "comity:caseRef": case_ref,
        "comity:caseVersion": CASE_VERSION,
    }
    if acts:
        investigation["uco-core:startTime"] = _time(
            min((_first_time(a) for a in acts), key=_moment)
        )
    if auths:
        investigation["case-investigation:relevantAuthorization"] = _refs(auths)
    graph.add(investigation)
    return {"@context": dict(CONTEXT), "@graph": [graph.nodes[k] for k in sorted(graph.nodes)]}


def _first_time(act: ActView) -> str:
    record = act.content if act.content is not None else act.header
    return str(record["occurred_at"])


def _moment(text: str) -> datetime:
    return parse_time(text, "occurred_at")


def dumps(document: Mapping[str, Any]) -> str:
    """The document as text: sorted keys, two-space indent, a final newline (stable bytes)."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
