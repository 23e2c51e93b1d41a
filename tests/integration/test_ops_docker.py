"""docker/Dockerfile and docker/compose.yaml, checked without a Docker engine.

The Dockerfile must install the project exactly as the project installs
itself (``pip install .`` from pyproject.toml) on a Python its
``requires-python`` allows, as a non-root user with the data dir a volume.
Each compose service's command must be one ``comity`` accepts, pointing at a
config that ``comity compose init`` wrote and ``load_config`` accepts once the
service's bind mounts are followed back to the host. That those configs run
a committing consortium over mutual TLS is shown in test_ops_tls.py.
"""

from __future__ import annotations

import json
import re
import stat
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.cli.main import main
from api.cli.ops import COMPOSE_DATA_DIR, COMPOSE_P2P_PORT, COMPOSE_STATES
from node.config import load_config
from node.genesis import load_genesis
from node.tls import check_p2p_exposure
from tests.opsnet import REPO, comity

DOCKER = REPO / "docker"


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (DOCKER / "Dockerfile").read_text())
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            rows.append((word.upper(), rest.strip()))
    return rows


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_dockerfile_installs_the_project_like_pyproject() -> None:
    rows = _dockerfile()
    base = next(args for word, args in rows if word == "FROM")
    match = re.fullmatch(r"python:(\d+)\.(\d+)-slim(-\w+)?", base)
    assert match, base
    minimum = re.fullmatch(r">=(\d+)\.(\d+)", _pyproject()["project"]["requires-python"])
    assert minimum is not None
    assert (int(match[1]), int(match[2])) == (int(minimum[1]), int(minimum[2]))
    installs = [args for word, args in rows if word == "RUN" and "pip" in args]
    assert len(installs) == 1 and re.search(r"\bpip install \.(\s|$)", installs[0])
    assert "-r " not in installs[0] and "requirements" not in installs[0]
    copied = " ".join(args for word, args in rows if word == "COPY")
    assert "pyproject.toml" in copied
    packages = _pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    for package in packages:  # every package pyproject ships is in the build context
        assert f"COPY {package.rstrip('*')} " in "COPY " + " COPY ".join(
            args for word, args in rows if word == "COPY"
        ), package


def test_dockerfile_runs_comity_as_non_root_with_a_data_volume() -> None:
    rows = dict(_dockerfile())  # last of each instruction
    user = rows["USER"].split(":")[0]
    assert user not in ("root", "0") and int(user) > 0
    assert json.loads(rows["VOLUME"]) == [COMPOSE_DATA_DIR]
    assert json.loads(rows["ENTRYPOINT"]) == ["comity"]
    assert _pyproject()["project"]["scripts"]["comity"] == "api.cli.main:main"
    health = rows["HEALTHCHECK"]
    assert "urllib" in health and "/healthz" in health and "curl" not in health


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """compose.yaml, and a copy of docker/ where ``comity compose init`` wrote ./net."""
    project = tmp_path_factory.mktemp("docker")
    comity("compose", "init", "--dir", "./net", cwd=project)
    spec = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return spec, project


def _mounts(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    out = []
    for volume in service["volumes"]:
        source, target, *mode = volume.split(":")
        out.append((source, target, mode[0] if mode else "rw"))
    return out


def _host_path(service: dict[str, Any], project: Path, container_path: str) -> Path:
    """Follow a container path back through the service's bind mounts."""
    for source, target, _ in _mounts(service):
        if source.startswith("./") and (
            container_path == target or container_path.startswith(target + "/")
        ):
            return project / source / container_path[len(target) :].lstrip("/")
    raise AssertionError(f"{container_path} is not bind-mounted")


def test_one_service_per_state_with_its_own_volume(compose: tuple[dict[str, Any], Path]) -> None:
    spec, _ = compose
    services = spec["services"]
    assert sorted(services) == [f"comity-{s.lower()}" for s in COMPOSE_STATES]
    volumes = [
        next(src for src, target, _ in _mounts(svc) if target == COMPOSE_DATA_DIR)
        for svc in services.values()
    ]
    assert len(set(volumes)) == 4 and set(volumes) == set(spec["volumes"])
    published = [svc["ports"] for svc in services.values()]
    assert all(len(p) == 1 and p[0].startswith("127.0.0.1:") for p in published)
    assert all(svc["build"]["dockerfile"] == "docker/Dockerfile" for svc in services.values())


@pytest.mark.parametrize("state", COMPOSE_STATES)
def test_each_service_runs_a_config_comity_accepts(
    compose: tuple[dict[str, Any], Path], state: str
) -> None:
    spec, project = compose
    name = f"comity-{state.lower()}"
    service = spec["services"][name]
    command = service["command"]
    assert command[:2] == ["run", "--config"]
    for source, _, mode in _mounts(service):
        if source.startswith("./"):
            assert mode == "ro" and (project / source).exists(), source
    host_config = _host_path(service, project, command[2])
    run = main.get_command(
        main.make_context("comity", ["run", "--help"], resilient_parsing=True), command[0]
    )
    assert run is not None  # click accepts the command line as written
    parsed = run.make_context(command[0], [*command[1:2], str(host_config)])
    assert parsed.params["config_path"] == host_config
    config = load_config(host_config)  # every path resolves through the mounts
    assert config.state == state and str(config.data_dir) == COMPOSE_DATA_DIR
    assert config.api.host == config.p2p.host == "0.0.0.0"
    assert service["ports"][0].endswith(f":{config.api.port}")
    assert config.p2p.port == COMPOSE_P2P_PORT and config.tls is not None
    assert config.tls.require_client_cert and "--insecure" not in command
    check_p2p_exposure(config, insecure=False)  # 0.0.0.0 is allowed: P2P is mutual TLS
    assert config.node_key_path is not None  # compose keys are files, not in a token
    for key_path in (config.node_key_path, config.tls.key_path):
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    members = {m.state: m.p2p_url for m in load_genesis(config.genesis_path).members}
    assert members[state] == f"https://{service['hostname']}:{config.p2p.port}"
    assert service["hostname"] == name
    assert _host_path(service, project, service["environment"]["COMITY_HEALTH_CA"]).is_file()
    assert "admin.key" not in " ".join(service["volumes"])  # operator keys stay on the host
