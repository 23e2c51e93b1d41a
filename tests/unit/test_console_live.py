"""The console's "verified" marks (api/console/static/js/live.js) under Node's test runner.

A real chain (tests/audit_chain.py: four members, then BR admitted by proposal and
votes, so the validator set changes at a known height) is read through the real HTTP
API over ``httpx.ASGITransport``: every reply the marks ask for is recorded, and
tests/js/live/blocks.test.mjs serves those replies to ``LiveVerifier`` as a node would,
then as a hostile one: a certificate signed by a key that is not a validator, one
under the quorum, a header with one changed byte (and with its hash recomputed), a
pinned genesis that is not the node's, a node hiding the vote that changed the set,
a governance record with a forged signature; and each record of a case timeline in its
block: a changed record, another record's envelope, another height, a bad inclusion
proof. Each must fail with its named reason,
and the true chain must pass block by block. tests/js/live/search.test.mjs holds the
Chain view's search to its routing and its refusals. Skipped only when ``node`` is missing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ledger.audit.chain import genesis_hash
from ledger.audit.gov import REPLAYED_TYPES
from tests.audit_chain import AuditChain
from tests.nodetest import needs_node, run_node_tests

ROOT = Path(__file__).resolve().parents[2]
pytestmark = needs_node


def _key(path: str, params: dict[str, Any]) -> str:
    """The reply's key as the JS test builds it: the path, then the params sorted."""
    query = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    return f"{path}?{query}" if query else path


async def _replies(chain: AuditChain) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with chain.api() as api:

        async def take(path: str, **params: Any) -> Any:
            reply = await api.get(path, params=params)
            assert reply.status_code == 200, (path, reply.text)
            out[_key(path, params)] = reply.json()
            return reply.json()

        await take("/v1/genesis")
        status = await take("/v1/status")
        for type_ in REPLAYED_TYPES:
            page = await take("/v1/search", type=type_, limit=1000)
            assert page["next_cursor"] is None
        for height in range(1, status["height"] + 1):
            await take(f"/v1/blocks/{height}")
            block = await take(f"/v1/blocks/{height}", envelopes="true")
            for envelope in block["envelopes"]:
                record_id = chain.record_id(envelope)
                await take(f"/v1/records/{record_id}")
                await take(
                    f"/v1/records/{record_id}/proof", tree_size=block["header"]["ledger_size"]
                )
    return out


def test_live_marks_under_nodes_test_runner(tmp_path: Path) -> None:
    chain = AuditChain()
    chain.grow(2)
    decided, _ = chain.add_member("BR", "Brazil")
    chain.grow(3)
    replies = asyncio.run(_replies(chain))
    assert replies["/v1/status"]["height"] == decided + 3
    cases = {
        "replies": replies,
        "genesis_hash": genesis_hash(chain.genesis_json),
        "change_height": decided + 2,  # the first height BR validates (CHANGE_DELAY_BLOCKS)
        "top": decided + 3,
    }
    tests = (ROOT / "tests" / "js" / "live").glob("*.mjs")
    run_node_tests(tests, cases, tmp_path, "COMITY_LIVE_CASES", passes=13)
