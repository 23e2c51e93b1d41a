"""The governance registry and the immutable chain state (issue 16, part 3).

One descriptor per governance type, agreeing with the role table; a
``ChainState`` that refuses every mutation; transitions that return a new
state and leave the old one as it was; and a ``FrozenMap`` whose updates copy
one shard, not the map (so replaying a chain is not quadratic).
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from ledger.errors import RecordInvalid
from ledger.keys import SigningKey
from ledger.roles import GOVERNANCE_TYPES, ROLE_TYPES
from node import frozen, governance
from node.frozen import FrozenMap
from node.governance import GOVERNANCE
from node.govtypes import KeyGrant
from node.rules import build_registry
from node.state import ChainState
from tests.unit.test_governance import Chain, _add_br, _enroll_fields, _vote

ROOT = Path(__file__).parents[2]


def _snapshot(state: ChainState) -> dict[str, Any]:
    """Every field as plain, independent Python values (to compare before/after)."""
    return {
        "keys": dict(state.keys),
        "validators_by_height": dict(state.validators_by_height),
        "members": dict(state.members),
        "changes": tuple(state.changes),
        "proposals": dict(state.proposals),
        "misbehaviour": dict(state.misbehaviour),
        "height": state.height,
    }


# --- one descriptor per type ------------------------------------------------------------------


def test_every_governance_type_of_the_role_table_has_exactly_one_descriptor() -> None:
    assert set(GOVERNANCE) == GOVERNANCE_TYPES
    assert len(GOVERNANCE) == len(GOVERNANCE_TYPES) == 6
    assert all(name == d.name for name, d in GOVERNANCE.items())
    # Each descriptor's signers are exactly the roles whose row names it.
    for descriptor in GOVERNANCE.values():
        rows = {role for role, types in ROLE_TYPES.items() if descriptor.name in types}
        assert descriptor.signers == rows and "admin" in rows, descriptor.name
    assert GOVERNANCE["misbehaviour"].signers == {"admin", "node"}
    assert GOVERNANCE["enroll_key"].signers == {"admin"}


def test_the_type_registry_takes_each_governance_shape_from_its_descriptor() -> None:
    registry = build_registry()
    assert set(GOVERNANCE) <= set(registry.known())
    with pytest.raises(RecordInvalid) as info:
        registry.check({"type": "enroll_key", "pubkey": "00" * 32, "roles": ["node"]})
    assert info.value.code == "bad_roles"  # enrollable roles exclude "node"


def test_the_registry_cannot_be_edited_at_run_time() -> None:
    with pytest.raises(TypeError):
        GOVERNANCE["extra"] = GOVERNANCE["enroll_key"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        GOVERNANCE["enroll_key"].audited = False  # type: ignore[misc]


def test_the_m2_conflict_key_is_the_descriptors_and_shared_by_enrol_and_revoke() -> None:
    chain = Chain()
    admin = chain.keys("CN").admin.public_hex
    enroll, revoke = GOVERNANCE["enroll_key"], GOVERNANCE["revoke_key"]
    assert enroll.conflict is revoke.conflict is governance.key_conflict
    state = chain.app.state
    assert governance.key_conflict(state, {"pubkey": admin}) == "admins:CN"
    fresh = SigningKey.generate().public_hex
    assert governance.key_conflict(state, {"pubkey": fresh}) == f"key:{fresh}"


# --- an immutable state -----------------------------------------------------------------------


def test_every_attempted_mutation_of_the_chain_state_raises() -> None:
    state = Chain().app.state
    before = _snapshot(state)
    grant = KeyGrant("CN", frozenset({"admin"}), "intruder")
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.height = 99  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.keys = FrozenMap()  # type: ignore[misc]
    with pytest.raises(TypeError):
        state.keys["ab" * 32] = grant  # type: ignore[index]
    with pytest.raises(TypeError):
        state.members["XX"] = state.members["CN"]  # type: ignore[index]
    with pytest.raises(TypeError):
        state.validators_by_height[5] = ()  # type: ignore[index]
    with pytest.raises(AttributeError):
        state.proposals.clear()  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        state.changes.append(None)  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        state.keys._shards = ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.keys[chain_admin(state)].revoked_at = 1  # type: ignore[misc]
    with pytest.raises(ValidationError):  # the genesis document is a frozen model
        state.genesis.chain_id = "forged"  # type: ignore[misc]
    assert _snapshot(state) == before


def chain_admin(state: ChainState) -> str:
    return next(k for k, g in state.keys.items() if g.state == "CN" and "admin" in g.roles)


def test_apply_block_returns_a_new_state_and_leaves_the_old_one_unchanged() -> None:
    chain = Chain()
    old = chain.app.state
    before = _snapshot(old)
    key = SigningKey.generate()
    enroll = chain.admin("CN", "enroll_key", **_enroll_fields(key.public_hex))
    new = governance.apply_block(old, old.height + 1, [enroll])
    assert new is not old
    assert new.height == old.height + 1 and new.keys[key.public_hex].record_id == enroll.id
    assert key.public_hex not in old.keys
    assert _snapshot(old) == before
    # A block without governance records changes nothing but the height.
    empty = governance.apply_block(new, new.height + 1, [])
    assert _snapshot(empty) == {**_snapshot(new), "height": new.height + 1}


def test_a_deciding_vote_builds_a_new_state_with_the_new_set_and_keeps_the_old() -> None:
    chain = Chain()
    proposal, br = _add_br(chain)
    for voter in ("CN", "FR"):
        chain.commit(_vote(chain, voter, proposal))
    old = chain.app.state
    before = _snapshot(old)
    deciding = _vote(chain, "TH", proposal)
    height = chain.commit(deciding)
    new = chain.app.state
    assert new is not old
    assert new.proposals[proposal.id].status == "passed"
    assert "BR" in new.members and br.admin.public_hex in new.keys
    assert [c.record_ids for c in new.changes] == [(proposal.id, deciding.id)]
    assert height + 2 in new.validators_by_height
    assert _snapshot(old) == before
    assert old.proposals[proposal.id].status == "open" and "BR" not in old.members


def test_a_refused_record_never_reaches_apply() -> None:
    """``check`` raises before ``apply`` runs: the state a reader holds is never half-made."""
    chain = Chain()
    state = chain.app.state
    chain.refused(chain.admin("CN", "revoke_key", pubkey="cd" * 32), "key_not_enrolled")
    assert chain.app.state is state


# --- FrozenMap ---------------------------------------------------------------------------------


def test_frozen_map_behaves_like_a_read_only_dict() -> None:
    plain = {f"k{i}": i for i in range(300)}
    m = FrozenMap(plain)
    assert m == plain and len(m) == 300 and set(m) == set(plain)
    assert "k7" in m and "nope" not in m and not m.__contains__([])
    assert m.get("nope") is None and m["k299"] == 299
    m2 = m.set("k7", -7).set("new", 1)
    assert m2["k7"] == -7 and m2["new"] == 1 and len(m2) == 301
    assert m == plain  # the old map is unchanged
    with pytest.raises(KeyError):
        m["new"]


def test_frozen_map_set_copies_one_shard_not_the_map() -> None:
    """O(SHARDS + n/SHARDS) per update: the other shards are shared, not copied."""
    m = FrozenMap({f"k{i}": i for i in range(10_000)})
    m2 = m.set("k1", 0)
    shared = sum(a is b for a, b in zip(m._shards, m2._shards, strict=True))
    assert shared == frozen.SHARDS - 1


# --- no import cycle between the state and the rules -------------------------------------------


def _imports(module: str) -> set[str]:
    """Every module named by an import anywhere in ``module`` (lazy and TYPE_CHECKING too)."""
    tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return out


def test_the_state_and_its_value_types_never_import_the_governance_rules() -> None:
    for module in ("node.state", "node.govtypes", "node.govshapes", "node.frozen"):
        assert not {"node.governance", "node.rules"} & _imports(module), module
