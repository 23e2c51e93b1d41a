"""Evidence items from a CASE/UCO JSON-LD file a forensic tool wrote (docs/CASE_UCO.md).

Theory of operation
-------------------
``evidence_items(document)`` reads a parsed JSON-LD document and returns the
``evidence`` list of a new act: one ``EvidenceItem`` (``ledger/acts_fields.py``)
per ``uco-observable:File`` (or ``ObservableObject``) that has a SHA-256
``uco-types:Hash`` in a ``ContentDataFacet``, with its size, media type and
file name, ``role: "evidence"``, ``derived_from`` from ``wasDerivedFrom``
(CASE's or PROV-O's) and ``tool``/``tool_version`` from the ``uco-tool:Tool``
instrument of an action whose result it is.

This is not a JSON-LD processor: it expands compact IRIs with the document's
own inline ``@context`` (a remote context is refused, nothing is fetched) and
follows ``@id`` references within the document. Everything is hostile: the
document's nodes, nesting depth and files are bounded, every hash is checked,
and each error names the JSON path of the value at fault (``$['@graph'][3]``),
as a ``ClientError`` with code ``case_uco_invalid``. Nothing partial is
returned: one bad item fails the whole import.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from pydantic import ValidationError

from ledger.acts_fields import EvidenceItem
from ledger.errors import ClientError, TooLarge

CODE: Final = "case_uco_invalid"
NODES_MAX: Final = 100_000
DEPTH_MAX: Final = 32
#: An act lists at most this many evidence items (``ledger/records.py``).
ITEMS_MAX: Final = 1000

_UCO: Final = "https://ontology.unifiedcyberontology.org/uco/"
OBSERVABLE: Final = _UCO + "observable/"
FILE_TYPES: Final = frozenset({OBSERVABLE + "File", OBSERVABLE + "ObservableObject"})
CONTENT_FACET: Final = OBSERVABLE + "ContentDataFacet"
FILE_FACET: Final = OBSERVABLE + "FileFacet"
HAS_FACET: Final = _UCO + "core/hasFacet"
HASH: Final = OBSERVABLE + "hash"
HASH_METHOD: Final = _UCO + "types/hashMethod"
HASH_VALUE: Final = _UCO + "types/hashValue"
SIZE: Final = OBSERVABLE + "sizeInBytes"
MIME: Final = OBSERVABLE + "mimeType"
FILE_NAME: Final = OBSERVABLE + "fileName"
DERIVED: Final = (
    "https://ontology.caseontology.org/case/investigation/wasDerivedFrom",
    "http://www.w3.org/ns/prov#wasDerivedFrom",
)
RESULT: Final = _UCO + "action/result"
INSTRUMENT: Final = _UCO + "action/instrument"
NAME: Final = _UCO + "core/name"
TOOL_VERSION: Final = _UCO + "tool/version"
#: A Comity export's own role of a file (``ledger/case_uco.COMITY_NS``), kept on import.
ROLE: Final = "https://comity.invalid/ns#role"
_SHA256_NAMES: Final = frozenset({"sha256", "sha-256"})
_HEX64: Final = re.compile(r"[0-9A-Fa-f]{64}")


def fail(path: str, message: str) -> ClientError:
    return ClientError(f"{path}: {message}", field=path, code=CODE)


@dataclass
class _Doc:
    """The document's nodes by ``@id`` (inline ones too) and its prefixes."""

    prefixes: dict[str, str]
    nodes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    by_id: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)

    def iri(self, term: str) -> str:
        prefix, colon, local = term.partition(":")
        if colon and prefix in self.prefixes and not local.startswith("//"):
            return self.prefixes[prefix] + local
        return self.prefixes.get(term, term)

    def props(self, node: Mapping[str, Any]) -> dict[str, Any]:
        return {self.iri(k): v for k, v in node.items() if not k.startswith("@")}

    def prop(self, node: Mapping[str, Any], iri: str) -> tuple[str, Any]:
        """(the document's own key, value) of ``iri`` in ``node``; ("", None) if absent."""
        return next(((k, v) for k, v in node.items() if self.iri(k) == iri), ("", None))

    def types(self, node: Mapping[str, Any]) -> set[str]:
        return {self.iri(t) for t in _values(node.get("@type")) if isinstance(t, str)}

    def deref(self, value: Any, path: str) -> tuple[str, dict[str, Any]] | None:
        """The node ``value`` is (inline) or names (``{"@id": ...}``), or None."""
        if not isinstance(value, dict):
            return None
        ref = value.get("@id")
        if isinstance(ref, str) and len(value) == 1:
            return self.by_id.get(self.iri(ref))
        return path, value


def _values(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def _literal(value: Any) -> Any:
    return value.get("@value") if isinstance(value, dict) else value


def _context(document: Mapping[str, Any]) -> dict[str, str]:
    prefixes: dict[str, str] = {}
    for i, item in enumerate(_values(document.get("@context"))):
        if not isinstance(item, dict):
            raise fail(f"$['@context'][{i}]", "only an inline @context object is read")
        for key, value in item.items():
            target = value.get("@id") if isinstance(value, dict) else value
            if isinstance(key, str) and isinstance(target, str):
                prefixes[key] = target
    return prefixes


def _walk(doc: _Doc, value: Any, path: str, depth: int) -> None:
    if depth > DEPTH_MAX:
        raise fail(path, f"nested deeper than {DEPTH_MAX} levels")
    if isinstance(value, list):
        for i, item in enumerate(value):
            _walk(doc, item, f"{path}[{i}]", depth + 1)
        return
    if not isinstance(value, dict):
        return
    if "@id" in value and len(value) > 1:
        node_id = value["@id"]
        if not isinstance(node_id, str):
            raise fail(f"{path}['@id']", "@id must be a string")
        if len(doc.nodes) >= NODES_MAX:
            raise TooLarge(f"more than {NODES_MAX} nodes", field=path, code="too_many_nodes")
        doc.nodes.append((path, value))
        doc.by_id.setdefault(doc.iri(node_id), (path, value))
    for key, item in value.items():
        if key != "@context":
            _walk(doc, item, f"{path}[{key!r}]", depth + 1)


def _parse(document: Any) -> _Doc:
    if isinstance(document, list):
        document = {"@graph": document}
    if not isinstance(document, dict):
        raise fail("$", "a JSON-LD document must be an object or a list")
    doc = _Doc(_context(document))
    _walk(doc, {k: v for k, v in document.items() if k != "@context"}, "$", 0)
    return doc


def _facets(doc: _Doc, node: Mapping[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    key, facets = doc.prop(node, HAS_FACET)
    for i, value in enumerate(_values(facets)):
        found = doc.deref(
            value, f"{path}[{key!r}]" + (f"[{i}]" if isinstance(facets, list) else "")
        )
        if found is not None:
            yield found


def _sha256(doc: _Doc, facet: Mapping[str, Any], path: str) -> str | None:
    """The facet's SHA-256 hash value (lowercase), None if it has none; a SHA-256 hash
    whose value is not 64 hex digits fails."""
    key, hashes = doc.prop(facet, HASH)
    for i, value in enumerate(_values(hashes)):
        found = doc.deref(
            value, f"{path}[{key!r}]" + (f"[{i}]" if isinstance(hashes, list) else "")
        )
        if found is None:
            continue
        hash_path, hash_node = found
        props = doc.props(hash_node)
        methods = [_literal(m) for m in _values(props.get(HASH_METHOD))]
        if not any(isinstance(m, str) and m.lower() in _SHA256_NAMES for m in methods):
            continue
        digests = [_literal(v) for v in _values(props.get(HASH_VALUE))]
        if len(digests) != 1 or not isinstance(digests[0], str):
            raise fail(hash_path, "a SHA256 hash needs exactly one hashValue")
        if not _HEX64.fullmatch(digests[0]):
            raise fail(hash_path, "a SHA256 hashValue must be 64 hexadecimal digits")
        return digests[0].lower()
    return None


def _first_text(values: Any) -> str | None:
    texts = [_literal(v) for v in _values(values)]
    return next((t for t in texts if isinstance(t, str)), None)


def _size(values: Any, path: str) -> int | None:
    for value in _values(values):
        size = _literal(value)
        if isinstance(size, str) and size.isdigit() and len(size) <= 16:
            size = int(size)
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise fail(path, "sizeInBytes must be a non-negative integer")
        return size
    return None


@dataclass
class _File:
    path: str
    iri: str
    sha256: str
    fields: dict[str, Any]
    source: Any = None  # the wasDerivedFrom value, resolved once every file is known


def _put(fields: dict[str, Any], key: str, value: Any) -> None:
    """The first value found for ``key`` wins; a facet without one leaves it open."""
    if value is not None:
        fields.setdefault(key, value)


def _file(doc: _Doc, path: str, node: dict[str, Any]) -> _File | None:
    sha: str | None = None
    fields: dict[str, Any] = {}
    for facet_path, facet in _facets(doc, node, path):
        props, kinds = doc.props(facet), doc.types(facet)
        if CONTENT_FACET in kinds:
            sha = sha or _sha256(doc, facet, facet_path)
            _put(fields, "media_type", _first_text(props.get(MIME)))
        if CONTENT_FACET in kinds or FILE_FACET in kinds:
            _put(fields, "size", _size(props.get(SIZE), facet_path))
        if FILE_FACET in kinds:
            _put(fields, "name", _first_text(props.get(FILE_NAME)))
    if sha is None:
        return None
    props = doc.props(node)
    source = next((props[t] for t in DERIVED if t in props), None)
    fields["role"] = _first_text(props.get(ROLE)) or "evidence"
    return _File(path, doc.iri(str(node["@id"])), sha, fields, source)


def _tools(doc: _Doc) -> dict[str, dict[str, str]]:
    """File node IRI -> the tool (name, version) of the first action that results in it."""
    out: dict[str, dict[str, str]] = {}
    for path, node in doc.nodes:
        props = doc.props(node)
        if RESULT not in props or INSTRUMENT not in props:
            continue
        tool: dict[str, str] = {}
        for value in _values(props[INSTRUMENT]):
            found = doc.deref(value, path)
            name = _first_text(doc.props(found[1]).get(NAME)) if found else None
            if found and name:
                version = _first_text(doc.props(found[1]).get(TOOL_VERSION))
                tool = {"tool": name, **({"tool_version": version} if version else {})}
                break
        for value in _values(props[RESULT]) if tool else []:
            if isinstance(value, dict) and isinstance(value.get("@id"), str):
                out.setdefault(doc.iri(value["@id"]), tool)
    return out


def _derived_from(doc: _Doc, item: _File, hashes: Mapping[str, str]) -> str | None:
    for value in _values(item.source):
        ref = value.get("@id") if isinstance(value, dict) else None
        if isinstance(ref, str) and doc.iri(ref) in hashes:
            return hashes[doc.iri(ref)]
    return None


def evidence_items(document: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """The evidence items of ``document`` (document order, one per SHA-256) and warnings
    (a file without a SHA-256 hash, a ``wasDerivedFrom`` to an object without one)."""
    doc = _parse(document)
    files: list[_File] = []
    warnings: list[str] = []
    hashes: dict[str, str] = {}
    for path, node in doc.nodes:
        if not doc.types(node) & FILE_TYPES:
            continue
        found = _file(doc, path, node)
        if found is None:
            warnings.append(f"{path}: no SHA256 hash, not imported")
            continue
        hashes.setdefault(found.iri, found.sha256)
        files.append(found)
    tools, out, seen = _tools(doc), [], set()
    for item in files:
        if item.sha256 in seen:
            continue
        seen.add(item.sha256)
        fields: dict[str, Any] = {"sha256": item.sha256, **item.fields}
        fields.update(tools.get(item.iri, {}))
        source = _derived_from(doc, item, hashes)
        if source is None and item.source is not None:
            warnings.append(f"{item.path}: wasDerivedFrom names no file with a SHA256 hash")
        elif source is not None and source != item.sha256:
            fields["derived_from"] = source
        out.append(_checked(item.path, fields))
    if len(out) > ITEMS_MAX:
        raise TooLarge(
            f"{len(out)} files: an act lists at most {ITEMS_MAX} evidence items",
            field="$",
            code="too_many_items",
        )
    return out, warnings


def _checked(path: str, fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` as Comity's catalogue reads an evidence item, or the first rule it breaks."""
    try:
        item = EvidenceItem.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise fail(path, f"{where}: {first['msg']}") from exc
    return item.model_dump(exclude_none=True)
