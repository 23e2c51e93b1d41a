"""SoftHSM2 tokens for the PKCS#11 tests (node/hsm.py), each in a temporary directory.

SoftHSM2 reads ``SOFTHSM2_CONF`` and lists its tokens once, when a process first
loads its module: a token initialised later is not seen by that process. So a test
process keeps one configuration (one token directory) for its whole life, with a
pool of ``POOL_TOKENS`` tokens initialised before the module is loaded, and each
test takes fresh ones from the pool (``new_token``). A child process (a node of a ProcNet) gets its own ``SOFTHSM2_CONF`` in its
environment. scripts/test installs Debian's softhsm2; without it these tests skip
with a reason (and fail under CI, tests/tiers.py).
"""

from __future__ import annotations

import atexit
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import nacl.signing
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
SO_PIN = "so-pin-not-used-by-comity"
#: The user PIN of every pool token.
PIN = "pool-pin-4711"
POOL_TOKENS = 40
_process_conf: Path | None = None
_pool: list[str] = []
PEM_BLOCK = re.compile(
    rb"-----BEGIN [A-Z ]*PRIVATE KEY-----.+?-----END [A-Z ]*PRIVATE KEY-----", re.S
)
HEX_RUN = re.compile(rb"(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])")


def require_softhsm() -> None:
    """Skip unless SoftHSM2 and python-pkcs11 are installed."""
    if not MODULE.is_file() or shutil.which("softhsm2-util") is None:
        pytest.skip("softhsm2 is not installed (scripts/test installs it)")
    pytest.importorskip("pkcs11", reason="python-pkcs11 is not installed (the test extra)")


def write_conf(root: Path) -> Path:
    """A SoftHSM2 configuration whose tokens live under ``root``."""
    tokens = root / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    return conf


def process_conf() -> Path:
    """This process's SoftHSM2 configuration and token pool, made on first use (before
    anything in this process loads the module) and set in ``os.environ``."""
    global _process_conf
    if _process_conf is None:
        root = Path(tempfile.mkdtemp(prefix="comity-softhsm-"))
        atexit.register(shutil.rmtree, root, True)
        conf = write_conf(root)
        for _ in range(POOL_TOKENS):
            label = "pool-" + secrets.token_hex(4)
            init_token(conf, label, PIN)
            _pool.append(label)
        os.environ["SOFTHSM2_CONF"] = str(conf)
        _process_conf = conf
    return _process_conf


def init_token(conf: Path, label: str, pin: str) -> None:
    """Initialise a fresh token labelled ``label`` with user PIN ``pin``."""
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            label,
            "--pin",
            pin,
            "--so-pin",
            SO_PIN,
        ],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        check=True,
        capture_output=True,
    )


def new_token() -> str:
    """The label of a token from the pool that no other test has used (PIN ``PIN``)."""
    process_conf()
    if not _pool:
        raise RuntimeError(f"the SoftHSM2 pool of {POOL_TOKENS} tokens is used up")
    return _pool.pop()


def write_pin(path: Path, pin: str, mode: int = 0o600) -> Path:
    path.write_text(pin + "\n")
    path.chmod(mode)
    return path


def private_key_material(roots: list[Path], public_keys: set[str]) -> list[str]:
    """Every Ed25519 private key under ``roots``, and every 64-hex run that is the seed
    of one of ``public_keys``; X25519 PEM keys (the encryption keys) are allowed."""
    found = []
    files = sorted(p for root in roots for p in root.rglob("*") if p.is_file())
    for path in files:
        data = path.read_bytes()
        for block in PEM_BLOCK.findall(data):
            key = serialization.load_pem_private_key(block, password=None)
            if not isinstance(key, X25519PrivateKey):
                found.append(f"{path}: a {type(key).__name__} PEM private key")
        for run in HEX_RUN.findall(data):
            public = bytes(nacl.signing.SigningKey(bytes.fromhex(run.decode())).verify_key)
            if public.hex() in public_keys:
                found.append(f"{path}: the seed of {public.hex()[:16]}")
        if b"PRIVATE KEY" in data and not PEM_BLOCK.search(data):
            found.append(f"{path}: a broken PEM private key")
    return found
