"""The mempool's bounds: clients' share, gossip reserve, idempotence, nonces, reaping."""

from __future__ import annotations

import pytest

from ledger.errors import Conflict, Overloaded
from ledger.records import Envelope
from node import mempool as mempool_module
from node.mempool import SPREAD_BACKLOG_MIN, SPREAD_WAIT_S, Mempool, SignatureCache
from tests.factory import EnvelopeMaker, key

SIGNER = key("mempool-investigator")


def _envelopes(count: int) -> list[Envelope]:
    maker = EnvelopeMaker()
    return [maker.make(SIGNER) for _ in range(count)]


def test_clients_fill_their_nodes_share_and_gossip_the_rest() -> None:
    pool = Mempool(max_records=8, max_bytes=1 << 20)
    assert pool.client_max_records == 8          # alone: the whole pool
    pool.share_with(2)                           # two nodes gossip to each other
    assert pool.client_max_records == 4
    envelopes = _envelopes(9)
    for envelope in envelopes[:4]:
        assert pool.add(envelope)
    with pytest.raises(Overloaded) as refused:
        pool.add(envelopes[4])          # a client's fifth: refused, a retry hint given
    assert refused.value.code == "mempool_full" and refused.value.retry_after_s == 1
    assert len(pool) == 4
    for envelope in envelopes[4:8]:     # a peer's gossip still fits
        assert pool.add(envelope, client=False)
    with pytest.raises(Overloaded):
        pool.add(envelopes[8], client=False)      # the whole pool is the hard bound
    assert len(pool) == 8


def test_check_room_counts_a_whole_batch() -> None:
    pool = Mempool(max_records=100, max_bytes=1 << 20)
    pool.share_with(2)
    for envelope in _envelopes(45):
        pool.add(envelope)
    pool.check_room(5)
    with pytest.raises(Overloaded):
        pool.check_room(6)               # 45 + 6 > 50: the batch is refused as a whole
    pool.check_room(55, client=False)
    with pytest.raises(Overloaded):
        pool.check_room(56, client=False)


def test_byte_bound_has_the_same_reserve() -> None:
    envelopes = _envelopes(4)
    size = len(envelopes[0].leaf)
    pool = Mempool(max_records=1000, max_bytes=4 * size + 3)
    pool.share_with(2)
    assert pool.client_max_bytes == (4 * size + 3) // 2
    for envelope in envelopes[:2]:
        pool.add(envelope)
    with pytest.raises(Overloaded):
        pool.add(envelopes[2])
    assert pool.add(envelopes[2], client=False) and pool.add(envelopes[3], client=False)
    assert pool.bytes == sum(len(e.leaf) for e in envelopes)


def test_add_is_idempotent_and_nonces_are_unique() -> None:
    pool = Mempool(max_records=10, max_bytes=1 << 20)
    maker = EnvelopeMaker()
    first = maker.make(SIGNER, nonce="same-nonce")
    assert pool.add(first) and not pool.add(first)
    assert len(pool) == 1
    other = maker.make(SIGNER, nonce="same-nonce", case_ref="CASE-2")
    with pytest.raises(Conflict) as conflict:
        pool.add(other)
    assert conflict.value.field == "record.nonce"
    pool.remove([first.id])
    assert pool.add(other) and pool.bytes == len(other.leaf)


def test_reap_is_oldest_first_within_limits_and_keeps_records() -> None:
    pool = Mempool(max_records=100, max_bytes=1 << 20)
    envelopes = _envelopes(10)
    for envelope in envelopes:
        pool.add(envelope)
    assert [e.id for e in pool.reap(4, 1 << 20)] == [e.id for e in envelopes[:4]]
    size = len(envelopes[0].leaf)
    assert len(pool.reap(100, size * 2 + size // 2)) == 2
    assert len(pool) == 10
    pool.remove(e.id for e in envelopes[:4])
    assert [e.id for e in pool.reap(100, 1 << 20)] == [e.id for e in envelopes[4:]]
    assert pool.bytes == sum(len(e.leaf) for e in envelopes[4:])


def test_signature_cache_is_bounded_and_checks_what_it_does_not_know() -> None:
    cache = SignatureCache(max_entries=3)
    envelopes = _envelopes(4)
    for envelope in envelopes:
        cache.verify(envelope)
    assert envelopes[0] not in cache and all(e in cache for e in envelopes[1:])
    assert "not an envelope" not in cache


def test_a_clients_record_is_proposed_once_every_peer_has_it_or_after_a_wait(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mempool_module, "SPREAD_BACKLOG_MIN", 1)   # "under load" at once
    now = [100.0]
    pool = Mempool(max_records=100, max_bytes=1 << 20, clock=lambda: now[0])
    gossiped, spreading, later = _envelopes(3)
    pool.add(gossiped, client=False)            # from a peer: proposable at once
    pool.add(spreading, spread_to=3)            # ours: three peers must answer first
    pool.add(later, spread_to=3)
    assert [e.id for e in pool.reap(10, 1 << 20)] == [gossiped.id]
    pool.remove([gossiped.id])
    assert not pool.proposable() and pool.spreading() == 2
    pool.delivered([spreading.id, later.id])
    pool.delivered([spreading.id])
    assert not pool.proposable()                # one peer still to answer
    pool.delivered([spreading.id, "not-pending"])
    assert pool.proposable() and [e.id for e in pool.reap(10, 1 << 20)] == [spreading.id]
    pool.remove([spreading.id])
    assert not pool.proposable()
    now[0] += SPREAD_WAIT_S                     # a peer is down: propose it anyway
    assert pool.proposable() and [e.id for e in pool.reap(10, 1 << 20)] == [later.id]
    pool.remove([later.id])
    assert pool.spreading() == 0 and not pool.proposable()


def test_with_a_short_backlog_records_are_proposed_without_waiting() -> None:
    pool = Mempool(max_records=10_000, max_bytes=1 << 30, clock=lambda: 100.0)
    envelopes = _envelopes(SPREAD_BACKLOG_MIN)
    for envelope in envelopes[:-1]:
        pool.add(envelope, spread_to=3)
    assert pool.proposable() and len(pool.reap(10_000, 1 << 30)) == SPREAD_BACKLOG_MIN - 1
    pool.add(envelopes[-1], spread_to=3)        # the backlog reaches the threshold: wait
    assert not pool.proposable() and pool.reap(10_000, 1 << 30) == []


def test_the_node_sets_the_backlog_from_which_records_wait() -> None:
    # A node passes its consortium's max_block_records: with blocks of two, the
    # second pending record already makes the client's records wait.
    pool = Mempool(max_records=100, max_bytes=1 << 20, clock=lambda: 100.0, spread_backlog=2)
    first, second = _envelopes(2)
    pool.add(first, spread_to=3)
    assert pool.proposable() and [e.id for e in pool.reap(10, 1 << 20)] == [first.id]
    pool.add(second, spread_to=3)
    assert not pool.proposable() and pool.reap(10, 1 << 20) == []
    assert Mempool(max_records=1, max_bytes=1).spread_backlog == SPREAD_BACKLOG_MIN
