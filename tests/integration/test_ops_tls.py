"""Mutual TLS between real node processes on 127.0.0.1.

The consortium is exactly what ``comity compose init`` writes for Docker
(keys, genesis, configs, CA and certificates), run on loopback ports
(tests/opsnet.py). Records commit over mTLS; a TLS client with a certificate
from another CA, or with none, cannot talk to a P2P port; the Dockerfile's
HEALTHCHECK command passes against a node's HTTPS API.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from node.tls import client_context, init_tls
from tests.opsnet import REPO, LoopbackNet, comity

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackNet]:
    root = tmp_path_factory.mktemp("tlsnet")
    comity("compose", "init", "--dir", str(root / "net"))
    network = LoopbackNet(root / "net", root / "data")
    network.start()
    try:
        yield network
    finally:
        network.stop()


def test_records_commit_over_mutual_tls(net: LoopbackNet) -> None:
    with net.client() as client:
        first = net.submit_and_wait(client, "CN")
        second = net.submit_and_wait(client, "VN")
        assert second > first >= 1
        for state in net.procs:
            status = client.get(f"{net.api_url(state)}/v1/status", headers=net.auth(state))
            peers = status.json()["peers"]
            assert len(peers) == 3 and all(p["up"] for p in peers), peers


def _p2p(net: LoopbackNet, verify: ssl.SSLContext) -> httpx.Response:
    with httpx.Client(verify=verify, timeout=10) as client:
        return client.post(f"https://127.0.0.1:{net.p2p_ports['FR']}/p2p/v1/status", content=b"{}")


def test_p2p_accepts_a_consortium_certificate(net: LoopbackNet) -> None:
    tls = net.net / "tls"
    reply = _p2p(
        net, client_context(tls / "ca.pem", tls / "CN" / "node.pem", tls / "CN" / "node-tls.key")
    )
    assert reply.status_code == 403  # TLS let us in; the unsigned body is then refused


def test_p2p_refuses_a_certificate_from_an_unknown_ca(net: LoopbackNet, tmp_path: Path) -> None:
    rogue = init_tls(tmp_path / "rogue", ["CN"], ["127.0.0.1"])[0]
    context = client_context(net.net / "tls" / "ca.pem", rogue.cert_path, rogue.key_path)
    with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
        _p2p(net, context)


def test_p2p_refuses_a_client_without_certificate(net: LoopbackNet) -> None:
    context = ssl.create_default_context(cafile=str(net.net / "tls" / "ca.pem"))
    with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
        _p2p(net, context)


def test_p2p_is_not_served_in_plain_http(net: LoopbackNet) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.post(
            f"http://127.0.0.1:{net.p2p_ports['FR']}/p2p/v1/status", content=b"{}", timeout=5
        ).raise_for_status()


def test_the_api_serves_https_without_client_certificates(net: LoopbackNet) -> None:
    context = ssl.create_default_context(cafile=str(net.net / "tls" / "ca.pem"))
    reply = httpx.get(f"{net.api_url('TH')}/healthz", verify=context, timeout=5)
    assert reply.json() == {"status": "ok"}


def test_dockerfile_healthcheck_passes_against_a_tls_node(net: LoopbackNet) -> None:
    text = (REPO / "docker" / "Dockerfile").read_text()
    command = re.search(r"HEALTHCHECK[^\n]*\\\n\s*CMD (\[.*\])", text)
    assert command is not None
    argv = json.loads(command.group(1))
    env = {
        **os.environ,
        "COMITY_HEALTH_URL": f"https://localhost:{net.api_ports['FR']}/healthz",
        "COMITY_HEALTH_CA": str(net.net / "tls" / "ca.pem"),
    }
    assert subprocess.run(argv, env=env, timeout=30).returncode == 0
    env["COMITY_HEALTH_URL"] = f"https://localhost:{net.p2p_ports['FR'] + 50}/healthz"
    assert subprocess.run(argv, env=env, capture_output=True, timeout=30).returncode != 0
