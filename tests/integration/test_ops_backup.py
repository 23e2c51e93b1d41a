"""Backup while the node runs, restore, and the offline store check (node/backup.py).

A 4-node in-process cluster on LevelDB stores; FR's API streams its snapshot
while records keep arriving, then the tests damage copies of the store in the
ways a disk or an operator can, and expect the check to name each problem.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import plyvel
import pytest
import pytest_asyncio

from ledger import keyspace as ks
from ledger.store import Store
from node.backup import BackupError, check_store, restore, verify_backup, write_backup
from node.tokens import create_token
from tests.cluster import Cluster

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.cluster(on_disk=True)]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def cluster(module_cluster: Cluster) -> Cluster:
    """The module's cluster (conftest.py, on LevelDB) with three rounds of records."""
    await module_cluster.commit_rounds(3, case_ref="CASE-B-{round}")
    return module_cluster


async def _backup(cluster: Cluster, out: Path, token: str) -> dict[str, object]:
    chunks = []
    async with cluster.api["FR"].stream(
        "POST", "/v1/admin/backup", headers={"authorization": f"Bearer {token}"}
    ) as reply:
        assert reply.status_code == 200
        async for chunk in reply.aiter_bytes():
            chunks.append(chunk)
    return write_backup(chunks, out)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def backup(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Taken while FR keeps committing: the snapshot must be one consistent height."""
    node = cluster.nodes["FR"]
    _, token = create_token(node.config.data_dir, "operator", "test backup")
    out = tmp_path_factory.mktemp("backup") / "fr"
    writer = asyncio.create_task(_backup(cluster, out, token))
    for state in cluster.states:  # commits racing with the backup
        await cluster.api[state].post("/v1/records", json=cluster.envelope(state))
    manifest = await writer
    header = node.store.get_header(int(manifest["height"]))  # type: ignore[call-overload]
    assert header is not None and header.ledger_root == manifest["ledger_root"]
    assert manifest["ledger_size"] == header.ledger_size
    assert manifest["genesis_hash"] == cluster.genesis.hash()
    return out


async def test_backup_needs_an_operator_token(cluster: Cluster) -> None:
    api = cluster.api["FR"]
    assert (await api.post("/v1/admin/backup")).status_code == 401
    _, auditor = create_token(cluster.nodes["FR"].config.data_dir, "auditor", "not an operator")
    reply = await api.post("/v1/admin/backup", headers={"authorization": f"Bearer {auditor}"})
    assert reply.status_code == 403


async def test_a_live_backup_verifies(cluster: Cluster, backup: Path) -> None:
    manifest, problems = verify_backup(backup, cluster.genesis)
    assert problems == []
    assert int(manifest["height"]) >= 3


async def test_a_truncated_or_altered_stream_is_refused(cluster: Cluster, tmp_path: Path) -> None:
    node = cluster.nodes["FR"]
    _, token = create_token(node.config.data_dir, "operator", "test")
    reply = await cluster.api["FR"].post(
        "/v1/admin/backup", headers={"authorization": f"Bearer {token}"}
    )
    stream = reply.content
    with pytest.raises(BackupError, match="truncated"):
        write_backup([stream[: len(stream) // 2]], tmp_path / "half")
    middle = len(stream) // 2
    altered = stream[:middle] + bytes([stream[middle] ^ 1]) + stream[middle + 1 :]
    with pytest.raises(BackupError):
        write_backup([altered], tmp_path / "altered")
    with pytest.raises(BackupError, match="magic"):
        write_backup([b"NOT-A-BACKUP" * 4], tmp_path / "magic")


def _damage(store_dir: Path, puts: dict[bytes, bytes], deletes: list[bytes]) -> None:
    db = plyvel.DB(str(store_dir))
    try:
        for key in deletes:
            db.delete(key)
        for key, value in puts.items():
            db.put(key, value)
    finally:
        db.close()


def _first_key(store_dir: Path, prefix: bytes) -> tuple[bytes, bytes]:
    db = plyvel.DB(str(store_dir))
    try:
        key, value = next(iter(db.iterator(prefix=prefix)))
    finally:
        db.close()
    return key, value


def _flip_after(value: bytes, marker: bytes) -> bytes:
    """Change the hex digit right after ``marker`` (the JSON stays well-formed)."""
    at = value.index(marker) + len(marker)
    flipped = b"1" if value[at : at + 1] != b"1" else b"2"
    return value[:at] + flipped + value[at + 1 :]


@pytest.mark.parametrize(
    "damage, expected",
    [
        ("drop_index", "missing on disk"),
        ("extra_index", "no block implies it"),
        ("flip_envelope", "envelope stored under"),
        ("flip_certificate", "height 1"),
        ("flip_locator", "different value"),
    ],
)
async def test_check_names_each_kind_of_damage(
    cluster: Cluster, backup: Path, tmp_path: Path, damage: str, expected: str
) -> None:
    copy = tmp_path / "ledger"
    shutil.copytree(backup / "ledger", copy)
    with Store.open_leveldb(copy) as store:
        assert check_store(store, cluster.genesis) == []
    index_key, _ = _first_key(copy, ks.INDEX)
    if damage == "drop_index":
        _damage(copy, {}, [index_key])
    elif damage == "extra_index":
        _damage(copy, {ks.index_key("case_ref", "FORGED", 0): b"\x00" * 32}, [])
    elif damage == "flip_envelope":
        key, value = _first_key(copy, ks.ENVELOPE)
        _damage(copy, {key: _flip_after(value, b'"nonce":"')}, [])
    elif damage == "flip_certificate":
        key = ks.cert_key(1)
        _, value = _first_key(copy, key)
        _damage(copy, {key: _flip_after(value, b'"signature":"')}, [])
    else:
        key, value = _first_key(copy, ks.LOCATOR)
        _damage(copy, {key: value[:-1] + bytes([value[-1] ^ 1])}, [])
    with Store.open_leveldb(copy) as store:
        problems = check_store(store, cluster.genesis)
    assert problems and expected in problems[0], problems


async def test_restore_refuses_a_live_store_then_replaces_it_with_force(
    cluster: Cluster, backup: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    manifest = restore(backup, data_dir, cluster.genesis, force=False)
    with Store.open_leveldb(data_dir / "ledger") as store:
        assert store.height == manifest["height"]
        assert check_store(store, cluster.genesis) == []
    with pytest.raises(BackupError, match="--force"):
        restore(backup, data_dir, cluster.genesis, force=False)
    restore(backup, data_dir, cluster.genesis, force=True)
    kept = [p.name for p in data_dir.iterdir() if p.name.startswith("ledger.before-restore-")]
    assert len(kept) == 1  # the replaced store is kept aside, never deleted


async def test_restore_refuses_a_damaged_backup(
    cluster: Cluster, backup: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "backup"
    shutil.copytree(backup, copy)
    key, value = _first_key(copy / "ledger", ks.ENVELOPE)
    _damage(copy / "ledger", {key: value + b" "}, [])
    with pytest.raises(BackupError, match="verification"):
        restore(copy, tmp_path / "data", cluster.genesis, force=False)
    assert not (tmp_path / "data" / "ledger").exists()
