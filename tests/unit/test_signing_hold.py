"""Restoring a backup must not bring back a WAL the key has signed past (finding B5).

docs/CONSENSUS.md "Persist before send": a key never signs two different votes
for one (h, r, type). A backup's WAL is older than what the key may have
signed since, so a restored store carries no live WAL and a signing hold
(node/signing_hold.py) that the driver checks before it enters a height.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.cli.bootstrap import DEMO_STATES, MemberKeys, build_genesis
from consensus.messages import PRECOMMIT
from ledger.block import CommitCertificate, CommitSignature, vote_sign_bytes
from ledger.store import Store
from node.application import Application
from node.backup import offline_backup, restore
from node.clock import utcnow
from node.driver import WAL_NAME
from node.genesis import Genesis
from node.rules import build_registry
from node.signing_hold import HOLD_NAME, WAL_ASIDE_NAME, may_sign, release

CHAIN = "comity-hold-test"
MEMBERS = [MemberKeys.generate(s, name) for s, name in DEMO_STATES[:4]]


def _genesis() -> Genesis:
    urls = {m.state: f"http://{m.state.lower()}.p2p" for m in MEMBERS}
    return Genesis.model_validate(build_genesis(CHAIN, MEMBERS, urls, {}))


GENESIS = _genesis()


def _commit(store: Store, up_to: int) -> None:
    """Commit empty blocks with real 4-of-4 certificates (block sync's kind) up to ``up_to``."""
    app = Application(GENESIS, store, build_registry())
    while app.height < up_to:
        height = app.height + 1
        block, _ = app.build_block(app.state.validators(height)[0].state, [], utcnow())
        message = vote_sign_bytes(PRECOMMIT, CHAIN, height, 0, block.hash)
        sigs = tuple(
            CommitSignature(m.node.public_hex, m.node.sign(message).hex()) for m in MEMBERS
        )
        app.commit(block, CommitCertificate(height, 0, block.hash, sigs))


def _node(data_dir: Path, height: int, wal_height: int) -> None:
    with Store.open_leveldb(data_dir / "ledger") as store:
        _commit(store, height)
        store.put_state(WAL_NAME, json.dumps({"height": wal_height}).encode())


@pytest.fixture
def backup(tmp_path: Path) -> Path:
    """A node at height 1 (WAL at 2) backed up, then running on to height 3 (WAL at 4)."""
    _node(tmp_path / "node", 1, 2)
    offline_backup(tmp_path / "node", tmp_path / "backup", {})
    _node(tmp_path / "node", 3, 4)
    return tmp_path / "backup"


def test_restore_over_the_old_store_holds_through_what_it_signed(
    backup: Path, tmp_path: Path
) -> None:
    """B5: the backup's WAL (height 2) is not live; the old store went to height 4."""
    manifest = restore(backup, tmp_path / "node", GENESIS, force=True)
    assert manifest["height"] == 1 and manifest["signed_through"] == 4
    with Store.open_leveldb(tmp_path / "node" / "ledger") as store:
        assert store.get_state(WAL_NAME) is None
        assert json.loads(store.get_state(WAL_ASIDE_NAME) or b"{}") == {"height": 2}
        assert [h for h in range(1, 8) if may_sign(store, h)] == [5, 6, 7]


def test_the_hold_ends_once_block_sync_commits_the_held_heights(
    backup: Path, tmp_path: Path
) -> None:
    """B5: the node votes again at the first height above the hold, after certified commits."""
    restore(backup, tmp_path / "node", GENESIS, force=True)
    with Store.open_leveldb(tmp_path / "node" / "ledger") as store:
        _commit(store, 3)
        assert not may_sign(store, store.height + 1)  # height 4 may have been signed
        _commit(store, 4)
        assert may_sign(store, store.height + 1)


def test_restore_without_the_old_store_holds_until_released(backup: Path, tmp_path: Path) -> None:
    """B5: nothing says how far the key got: sign nothing until the operator releases."""
    manifest = restore(backup, tmp_path / "fresh", GENESIS, force=False)
    assert manifest["signed_through"] is None
    with Store.open_leveldb(tmp_path / "fresh" / "ledger") as store:
        assert not any(may_sign(store, h) for h in (1, 2, 10**6))
        hold = release(store)
        assert hold is not None and hold.signed_through is None
        assert may_sign(store, 2)
        assert release(store) is None


def test_the_operator_bound_is_used_when_the_old_store_is_gone(
    backup: Path, tmp_path: Path
) -> None:
    manifest = restore(backup, tmp_path / "fresh", GENESIS, force=False, signed_through=7)
    assert manifest["signed_through"] == 7
    with Store.open_leveldb(tmp_path / "fresh" / "ledger") as store:
        assert [h for h in (2, 7, 8) if may_sign(store, h)] == [8]


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        b'{"signed_through": 3}',  # fields missing
        b'{"signed_through": true, "backup_height": 1, "restored_at": ""}',  # bool, not int
        b'{"signed_through": -1, "backup_height": 1, "restored_at": ""}',
        b'{"signed_through": "9", "backup_height": 1, "restored_at": ""}',
        b'{"signed_through": 3, "backup_height": 1, "restored_at": "", "x": 1}',  # extra field
        b'{"signed_through": 3, "backup_height": 1, "restored_at": "' + b"a" * 2000 + b'"}',
    ],
)
def test_an_unreadable_hold_means_sign_nothing(raw: bytes) -> None:
    """Every byte from a file is hostile; a hold we cannot read must not let the key sign."""
    store = Store.open_memory()
    store.put_state(HOLD_NAME, raw)
    assert not may_sign(store, 10**9)


def test_no_hold_lets_the_key_sign() -> None:
    store = Store.open_memory()
    assert may_sign(store, 1)
    store.put_state(HOLD_NAME, b'{"signed_through": 3, "backup_height": 1, "restored_at": ""}')
    assert (may_sign(store, 3), may_sign(store, 4)) == (False, True)


def _config(tmp_path: Path, data_dir: Path) -> Path:
    (tmp_path / "genesis.json").write_text(json.dumps(GENESIS.model_dump(mode="json")))
    (tmp_path / "node.key").write_text("unused by db restore")
    config = tmp_path / "node.toml"
    config.write_text(
        f'state = "AT"\ngenesis_path = "genesis.json"\nnode_key_path = "node.key"\n'
        f'data_dir = "{data_dir}"\n[api]\nport = 8001\n[p2p]\nport = 8101\n'
    )
    return config


def test_cli_restore_places_the_hold_and_release_hold_lifts_it(
    backup: Path, tmp_path: Path
) -> None:
    """B5 procedure (docs/OPERATIONS.md section 6): restore, then --release-hold on its own."""
    from click.testing import CliRunner

    from api.cli.ops import db

    config = _config(tmp_path, tmp_path / "fresh")
    runner = CliRunner()
    result = runner.invoke(db, ["restore", "--config", str(config), "--from", str(backup)])
    assert result.exit_code == 0, result.output
    assert "signs nothing until released" in result.output
    result = runner.invoke(
        db, ["restore", "--config", str(config), "--release-hold", "--from", str(backup)]
    )
    assert result.exit_code == 2 and "on its own" in result.output
    result = runner.invoke(db, ["restore", "--config", str(config), "--release-hold"])
    assert result.exit_code == 0 and "released" in result.output, result.output
    with Store.open_leveldb(tmp_path / "fresh" / "ledger") as store:
        assert may_sign(store, 2)
