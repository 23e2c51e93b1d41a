"""Token buckets per source for the write routes (``POST /v1/records[/batch]``).

Writes need no token: a record's signature authorises it. So anyone who can
reach the API can make the node read, parse and check bodies. Two kinds of
bucket bound that work:

* per client IP, counting requests, checked before the body is read;
* per signer, counting records, checked once the envelopes are parsed and
  before any signature or schema check.

A bucket holds up to ``burst`` tokens and refills at ``rate_per_s``. A request
whose bucket is short is refused whole with 429 ``rate_limited`` and a
``Retry-After`` (seconds until the bucket holds enough), and takes nothing. A
cost above ``burst`` is allowed from a full bucket, which then goes into debt,
so a batch larger than the burst is slowed, never refused for ever.

Memory is bounded: at most ``max_sources`` buckets are kept, the least
recently used evicted first. An evicted source starts again with a full
bucket; a client that cycles through more addresses than that is bounded by
the mempool's shares instead. Loopback clients are exempt when the config
says so (the default; see docs/OPERATIONS.md).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from fastapi import Request

from api.errors import RateLimited
from ledger.errors import InvariantViolation
from node.config import Limits


class TokenBuckets:
    """One bucket per source name, LRU-bounded; ``rate_per_s`` 0 means no limit."""

    def __init__(
        self,
        rate_per_s: float,
        burst: float,
        max_sources: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if burst < 1 or max_sources < 1:
            raise InvariantViolation(f"rate limiter burst {burst}, max_sources {max_sources}")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._max_sources = max_sources
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, costs: Mapping[str, int]) -> float:
        """Take ``costs`` (source -> tokens) if every bucket can pay, and return 0;
        else take nothing and return the seconds until all of them could."""
        if self.rate_per_s <= 0:
            return 0.0
        now = self._clock()
        levels = {source: self._level(source, now) for source in costs}
        wait_s = (
            max(
                (min(cost, self.burst) - levels[source]) / self.rate_per_s
                for source, cost in costs.items()
            )
            if costs
            else 0.0
        )
        if wait_s > 0:
            return wait_s
        for source, cost in costs.items():
            self._buckets[source] = (levels[source] - cost, now)
            self._buckets.move_to_end(source)
        while len(self._buckets) > self._max_sources:
            self._buckets.popitem(last=False)
        return 0.0

    def _level(self, source: str, now: float) -> float:
        tokens, at = self._buckets.get(source, (self.burst, now))
        return min(self.burst, tokens + (now - at) * self.rate_per_s)


@dataclass
class WriteLimits:
    """The write routes' buckets, made once per app from the node's ``[limits]``."""

    by_ip: TokenBuckets
    by_signer: TokenBuckets
    exempt_loopback: bool

    @classmethod
    def from_limits(
        cls, limits: Limits, clock: Callable[[], float] = time.monotonic
    ) -> WriteLimits:
        sources = limits.rate_limit_sources_max
        return cls(
            TokenBuckets(
                limits.ip_write_requests_per_s, limits.ip_write_burst_requests, sources, clock
            ),
            TokenBuckets(limits.signer_records_per_s, limits.signer_burst_records, sources, clock),
            limits.rate_limit_exempt_loopback,
        )

    def exempt(self, host: str | None) -> bool:
        if not self.exempt_loopback or host is None:
            return False
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def request(self, host: str | None) -> None:
        """Raise ``RateLimited`` if the client IP ``host`` is over its request rate."""
        if not self.exempt(host):
            _refuse(self.by_ip.take({host or "unknown": 1}), "this client address", None)

    def records(self, host: str | None, signers: Iterable[str]) -> None:
        """Raise ``RateLimited`` if a signer of these records is over its record rate."""
        if self.exempt(host):
            return
        costs: dict[str, int] = {}
        for signer in signers:
            costs[signer] = costs.get(signer, 0) + 1
        _refuse(self.by_signer.take(costs), "a signer of these records", "signer")


def _refuse(wait_s: float, who: str, field: str | None) -> None:
    if wait_s > 0:
        retry_after_s = max(1, math.ceil(wait_s))
        raise RateLimited(
            f"{who} is over its write rate; retry after {retry_after_s} s",
            retry_after_s=retry_after_s,
            field=field,
            code="rate_limited",
        )


def write_limits(request: Request) -> WriteLimits:
    limits: WriteLimits = request.app.state.write_limits
    return limits


def client_host(request: Request) -> str | None:
    return request.client.host if request.client is not None else None


async def limit_writes(request: Request) -> None:
    """Route dependency: the client IP's request bucket, before the body is read."""
    write_limits(request).request(client_host(request))
