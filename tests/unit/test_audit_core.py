"""The auditor's verifier (ledger/audit/chain.py): JCS, the compact log, and whole-chain checks.

A valid chain made by the node's own Application passes; each tampered copy
fails at the height of the tampered block with a specific code.
"""

from __future__ import annotations

import ast
import copy
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import merkle
from ledger.audit import gov as audit_gov
from ledger.audit.chain import (
    AuditFailure,
    ChainVerifier,
    CompactLog,
    check_genesis,
    complete_genesis,
    genesis_hash,
    jcs,
)
from ledger.audit.gov import ROLE_TYPES
from ledger.canonical import canonical_bytes
from ledger.roles import GOVERNANCE_TYPES as NODE_GOVERNANCE_TYPES
from ledger.roles import ROLE_TYPES as NODE_ROLE_TYPES
from node.governance import GOVERNANCE
from node.govtypes import CHANGE_DELAY_BLOCKS as NODE_CHANGE_DELAY_BLOCKS
from tests.audit_chain import AuditChain
from tests.merkle_reference import mth
from tests.unit.test_governance import Chain, _add_br, _vote

# --- RFC 8785 §3.2 ------------------------------------------------------------------------------

JCS_TABLE = [  # (value, expected JCS bytes); RFC 8785 §3.2.2.2 escapes, §3.2.3 ordering
    ({"b": 1, "a": [True, None, False]}, b'{"a":[true,null,false],"b":1}'),
    ({"\ue000": 1, "\U0001f600": 2}, '{"\U0001f600":2,"\ue000":1}'.encode()),  # UTF-16 order
    ('\x1f\b\t\n\f\r"\\/\x7f\u2028', b'"\\u001f\\b\\t\\n\\f\\r\\"\\\\/\x7f\xe2\x80\xa8"'),
    (-(2**53 - 1), b"-9007199254740991"),
]


@pytest.mark.parametrize(("value", "expected"), JCS_TABLE)
def test_jcs_matches_rfc_8785_for_the_subset(value: Any, expected: bytes) -> None:
    assert jcs(value) == expected == canonical_bytes(value)


@pytest.mark.parametrize(
    "bad", [1.0, 2**53, {"a": float("nan")}, "\ud800", json.loads("[" * 40 + "]" * 40)]
)
def test_jcs_refuses_what_is_outside_the_subset(bad: Any) -> None:
    with pytest.raises(ValueError):
        jcs(bad)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53 - 1), 2**53 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(_json)
def test_jcs_equals_the_node_serializer(value: Any) -> None:
    try:
        expected = canonical_bytes(value)
    except Exception:  # lone surrogates: both refuse
        with pytest.raises(ValueError):
            jcs(value)
        return
    assert jcs(value) == expected


def test_role_table_is_a_faithful_copy_of_ledger_roles() -> None:
    assert ROLE_TYPES == NODE_ROLE_TYPES


def test_type_class_table_is_a_faithful_copy_of_ledger_private() -> None:
    from ledger.private import TYPE_CLASSES

    assert audit_gov.TYPE_CLASSES == TYPE_CLASSES


def test_content_fields_are_a_faithful_copy_of_ledger_records() -> None:
    """The bundle verifier rebuilds a private act's content as the node does."""
    from ledger.audit import bundle as audit_bundle
    from ledger.records import CONTENT_FIELDS

    assert audit_bundle._CONTENT_FIELDS == CONTENT_FIELDS


def test_the_auditor_governance_tables_agree_exactly_with_the_node_registry() -> None:
    """Types, replayed types, roles and the H+2 delay: the auditor's copies are complete."""
    assert audit_gov.GOVERNANCE_TYPES == set(GOVERNANCE) == NODE_GOVERNANCE_TYPES
    audited = tuple(d.name for d in GOVERNANCE.values() if d.audited)
    assert audit_gov.REPLAYED_TYPES == audited == tuple(audit_gov._HANDLERS)
    assert set(audit_gov.GOVERNANCE_TYPES) - set(audited) == {"misbehaviour", "directory_entry"}
    for descriptor in GOVERNANCE.values():
        auditor_signers = {r for r, types in ROLE_TYPES.items() if descriptor.name in types}
        assert auditor_signers == descriptor.signers, descriptor.name
    assert audit_gov.CHANGE_DELAY_BLOCKS == NODE_CHANGE_DELAY_BLOCKS


def test_vote_thresholds_come_from_ledger_quorum_alone() -> None:
    """Both sides import the one rule, and no module writes a threshold of its own."""
    root = Path(__file__).parents[2]
    for path in ("node/governance.py", "node/state.py", "ledger/audit/gov.py"):
        tree = ast.parse((root / path).read_text())
        imported = {
            (node.module, alias.name)
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
        }
        if path != "node/state.py":
            assert ("ledger.quorum", "vote_outcome") in imported, path
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                products = [
                    b
                    for part in (node.left, *node.comparators)
                    for b in ast.walk(part)
                    if isinstance(b, ast.BinOp) and isinstance(b.op, ast.Mult)
                ]
                assert not products, f"{path}:{node.lineno} compares a product"


@pytest.mark.parametrize(
    ("n", "votes"),
    [
        (4, ["yes", "yes", "yes"]),
        (4, ["yes", "no", "no"]),
        (4, ["no", "yes", "yes", "yes"]),
        (5, ["yes", "yes", "yes", "yes"]),
        (5, ["yes", "yes", "yes", "no", "yes"]),
        (5, ["yes", "no", "yes", "no"]),
        (7, ["yes", "yes", "no", "yes", "yes", "yes"]),
    ],
)
def test_the_auditor_replay_decides_every_vote_as_the_node_does(n: int, votes: list[str]) -> None:
    """The same chain, replayed by the node and by the auditor: same status, same sets."""
    chain = Chain(n)
    proposal, _ = _add_br(chain, "MX")
    states = [m.state for m in chain.members]
    for voter, choice in zip(states, votes, strict=False):
        chain.commit(_vote(chain, voter, proposal, choice))
        node_status = chain.app.state.proposals[proposal.id].status
        replay = _audit_replay(chain)
        assert replay.proposals[proposal.id].status == node_status
        assert {h: [tuple(v) for v in vs] for h, vs in replay.sets.items()} == {
            h: [(v.state, v.pubkey) for v in vs]
            for h, vs in chain.app.state.validators_by_height.items()
        }
        if node_status != "open":
            break
    assert chain.app.state.proposals[proposal.id].status != "open"


def _audit_replay(chain: Chain) -> audit_gov.GovState:
    replay = audit_gov.GovState(chain.genesis.model_dump(mode="json"))
    for height in range(1, chain.app.height + 1):
        stored = chain.app.stored_block(height)
        assert stored is not None
        block, _ = stored
        replay.apply_block(
            height,
            [(e.id, e.record) for e in block.envelopes if e.type in audit_gov.REPLAYED_TYPES],
        )
    return replay


def test_the_verifier_imports_only_the_standard_library_and_pynacl() -> None:
    code = (
        "import sys, ledger.audit.chain, ledger.audit.gov, ledger.audit.bundle; "
        "print(sorted(m for m in ('orjson','rfc8785','pydantic','fastapi','plyvel',"
        "'cryptography','ledger.canonical','ledger.block','node') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- RFC 6962 §2.1, right edge only --------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 7, 8, 9, 31, 64, 100])
def test_compact_log_root_is_the_merkle_tree_hash(n: int) -> None:
    leaves = [f"leaf-{i}".encode() for i in range(n)]
    log = CompactLog()
    for leaf in leaves:
        log.append(leaf)
    assert log.size == n and log.root() == mth(leaves)
    assert len(log.edge) == n.bit_count()  # O(log n) memory


# --- genesis ------------------------------------------------------------------------------------


def test_a_genesis_that_leaves_out_defaults_is_refused_or_completed_from_the_served_one() -> None:
    """Nodes refuse such a file (node/genesis.py); an auditor's partial copy is
    completed from the served document, never silently from local defaults."""
    chain = AuditChain()
    partial = copy.deepcopy(chain.genesis_file)
    del partial["consensus"]["proposal_expiry_blocks"]
    with pytest.raises(AuditFailure) as info:
        check_genesis(partial)
    assert info.value.code == "incomplete_genesis"
    completed, filled = complete_genesis(partial, chain.genesis_json)
    assert filled == ["proposal_expiry_blocks"]
    assert genesis_hash(completed) == chain.genesis.hash()
    forged = copy.deepcopy(chain.genesis_json)
    forged["members"][0]["node_pubkey"] = "ab" * 32
    with pytest.raises(AuditFailure, match=r"genesis_mismatch.*\['members'\]"):
        complete_genesis(partial, forged)


# --- whole chains ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chain() -> AuditChain:
    made = AuditChain()
    made.grow(3)
    made.add_member("BR", "Brazil")  # decided at height 6: BR validates from 8
    made.grow(4)
    return made


def _verify(genesis: dict[str, Any], blocks: list[dict[str, Any]]) -> ChainVerifier:
    verifier = ChainVerifier(genesis)
    for block in blocks:
        verifier.feed(block)
    return verifier


def test_a_valid_chain_passes_with_the_validator_change_derived(chain: AuditChain) -> None:
    verifier = _verify(chain.genesis_json, chain.blocks())
    assert verifier.height == 10 and verifier.records == chain.app.store.ledger_size
    assert verifier.checkpoint.ledger_root == chain.app.store.ledger_root().hex()
    assert [(c.action, c.state, c.height) for c in verifier.gov.changes] == [("add", "BR", 8)]
    assert [s.state for s in verifier.gov.validators(8)] == ["BR", "CN", "FR", "TH", "VN"]


def _tamper(
    chain: AuditChain, height: int, edit: Callable[[dict[str, Any]], object]
) -> list[dict[str, Any]]:
    blocks = copy.deepcopy(chain.blocks())
    edit(blocks[height - 1])
    return blocks


def _resign(chain: AuditChain, block: dict[str, Any]) -> None:
    """Re-certify an edited header with the real validator keys (a colluding quorum)."""
    from ledger.block import BlockHeader

    header = BlockHeader.from_json(block["header"])
    block["hash"] = header.hash()
    block["commit"] = chain.certify(header).to_json()


def _other_signer(chain: AuditChain) -> Any:
    return chain.members["FR"].investigator


Edit = Callable[[AuditChain, dict[str, Any]], object]


def _resigned(change: Callable[[dict[str, Any]], object]) -> Edit:
    """An edit of a block, then its header re-certified (a colluding quorum)."""

    def edit(chain: AuditChain, block: dict[str, Any]) -> None:
        change(block)
        _resign(chain, block)

    return edit


def _drop_last_record(block: dict[str, Any]) -> None:
    block["envelopes"].pop()
    block["header"].update(record_count=len(block["envelopes"]))


TAMPERS: dict[str, tuple[int, Edit, str]] = {
    "prev_hash": (3, lambda c, b: b["header"].update(prev_hash="00" * 32), "bad_prev_hash"),
    "served hash": (2, lambda c, b: b.update(hash="11" * 32), "bad_block_hash"),
    "header time": (
        4,
        lambda c, b: b["header"].update(time="2020-01-01T00:00:00.000Z"),
        "bad_time",
    ),
    "cert signature": (
        5,
        lambda c, b: b["commit"]["signatures"][0].update(signature="00" * 64),
        "bad_certificate",
    ),
    "cert short of quorum": (
        5,
        lambda c, b: b["commit"].update(signatures=b["commit"]["signatures"][:2]),
        "bad_certificate",
    ),
    "record byte": (
        2,
        lambda c, b: b["envelopes"][0]["record"].update(case_ref="CASE-X"),
        "bad_record_signature",
    ),
    "ledger_root": (
        3,
        _resigned(lambda b: b["header"].update(ledger_root="22" * 32)),
        "ledger_mismatch",
    ),
    "record_count": (
        3,
        _resigned(_drop_last_record),
        "ledger_mismatch",
    ),
    "validators_hash": (
        7,
        _resigned(lambda b: b["header"].update(validators_hash="33" * 32)),
        "bad_validators_hash",
    ),
}


@pytest.mark.parametrize("name", list(TAMPERS))
def test_tampered_blocks_fail_at_their_height(chain: AuditChain, name: str) -> None:
    height, edit, code = TAMPERS[name]
    blocks = _tamper(chain, height, lambda b: edit(chain, b))
    with pytest.raises(AuditFailure) as info:
        _verify(chain.genesis_json, blocks)
    assert (info.value.height, info.value.code) == (height, code), str(info.value)


def test_an_unauthorised_signer_fails_even_with_a_valid_certificate(chain: AuditChain) -> None:
    """A colluding quorum certifies a record by FR's investigator acting for CN."""
    forged = AuditChain(like=chain)
    forged.grow(1)
    record = forged.envelope("CN", signer=_other_signer(forged))  # FR's key, actor CN
    block = copy.deepcopy(forged.blocks()[0])
    block["envelopes"].append(record)
    block["record_ids"].append(forged.record_id(record))
    log = merkle.MemoryHashStore()
    leaves = [merkle.leaf_hash(jcs(e)) for e in block["envelopes"]]
    _, size, root = merkle.append_leaves(0, leaves, log)
    block["header"].update(record_count=size, ledger_size=size, ledger_root=root.hex())
    _resign(forged, block)
    with pytest.raises(AuditFailure) as info:
        _verify(forged.genesis_json, [block])
    assert (info.value.height, info.value.code) == (1, "wrong_state")


def test_a_forged_validator_change_is_refused(chain: AuditChain) -> None:
    """Drop the deciding vote: the headers from 8 on show a set the votes never made."""

    def drop_vote(block: dict[str, Any]) -> None:
        block["envelopes"], block["record_ids"] = [], []
        block["header"].update(record_count=0, ledger_size=block["header"]["ledger_size"] - 1)

    blocks = copy.deepcopy(chain.blocks())
    drop_vote(blocks[5])
    with pytest.raises(AuditFailure) as info:
        _verify(chain.genesis_json, blocks)
    assert (info.value.height, info.value.code) == (6, "bad_certificate")
    assert "the block hash is" in info.value.detail
    forged = AuditChain(like=chain)  # the same keys, a chain where the vote never passed
    forged.grow(9)
    blocks = forged.blocks()
    block = copy.deepcopy(blocks[7])  # height 8 claims the five-member set of the real chain
    block["header"]["validators_hash"] = chain.blocks()[7]["header"]["validators_hash"]
    _resign(forged, block)
    with pytest.raises(AuditFailure) as info:
        _verify(forged.genesis_json, [*blocks[:7], block])
    assert (info.value.height, info.value.code) == (8, "bad_validators_hash")


def test_signatures_from_skips_record_signatures_but_not_the_ledger(chain: AuditChain) -> None:
    """Below --from the signature is not checked, but the leaf (which covers it) still is."""
    blocks = _tamper(chain, 2, lambda b: b["envelopes"][0].update(signature="00" * 64))
    verifier = ChainVerifier(chain.genesis_json, signatures_from=3)
    with pytest.raises(AuditFailure) as info:
        for block in blocks:
            verifier.feed(block)
    assert (info.value.height, info.value.code) == (2, "ledger_mismatch")


def test_the_same_tamper_is_a_signature_failure_with_full_checks(chain: AuditChain) -> None:
    blocks = _tamper(chain, 2, lambda b: b["envelopes"][0].update(signature="00" * 64))
    with pytest.raises(AuditFailure) as info:
        _verify(chain.genesis_json, blocks)
    assert (info.value.height, info.value.code) == (2, "bad_record_signature")
