"""``comity tls init`` output (node/tls.py) and the ``[tls]`` config table."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from node.config import ConfigError, dump_config, load_config
from node.tls import init_tls


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_ca_and_node_certificates(tmp_path: Path) -> None:
    files = init_tls(tmp_path, ["CN", "FR"], ["comity-{state_lower}", "127.0.0.1", "localhost"])
    ca = _cert(tmp_path / "ca.pem")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    for entry in files:
        cert = _cert(entry.cert_path)
        cert.verify_directly_issued_by(ca)  # signed by the consortium CA
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == [
            f"comity-{entry.state.lower()}",
            "localhost",
        ]
        assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
        usages = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
        assert usages == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
        assert stat.S_IMODE(entry.key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "ca.key").stat().st_mode) == 0o600


def test_rerun_reuses_the_ca_and_keeps_existing_certificates(tmp_path: Path) -> None:
    init_tls(tmp_path, ["CN"], ["127.0.0.1"])
    ca_before = (tmp_path / "ca.pem").read_bytes()
    cn_before = (tmp_path / "CN" / "node.pem").read_bytes()
    init_tls(tmp_path, ["CN", "TH"], ["127.0.0.1"])
    assert (tmp_path / "ca.pem").read_bytes() == ca_before
    assert (tmp_path / "CN" / "node.pem").read_bytes() == cn_before
    _cert(tmp_path / "TH" / "node.pem").verify_directly_issued_by(_cert(tmp_path / "ca.pem"))


def _config(tmp_path: Path, tls: dict[str, object]) -> Path:
    for name in ("genesis.json", "node.key"):
        (tmp_path / name).write_text("x")
    path = tmp_path / "node.toml"
    path.write_text(
        dump_config(
            {
                "state": "CN",
                "genesis_path": "genesis.json",
                "node_key_path": "node.key",
                "data_dir": "data",
                "api": {"port": 1},
                "p2p": {"port": 2},
                "tls": tls,
            }
        )
    )
    return path


def test_tls_paths_resolve_against_the_config_file(tmp_path: Path) -> None:
    init_tls(tmp_path / "tls", ["CN"], ["127.0.0.1"])
    config = load_config(
        _config(
            tmp_path,
            {
                "ca_path": "tls/ca.pem",
                "cert_path": "tls/CN/node.pem",
                "key_path": "tls/CN/node-tls.key",
            },
        )
    )
    assert config.tls is not None
    assert config.tls.ca_path == (tmp_path / "tls" / "ca.pem").resolve()
    assert config.tls.require_client_cert is True and config.tls.api is True


@pytest.mark.parametrize(
    "tls, message",
    [
        ({"ca_path": "missing.pem", "cert_path": "x", "key_path": "y"}, "tls.ca_path"),
        ({"ca_path": "genesis.json", "cert_path": "node.key"}, "tls.key_path"),
        ({"ca_path": "a", "cert_path": "b", "key_path": "c", "verify": False}, "tls.verify"),
    ],
)
def test_bad_tls_tables_name_the_key(tmp_path: Path, tls: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_config(tmp_path, tls))
