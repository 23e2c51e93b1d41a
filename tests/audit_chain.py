"""A real Comity chain made without consensus, for the auditor's tests.

``AuditChain`` holds one ``Node`` that is never started: blocks are built and
checked by the node's own ``Application`` (``build_block``, ``validate_block``)
and certified by a quorum of the validator keys of their height, then
committed. The chain is therefore exactly what nodes accept, made in
milliseconds, and ``api()`` serves it through the real HTTP API over
``httpx.ASGITransport``. Validator-set changes go through real
``member_proposal``/``member_vote`` records.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from api.cli.bootstrap import DEMO_STATES, MemberKeys, build_genesis
from ledger.acts_templates import template
from ledger.block import BlockHeader, CommitCertificate, CommitSignature, vote_sign_bytes
from ledger.canonical import canonical_bytes
from ledger.keys import SigningKey
from ledger.records import SCHEMA, format_time, parse_envelope
from ledger.store import Store
from node import queries
from node.clock import utcnow
from node.config import Listen, NodeConfig
from node.genesis import Genesis
from node.runtime import Node

_COMMON = frozenset(
    {
        "schema",
        "type",
        "chain_id",
        "actor",
        "nonce",
        "occurred_at",
        "case_ref",
        "territorial_states",
        "evidence",
    }
)


class AuditChain:
    def __init__(
        self, size: int = 4, chain_id: str = "comity-audit", like: AuditChain | None = None
    ) -> None:
        """A fresh chain; ``like`` another one: same genesis and keys (to forge a fork)."""
        self.chain_id = chain_id
        self.members: dict[str, MemberKeys] = (
            dict(like.members)
            if like
            else {m.state: m for m in (MemberKeys.generate(s, n) for s, n in DEMO_STATES[:size])}
        )
        urls = {s: f"http://{s.lower()}.p2p" for s in self.members}
        raw = (
            like.genesis_file
            if like
            else build_genesis(chain_id, list(self.members.values()), urls, {})
        )
        #: What a devnet writes: consensus defaults left out (the hash fills them in).
        self.genesis_file: dict[str, Any] = raw
        self.genesis = Genesis.model_validate(raw)
        #: What nodes hash and GET /v1/genesis serves: every default written out.
        self.genesis_json: dict[str, Any] = self.genesis.to_json()
        self.node_keys = {m.node.public_hex: m.node for m in self.members.values()}
        first = next(iter(self.members.values()))
        config = NodeConfig(
            state=first.state,
            genesis_path=Path("genesis.json"),
            node_key_path=Path("node.key"),
            data_dir=Path("/nonexistent"),
            api=Listen(port=1),
            p2p=Listen(port=2),
            open_read=True,
        )
        self.node = Node(
            config,
            genesis=self.genesis,
            key=first.node,
            store=Store.open_memory(),
            enc_key=first.enc,
        )
        self.app = self.node.app
        self.nonce = 0
        self.clock: datetime = like.clock if like else utcnow()

    # --- records ----------------------------------------------------------------------------

    def envelope(
        self,
        state: str,
        /,
        *,
        type_: str = "preservation_request",
        signer: SigningKey | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        self.nonce += 1
        member = self.members[state]
        act: dict[str, Any] = {}
        if type_ not in ("enroll_key", "revoke_key", "member_proposal", "member_vote"):
            act = {
                k: v
                for k, v in template(
                    type_, state=state, territorial_states=("TH",), now=self.clock
                ).items()
                if k not in _COMMON
            }
        record: dict[str, Any] = {
            "schema": SCHEMA,
            "type": type_,
            "chain_id": self.chain_id,
            "actor": {"state": state, "agency": f"{member.name} cybercrime unit"},
            "nonce": f"audit{self.nonce:012d}",
            "occurred_at": format_time(self.clock),
            "case_ref": "CASE-2026-0001",
            "territorial_states": ["TH"],
            "evidence": [{"sha256": f"{self.nonce:064x}"}],
            **act,
            **({"visibility": "consortium"} if act else {}),
            **fields,
        }
        key = signer or member.investigator
        return {
            "record": record,
            "signer": key.public_hex,
            "signature": key.sign(canonical_bytes(record)).hex(),
        }

    def admin(self, state: str, type_: str, /, **fields: Any) -> dict[str, Any]:
        return self.envelope(state, type_=type_, signer=self.members[state].admin, **fields)

    # --- blocks -----------------------------------------------------------------------------

    def commit(self, envelopes: list[dict[str, Any]], *, signers: int | None = None) -> int:
        """Build, validate, certify and commit a block of ``envelopes``; return its height."""
        parsed = [parse_envelope(e, max_record_bytes=65536) for e in envelopes]
        height = self.app.height + 1
        seats = self.app.state.validators(height)
        self.clock += timedelta(seconds=1)
        block, rejected = self.app.build_block(seats[height % len(seats)].state, parsed, self.clock)
        assert not rejected, f"records refused: {rejected}"
        self.app.validate_block(block, now=None)
        self.app.commit(block, self.certify(block.header, signers))
        return height

    def certify(self, header: BlockHeader, signers: int | None = None) -> CommitCertificate:
        seats = self.app.state.validators(header.height)
        count = signers or len(seats)
        message = vote_sign_bytes("precommit", self.chain_id, header.height, 0, header.hash())
        return CommitCertificate(
            header.height,
            0,
            header.hash(),
            tuple(
                CommitSignature(s.pubkey, self.node_keys[s.pubkey].sign(message).hex())
                for s in seats[:count]
            ),
        )

    def grow(self, blocks: int, per_block: int = 3) -> None:
        states = [m.state for m in self.genesis.members]  # their investigators are enrolled
        for b in range(blocks):
            self.commit([self.envelope(states[(b + i) % len(states)]) for i in range(per_block)])

    def add_member(self, state: str, name: str) -> tuple[int, MemberKeys]:
        """Admit ``state`` by a proposal and yes votes; return (deciding height, keys)."""
        new = MemberKeys.generate(state, name)
        proposer = next(iter(self.members))
        proposal = self.admin(
            proposer,
            "member_proposal",
            action="add",
            state=state,
            name=name,
            node_pubkey=new.node.public_hex,
            admin_pubkeys=[new.admin.public_hex],
            enc_pubkey=new.enc_public_hex,
            p2p_url="http://new.p2p",
        )
        self.commit([proposal])
        proposal_id = parse_envelope(proposal, max_record_bytes=65536).id
        voters = [s for s in self.members][:3]
        self.commit(
            [self.admin(s, "member_vote", proposal=proposal_id, vote="yes") for s in voters[:2]]
        )
        decided = self.commit(
            [self.admin(voters[2], "member_vote", proposal=proposal_id, vote="yes")]
        )
        self.members[state] = new
        self.node_keys[new.node.public_hex] = new.node
        return decided, new

    def record_id(self, envelope: dict[str, Any]) -> str:
        return parse_envelope(envelope, max_record_bytes=65536).id

    # --- reading it back ----------------------------------------------------------------------

    def blocks(self) -> list[dict[str, Any]]:
        """Every block as ``GET /v1/blocks?envelopes=true`` serves it."""
        store = self.app.store
        return [queries.block_view(store, h, envelopes=True) for h in range(1, store.height + 1)]

    def api(self) -> httpx.AsyncClient:
        from api.app import create_app  # late: only the HTTP tests need the whole app

        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(self.node)), base_url="http://node.api"
        )
