"""A block's records are identified by their envelopes, and no record repeats.

Findings C1 and C2 (review of b40cc0b): a record id is the hash of the record
alone, so one record can travel in two envelopes (two signatures by one key,
Ed25519 accepting any nonce, or signatures by two keys of its state). A block
holding both, or a block body rebuilt from the wrong one of the two, must
never be committed, must never poison the stored history, and must never make
a node judge the proposer's real block invalid.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from ledger.block import CommitCertificate
from ledger.canonical import canonical_bytes
from ledger.errors import BodyMismatch, ChainError, ClientError
from ledger.keys import SigningKey
from ledger.records import Envelope, format_time, parse_envelope
from node.application import Block
from node.byzantine import sign_with_nonce
from node.clock import utcnow
from tests.unit.test_governance import Chain


def _twin(envelope: Envelope, key: SigningKey) -> Envelope:
    """The same record (same id) in another envelope signed by ``key``: a second
    signature by its own key (random nonce), or a signature by another enrolled key."""
    record = envelope.record
    return parse_envelope(
        {
            "record": record,
            "signer": key.public_hex,
            "signature": sign_with_nonce(key, canonical_bytes(record)).hex(),
        }
    )


@pytest.fixture
def chain() -> Chain:
    return Chain()


def test_a_block_holding_one_record_twice_is_invalid(chain: Chain) -> None:
    """C2: two envelopes of one record (investigator and authority of VN) in one block."""
    env = chain.env("VN", chain.keys("VN").investigator)
    env2 = _twin(env, chain.keys("VN").authority)
    assert env.id == env2.id and env.leaf != env2.leaf
    height = chain.app.height + 1
    header, _ = chain.app._header(
        height, "VN", format_time(utcnow() + timedelta(milliseconds=5)), [env, env2]
    )
    with pytest.raises(ChainError, match="more than once"):
        chain.app.validate_block(Block(header, (env, env2)), now=utcnow())
    assert chain.app.height == 0


def test_block_building_keeps_one_envelope_of_a_record(chain: Chain) -> None:
    investigator = chain.keys("CN").investigator
    env = chain.env("CN", investigator)
    env2 = _twin(env, investigator)
    block, rejected = chain.app.build_block("CN", [env, env2], utcnow())
    assert [e.leaf for e in block.envelopes] == [env.leaf]
    assert rejected == []  # never by id: that would drop the chosen envelope too
    chain.app.validate_block(block, now=utcnow())


def test_the_store_refuses_a_repeated_record_even_after_validation(chain: Chain) -> None:
    """The store's in-memory uniqueness check is never skipped (commit passes ``checked``)."""
    env = chain.env("VN", chain.keys("VN").investigator)
    env2 = _twin(env, chain.keys("VN").authority)
    height = chain.app.height + 1
    header, appended = chain.app._header(
        height, "VN", format_time(utcnow() + timedelta(milliseconds=5)), [env, env2]
    )
    with pytest.raises(ChainError):
        chain.store.commit_block(
            header, [env, env2], CommitCertificate(height, 0, header.hash()), checked=appended
        )
    assert chain.store.height == 0 and not chain.store.has_record(env.id)


def test_a_body_from_the_other_envelope_is_a_mismatch_not_an_invalid_block(chain: Chain) -> None:
    """C1: a receiver holding the other envelope of a record must learn that its body
    does not match the header (fetch the real one), not that the block is invalid."""
    investigator = chain.keys("CN").investigator
    env = chain.env("CN", investigator)
    env2 = _twin(env, investigator)
    block, _ = chain.app.build_block("CN", [env], utcnow())
    rebuilt = Block(block.header, (env2,))
    assert rebuilt.hash == block.hash
    with pytest.raises(BodyMismatch):
        chain.app.validate_block(rebuilt, now=utcnow())
    chain.app.validate_block(block, now=utcnow())  # the real body is valid
    chain.app.commit(block, CommitCertificate(block.height, 0, block.hash))
    assert chain.app.load_envelope(env.id).leaf == env.leaf


def test_a_body_with_a_bad_record_but_a_matching_root_is_invalid(chain: Chain) -> None:
    """The body check comes first, but a body that matches its header is judged whole:
    a record committed already makes the block invalid (not a mismatch)."""
    env = chain.env("CN", chain.keys("CN").investigator)
    chain.commit(env)
    height = chain.app.height + 1
    header, _ = chain.app._header(
        height, "CN", format_time(utcnow() + timedelta(milliseconds=5)), [env]
    )
    with pytest.raises(ClientError) as info:
        chain.app.validate_block(Block(header, (env,)), now=utcnow())
    assert not isinstance(info.value, BodyMismatch)
    assert info.value.code == "already_committed"
