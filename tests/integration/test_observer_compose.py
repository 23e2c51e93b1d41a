"""docker/compose.observers.yaml and docker/haproxy.cfg, checked without a Docker engine.

Each observer service runs a config that ``comity compose init --observers 2``
wrote: ``role = "observer"`` for CN, a node key of its own (never a
validator's), CN's encryption key, mutual TLS on P2P. HAProxy's backend names
exactly those services on the API port, and publishes one port on the host's
loopback. That HAProxy in front of observers serves reads equal to a
validator's is shown with real processes in test_observer_devnet.py.
"""

from __future__ import annotations

import re
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.cli.ops import COMPOSE_API_PORT, COMPOSE_DATA_DIR, COMPOSE_OBSERVER_STATE
from ledger.keys import load_signing_key
from node.config import load_config
from node.genesis import load_genesis
from node.tls import check_p2p_exposure
from tests.integration.test_ops_docker import DOCKER, _host_path, _mounts
from tests.opsnet import comity

OBSERVERS = ("comity-cn-obs1", "comity-cn-obs2")


@pytest.fixture(scope="module")
def overlay(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    project = tmp_path_factory.mktemp("compose-observers")
    for name in ("compose.yaml", "compose.observers.yaml", "haproxy.cfg"):
        shutil.copy(DOCKER / name, project / name)
    done = comity("compose", "init", "--dir", "./net", "--observers", "2", cwd=project)
    assert done.stdout.count("add_observer") == 2, done.stdout
    spec: dict[str, Any] = yaml.safe_load((project / "compose.observers.yaml").read_text())
    return spec, project


@pytest.mark.parametrize("name", OBSERVERS)
def test_each_observer_service_runs_an_observer_config(
    overlay: tuple[dict[str, Any], Path], name: str
) -> None:
    spec, project = overlay
    service = spec["services"][name]
    assert service["command"][:2] == ["run", "--config"]
    for source, _, mode in _mounts(service):
        if source.startswith("./"):
            assert mode == "ro" and (project / source).exists(), source
    config = load_config(_host_path(service, project, service["command"][2]))
    assert (config.role, config.state) == ("observer", COMPOSE_OBSERVER_STATE)
    assert str(config.data_dir) == COMPOSE_DATA_DIR and config.api.port == COMPOSE_API_PORT
    assert config.tls is not None and config.tls.require_client_cert
    check_p2p_exposure(config, insecure=False)
    assert "ports" not in service  # reached through HAProxy only
    assert config.node_key_path is not None
    assert stat.S_IMODE(config.node_key_path.stat().st_mode) == 0o600
    genesis = load_genesis(config.genesis_path)
    key = load_signing_key(config.node_key_path).public_hex
    assert key not in {m.node_pubkey for m in genesis.members}
    cn = project / "net" / COMPOSE_OBSERVER_STATE / "enc.key"
    assert config.enc_key_path is not None and config.enc_key_path.samefile(cn)
    assert "admin.key" not in " ".join(service["volumes"])
    assert service["hostname"] == name
    data = next(src for src, target, _ in _mounts(service) if target == COMPOSE_DATA_DIR)
    assert data in spec["volumes"] and data.startswith(name)


def test_haproxy_balances_exactly_the_observer_services(
    overlay: tuple[dict[str, Any], Path],
) -> None:
    spec, project = overlay
    text = (project / "haproxy.cfg").read_text()
    assert re.search(r"^\s*mode tcp$", text, re.M)  # TLS passes through to each observer
    servers = re.findall(r"^\s*server \S+ (\S+):(\d+)", text, re.M)
    assert sorted(servers) == [(name, str(COMPOSE_API_PORT)) for name in OBSERVERS]
    bind = re.search(r"^\s*bind :(\d+)$", text, re.M)
    assert bind is not None
    proxy = spec["services"]["cn-observers"]
    assert proxy["ports"] == [f"127.0.0.1:8010:{bind.group(1)}"]
    assert ("./haproxy.cfg", "/usr/local/etc/haproxy/haproxy.cfg", "ro") in _mounts(proxy)
    assert sorted(proxy["depends_on"]) == list(OBSERVERS)
