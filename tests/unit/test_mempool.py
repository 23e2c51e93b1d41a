"""The mempool's bounds: shares (clients, states, signers, governance), idempotence, nonces,
conflicting envelopes, reaping."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ledger.errors import Conflict, Overloaded
from ledger.merkle import leaf_hash
from ledger.records import Envelope
from node import mempool as mempool_module
from node.mempool import SPREAD_BACKLOG_MIN, SPREAD_WAIT_S, Mempool, SignatureCache
from tests.factory import EnvelopeMaker, key, sign_record

SIGNER = key("mempool-investigator")


def _envelopes(count: int) -> list[Envelope]:
    maker = EnvelopeMaker()
    return [maker.make(SIGNER) for _ in range(count)]


def _plain(max_records: int, max_bytes: int) -> Mempool:
    """A pool without governance reserve or signer share: only the clients' share."""
    return Mempool(
        max_records=max_records,
        max_bytes=max_bytes,
        governance_reserve_percent=0,
        signer_share_percent=100,
    )


def test_clients_fill_their_nodes_share_and_gossip_the_rest() -> None:
    pool = _plain(8, 1 << 20)
    assert pool.client_max_records == 8  # alone: the whole pool
    pool.share_with(2, states=1)  # two nodes gossip to each other
    assert pool.client_max_records == 4
    envelopes = _envelopes(9)
    for envelope in envelopes[:4]:
        assert pool.add(envelope)
    with pytest.raises(Overloaded) as refused:
        pool.add(envelopes[4])  # a client's fifth: refused, a retry hint given
    assert refused.value.code == "mempool_full" and refused.value.retry_after_s == 1
    assert len(pool) == 4
    for envelope in envelopes[4:8]:  # a peer's gossip still fits
        assert pool.add(envelope, client=False)
    with pytest.raises(Overloaded):
        pool.add(envelopes[8], client=False)  # the whole pool is the hard bound
    assert len(pool) == 8


def test_check_fits_counts_a_whole_batch() -> None:
    pool = _plain(100, 1 << 20)
    pool.share_with(2, states=1)
    envelopes = _envelopes(111)
    for envelope in envelopes[:45]:
        pool.add(envelope)
    pool.check_fits(envelopes[40:50])  # five of them are pending already: five more fit
    with pytest.raises(Overloaded):
        pool.check_fits(envelopes[45:51])  # 45 + 6 > 50: the batch is refused as a whole
    pool.check_fits(envelopes[45:100], client=False)
    with pytest.raises(Overloaded):
        pool.check_fits(envelopes[45:101], client=False)
    pool.check_room(55)
    with pytest.raises(Overloaded):
        pool.check_room(56)  # the cheap check before parsing: the whole pool


def test_byte_bound_has_the_same_reserve() -> None:
    envelopes = _envelopes(4)
    size = len(envelopes[0].leaf)
    pool = _plain(1000, 4 * size + 3)
    pool.share_with(2, states=1)
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
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(mempool_module, "SPREAD_BACKLOG_MIN", 1)  # "under load" at once
    now = [100.0]
    pool = Mempool(max_records=100, max_bytes=1 << 20, clock=lambda: now[0])
    gossiped, spreading, later = _envelopes(3)
    pool.add(gossiped, client=False)  # from a peer: proposable at once
    pool.add(spreading, spread_to=3)  # ours: three peers must answer first
    pool.add(later, spread_to=3)
    assert [e.id for e in pool.reap(10, 1 << 20)] == [gossiped.id]
    pool.remove([gossiped.id])
    assert not pool.proposable() and pool.spreading() == 2
    pool.delivered([spreading.id, later.id])
    pool.delivered([spreading.id])
    assert not pool.proposable()  # one peer still to answer
    pool.delivered([spreading.id, "not-pending"])
    assert pool.proposable() and [e.id for e in pool.reap(10, 1 << 20)] == [spreading.id]
    pool.remove([spreading.id])
    assert not pool.proposable()
    now[0] += SPREAD_WAIT_S  # a peer is down: propose it anyway
    assert pool.proposable() and [e.id for e in pool.reap(10, 1 << 20)] == [later.id]
    pool.remove([later.id])
    assert pool.spreading() == 0 and not pool.proposable()


def test_with_a_short_backlog_records_are_proposed_without_waiting() -> None:
    pool = Mempool(max_records=10_000, max_bytes=1 << 30, clock=lambda: 100.0)
    envelopes = _envelopes(SPREAD_BACKLOG_MIN)
    for envelope in envelopes[:-1]:
        pool.add(envelope, spread_to=3)
    assert pool.proposable() and len(pool.reap(10_000, 1 << 30)) == SPREAD_BACKLOG_MIN - 1
    pool.add(envelopes[-1], spread_to=3)  # the backlog reaches the threshold: wait
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


# --- shares (FINDINGS.md M3) -------------------------------------------------------------


@pytest.mark.parametrize(
    (
        "max_records",
        "reserve_percent",
        "signer_percent",
        "nodes",
        "states",
        "governance",
        "state",
        "signer",
        "client",
    ),
    [
        # the defaults, 4 members: 5 % for governance, the rest / 4, half of that per signer
        (10_000, 5, 50, 4, 4, 500, 2375, 1187, 2375),
        (10_000, 5, 50, 7, 7, 500, 1357, 678, 1357),
        (10_000, 0, 100, 4, 4, 0, 2500, 2500, 2500),  # no reserve, no signer bound
        (20, 5, 50, 4, 4, 1, 4, 2, 4),  # a tiny pool: one governance record
        (1, 5, 50, 4, 4, 0, 1, 1, 1),  # too small to reserve anything
        (10_000, 50, 10, 2, 4, 5000, 1250, 125, 2500),  # fewer nodes than member states
    ],
)
def test_shares_of_the_pool(
    max_records: int,
    reserve_percent: int,
    signer_percent: int,
    nodes: int,
    states: int,
    governance: int,
    state: int,
    signer: int,
    client: int,
) -> None:
    pool = Mempool(
        max_records,
        1 << 30,
        governance_reserve_percent=reserve_percent,
        signer_share_percent=signer_percent,
    )
    pool.share_with(nodes, states)
    assert (
        pool.governance_max_records,
        pool.state_max_records,
        pool.signer_max_records,
        pool.client_max_records,
    ) == (governance, state, signer, client)
    # The docstring's property: every node's clients together fit one general lane
    # (a pool smaller than one record per node cannot keep it).
    assert nodes * pool.client_max_records <= max(max_records - governance, nodes)


def _maker_envelopes(
    maker: EnvelopeMaker,
    count: int,
    signer_label: str,
    state: str,
    type_: str = "evidence_submitted",
) -> list[Envelope]:
    return [maker.make(key(signer_label), state=state, type_=type_) for _ in range(count)]


def test_one_states_gossip_takes_only_its_share() -> None:
    pool = Mempool(40, 1 << 20, governance_reserve_percent=0, signer_share_percent=100)
    pool.share_with(4, 4)
    maker = EnvelopeMaker()
    flood = _maker_envelopes(maker, 12, "vn-investigator", "VN")
    assert [e.id for e in pool.fitting(flood)] == [e.id for e in flood[:10]]
    assert pool.gossip_dropped == {"state_quota": 2}
    for envelope in flood[:10]:
        pool.add(envelope, client=False)
    with pytest.raises(Overloaded) as refused:
        pool.add(flood[10], client=False)
    assert (refused.value.code, refused.value.field) == ("state_quota", "record.actor.state")
    assert refused.value.retry_after_s == 1
    for envelope in _maker_envelopes(maker, 10, "cn-investigator", "CN"):
        assert pool.add(envelope)  # another state's client still has its share
    pool.remove([flood[0].id])
    assert pool.add(flood[10], client=False)  # room comes back as records commit


def test_one_signer_takes_only_its_part_of_its_states_share() -> None:
    pool = Mempool(40, 1 << 20, governance_reserve_percent=0, signer_share_percent=50)
    pool.share_with(4, 4)
    maker = EnvelopeMaker()
    first = _maker_envelopes(maker, 6, "cn-investigator", "CN")
    for envelope in first[:5]:
        pool.add(envelope)
    with pytest.raises(Overloaded) as refused:
        pool.check_fits(first[5:])
    assert (refused.value.code, refused.value.field) == ("signer_quota", "signer")
    for envelope in _maker_envelopes(maker, 5, "cn-authority", "CN"):
        assert pool.add(envelope, client=False)  # the state's other key: the other half
    with pytest.raises(Overloaded) as refused:
        pool.add(maker.make(key("cn-third-key"), state="CN"), client=False)
    assert refused.value.code == "state_quota"


def test_governance_records_have_room_that_no_flood_can_take() -> None:
    pool = Mempool(20, 1 << 20, governance_reserve_percent=20, signer_share_percent=100)
    pool.share_with(4, 4)  # governance 4 (1 per state), general 16 (4 per state)
    maker = EnvelopeMaker()
    for state in ("CN", "FR", "TH", "VN"):
        for envelope in _maker_envelopes(maker, 4, f"{state}-investigator", state):
            pool.add(envelope, client=False)
    with pytest.raises(Overloaded) as refused:
        pool.add(maker.make(key("fr-authority"), state="FR"))
    assert refused.value.code == "mempool_full"  # the general lane is full
    revoke = maker.make(key("cn-admin"), state="CN", type_="revoke_key")
    assert pool.add(revoke)  # the reserve is for governance only
    pool.check_room(3)
    with pytest.raises(Overloaded) as refused:  # CN's share of the governance lane is used
        pool.check_fits(_maker_envelopes(maker, 1, "cn-admin", "CN", "enroll_key"))
    assert refused.value.code == "state_quota"
    assert pool.add(maker.make(key("fr-admin"), state="FR", type_="revoke_key"))
    assert len(pool) == 18


def test_reap_takes_governance_first_then_one_record_per_state_in_turn() -> None:
    pool = Mempool(100, 1 << 20)
    maker = EnvelopeMaker()
    fr = _maker_envelopes(maker, 5, "fr-investigator", "FR")  # FR floods first
    cn = _maker_envelopes(maker, 2, "cn-investigator", "CN")
    vn = _maker_envelopes(maker, 1, "vn-investigator", "VN")
    revoke = maker.make(key("th-admin"), state="TH", type_="revoke_key")
    for envelope in (*fr, *cn, *vn, revoke):
        pool.add(envelope, client=False)
    expected = [revoke, cn[0], fr[0], vn[0], cn[1], fr[1], fr[2], fr[3], fr[4]]
    assert [e.id for e in pool.reap(100, 1 << 20)] == [e.id for e in expected]
    assert [e.id for e in pool.reap(6, 1 << 20)] == [e.id for e in expected[:6]]
    size = len(fr[0].leaf)
    assert len(pool.reap(100, 3 * size + size // 2)) == 3
    pool.remove([revoke.id, cn[0].id, fr[0].id])
    assert [e.id for e in pool.reap(3, 1 << 20)] == [cn[1].id, fr[1].id, vn[0].id]


# --- one record, two envelopes (FINDINGS.md C1, mempool half) ----------------------------


def test_a_second_envelope_of_a_pending_record_is_refused_and_the_first_kept() -> None:
    pool = Mempool(10, 1 << 20)
    first = EnvelopeMaker().make(SIGNER)
    second = sign_record(key("another-signer"), first.record)  # same record, same id
    assert second.id == first.id and second.leaf != first.leaf
    assert pool.add(first) and pool.holds(first) and not pool.add(first)
    attempts: tuple[Callable[[], bool], ...] = (
        lambda: pool.add(second, client=False),
        lambda: pool.holds(second),
    )
    for attempt in attempts:
        with pytest.raises(Conflict) as refused:
            attempt()
        assert (refused.value.code, refused.value.field) == ("conflicting_envelope", "signature")
    assert pool.get(first.id) is first and len(pool) == 1
    assert pool.get_leaf(first.id, leaf_hash(first.leaf)) is first
    assert pool.get_leaf(first.id, leaf_hash(first.leaf).hex()) is first
    assert pool.get_leaf(first.id, leaf_hash(second.leaf).hex()) is None
    assert pool.get_leaf(first.id, leaf_hash(first.leaf).hex().upper()) is None
    assert pool.get_leaf(first.id, leaf_hash(second.leaf)) is None
    assert pool.get_leaf("0" * 64, leaf_hash(first.leaf)) is None


def test_usage_is_freed_when_records_leave() -> None:
    pool = Mempool(100, 1 << 20)
    pool.share_with(4, 4)
    maker = EnvelopeMaker()
    envelopes = [
        *_maker_envelopes(maker, 3, "a", "CN"),
        *_maker_envelopes(maker, 2, "b", "FR"),
        maker.make(key("c"), state="VN", type_="misbehaviour"),
    ]
    for envelope in envelopes:
        pool.add(envelope, client=envelope.actor_state != "FR")
    pool.remove(e.id for e in envelopes)
    assert len(pool) == 0 and pool.bytes == 0 and pool.reap(10, 1 << 20) == []
    assert pool._used == {} and pool._local == set()  # bounded memory
    assert pool._lanes == {"governance": {}, "general": {}}
