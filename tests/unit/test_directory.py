"""The directory on the chain (issue 19 item 1): the directory_entry record type.

Shape (docs/DIRECTORY.md): every bad field is a 422 with its code and field;
state rules (docs/GOVERNANCE.md): only a member's own admin writes its entry,
an unchanged entry is refused, each entry replaces the previous one and the
history stays; the replay at start-up rebuilds the directory.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ledger.directory import FORMAT, content_hash, document_entry, parse_entry
from ledger.errors import ClientError, RecordInvalid
from ledger.instruments import in_force_between, resolve
from node.application import Application
from node.rules import build_registry
from tests.unit.test_governance import Chain

ROOT = Path(__file__).parents[2]
EXAMPLE = json.loads((ROOT / "docs/examples/directory.json").read_text())


def entry_of(state: str) -> dict[str, Any]:
    return document_entry(copy.deepcopy(EXAMPLE), state)


def directory_record(chain: Chain, state: str, **changes: Any) -> Any:
    return chain.admin(state, "directory_entry", **{**entry_of(state), **changes})


def full(of: str = "FR", /, **changes: Any) -> dict[str, Any]:
    return {
        "schema": "comity/1",
        "type": "directory_entry",
        "chain_id": "c",
        "actor": {"state": of, "agency": "administration"},
        "nonce": "nonce-0001",
        "occurred_at": "2026-01-01T00:00:00Z",
        **entry_of(of),
        **changes,
    }


# --- shape --------------------------------------------------------------------------------


def test_every_example_entry_is_valid() -> None:
    for state in ("CN", "FR", "TH", "VN"):
        entry = parse_entry(full(state))
        assert entry.state == state and entry.authorities


def _authority(**changes: Any) -> list[dict[str, Any]]:
    base = entry_of("FR")["authorities"]
    return [{**base[0], **changes}, *base[1:]]


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"state": "fr"}, "record.state", "invalid_directory_entry"),
        ({"languages": []}, "record.languages", "invalid_directory_entry"),
        ({"languages": ["not a tag"]}, "record.languages[0]", "invalid_directory_entry"),
        ({"languages": ["fr", "FR"]}, "record.languages", "invalid_directory_entry"),
        ({"authorities": []}, "record.authorities", "invalid_directory_entry"),
        ({"extra": 1}, "record.extra", "invalid_directory_entry"),
        ({"name": 5}, "record.name", "invalid_directory_entry"),
        ({"name": "x" * 201}, "record.name", "invalid_directory_entry"),
        (
            {"authorities": _authority(roles=["king"])},
            "record.authorities[0].roles[0]",
            "invalid_directory_entry",
        ),
        (
            {"authorities": _authority(instruments=["budapest_2099"])},
            "record.authorities[0].instruments[0]",
            "invalid_directory_entry",
        ),
        (
            {"authorities": _authority(instruments=["bilateral_mlat:cn"])},
            "record.authorities[0].instruments[0]",
            "invalid_directory_entry",
        ),
        (
            {"authorities": _authority(channels=[{"kind": "pigeon", "endpoint": "x"}])},
            "record.authorities[0].channels[0].kind",
            "invalid_directory_entry",
        ),
        (
            {"authorities": _authority(channels=[{"kind": "e_codex"}])},
            "record.authorities[0].channels[0].endpoint",
            "invalid_directory_entry",
        ),
        (
            {"authorities": _authority(channels=[{"kind": "e_codex", "endpoint": "x"}] * 9)},
            "record.authorities[0].channels",
            "invalid_directory_entry",
        ),
        ({"authorities": _authority(id="fr-eu")}, "record.authorities", "duplicate_authority"),
        (
            {"authorities": _authority(roles=["contact_24_7"])},
            "record.authorities",
            "invalid_directory_entry",
        ),
        (
            {"instruments": [{"instrument": "budapest"}, {"instrument": "budapest"}]},
            "record.instruments",
            "invalid_directory_entry",
        ),
        (
            {"declarations": [{"kind": "languages", "instrument": "budapest", "article": "x"}]},
            "record.declarations[0].languages",
            "invalid_directory_entry",
        ),
        (
            {
                "declarations": [
                    {"kind": "sap_7_5_a_notification", "instrument": "untoc", "article": "7(5)"}
                ]
            },
            "record.declarations[0].instrument",
            "invalid_directory_entry",
        ),
        (
            {"declarations": [{"kind": "other", "instrument": "untoc", "article": "Art 18"}]},
            "record.declarations[0].text",
            "invalid_directory_entry",
        ),
        ({"links": ["http://insecure.example"]}, "record.links[0]", "invalid_directory_entry"),
        (
            {"authorities": _authority(instruments=["eu_eio", "cloud_act:US"])},
            "record.authorities[0].instruments[1]",
            "invalid_directory_entry",
        ),
        (
            {"instruments": [{"instrument": "bilateral_mlat:FR"}]},
            "record.instruments[0].instrument",
            "invalid_directory_entry",
        ),
        (
            {
                "declarations": [
                    {"kind": "other", "instrument": "eu_mla_2000", "article": "Art 1", "text": "x"}
                ],
                "instruments": [{"instrument": "budapest"}],
                "authorities": _authority(instruments=[])[:1],
            },
            "record.declarations[0].instrument",
            "invalid_directory_entry",
        ),
    ],
)
def test_a_bad_field_is_refused_naming_it(changes: dict[str, Any], field: str, code: str) -> None:
    with pytest.raises(RecordInvalid) as info:
        parse_entry(full(**changes))
    assert (info.value.field, info.value.code) == (field, code), info.value


def test_a_missing_field_is_named() -> None:
    record = full()
    del record["authorities"]
    with pytest.raises(RecordInvalid) as info:
        parse_entry(record)
    assert info.value.field == "record.authorities"


def test_the_content_hash_ignores_the_envelope_fields_only() -> None:
    a, b = full(), full(nonce="nonce-0002", occurred_at="2026-02-01T00:00:00Z")
    assert content_hash(a) == content_hash(b)
    assert content_hash(a) != content_hash(full(name="France (renamed)"))


@pytest.mark.parametrize(
    ("document", "code"),
    [
        ({"entries": []}, "bad_document"),
        ({"format": FORMAT, "entries": {}}, "bad_document"),
        ({"format": FORMAT, "entries": [], "x": 1}, "bad_document"),
        ({"format": FORMAT, "entries": [{"state": "CN"}]}, "no_entry_for_state"),
        ({"format": FORMAT, "entries": [{"state": "FR", "nonce": "x"}]}, "bad_document"),
    ],
)
def test_a_bad_import_document_is_refused(document: dict[str, Any], code: str) -> None:
    with pytest.raises(RecordInvalid) as info:
        document_entry(document, "FR")
    assert info.value.code == code


# --- instruments ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Budapest Convention", "budapest"),
        ("budapest convention, Art. 29", "budapest"),
        ("Convention on Cybercrime (ETS No. 185)", "budapest"),
        ("Second Additional Protocol to the Budapest Convention", "budapest_sap"),
        ("CETS 224", "budapest_sap"),
        ("UNTOC", "untoc"),
        ("Directive 2014/41/EU", "eu_eio"),
        ("Regulation (EU) 2023/1543", "eu_epoc"),
        ("MLAT", "bilateral_mlat:TH"),
        ("bilateral_mlat:TH", "bilateral_mlat:TH"),
        ("un_cybercrime_2024", "un_cybercrime_2024"),
        ("Treaty of Westphalia", None),
        ("Budapest Conventional wisdom", None),
    ],
)
def test_free_text_maps_to_an_instrument_id(text: str, expected: str | None) -> None:
    assert resolve(text, "FR", "TH") == expected


def test_in_force_between_needs_both_sides() -> None:
    fr = ["budapest", "bilateral_mlat:CN", "eu_eio"]
    assert in_force_between("FR", fr, "CN", ["untoc", "bilateral_mlat:FR"]) == {"bilateral_mlat:CN"}
    assert in_force_between("FR", fr, "TH", ["budapest", "bilateral_mlat:FR"]) == {"budapest"}
    assert in_force_between("FR", fr, "VN", ["untoc"]) == frozenset()


# --- the chain ------------------------------------------------------------------------------


def test_each_entry_replaces_the_previous_one_and_the_history_stays() -> None:
    chain = Chain()
    first = directory_record(chain, "FR")
    h1 = chain.commit(first)
    state = chain.app.state.directory["FR"]
    assert (state.current.record_id, state.current.height, state.history) == (first.id, h1, ())
    second = directory_record(chain, "FR", name="France (second entry)")
    h2 = chain.commit(second, directory_record(chain, "TH"))
    state = chain.app.state.directory["FR"]
    assert state.entry.name == "France (second entry)"
    assert (state.current.record_id, state.current.height) == (second.id, h2)
    assert [(r.record_id, r.height) for r in state.history] == [(first.id, h1)]
    assert set(chain.app.state.directory) == {"FR", "TH"}
    # The replay at start-up rebuilds the same directory from the governance records.
    replayed = Application(chain.genesis, chain.store, build_registry()).state.directory
    assert replayed["FR"] == state and set(replayed) == {"FR", "TH"}


def test_only_the_states_own_admin_writes_its_entry() -> None:
    chain = Chain()
    chain.refused(chain.admin("CN", "directory_entry", **entry_of("FR")), "wrong_state")
    keys = chain.keys("FR")
    for signer in (keys.investigator, keys.authority):
        chain.refused(
            chain.env("FR", signer, "directory_entry", **entry_of("FR")), "role_not_allowed"
        )


def test_the_same_content_twice_is_refused_and_a_block_holds_one_entry_per_state() -> None:
    chain = Chain()
    chain.commit(directory_record(chain, "FR"))
    chain.refused(directory_record(chain, "FR"), "directory_unchanged")
    a = directory_record(chain, "TH")
    b = directory_record(chain, "TH", name="Thailand (other)")
    block, rejected = chain.app.build_block("CN", [a, b], chain_now())
    assert [e.id for e in block.envelopes] == [a.id]
    assert rejected == [b.id]  # conflict key directory:TH: one entry per state per block


def test_a_bad_entry_is_refused_by_the_node() -> None:
    chain = Chain()
    with pytest.raises(ClientError) as info:
        chain.app.check_record(
            directory_record(chain, "FR", languages=["xx-toolongsubtag1"]), chain_now()
        )
    assert (info.value.code, info.value.field) == (
        "invalid_directory_entry",
        "record.languages[0]",
    )


def chain_now() -> Any:
    from node.clock import utcnow

    return utcnow()


def test_docs_list_every_instrument_with_its_title() -> None:
    from ledger.instruments import INSTRUMENTS

    acts = (ROOT / "docs/ACTS.md").read_text()
    section = acts[acts.index("## 21. Instruments in force") :]
    for instrument in INSTRUMENTS:
        ident = f"`{instrument.id}:<state>`" if instrument.bilateral else f"`{instrument.id}`"
        assert f"| {ident} | {instrument.title} |" in section, instrument.id


def test_the_entry_shown_in_the_docs_is_the_example_files() -> None:
    text = (ROOT / "docs/DIRECTORY.md").read_text()
    start = text.index('```json\n{\n  "state": "TH"') + len("```json\n")
    shown = json.loads(text[start : text.index("```", start)])
    assert shown == entry_of("TH")
