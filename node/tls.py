"""Transport security: a consortium CA, node certificates, and the SSL contexts using them.

Theory of operation
-------------------
Record and vote signatures already make every message authentic end to end;
TLS adds what signatures cannot: confidentiality of sealed-case traffic on
the wire, and a P2P port that refuses any TLS client the consortium has not
certified before a single HTTP byte is parsed. One consortium CA (ECDSA
P-256) signs one certificate per node; each certificate carries both the
``serverAuth`` and ``clientAuth`` usages, because a node is the server of its
own P2P port and the client of every other one. Its subject alternative
names list the hosts peers dial (loopback, the compose service name, ...).

The CA private key is the consortium's most sensitive TLS secret: whoever
holds it can mint a certificate every node accepts. ``comity tls init``
writes it 0600 next to the certificates; in a real consortium it stays
offline with whoever runs admissions, and only ``ca.pem`` is distributed.

A node refuses to start with a P2P listener reachable off its host and no
mutual TLS (``check_p2p_exposure``), unless its operator says ``--insecure``:
without TLS, whoever sits on the path reads sealed-case gossip, and the
signed wire (node/wire.py) alone leaves the port open to anonymous load.

Layout written by ``init_tls`` (the one ``[tls]`` in node configs points at):

    DIR/ca.pem  DIR/ca.key           the consortium CA (key 0600)
    DIR/<STATE>/node.pem             the node's certificate (server + client)
    DIR/<STATE>/node-tls.key         its ECDSA private key, PKCS#8 PEM, 0600
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from node.config import ConfigError, NodeConfig

CA_VALID_DAYS = 3650
NODE_VALID_DAYS = 825  # the CA/Browser Forum's former leaf maximum; rotate yearly
DEFAULT_HOSTS = ("127.0.0.1", "localhost")


@dataclass(frozen=True, slots=True)
class NodeTlsFiles:
    state: str
    cert_path: Path
    key_path: Path


def _write_private(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """PKCS#8 PEM, created 0600 (never world-readable, not even briefly)."""
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Comity consortium"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _san(hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def create_ca(
    directory: Path, chain_name: str
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed CA (path length 0: it signs node certificates, never other CAs)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{chain_name} CA"))
        .issuer_name(_name(f"{chain_name} CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=CA_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    _write_private(directory / "ca.key", key)
    (directory / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
    key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{directory / 'ca.key'} is not an ECDSA key")
    return cert, key


def issue_node_cert(
    directory: Path,
    state: str,
    hosts: Sequence[str],
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
) -> NodeTlsFiles:
    """One node certificate, usable as TLS server and TLS client, signed by the CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"comity node {state}"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=NODE_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, True, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(_san(hosts), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    folder = directory / state
    folder.mkdir(parents=True, exist_ok=True)
    files = NodeTlsFiles(state, folder / "node.pem", folder / "node-tls.key")
    _write_private(files.key_path, key)
    files.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return files


def init_tls(
    directory: Path, states: Sequence[str], hosts: Sequence[str], chain_name: str = "comity"
) -> list[NodeTlsFiles]:
    """Create the CA if absent (else reuse it) and a certificate for each new state.

    ``hosts`` may contain ``{state_lower}``, e.g. ``comity-{state_lower}`` for the
    compose service names. Existing node certificates are kept, never overwritten.
    """
    if (directory / "ca.pem").exists():
        ca_cert, ca_key = load_ca(directory)
    else:
        ca_cert, ca_key = create_ca(directory, chain_name)
    out = []
    for state in states:
        folder = directory / state
        if (folder / "node.pem").exists():
            out.append(NodeTlsFiles(state, folder / "node.pem", folder / "node-tls.key"))
            continue
        names = [h.format(state_lower=state.lower(), state=state) for h in hosts]
        out.append(issue_node_cert(directory, state, names, ca_cert, ca_key))
    return out


# --- SSL contexts ------------------------------------------------------------------------


def client_context(ca_path: Path, cert_path: Path, key_path: Path) -> ssl.SSLContext:
    """What a node's peer links use: trust only the consortium CA, present our cert."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_path))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert_path), str(key_path))
    return context


def server_cert_reqs(require_client_cert: bool) -> int:
    return int(ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_NONE)


# --- start-up guard ----------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ::1 (not for 0.0.0.0 or ::)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name may resolve to anything: treat it as exposed


def check_p2p_exposure(config: NodeConfig, *, insecure: bool) -> None:
    """Refuse a non-loopback P2P listener without mutual TLS, unless ``insecure``."""
    tls = config.tls
    if insecure or is_loopback(config.p2p.host) or (tls is not None and tls.require_client_cert):
        return
    what = "has no [tls] table" if tls is None else "sets tls.require_client_cert = false"
    raise ConfigError(
        f"the P2P listener {config.p2p.host}:{config.p2p.port} is reachable from other hosts "
        f"but the config {what}, so peers would talk without mutual TLS. Configure mutual "
        f"TLS: create a consortium CA and node certificates with `comity tls init`, then add "
        f"[tls] with ca_path, cert_path and key_path (require_client_cert defaults to true; "
        f'docs/OPERATIONS.md, "Transport security"); or listen on 127.0.0.1; or pass '
        f"--insecure to `comity run` to accept plaintext P2P"
    )
