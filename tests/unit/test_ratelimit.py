"""Token buckets of the write routes (api/ratelimit.py): refill, all or nothing, debt, LRU."""

from __future__ import annotations

import pytest

from api.errors import RateLimited
from api.ratelimit import TokenBuckets, WriteLimits
from node.config import Limits


def _buckets(
    rate_per_s: float, burst: float, max_sources: int = 100
) -> tuple[TokenBuckets, list[float]]:
    now = [1000.0]
    return TokenBuckets(rate_per_s, burst, max_sources, clock=lambda: now[0]), now


@pytest.mark.parametrize(
    ("rate_per_s", "burst", "costs", "waits"),
    [
        (1, 3, [1, 1, 1, 1], [0, 0, 0, 1]),  # a burst of 3, then one per second
        (2, 2, [2, 1], [0, 0.5]),  # half a second per token at 2/s
        (1, 5, [8, 1], [0, 4]),  # a cost over the burst: paid from a full bucket,
        # then the debt is waited off
        (0, 1, [10**6, 10**6], [0, 0]),  # rate 0: no limit
    ],
)
def test_buckets_refill_at_their_rate(
    rate_per_s: float, burst: float, costs: list[int], waits: list[float]
) -> None:
    buckets, _ = _buckets(rate_per_s, burst)
    assert [buckets.take({"a": cost}) for cost in costs] == waits


def test_refused_takes_nothing_and_time_refills() -> None:
    buckets, now = _buckets(1, 2)
    assert buckets.take({"a": 2}) == 0
    assert buckets.take({"a": 1, "b": 1}) == 1  # a is short: b is not charged either
    assert buckets.take({"b": 2}) == 0
    now[0] += 1.5
    assert buckets.take({"a": 1}) == 0 and buckets.take({"a": 1}) == pytest.approx(0.5)
    now[0] += 100
    assert buckets.take({"a": 3}) == 0  # never more than the burst saved up: 2 - 3 = -1
    assert buckets.take({"a": 1}) == pytest.approx(2)


def test_sources_are_bounded_least_recently_used_first() -> None:
    buckets, _ = _buckets(1, 1, max_sources=3)
    for source in ("a", "b", "c"):
        assert buckets.take({source: 1}) == 0
    assert buckets.take({"a": 1}) == 1  # refused: a is not moved nor charged
    assert buckets.take({"d": 1}) == 0 and len(buckets) == 3
    assert buckets.take({"a": 1}) == 0  # a was the oldest: evicted, a full bucket


def test_write_limits_refuse_with_429_and_exempt_loopback() -> None:
    limits = WriteLimits.from_limits(
        Limits(
            ip_write_requests_per_s=1,
            ip_write_burst_requests=1,
            signer_records_per_s=1,
            signer_burst_records=2,
        )
    )
    limits.request("203.0.113.1")
    with pytest.raises(RateLimited) as refused:
        limits.request("203.0.113.1")
    assert (refused.value.status, refused.value.code, refused.value.retry_after_s) == (
        429,
        "rate_limited",
        1,
    )
    for _ in range(10):
        limits.request("127.0.0.1")
        limits.request("::1")
        limits.records("127.0.0.1", ["s"] * 10)
    limits.records("203.0.113.1", ["s", "s"])
    with pytest.raises(RateLimited) as refused:
        limits.records("203.0.113.2", ["s"])  # a signer's rate holds from any address
    assert refused.value.field == "signer"
    strict = WriteLimits.from_limits(
        Limits(ip_write_burst_requests=1, rate_limit_exempt_loopback=False)
    )
    strict.request("127.0.0.1")
    with pytest.raises(RateLimited):
        strict.request("127.0.0.1")
    with pytest.raises(RateLimited):  # no address known: one shared bucket, not exempt
        strict.request(None)
        strict.request(None)
