"""The treaty matrix drives the act rules (issue 19 item 2, docs/ACTS.md §21).

Theory of operation
-------------------
The directory (``ledger/directory.py``: each member's current entry) says which
instruments are in force for each state and what it declared. Three things
follow for an act between its actor A and each other state B it names
(``ledger.private.named_states``: territorial, requested, provider, ...):

* **a legal basis in force** (``check_treaty``): a request (``TREATY_TYPES``),
  or any act that names a ``legal_basis``, must name in
  ``legal_basis.instrument`` (or, without one, in its ``basis``) an
  instrument in force between A and B, else 422 ``no_legal_basis`` naming
  ``record.legal_basis.instrument``. Only for pairs where BOTH states have a
  directory entry: a chain without a directory, or a state that has not
  published one, keeps the rules it had.
* **notification declared** (``check_treaty``): a ``direct_provider_request``
  with basis ``sap_7`` to a provider in a state that declared SAP Art 7(5)(a)
  notification must say ``notification_required: true``; ``false`` is 422
  ``notification_declared``. The record then carries the fact, so every view
  that reads it (the sovereignty notice, the ``sap7_notification`` clock, the
  rule that only a notified state may instruct not to disclose) sees the same
  thing without reading the directory again.
* **languages** (``language_warnings``): a request whose stated languages
  (``languages``, or its request documents' ``language``) are none that B
  accepts, and that carries no ``translation`` in one B accepts, is admitted
  with a warning (the submit answer's ``warnings``) and shows in
  ``GET /v1/deadlines`` (clock ``translation_missing``). A request that states
  no language gets no warning: nothing is known to be wrong.

The rules are pure functions of the record and the directory; the node passes
the directory of the state before the block, so every node decides the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ledger.acts import REQUEST_TYPES
from ledger.directory import Authority, Entry
from ledger.errors import RecordInvalid
from ledger.instruments import BASIS_INSTRUMENTS, BY_ID, in_force_between, kind_of, resolve
from ledger.private import named_states
from ledger.records import Envelope

#: Acts that must rest on an instrument in force between the states: the requests
#: (an ``mla_response`` answers under its request's instrument).
TREATY_TYPES: Final = REQUEST_TYPES - {"mla_response"}
NOTIFICATION: Final = "sap_7_5_a_notification"
FIELD: Final = "record.legal_basis.instrument"


def other_states(envelope: Envelope) -> list[str]:
    return sorted(named_states(envelope.content) - {envelope.actor_state})


def named_instrument(content: Mapping[str, Any], actor: str, other: str) -> str | None:
    """The instrument id an act names for the pair (actor, other), as actor lists it."""
    basis = content.get("legal_basis")
    if isinstance(basis, dict) and isinstance(basis.get("instrument"), str):
        return resolve(basis["instrument"], actor, other)
    kind = BASIS_INSTRUMENTS.get(str(content.get("basis")))
    if kind is None:
        return None
    return f"{kind}:{other}" if BY_ID[kind].bilateral else kind


def check_treaty(envelope: Envelope, directory: Mapping[str, Entry]) -> None:
    """Raise ``RecordInvalid`` unless the act fits the treaty matrix (module docstring)."""
    mine = directory.get(envelope.actor_state)
    if mine is None:
        return
    content = envelope.content
    covered = envelope.type in TREATY_TYPES or content.get("legal_basis") is not None
    for other in other_states(envelope):
        theirs = directory.get(other)
        if theirs is None:
            continue
        if covered:
            _in_force(envelope, mine, other, theirs)
        if envelope.type == "direct_provider_request" and other == content["provider_state"]:
            _notification(content, other, theirs)


def _in_force(envelope: Envelope, mine: Entry, other: str, theirs: Entry) -> None:
    actor, content = envelope.actor_state, envelope.content
    in_force = in_force_between(actor, mine.instrument_ids(), other, theirs.instrument_ids())
    named = named_instrument(content, actor, other)
    if named is not None and named in in_force:
        return
    listed = ", ".join(sorted(in_force)) or "none"
    said = "names no instrument" if named is None else f"names {named}, which is not"
    raise RecordInvalid(
        f"{FIELD} {said} in force between {actor} and {other} by their directory "
        f"entries (in force: {listed})",
        field=FIELD,
        code="no_legal_basis",
    )


def _notification(content: Mapping[str, Any], provider_state: str, theirs: Entry) -> None:
    if content.get("basis") != "sap_7" or not theirs.declared(NOTIFICATION, "budapest_sap"):
        return
    if content.get("notification_required") is not True:
        raise RecordInvalid(
            f"{provider_state} declared under SAP Art 7(5)(a) that orders to providers on "
            "its territory are notified to it: record.notification_required must be true",
            field="record.notification_required",
            code="notification_declared",
        )


def _stated_languages(content: Mapping[str, Any]) -> set[str]:
    stated = {str(tag).casefold() for tag in content.get("languages") or []}
    for item in content.get("evidence") or []:
        if item.get("role") == "request_document" and item.get("language"):
            stated.add(str(item["language"]).casefold())
    return stated


def _translations(content: Mapping[str, Any]) -> set[str]:
    return {
        str(item["language"]).casefold()
        for item in content.get("evidence") or []
        if item.get("role") == "translation" and item.get("language")
    }


def untranslated_states(envelope: Envelope, directory: Mapping[str, Entry]) -> list[str]:
    """The states named by a request whose accepted languages it is neither in nor
    translated into (module docstring); empty when it states no language."""
    if envelope.type not in TREATY_TYPES:
        return []
    content = envelope.content
    stated = _stated_languages(content)
    if not stated:
        return []
    translated = _translations(content)
    out: list[str] = []
    for other in other_states(envelope):
        entry = directory.get(other)
        if entry is None:
            continue
        if not _any_accepted(stated | translated, entry.accepted_languages()):
            out.append(other)
    return out


def _any_accepted(tags: set[str], accepted: frozenset[str]) -> bool:
    """Whether a tag is accepted: the same tag, or a more specific one of an accepted
    language ("zh-Hans-CN" is in "zh": RFC 4647 section 3.4 lookup, case-insensitive)."""
    return any(tag == a or tag.startswith(a + "-") for tag in tags for a in accepted)


def language_warnings(envelope: Envelope, directory: Mapping[str, Entry]) -> list[dict[str, str]]:
    """The submit answer's ``warnings`` for a request's languages (module docstring)."""
    stated = sorted(_stated_languages(envelope.content))
    return [
        {
            "code": "translation_missing",
            "field": "record.languages",
            "message": f"{state} accepts {sorted(directory[state].accepted_languages())}; "
            f"the request is in {stated} and carries no translation (evidence role "
            "'translation') into one of them",
        }
        for state in untranslated_states(envelope, directory)
    ]


def route_to(content: Mapping[str, Any], actor: str, state: str, entry: Entry) -> Authority | None:
    """The authority of ``state``'s entry a notice of this act goes to.

    A preservation request goes to the 24/7 point of contact (Budapest Art 35);
    otherwise the authority the entry names for the act's instrument, else its
    central authority. None when the entry names none of them.
    """
    if content.get("type") == "preservation_request":
        contact = entry.authority_for(None, "contact_24_7")
        if contact is not None:
            return contact
    named = named_instrument(content, actor, state)
    competent = entry.authority_for(kind_of(named)) if named is not None else None
    if competent is None:
        competent = entry.authority_for(None, "central_authority")
    return competent
