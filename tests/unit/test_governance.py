"""Governance on the chain: enrolment, revocation, membership votes, misbehaviour.

Pure application-level tests (no consensus, no network): blocks are built and
committed straight through ``Application`` with an unsigned certificate, which
the application does not check (the driver does). Each rule of
docs/GOVERNANCE.md has a passing case and hostile cases with their codes.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from api.cli.bootstrap import DEMO_STATES, MemberKeys, build_genesis
from consensus.messages import Equivocation, Vote, is_equivocation
from consensus.signing import Ed25519Verifier
from ledger.acts import ACT_TYPES
from ledger.acts_templates import template
from ledger.block import CommitCertificate, validators_hash, vote_sign_bytes
from ledger.canonical import canonical_bytes
from ledger.errors import ChainError, ClientError
from ledger.keys import SigningKey
from ledger.records import SCHEMA, Envelope, format_time, parse_envelope
from ledger.roles import role_table_markdown
from ledger.store import Store
from node import queries
from node.application import Application, Block
from node.clock import utcnow
from node.genesis import Genesis
from node.governance import conflict_key, misbehaviour_record
from node.rules import build_registry

CHAIN = "comity-test"


class Chain:
    """One application over a memory store, with the demo members' keys."""

    def __init__(self, n: int = 4, **consensus: Any) -> None:
        self.members = [MemberKeys.generate(s, name) for s, name in DEMO_STATES[:n]]
        urls = {m.state: f"http://{m.state.lower()}.p2p" for m in self.members}
        self.genesis = Genesis.model_validate(build_genesis(CHAIN, self.members, urls, consensus))
        self.store = Store.open_memory()
        self.app = Application(self.genesis, self.store, build_registry())
        self.nonce = 0
        #: Acts opt in to clear visibility where need to know applies (docs/PRIVACY.md).
        self.clear_acts = self.app.state.need_to_know_active(1)

    def keys(self, state: str) -> MemberKeys:
        return next(m for m in self.members if m.state == state)

    def env(
        self, actor: str, signer: SigningKey, type_: str = "preservation_request", /, **fields: Any
    ) -> Envelope:
        self.nonce += 1
        now = utcnow()
        act: dict[str, Any] = {}
        if type_ in ACT_TYPES:  # the catalogue's required fields (ledger/acts.py)
            act = template(
                type_, state=actor, territorial_states=("TH" if actor != "TH" else "VN",), now=now
            )
        record = {
            **act,
            "schema": SCHEMA,
            "type": type_,
            "chain_id": CHAIN,
            "actor": {"state": actor, "agency": "unit"},
            "nonce": f"unit{self.nonce:012d}",
            "occurred_at": format_time(now),
            **({"visibility": "consortium"} if type_ in ACT_TYPES and self.clear_acts else {}),
            **fields,
        }
        return parse_envelope(
            {
                "record": record,
                "signer": signer.public_hex,
                "signature": signer.sign(canonical_bytes(record)).hex(),
            }
        )

    def admin(self, actor: str, type_: str, /, **fields: Any) -> Envelope:
        return self.env(actor, self.keys(actor).admin, type_, **fields)

    def refused(self, envelope: Envelope, code: str) -> None:
        with pytest.raises(ClientError) as info:
            self.app.check_record(envelope, utcnow())
        assert info.value.code == code, info.value

    def commit(self, *envelopes: Envelope) -> int:
        """Commit one block holding exactly ``envelopes``; return its height."""
        height = self.app.height + 1
        proposer = self.app.state.validators(height)[0].state
        now = utcnow()
        block, rejected = self.app.build_block(proposer, list(envelopes), now)
        assert rejected == [] and len(block.envelopes) == len(envelopes)
        self.app.validate_block(block, now=now)
        self.app.commit(block, CommitCertificate(height, 0, block.hash))
        return height


def _enroll_fields(pubkey: str, roles: list[str] | None = None) -> dict[str, Any]:
    return {"pubkey": pubkey, "roles": roles or ["investigator"], "agency": "cyber unit"}


# --- keys ------------------------------------------------------------------------------------


def test_enrolled_key_signs_until_the_block_after_its_revocation() -> None:
    chain = Chain()
    key = SigningKey.generate()
    chain.refused(chain.env("CN", key), "signer_not_enrolled")
    chain.commit(chain.admin("CN", "enroll_key", **_enroll_fields(key.public_hex)))
    before = chain.env("CN", key)
    chain.commit(before)
    same_block = chain.env("CN", key)
    revoked_at = chain.commit(
        chain.admin("CN", "revoke_key", pubkey=key.public_hex, reason="left the unit"), same_block
    )
    assert chain.app.state.keys[key.public_hex].revoked_at == revoked_at
    chain.refused(chain.env("CN", key), "signer_revoked")
    # Records the key signed earlier, including in the revoking block, stay committed.
    assert chain.store.has_record(before.id) and chain.store.has_record(same_block.id)
    chain.refused(chain.admin("CN", "enroll_key", **_enroll_fields(key.public_hex)), "key_revoked")


@pytest.mark.parametrize(
    ("signer", "actor", "fields", "code"),
    [
        ("CN.investigator", "CN", {}, "role_not_allowed"),
        ("FR.admin", "CN", {}, "wrong_state"),
        ("CN.admin", "CN", {"roles": ["root"]}, "bad_roles"),
        ("CN.admin", "CN", {"roles": ["node"]}, "bad_roles"),
        ("CN.admin", "CN", {"roles": []}, "bad_roles"),
        ("CN.admin", "CN", {"roles": ["admin", "admin"]}, "bad_roles"),
        ("CN.admin", "CN", {"pubkey": "AB" * 32}, "bad_hex"),
        ("CN.admin", "CN", {"pubkey": "CN.investigator"}, "key_already_enrolled"),
        ("CN.admin", "CN", {"pubkey": "FR.investigator"}, "key_already_enrolled"),
        ("CN.admin", "CN", {"pubkey": "FR.node"}, "key_is_node_key"),
        ("CN.admin", "CN", {"not_after": "2001-01-01T00:00:00Z"}, "not_after_past"),
    ],
)
def test_hostile_enrolments_are_refused(
    signer: str, actor: str, fields: dict[str, Any], code: str
) -> None:
    chain = Chain()

    def key(ref: str) -> SigningKey:
        state, name = ref.split(".")
        return getattr(chain.keys(state), name)  # type: ignore[no-any-return]

    record = {**_enroll_fields(SigningKey.generate().public_hex), **fields}
    if "." in str(record["pubkey"]):
        record["pubkey"] = key(record["pubkey"]).public_hex
    chain.refused(chain.env(actor, key(signer), "enroll_key", **record), code)


@pytest.mark.parametrize(
    ("target", "code"),
    [
        ("FR.investigator", "wrong_state"),
        ("CN.node", "key_not_enrolled"),
        ("CN.admin", "last_admin"),
    ],
)
def test_hostile_revocations_are_refused(target: str, code: str) -> None:
    chain = Chain()
    state, name = target.split(".")
    pubkey = getattr(chain.keys(state), name).public_hex
    chain.refused(chain.admin("CN", "revoke_key", pubkey=pubkey), code)


def test_second_revocation_and_expired_signer_are_refused() -> None:
    chain = Chain()
    chain.commit(chain.admin("CN", "revoke_key", pubkey=chain.keys("CN").investigator.public_hex))
    chain.refused(
        chain.admin("CN", "revoke_key", pubkey=chain.keys("CN").investigator.public_hex),
        "already_revoked",
    )
    key = SigningKey.generate()
    end = utcnow() + timedelta(hours=1)
    chain.commit(
        chain.admin(
            "CN", "enroll_key", **_enroll_fields(key.public_hex), not_after=format_time(end)
        )
    )
    envelope = chain.env("CN", key)
    chain.app.check_record(envelope, utcnow())
    with pytest.raises(ClientError) as info:
        chain.app.check_record(envelope, end + timedelta(seconds=1))
    assert info.value.code == "signer_expired"


# --- membership -------------------------------------------------------------------------------


def _add_br(chain: Chain, code: str = "BR") -> tuple[Envelope, MemberKeys]:
    br = MemberKeys.generate(code, "Brazil")
    proposal = chain.admin(
        "CN",
        "member_proposal",
        action="add",
        state=code,
        name="Brazil",
        node_pubkey=br.node.public_hex,
        admin_pubkeys=[br.admin.public_hex],
        enc_pubkey=br.enc_public_hex,
        p2p_url="http://br.p2p",
    )
    chain.commit(proposal)
    return proposal, br


def _vote(chain: Chain, state: str, proposal: Envelope, choice: str = "yes") -> Envelope:
    return chain.admin(state, "member_vote", proposal=proposal.id, vote=choice)


def test_admission_passes_on_more_than_two_thirds_and_applies_at_h_plus_2() -> None:
    chain = Chain()
    proposal, br = _add_br(chain)
    old = chain.app.state.validators(chain.app.height + 1)
    chain.commit(_vote(chain, "CN", proposal))
    chain.commit(_vote(chain, "FR", proposal))
    assert chain.app.state.proposals[proposal.id].status == "open"  # 2/4 is not > 2/3
    chain.refused(_vote(chain, "FR", proposal, "no"), "already_voted")
    deciding = _vote(chain, "TH", proposal)
    decided_at = chain.commit(deciding)  # 3/4 > 2/3
    state = chain.app.state
    assert state.proposals[proposal.id].status == "passed"
    assert state.validators(decided_at + 1) == old
    assert [v.state for v in state.validators(decided_at + 2)] == ["BR", "CN", "FR", "TH", "VN"]
    assert queries.set_origin(state, decided_at + 2)["changes"] == [
        {
            "height": decided_at + 2,
            "decided_at": decided_at,
            "action": "add",
            "state": "BR",
            "record_ids": [proposal.id, deciding.id],
        }
    ]
    chain.refused(_vote(chain, "VN", proposal), "proposal_closed")
    # BR's admin key is usable only once BR validates (H+2), not in block H+1.
    enrol_by_br = chain.env(
        "BR", br.admin, "enroll_key", **_enroll_fields(SigningKey.generate().public_hex)
    )
    chain.refused(enrol_by_br, "state_not_member")
    h1 = chain.commit()
    h2 = chain.commit(enrol_by_br)
    hashes = [
        header.validators_hash
        for header in map(chain.store.get_header, (h1, h2))
        if header is not None
    ]
    assert hashes == [validators_hash(old), validators_hash(state.validators(h2))]
    assert len(state.validators(h2)) == 5


@pytest.mark.parametrize(
    ("n", "yes", "no", "status"),
    [
        (4, 2, 0, "open"),
        (4, 3, 0, "passed"),
        (4, 1, 1, "open"),
        (4, 0, 2, "rejected"),
        (5, 3, 0, "open"),
        (5, 4, 0, "passed"),
        (5, 0, 2, "rejected"),
        (5, 3, 1, "open"),
        (3, 2, 0, "open"),
        (3, 3, 0, "passed"),
        (3, 0, 1, "rejected"),
        (1, 1, 0, "passed"),
    ],
)
def test_vote_tally_needs_more_than_two_thirds_of_members(
    n: int, yes: int, no: int, status: str
) -> None:
    chain = Chain(n)
    proposal, _ = _add_br(chain, "JP")
    states = [m.state for m in chain.members]
    for state, choice in zip(states, ["yes"] * yes + ["no"] * no, strict=False):
        chain.commit(_vote(chain, state, proposal, choice))
    assert chain.app.state.proposals[proposal.id].status == status


def test_proposals_expire_and_hostile_proposals_are_refused() -> None:
    chain = Chain(proposal_expiry_blocks=2)
    proposal, br = _add_br(chain)
    chain.refused(
        chain.admin("FR", "member_proposal", action="remove", state="BR"), "proposal_open"
    )
    chain.refused(
        chain.admin(
            "FR",
            "member_proposal",
            action="add",
            state="BR",
            name="B",
            node_pubkey=SigningKey.generate().public_hex,
            admin_pubkeys=[SigningKey.generate().public_hex],
            enc_pubkey="11" * 32,
            p2p_url="http://x",
        ),
        "proposal_open",
    )
    chain.commit()
    chain.commit()
    chain.refused(_vote(chain, "CN", proposal), "proposal_expired")
    assert [p["id"] for p in queries.proposals_view(chain.app.state, "expired")] == [proposal.id]
    hostile = [
        (
            chain.admin(
                "CN",
                "member_proposal",
                action="rotate_key",
                state="FR",
                node_pubkey=SigningKey.generate().public_hex,
            ),
            "wrong_state",
        ),
        (
            chain.admin(
                "CN",
                "member_proposal",
                action="add",
                state="FR",
                name="France",
                node_pubkey=br.node.public_hex,
                admin_pubkeys=[br.admin.public_hex],
                enc_pubkey="11" * 32,
                p2p_url="http://x",
            ),
            "already_member",
        ),
        (chain.admin("CN", "member_proposal", action="remove", state="JP"), "not_a_member"),
        (
            chain.admin(
                "CN",
                "member_proposal",
                action="rotate_key",
                state="CN",
                node_pubkey=chain.keys("FR").node.public_hex,
            ),
            "key_in_use",
        ),
        (chain.admin("CN", "member_proposal", action="drop", state="FR"), "bad_action"),
        (
            chain.env(
                "CN", chain.keys("CN").investigator, "member_proposal", action="remove", state="FR"
            ),
            "role_not_allowed",
        ),
        (chain.admin("CN", "member_vote", proposal="ab" * 32, vote="yes"), "unknown_proposal"),
        (chain.admin("CN", "member_vote", proposal=proposal.id, vote="maybe"), "bad_vote"),
    ]
    for envelope, code in hostile:
        chain.refused(envelope, code)


def test_removed_state_keys_stop_and_rotation_needs_no_vote() -> None:
    chain = Chain()
    proposal = chain.admin("FR", "member_proposal", action="remove", state="TH")
    chain.commit(proposal)
    for state in ("CN", "FR", "VN"):
        decided = chain.commit(_vote(chain, state, proposal))
    chain.commit()
    chain.commit()
    assert chain.app.state.member_states(decided + 2) == ["CN", "FR", "VN"]
    chain.refused(chain.env("TH", chain.keys("TH").investigator), "state_not_member")
    new_key = SigningKey.generate()
    rotation = chain.admin(
        "VN", "member_proposal", action="rotate_key", state="VN", node_pubkey=new_key.public_hex
    )
    at = chain.commit(rotation)
    chain_state = chain.app.state
    assert chain_state.proposals[rotation.id].status == "passed"
    assert chain_state.proposals[rotation.id].effective_at == at + 2
    assert pubkey_of(chain_state.validators(at + 1), "VN") == chain.keys("VN").node.public_hex
    assert pubkey_of(chain_state.validators(at + 2), "VN") == new_key.public_hex


def pubkey_of(validators: Any, state: str) -> str:
    return str(next(v.pubkey for v in validators if v.state == state))


def test_two_votes_of_one_state_never_share_a_block() -> None:
    chain = Chain()
    proposal, _ = _add_br(chain)
    first, second = _vote(chain, "CN", proposal), _vote(chain, "CN", proposal, "no")
    block, rejected = chain.app.build_block("CN", [first, second], utcnow())
    assert [e.id for e in block.envelopes] == [first.id] and rejected == [second.id]
    header, _ = chain.app._header(block.height, "CN", block.header.time, [first, second])
    forged = Block(header, (first, second))
    with pytest.raises(ChainError, match="two governance records"):
        chain.app.validate_block(forged, now=utcnow())


# --- misbehaviour -----------------------------------------------------------------------------


def _prevote(key: SigningKey, height: int, block_hash: str | None, round_: int = 0) -> Vote:
    sig = key.sign(vote_sign_bytes("prevote", CHAIN, height, round_, block_hash)).hex()
    return Vote("prevote", height, round_, block_hash, key.public_hex, sig)


def _report(chain: Chain, ev: Equivocation, offender: str = "FR", **over: Any) -> Envelope:
    body = {
        **misbehaviour_record(ev, reporter_state="CN", agency="CN node", offender_state=offender),
        **over,
    }
    body.pop("actor")
    return chain.env("CN", chain.keys("CN").node, body.pop("type"), **body)


def test_misbehaviour_is_recorded_once_and_forgeries_are_refused() -> None:
    chain = Chain()
    fr = chain.keys("FR").node
    h = chain.app.height + 1
    ev = Equivocation(_prevote(fr, h, "aa" * 32), _prevote(fr, h, "bb" * 32))
    assert is_equivocation(ev, CHAIN, Ed25519Verifier())
    report = _report(chain, ev)
    at = chain.commit(report)
    [row] = queries.misbehaviour_view(chain.app.state, "FR")
    assert (row["record_id"], row["committed_at"], row["offender_pubkey"], row["kind"]) == (
        report.id,
        at,
        fr.public_hex,
        "prevote",
    )
    assert queries.misbehaviour_view(chain.app.state, "CN") == []
    swapped = Equivocation(ev.second, ev.first)
    third = Equivocation(ev.first, _prevote(fr, h, None))
    bad_sig = Vote("prevote", h, 0, "cc" * 32, fr.public_hex, "00" * 64)
    other_h = _prevote(fr, h + 1, "cc" * 32)
    cases = [
        (_report(chain, swapped), "duplicate_evidence"),
        (_report(chain, third), "duplicate_evidence"),  # one record per slot
        (_report(chain, Equivocation(ev.first, bad_sig)), "not_equivocation"),
        (_report(chain, Equivocation(ev.first, ev.first)), "not_equivocation"),
        (_report(chain, Equivocation(_prevote(fr, h, "aa" * 32, 1), other_h)), "not_equivocation"),
        (
            _report(
                chain,
                Equivocation(_prevote(fr, h, "aa" * 32, 2), _prevote(fr, h, "bb" * 32, 2)),
                offender="TH",
            ),
            "not_a_validator",
        ),
        (
            _report(
                chain, Equivocation(_prevote(fr, h + 5, "aa" * 32), _prevote(fr, h + 5, "bb" * 32))
            ),
            "bad_evidence",
        ),
        (_report(chain, ev, equivocation={"first": ev.first.to_json()}), "bad_evidence"),
        (chain.env("CN", chain.keys("CN").node), "role_not_allowed"),
    ]
    for envelope, code in cases:
        chain.refused(envelope, code)


def test_replay_after_restart_rebuilds_the_same_governance_state() -> None:
    chain = Chain()
    proposal, _ = _add_br(chain)
    for state in ("CN", "FR", "TH"):
        chain.commit(_vote(chain, state, proposal))
    key = SigningKey.generate()
    chain.commit(chain.admin("CN", "enroll_key", **_enroll_fields(key.public_hex)))
    chain.commit(chain.admin("CN", "revoke_key", pubkey=key.public_hex))
    fr = chain.keys("FR").node
    h = chain.app.height + 1
    chain.commit(
        _report(chain, Equivocation(_prevote(fr, h, "aa" * 32), _prevote(fr, h, "bb" * 32)))
    )
    again = Application(chain.genesis, chain.store, build_registry())
    a, b = chain.app.state, again.state
    assert (a.keys, a.validators_by_height, a.changes, a.misbehaviour, a.members, a.height) == (
        b.keys,
        b.validators_by_height,
        b.changes,
        b.misbehaviour,
        b.members,
        b.height,
    )
    assert queries.proposals_view(a, None) == queries.proposals_view(b, None)


def test_governance_doc_role_table_matches_the_code() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "GOVERNANCE.md").read_text()
    assert role_table_markdown() in doc


def test_two_admin_revocations_never_share_a_block() -> None:
    """FINDINGS M2: each revocation alone leaves an admin, both together leave none."""
    chain = Chain()
    second = SigningKey.generate()
    chain.commit(chain.admin("CN", "enroll_key", **_enroll_fields(second.public_hex, ["admin"])))
    first_admin = chain.keys("CN").admin.public_hex
    revoke_first = chain.env("CN", second, "revoke_key", pubkey=first_admin)
    revoke_second = chain.env("CN", second, "revoke_key", pubkey=second.public_hex)
    block, rejected = chain.app.build_block("CN", [revoke_first, revoke_second], utcnow())
    assert [e.id for e in block.envelopes] == [revoke_first.id]
    assert rejected == [revoke_second.id]
    header, _ = chain.app._header(
        block.height, "CN", block.header.time, [revoke_first, revoke_second]
    )
    with pytest.raises(ChainError, match="admins:CN"):
        chain.app.validate_block(Block(header, (revoke_first, revoke_second)), now=utcnow())
    chain.commit(revoke_first)
    chain.refused(chain.env("CN", second, "revoke_key", pubkey=second.public_hex), "last_admin")
    active = [
        k
        for k, g in chain.app.state.keys.items()
        if g.state == "CN" and "admin" in g.roles and g.revoked_at is None
    ]
    assert active == [second.public_hex]


def test_renewal_and_revocation_of_one_key_never_share_a_block() -> None:
    """An admin key's renewal and revocation keep sharing a conflict key (no un-revoke)."""
    chain = Chain()
    key = SigningKey.generate()
    chain.commit(chain.admin("CN", "enroll_key", **_enroll_fields(key.public_hex, ["admin"])))
    state = chain.app.state
    renew = chain.admin("CN", "enroll_key", **_enroll_fields(key.public_hex, ["admin"]))
    revoke = chain.admin("CN", "revoke_key", pubkey=key.public_hex)
    assert conflict_key(state, renew) == conflict_key(state, revoke) == "admins:CN"
    investigator = chain.keys("CN").investigator.public_hex
    assert (
        conflict_key(state, chain.admin("CN", "revoke_key", pubkey=investigator))
        == f"key:{investigator}"
    )
