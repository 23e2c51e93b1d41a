"""An observer node's role, checked without a cluster (docs/OPERATIONS.md, "Observer nodes").

The driver of an observer never builds a replica, even when it is handed a
key the validator set holds and records are pending, and refuses loudly
(``InvariantViolation``) if asked to propose or send a consensus message; the
config refuses the receipt webhook on an observer, and ``check_observer_key``
refuses a validator's key.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from consensus.messages import Vote
from ledger.errors import InvariantViolation
from node.config import ConfigError, load_config
from node.driver import Driver
from node.mempool import Mempool
from node.runtime import check_observer_key
from tests.unit.test_governance import Chain


def _driver(chain: Chain, *, observer: bool) -> Driver:
    return Driver(
        chain.app,
        Mempool(100, 1 << 20),
        chain.keys("CN").node,
        lambda item, size: None,
        inbox_max=100,
        heartbeat_ms=1,  # a heartbeat is always due: a validator would enter at once
        rebroadcast_ms=1000,
        on_commit=lambda b, c: None,
        on_behind=lambda h: None,
        observer=observer,
    )


async def test_an_observer_driver_builds_no_replica_where_a_validator_would() -> None:
    chain = Chain()
    validator = _driver(chain, observer=False)
    await asyncio.sleep(0.01)  # past the 1 ms heartbeat after the genesis time
    await validator._maybe_enter()
    assert validator.replica is not None  # the same inputs make a validator vote
    observer = _driver(Chain(), observer=True)
    await asyncio.sleep(0.01)
    await observer._handle_group(["wake", "tick"])
    assert observer.replica is None and observer.app.store.get_state("consensus") is None


async def test_an_observer_driver_refuses_to_propose_or_send() -> None:
    driver = _driver(Chain(), observer=True)
    with pytest.raises(InvariantViolation, match="propose"):
        await driver._propose(1, 0)
    vote = Vote("prevote", 1, 0, None, "aa" * 32, "00" * 64)
    with pytest.raises(InvariantViolation, match="Vote"):
        driver._send(vote)


def test_check_observer_key_refuses_a_validators_key() -> None:
    chain = Chain()
    with pytest.raises(ConfigError, match="validator's node key"):
        check_observer_key(chain.app, chain.keys("FR").node.public_hex)
    check_observer_key(chain.app, "ab" * 32)  # a key of its own: accepted


def _config(tmp_path: Path, extra: str) -> Path:
    for name in ("genesis.json", "node.key", "secret", "integration.key"):
        (tmp_path / name).write_text("x")
        (tmp_path / name).chmod(0o600)
    path = tmp_path / "node.toml"
    path.write_text(
        'state = "CN"\ngenesis_path = "genesis.json"\nnode_key_path = "node.key"\n'
        f'data_dir = "data"\n{extra}\n[api]\nport = 8000\n[p2p]\nport = 8100\n'
    )
    return path


def test_the_config_says_the_role_and_refuses_an_observer_with_a_webhook(tmp_path: Path) -> None:
    assert load_config(_config(tmp_path, "")).role == "validator"
    assert load_config(_config(tmp_path, 'role = "observer"')).role == "observer"
    with pytest.raises(ConfigError, match="role"):
        load_config(_config(tmp_path, 'role = "voter"'))
    webhook = (
        'role = "observer"\n[receipts]\nwebhook_secret_path = "secret"\n'
        'integration_key_path = "integration.key"'
    )
    with pytest.raises(ConfigError, match=r"receipts\]\) belongs on a validator"):
        load_config(_config(tmp_path, webhook))
