"""Private acts in the application (node/application.py): the need-to-know height,
what a non-party and a party check, void bodies, and what the store keeps."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from ledger.block import CommitCertificate
from ledger.canonical import canonical_bytes
from ledger.errors import ClientError
from ledger.private import commitment, split
from ledger.records import Envelope, format_time, parse_envelope
from node.clock import utcnow
from tests.unit.test_governance import Chain


def _private(
    chain: Chain, actor: str = "CN", type_: str = "preservation_request", **fields: Any
) -> tuple[Envelope, dict[str, Any]]:
    clear = chain.env(actor, chain.keys(actor).investigator, type_, **fields).record
    clear.pop("visibility", None)
    until = format_time(utcnow() + timedelta(days=30))
    header, body = split(clear, retain_until=until, ref_parties=lambda ref: [])
    key = chain.keys(actor).investigator
    envelope = parse_envelope(
        {
            "record": header,
            "signer": key.public_hex,
            "signature": key.sign(canonical_bytes(header)).hex(),
        }
    )
    return envelope, body


def _commit_as(chain: Chain, envelope: Envelope) -> None:
    height = chain.app.height + 1
    proposer = chain.app.state.validators(height)[0].state
    now = utcnow()
    block, rejected = chain.app.build_block(proposer, [envelope], now)
    assert rejected == [] and len(block.envelopes) == 1
    chain.app.validate_block(block, now=None)  # judged as a certified block
    chain.app.commit(block, CommitCertificate(height, 0, block.hash))


def test_from_the_need_to_know_height_a_clear_act_must_opt_in() -> None:
    chain = Chain()
    assert chain.app.state.need_to_know_active(1)
    clear = chain.env("CN", chain.keys("CN").investigator, "preservation_request")
    chain.app.check_record(clear, utcnow())  # visibility consortium (the test builder's)
    record = dict(clear.record)
    del record["visibility"]
    key = chain.keys("CN").investigator
    silent = parse_envelope(
        {
            "record": record,
            "signer": key.public_hex,
            "signature": key.sign(canonical_bytes(record)).hex(),
        }
    )
    chain.refused(silent, "visibility_required")


def test_before_the_need_to_know_height_no_act_is_private() -> None:
    chain = Chain(need_to_know_from_height=None)
    envelope, _ = _private(chain)
    chain.refused(envelope, "need_to_know_inactive")
    legacy = chain.env("CN", chain.keys("CN").investigator, "preservation_request")
    assert "visibility" not in legacy.record
    chain.app.check_record(legacy, utcnow())


def test_a_non_party_checks_the_header_and_commits_it_without_the_body() -> None:
    chain = Chain()
    chain.app.me = "FR"
    envelope, body = _private(chain)
    chain.app.check_record(envelope, utcnow())
    _commit_as(chain, envelope)
    assert chain.store.get_body(envelope.id) is None and chain.store.body_note(envelope.id) is None
    assert chain.app.load_content(envelope.id).type == "private_act"
    del body


def test_a_party_keeps_the_body_and_reads_the_act() -> None:
    chain = Chain()
    chain.app.me = "TH"
    envelope, body = _private(chain)
    chain.app.bodies.put(envelope.id, body)
    held = chain.app.check_record(envelope, utcnow())
    assert held.type == "preservation_request"
    _commit_as(chain, envelope)
    assert chain.store.body_note(envelope.id) == {"status": "kept"}
    assert chain.app.load_content(envelope.id).content["custodian"]["state"] == "TH"
    assert chain.store.search("case_ref", held.content["case_ref"]) != []
    assert chain.store.search("case_ref", held.content["case_ref"], sealed=False) == []


def test_a_party_lacking_the_body_notes_it_wanted() -> None:
    chain = Chain()
    chain.app.me = "TH"
    envelope, _ = _private(chain)
    _commit_as(chain, envelope)
    assert chain.store.body_notes("wanted") == [envelope.id]


def _breaking(chain: Chain) -> tuple[Envelope, dict[str, Any]]:
    """A private act whose body breaks a catalogue rule but matches its commitment."""
    envelope, body = _private(chain)
    bad = copy.deepcopy(body)
    bad["act"]["data_category"] = ["not-a-category"]
    header = dict(envelope.record, commitment=commitment(bad))
    key = chain.keys("CN").investigator
    signed = parse_envelope(
        {
            "record": header,
            "signer": key.public_hex,
            "signature": key.sign(canonical_bytes(header)).hex(),
        }
    )
    return signed, bad


def test_a_party_refuses_a_body_that_breaks_a_rule_before_the_vote() -> None:
    chain = Chain()
    chain.app.me = "TH"
    envelope, bad = _breaking(chain)
    chain.app.bodies.put(envelope.id, bad)
    with pytest.raises(ClientError) as info:
        chain.app.check_record(envelope, utcnow())
    assert info.value.field is not None and info.value.field.startswith("record.data_category")


def test_a_committed_body_that_breaks_a_rule_is_void_and_reported() -> None:
    chain = Chain()
    chain.app.me = "TH"
    envelope, bad = _breaking(chain)
    height = chain.app.height + 1
    proposer = chain.app.state.validators(height)[0].state
    block, _ = chain.app.build_block(proposer, [envelope], utcnow())  # TH holds no body yet
    chain.app.bodies.put(envelope.id, bad)  # it came before the block was decided
    chain.app.validate_block(block, now=None)
    chain.app.commit(block, CommitCertificate(height, 0, block.hash))
    assert chain.store.body_note(envelope.id) == {"status": "void"}
    assert chain.store.get_body(envelope.id) == bad  # kept as evidence
    assert chain.app.load_content(envelope.id).type == "private_act"  # without effects
    ((voided, error),) = chain.app.voided
    assert voided == envelope.id and str(error.field).startswith("record.data_category")
