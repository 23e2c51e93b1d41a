"""A node refuses a P2P listener off loopback without mutual TLS (finding M5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from api import serve
from api.cli.main import main
from node import logs
from node.config import ConfigError, Listen, NodeConfig, Tls, dump_config
from node.tls import check_p2p_exposure, is_loopback


def _config(host: str, tls: Tls | None = None) -> NodeConfig:
    return NodeConfig(
        state="CN",
        genesis_path=Path("g.json"),
        node_key_path=Path("n.key"),
        data_dir=Path("data"),
        api=Listen(port=8000),
        p2p=Listen(host=host, port=8100),
        tls=tls,
    )


def _tls(require_client_cert: bool) -> Tls:
    return Tls(
        ca_path=Path("ca.pem"),
        cert_path=Path("node.pem"),
        key_path=Path("node.key"),
        require_client_cert=require_client_cert,
    )


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("comity-cn", False),
        ("localhost.evil.example", False),
        ("", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("host", "tls", "insecure", "starts"),
    [
        ("127.0.0.1", None, False, True),  # the devnet: loopback needs no TLS
        ("::1", None, False, True),
        ("0.0.0.0", None, False, False),  # exposed, plaintext
        ("0.0.0.0", _tls(False), False, False),  # TLS but any client may connect
        ("10.0.0.5", None, False, False),
        ("0.0.0.0", _tls(True), False, True),  # mutual TLS
        ("0.0.0.0", None, True, True),  # the operator said --insecure
        ("0.0.0.0", _tls(False), True, True),
    ],
)
def test_p2p_exposure_check(host: str, tls: Tls | None, insecure: bool, starts: bool) -> None:
    config = _config(host, tls)
    if starts:
        check_p2p_exposure(config, insecure=insecure)
        return
    with pytest.raises(ConfigError) as refused:
        check_p2p_exposure(config, insecure=insecure)
    message = str(refused.value)
    assert f"{host}:8100" in message
    assert "comity tls init" in message and "[tls]" in message and "--insecure" in message


def _write_config(tmp_path: Path, host: str) -> Path:
    import json

    from api.cli.bootstrap import DEMO_STATES, MemberKeys, build_genesis
    from ledger.keys import SigningKey, save_signing_key

    member = MemberKeys.generate(*DEMO_STATES[0])
    genesis = tmp_path / "genesis.json"
    genesis.write_text(
        json.dumps(build_genesis("comity-test", [member], {member.state: "http://127.0.0.1:8100"}))
    )
    save_signing_key(tmp_path / "node.key", SigningKey.generate())
    doc: dict[str, Any] = {
        "state": member.state,
        "genesis_path": "genesis.json",
        "node_key_path": "node.key",
        "data_dir": "data",
        "api": {"host": "127.0.0.1", "port": 8000},
        "p2p": {"host": host, "port": 8100},
    }
    path = tmp_path / "node.toml"
    path.write_text(dump_config(doc))
    return path


def test_comity_run_refuses_plaintext_p2p_off_loopback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[NodeConfig] = []
    monkeypatch.setattr(serve, "run", lambda config, byzantine=None: started.append(config))
    monkeypatch.setattr(logs, "setup_logging", lambda *args: None)  # keep pytest's logging
    config = _write_config(tmp_path, "0.0.0.0")
    refused = CliRunner().invoke(main, ["run", "--config", str(config)])
    assert refused.exit_code == 2 and started == []
    assert "0.0.0.0:8100" in refused.output and "--insecure" in refused.output
    assert "Traceback" not in refused.output
    allowed = CliRunner().invoke(main, ["run", "--config", str(config), "--insecure"])
    assert allowed.exit_code == 0, allowed.output
    assert [c.p2p.host for c in started] == ["0.0.0.0"]
