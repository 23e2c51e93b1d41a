"""Application.commit hands its block validation's work to the store.

A block that passed ``build_block`` or ``validate_block`` at the current height
is committed without the store repeating the freshness checks and the Merkle
append (``Store.commit_block(checked=...)``); any other block gets the full
check. Either way the stored bytes are the same.
"""

from __future__ import annotations

import pytest

from ledger.block import CommitCertificate
from ledger.errors import ChainError
from ledger.store import Store
from node.application import Application, Block
from node.clock import utcnow
from node.rules import build_registry
from tests.unit.test_governance import Chain


def _full_checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    original = Store._check_fresh_records

    def counting(self: Store, envelopes: object) -> None:
        calls.append(1)
        original(self, envelopes)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "_check_fresh_records", counting)
    return calls


def _block(chain: Chain, *, investigator: str = "CN", count: int = 3) -> Block:
    height = chain.app.height + 1
    proposer = chain.app.state.validators(height)[0].state
    envelopes = [
        chain.env(investigator, chain.keys(investigator).investigator) for _ in range(count)
    ]
    block, rejected = chain.app.build_block(proposer, envelopes, utcnow())
    assert rejected == []
    return block


def _commit(chain: Chain, block: Block) -> None:
    chain.app.commit(block, CommitCertificate(block.height, 0, block.hash))


@pytest.fixture
def chain() -> Chain:
    return Chain()


def test_a_validated_block_commits_without_the_stores_repeat(
    chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _full_checks(monkeypatch)
    block = _block(chain)  # built here: checked
    _commit(chain, block)
    assert calls == [] and chain.app.height == 1
    peer = Application(chain.genesis, Store.open_memory(), build_registry())
    peer.validate_block(block, now=None)  # a peer validates the same block
    peer.commit(block, CommitCertificate(block.height, 0, block.hash))
    assert calls == [] and peer.height == 1
    assert list(peer.store.kv.iterate()) == list(chain.store.kv.iterate())


def test_a_block_other_than_the_checked_one_gets_the_full_check(
    chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _full_checks(monkeypatch)
    first = _block(chain)
    second = _block(chain, investigator="FR")  # built later: it is the one remembered
    _commit(chain, first)
    assert calls == [1] and chain.app.height == 1
    # A block of a height already stored is refused (by the chain-link check,
    # before any record check).
    with pytest.raises(ChainError):
        _commit(chain, second)
    assert chain.app.height == 1
