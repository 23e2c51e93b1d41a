"""Creating a consortium: member key sets, a genesis document and node configs.

Used by ``comity devnet`` (a local consortium of demo states) and by tests
that build clusters in one process. Keys are generated fresh; private keys
are written 0600 as PKCS#8 PEM and are never printed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ledger.keys import SigningKey, load_signing_key, save_signing_key
from ledger.records import format_time
from node import clock
from node.genesis import full_consensus

DEMO_STATES: tuple[tuple[str, str], ...] = (
    ("CN", "China"),
    ("FR", "France"),
    ("TH", "Thailand"),
    ("VN", "Viet Nam"),
    ("BR", "Brazil"),
    ("DE", "Germany"),
    ("KE", "Kenya"),
    ("JP", "Japan"),
    ("ZA", "South Africa"),
    ("IN", "India"),
    ("MX", "Mexico"),
    ("NG", "Nigeria"),
    ("ID", "Indonesia"),
    ("AR", "Argentina"),
    ("EG", "Egypt"),
    ("PL", "Poland"),
)

KEY_NAMES = ("node", "admin", "investigator", "authority", "integration")


@dataclass(frozen=True)
class MemberKeys:
    state: str
    name: str
    node: SigningKey
    admin: SigningKey
    investigator: SigningKey
    authority: SigningKey
    enc: X25519PrivateKey
    #: The adapters' key (role ``integration``: receipts only, docs/CHANNELS.md).
    integration: SigningKey | None = None

    @property
    def enc_public_hex(self) -> str:
        return self.enc.public_key().public_bytes_raw().hex()

    @classmethod
    def generate(cls, state: str, name: str) -> MemberKeys:
        return cls(
            state,
            name,
            SigningKey.generate(),
            SigningKey.generate(),
            SigningKey.generate(),
            SigningKey.generate(),
            X25519PrivateKey.generate(),
            SigningKey.generate(),
        )

    @classmethod
    def load_or_create(cls, folder: Path, state: str, name: str) -> MemberKeys:
        """Reuse the keys in ``folder`` if present, else create them (0600 files)."""
        folder.mkdir(parents=True, exist_ok=True)
        keys: dict[str, SigningKey] = {}
        for key_name in KEY_NAMES:
            path = folder / f"{key_name}.key"
            if not path.exists():
                save_signing_key(path, SigningKey.generate())
            keys[key_name] = load_signing_key(path)
        enc_path = folder / "enc.key"
        if not enc_path.exists():
            _write_private(
                enc_path,
                X25519PrivateKey.generate().private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ),
            )
        enc = serialization.load_pem_private_key(enc_path.read_bytes(), password=None)
        assert isinstance(enc, X25519PrivateKey)
        return cls(
            state,
            name,
            keys["node"],
            keys["admin"],
            keys["investigator"],
            keys["authority"],
            enc,
            keys["integration"],
        )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def build_genesis(
    chain_id: str,
    members: list[MemberKeys],
    p2p_urls: dict[str, str],
    consensus: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A genesis document enrolling each member's demo investigator and authority (and its
    integration key, when it has one: the receipt adapters', docs/CHANNELS.md)."""
    return {
        "chain_id": chain_id,
        "genesis_time": format_time(clock.utcnow()),
        "consensus": full_consensus(consensus),
        "members": [
            {
                "state": m.state,
                "name": m.name,
                "node_pubkey": m.node.public_hex,
                "admin_pubkeys": [m.admin.public_hex],
                "enc_pubkey": m.enc_public_hex,
                "p2p_url": p2p_urls[m.state],
            }
            for m in members
        ],
        "enrollments": [
            enrollment
            for m in members
            for enrollment in (
                {
                    "state": m.state,
                    "pubkey": m.investigator.public_hex,
                    "roles": ["investigator"],
                    "agency": f"{m.name} cybercrime unit",
                },
                {
                    "state": m.state,
                    "pubkey": m.authority.public_hex,
                    "roles": ["authority"],
                    "agency": f"{m.name} central authority",
                },
                *(
                    [
                        {
                            "state": m.state,
                            "pubkey": m.integration.public_hex,
                            "roles": ["integration"],
                            "agency": f"{m.name} integration adapter",
                        }
                    ]
                    if m.integration is not None
                    else []
                ),
            )
        ],
    }
