"""The auditor's HTTP side: fetch blocks and proofs from nodes, feed the offline checks.

Nothing fetched here is trusted: blocks go through ``ledger.audit.ChainVerifier``,
bundles through ``ledger.audit.bundle.verify_bundle``, and the fork watcher checks
every node's checkpoints against its own verified chain (theory in
``Watcher``). The node's HTTP API is reached with ``httpx.AsyncClient``, so
tests run all of it over ``httpx.ASGITransport`` with no sockets.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from ledger import merkle
from ledger.audit.chain import (
    ChainVerifier,
    Checkpoint,
    check_certificate,
    check_header_shape,
    complete_genesis,
    header_hash,
    is_hex,
    loads,
    validators_hash,
)
from ledger.audit.gov import AuditFailure
from ledger.audit_source import Located
from ledger.errors import ProofError

BLOCKS_PAGE = 100
#: Largest reply read from a node: one block at the largest ``max_block_bytes`` the
#: genesis allows (64 MiB) plus its JSON. ``iter_blocks`` halves its page to fit.
RESPONSE_BYTES_MAX = 128 * 1024 * 1024


class FetchError(Exception):
    """A node did not answer, or answered with an error (not a verification failure)."""

    def __init__(self, url: str, status: int | None, detail: str) -> None:
        super().__init__(f"{url}: {f'HTTP {status} ' if status else ''}{detail}")
        self.url, self.status, self.detail = url, status, detail


class ResponseTooLarge(FetchError):
    """A reply over ``RESPONSE_BYTES_MAX``: read no further (a node is not trusted)."""


async def get_json(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    """The JSON of ``GET path``, read up to ``RESPONSE_BYTES_MAX`` bytes; else FetchError."""
    url = f"{client.base_url}{path}"
    cap = RESPONSE_BYTES_MAX
    try:
        async with client.stream("GET", path, params=params or None) as response:
            status = response.status_code
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > cap:
                raise ResponseTooLarge(url, status, f"reply over {cap} bytes (declared)")
            body = bytearray()
            async for chunk in response.aiter_bytes():  # decoded: a gzip bomb counts too
                body += chunk
                if len(body) > cap:
                    raise ResponseTooLarge(url, status, f"reply over {cap} bytes")
    except httpx.HTTPError as exc:
        raise FetchError(url, None, f"{type(exc).__name__}: {exc}") from exc
    if status >= 400:
        raise FetchError(url, status, bytes(body[:300]).decode("utf-8", "replace"))
    try:
        return loads(bytes(body))
    except ValueError as exc:
        raise FetchError(url, status, f"reply is not JSON: {exc}") from exc


async def served_height(client: httpx.AsyncClient) -> int | None:
    """The height the node says is its latest (None: it has no block yet). Not trusted."""
    try:
        body = await get_json(client, "/v1/blocks/latest")
    except FetchError as exc:
        if exc.status == 404:
            return None
        raise
    header = body.get("header") if isinstance(body, dict) else None
    height = header.get("height") if isinstance(header, dict) else None
    if not isinstance(height, int) or isinstance(height, bool) or height < 0:
        raise FetchError(
            f"{client.base_url}/v1/blocks/latest", None, "the latest block has no header.height"
        )
    return height


async def node_genesis(
    client: httpx.AsyncClient, local: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """``local`` completed with the defaults it leaves out, from the node's GET /v1/genesis."""
    served = await get_json(client, "/v1/genesis")
    if not isinstance(served, dict):
        raise FetchError(f"{client.base_url}/v1/genesis", None, "genesis is not an object")
    return complete_genesis(local, served)


async def iter_blocks(
    client: httpx.AsyncClient, first: int, last: int | None, page: int = BLOCKS_PAGE
) -> AsyncIterator[dict[str, Any]]:
    """Blocks ``first``..``last`` (None: to the node's tip) with envelopes, page by page."""
    start: int | None = first
    while start is not None and (last is None or start <= last):
        limit = page if last is None else min(page, last - start + 1)
        try:
            body = await get_json(
                client, "/v1/blocks", **{"from": start, "limit": limit, "envelopes": "true"}
            )
        except ResponseTooLarge:
            if limit == 1:
                raise
            page = max(1, limit // 2)  # big honest blocks: ask for fewer at once
            continue
        blocks = body.get("blocks") if isinstance(body, dict) else None
        if not isinstance(blocks, list):
            raise FetchError(f"{client.base_url}/v1/blocks", None, "no blocks list")
        for block in blocks:
            yield block
        if not blocks:
            return
        start = body.get("next_from")


@dataclass
class Progress:
    """Blocks/s, records/s and ETA on stderr, at most every ``every_s`` seconds."""

    emit: Callable[[str], None]
    target: int | None = None
    every_s: float = 1.0
    started: float = 0.0
    last: float = 0.0

    def __post_init__(self) -> None:
        self.started = self.last = time.monotonic()

    def rates(self, verifier: ChainVerifier, first_height: int) -> tuple[float, float, float]:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return elapsed, (verifier.height - first_height + 1) / elapsed, verifier.records / elapsed

    def update(self, verifier: ChainVerifier, first_height: int = 1, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.every_s:
            return
        self.last = now
        _, bps, rps = self.rates(verifier, first_height)
        eta = ""
        if self.target and bps > 0:
            eta = f", ETA {max(self.target - verifier.height, 0) / bps:.0f}s"
        self.emit(
            f"height {verifier.height}{f'/{self.target}' if self.target else ''}: "
            f"{bps:.1f} blocks/s, {rps:.0f} records/s{eta}"
        )


async def verify_chain(
    client: httpx.AsyncClient,
    verifier: ChainVerifier,
    *,
    to_height: int | None = None,
    progress: Progress | None = None,
) -> Checkpoint:
    """Feed every block after ``verifier.height`` (up to ``to_height``); AuditFailure stops it."""
    async for block in iter_blocks(client, verifier.height + 1, to_height):
        verifier.feed(block)
        if progress is not None:
            progress.update(verifier)
    if to_height is not None and verifier.height < to_height:
        raise AuditFailure(
            "chain_too_short",
            f"the node served blocks up to {verifier.height}, not {to_height}",
            height=verifier.height + 1,
        )
    return verifier.checkpoint


class HttpSource:
    """A node's public API as a ``ledger.audit_source.BundleSource``."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def genesis(self) -> dict[str, Any]:
        body = await get_json(self.client, "/v1/genesis")
        assert isinstance(body, dict)
        return body

    async def record(self, record_id: str) -> Located:
        body = await get_json(self.client, f"/v1/records/{record_id}")
        if body.get("status") != "committed":
            raise FetchError(
                f"{self.client.base_url}/v1/records/{record_id}",
                None,
                f"record is {body.get('status')}, not committed",
            )
        return Located(record_id, body["envelope"], body["height"], body["leaf_index"])

    async def audit_path(self, record_id: str) -> list[str]:
        body = await get_json(self.client, f"/v1/records/{record_id}/proof")
        return list(body["audit_path"])

    async def block(self, height: int | None) -> dict[str, Any]:
        body = await get_json(
            self.client, "/v1/blocks/latest" if height is None else f"/v1/blocks/{height}"
        )
        return {"header": body["header"], "commit": body["commit"]}

    async def governance_ids(self) -> list[str]:
        found: list[tuple[int, str]] = []
        for type_name in ("enroll_key", "revoke_key", "member_proposal", "member_vote"):
            cursor: str | None = None
            while True:
                params: dict[str, Any] = {"type": type_name, "limit": 1000}
                if cursor is not None:
                    params["cursor"] = cursor
                body = await get_json(self.client, "/v1/search", **params)
                found.extend((row["leaf_index"], row["id"]) for row in body["results"])
                cursor = body.get("next_cursor")
                if cursor is None:
                    break
        return [rid for _, rid in sorted(found)]

    async def consistency(self, first: int, second: int) -> list[str]:
        body = await get_json(self.client, "/v1/proofs/consistency", first=first, second=second)
        return list(body["proof"])


# --- fork watch -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Alarm:
    node: str
    code: str  # invalid_chain | fork | rollback | bad_certificate | not_an_extension
    detail: str
    height: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"node": self.node, "code": self.code, "detail": self.detail, "height": self.height}

    def line(self) -> str:
        return f"ALARM node={self.node} code={self.code} height={self.height} {self.detail}"


class Watcher:
    """Poll nodes' latest checkpoints and alarm on any history that is not one chain.

    Theory: the watcher keeps its own ``ChainVerifier`` (with block hashes),
    fed from the first node that serves a valid extension; that is its
    trusted chain, and it knows the validator set of every height up to two
    past its tip. For each node's latest checkpoint (height h, header, cert):

    * h within the verified chain: the block hash must be ours (else ``fork``);
    * h beyond it: the certificate must hold for the replayed set of h (else
      ``bad_certificate``) and the node's RFC 6962 consistency proof must take
      our verified checkpoint to its one (else ``not_an_extension``);
    * against the last checkpoint trusted from that same node (kept in the
      state file across runs): h must not go down (``rollback``) and a
      consistency proof must take the old checkpoint to the new one.

    A node that fails to answer is reported, never alarmed on. Verified
    blocks that fail the chain checks raise ``invalid_chain``.
    """

    def __init__(
        self,
        genesis: dict[str, Any],
        clients: dict[str, httpx.AsyncClient],
        trusted: dict[str, Checkpoint] | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        self.verifier = ChainVerifier(genesis, keep_hashes=True)
        self.clients = clients
        self.trusted: dict[str, Checkpoint] = dict(trusted or {})
        self.log = log
        self.unreachable: set[str] = set()
        self.failed_feeds: set[str] = set()

    async def poll(self) -> list[Alarm]:
        alarms = await self._extend()
        self.unreachable.clear()
        for url, client in self.clients.items():
            try:
                alarms += await self._check(url, client)
            except FetchError as exc:
                self.unreachable.add(url)
                self.log(f"warning: {url} not checked: {exc}")
        return alarms

    async def _extend(self) -> list[Alarm]:
        """Extend the trusted chain from the first node that serves valid blocks."""
        alarms: list[Alarm] = []
        for url, client in self.clients.items():
            if url in self.failed_feeds:
                continue
            try:
                await verify_chain(client, self.verifier)
                return alarms
            except AuditFailure as exc:
                self.failed_feeds.add(url)  # never feed from it again
                alarms.append(Alarm(url, "invalid_chain", str(exc), exc.height))
            except FetchError as exc:
                self.log(f"warning: cannot read blocks from {url}: {exc}")
        return alarms

    async def _check(self, url: str, client: httpx.AsyncClient) -> list[Alarm]:
        latest = await get_json(client, "/v1/blocks/latest")
        try:
            point = self._checkpoint_of(latest)
            alarm = await self._against_verified(
                url, client, latest, point
            ) or await self._against_trusted(url, client, point)
        except AuditFailure as exc:
            alarm = Alarm(url, exc.code, exc.detail, exc.height)
        if alarm is not None:
            return [alarm]
        self.trusted[url] = point
        return []

    @staticmethod
    def _checkpoint_of(latest: Any) -> Checkpoint:
        header = latest.get("header") if isinstance(latest, dict) else None
        check_header_shape(header, None)
        assert isinstance(header, dict)
        return Checkpoint(
            header["height"], header_hash(header), header["ledger_size"], header["ledger_root"]
        )

    async def _against_verified(
        self, url: str, client: httpx.AsyncClient, latest: Any, point: Checkpoint
    ) -> Alarm | None:
        ours, hashes = self.verifier, self.verifier.hashes
        assert hashes is not None
        if point.height <= ours.height:
            if hashes.get(point.height, point.hash) != point.hash:
                return Alarm(
                    url,
                    "fork",
                    f"block {point.height} is {point.hash}, the verified "
                    f"chain has {hashes[point.height]}",
                    point.height,
                )
            return None
        if point.height > ours.height + 2:  # its validator set is not known yet
            self.log(
                f"note: {url} is at {point.height}, beyond the verified chain "
                f"({ours.height}); checked once verified"
            )
            return None
        seats = ours.gov.validators(point.height)
        if latest["header"]["validators_hash"] != validators_hash(seats):
            return Alarm(
                url, "bad_certificate", "validators_hash is not the replayed set", point.height
            )
        check_certificate(latest.get("commit"), ours.chain_id, seats, point.hash, point.height)
        mine = ours.checkpoint
        return await self._consistent(url, client, mine, point, "the verified chain")

    async def _against_trusted(
        self, url: str, client: httpx.AsyncClient, point: Checkpoint
    ) -> Alarm | None:
        before = self.trusted.get(url)
        if before is None:
            return None
        if point.height < before.height or point.ledger_size < before.ledger_size:
            return Alarm(
                url,
                "rollback",
                f"now at height {point.height} (size "
                f"{point.ledger_size}), earlier at {before.height} (size "
                f"{before.ledger_size})",
                point.height,
            )
        if point.height == before.height and point.hash != before.hash:
            return Alarm(
                url,
                "fork",
                f"block {point.height} was {before.hash}, now {point.hash}",
                point.height,
            )
        return await self._consistent(url, client, before, point, "its earlier checkpoint")

    async def _consistent(
        self, url: str, client: httpx.AsyncClient, old: Checkpoint, new: Checkpoint, what: str
    ) -> Alarm | None:
        if old.ledger_size == 0 or new.ledger_size < old.ledger_size:
            return None  # every log extends the empty one; a shorter one is a "fork" above
        body = await get_json(
            client, "/v1/proofs/consistency", first=old.ledger_size, second=new.ledger_size
        )
        proof = body.get("proof") if isinstance(body, dict) else None
        try:
            if not isinstance(proof, list) or not all(is_hex(h, 32) for h in proof):
                raise ProofError("the proof is not a list of 64-hex hashes")
            merkle.verify_consistency(
                old.ledger_size,
                new.ledger_size,
                bytes.fromhex(old.ledger_root),
                bytes.fromhex(new.ledger_root),
                [bytes.fromhex(h) for h in proof],
            )
        except ProofError as exc:
            return Alarm(
                url,
                "not_an_extension",
                f"checkpoint {new.height} (size "
                f"{new.ledger_size}) does not extend {what} at {old.height} (size "
                f"{old.ledger_size}): {exc}",
                new.height,
            )
        return None


def trusted_to_json(trusted: dict[str, Checkpoint]) -> dict[str, Any]:
    return {
        url: {
            "height": c.height,
            "hash": c.hash,
            "ledger_size": c.ledger_size,
            "ledger_root": c.ledger_root,
        }
        for url, c in trusted.items()
    }


def trusted_from_json(obj: Any) -> dict[str, Checkpoint]:
    if not isinstance(obj, dict):
        return {}
    return {
        url: Checkpoint(
            int(c["height"]), str(c["hash"]), int(c["ledger_size"]), str(c["ledger_root"])
        )
        for url, c in obj.items()
    }
