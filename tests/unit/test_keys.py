"""Ed25519 keys: RFC 8032 vectors, on-disk forms, and interop with the openssl CLI.

docs/DESIGN.md ("Keys") fixes PKCS#8 PEM as written by
``openssl genpkey -algorithm ed25519``; the tests below prove both directions
of that promise with the real openssl binary.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ledger.errors import EncodingError
from ledger.keys import (
    SigningKey,
    load_signing_key,
    public_key_from_text,
    public_key_pem,
    save_signing_key,
    signing_key_from_text,
    verify,
    verify_hex,
)

# RFC 8032 §7.1, TEST 1 and TEST 2 (https://www.rfc-editor.org/rfc/rfc8032#section-7.1):
# (secret key, public key, message, signature), all hex.
RFC8032_VECTORS = [
    pytest.param(
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        id="rfc8032-test1",
    ),
    pytest.param(
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        id="rfc8032-test2",
    ),
]

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(
    OPENSSL is None, reason="the openssl CLI is not installed on this machine"
)


@pytest.mark.parametrize(("secret", "public", "message", "signature"), RFC8032_VECTORS)
def test_rfc8032_7_1_vectors(secret: str, public: str, message: str, signature: str) -> None:
    key = SigningKey(bytes.fromhex(secret))
    msg, sig = bytes.fromhex(message), bytes.fromhex(signature)
    assert key.public_hex == public
    assert key.sign(msg) == sig  # Ed25519 signing is deterministic (RFC 8032 §5.1.6)
    assert verify(bytes.fromhex(public), msg, sig) is True
    assert verify_hex(public, msg, signature) is True
    assert verify(bytes.fromhex(public), msg + b"\x00", sig) is False
    flipped = bytes([sig[0] ^ 0x01]) + sig[1:]
    assert verify(bytes.fromhex(public), msg, flipped) is False


@pytest.mark.parametrize(("secret", "public", "message", "signature"), RFC8032_VECTORS)
def test_rfc8032_vectors_through_pem_and_hex_seed(
    secret: str, public: str, message: str, signature: str
) -> None:
    key = SigningKey(bytes.fromhex(secret))
    for text in (key.to_pem(), secret.encode(), secret.encode() + b"\n"):
        loaded = signing_key_from_text(text)
        assert loaded.public_hex == public
        assert loaded.sign(bytes.fromhex(message)).hex() == signature


# --- PEM and hex forms -------------------------------------------------------------


def test_pem_round_trip_is_pkcs8() -> None:
    key = SigningKey.generate()
    pem = key.to_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")  # PKCS#8 (RFC 5958), unencrypted
    assert pem.endswith(b"-----END PRIVATE KEY-----\n")
    # RFC 8410 §7: an Ed25519 PKCS#8 key is 48 bytes of DER, the seed last.
    der = serialization.load_pem_private_key(pem, None).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert len(der) == 48 and der.endswith(key.seed())
    again = signing_key_from_text(pem)
    assert again.seed() == key.seed()
    assert again.public_hex == key.public_hex


def test_public_pem_is_spki_and_reads_back() -> None:
    key = SigningKey.generate()
    pem = key.public_pem()
    assert pem == public_key_pem(key.public_key)
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----\n")
    der = serialization.load_pem_public_key(pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert len(der) == 44 and der.endswith(key.public_key)  # RFC 8410 §4
    assert public_key_from_text(pem) == key.public_hex
    assert public_key_from_text(pem.decode()) == key.public_hex


def test_public_key_from_hex_text_is_lowercased() -> None:
    key = SigningKey.generate()
    assert public_key_from_text(key.public_hex.upper() + "\n") == key.public_hex


@pytest.mark.parametrize(
    ("text", "field", "code"),
    [
        (b"ab" * 31, "pubkey", "bad_hex"),
        (b"ab" * 33, "pubkey", "bad_hex"),
        (b"zz" * 32, "pubkey", "bad_hex"),
        (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "pubkey", "bad_key"),
    ],
)
def test_bad_public_key_text_refused(text: bytes, field: str, code: str) -> None:
    with pytest.raises(EncodingError) as info:
        public_key_from_text(text)
    assert (info.value.field, info.value.code) == (field, code)


def test_private_pem_is_not_a_public_key() -> None:
    with pytest.raises(EncodingError) as info:
        public_key_from_text(SigningKey.generate().to_pem())
    assert (info.value.field, info.value.code) == ("pubkey", "bad_key")


def _ec_pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _encrypted_pem() -> bytes:
    private = serialization.load_pem_private_key(SigningKey.generate().to_pem(), None)
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (
            lambda: b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n",
            "bad_key",
        ),
        (_ec_pem, "bad_key"),  # a PKCS#8 key, but not Ed25519
        (_encrypted_pem, "bad_key"),  # Comity reads unencrypted keys only
        (lambda: b"9D61" * 16, "bad_hex"),  # seed hex must be lowercase
        (lambda: b"9d61" * 15, "bad_hex"),  # 30 bytes
        (lambda: b"\xff\xfe" * 32, "bad_hex"),
        (lambda: b"", "bad_hex"),
    ],
)
def test_bad_private_key_text_refused(make: object, code: str) -> None:
    assert callable(make)
    with pytest.raises(EncodingError) as info:
        signing_key_from_text(make())
    assert (info.value.field, info.value.code) == ("key", code)


def test_seed_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        SigningKey(b"\x00" * 31)


def test_repr_and_str_never_show_the_seed() -> None:
    key = SigningKey(bytes.fromhex(RFC8032_VECTORS[0].values[0]))  # type: ignore[arg-type]
    for shown in (repr(key), str(key), f"{key}", f"{key!r}", repr([key])):
        assert "9d61b19d" not in shown.lower()
        assert key.public_hex in shown
    assert not hasattr(key, "__dict__")  # nothing else to leak via vars()


# --- files ---------------------------------------------------------------------------


def test_saved_key_has_mode_0600_and_loads_back(tmp_path: Path) -> None:
    key = SigningKey.generate()
    path = tmp_path / "node.pem"
    old_umask = os.umask(0)  # even with a permissive umask
    try:
        save_signing_key(path, key)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == key.to_pem()
    assert load_signing_key(path).seed() == key.seed()
    assert load_signing_key(str(path)).public_hex == key.public_hex


def test_save_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "node.pem"
    first, second = SigningKey.generate(), SigningKey.generate()
    save_signing_key(path, first)
    with pytest.raises(FileExistsError):
        save_signing_key(path, second)
    assert load_signing_key(path).public_hex == first.public_hex


def test_explicit_overwrite_tightens_mode(tmp_path: Path) -> None:
    path = tmp_path / "node.pem"
    path.write_bytes(b"old")
    path.chmod(0o644)
    key = SigningKey.generate()
    save_signing_key(path, key, overwrite=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_signing_key(path).public_hex == key.public_hex


def test_hex_seed_file(tmp_path: Path) -> None:
    key = SigningKey.generate()
    path = tmp_path / "seed.hex"
    path.write_text(key.seed().hex() + "\n")
    assert load_signing_key(path).public_hex == key.public_hex


# --- verification never crashes ------------------------------------------------------


def _signed() -> tuple[SigningKey, bytes, bytes]:
    key = SigningKey.generate()
    message = b"comity"
    return key, message, key.sign(message)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda pk, sig: (pk, sig[:63]),
        lambda pk, sig: (pk, sig + b"\x00"),
        lambda pk, sig: (pk, b""),
        lambda pk, sig: (pk, b"\x00" * 64),
        lambda pk, sig: (pk, sig[:32] + bytes([sig[32] ^ 0x80]) + sig[33:]),
        lambda pk, sig: (pk, sig[:63] + bytes([sig[63] | 0xF0])),  # S >= L: non-canonical
        lambda pk, sig: (pk[:31], sig),
        lambda pk, sig: (pk + b"\x00", sig),
        lambda pk, sig: (b"", sig),
        lambda pk, sig: (b"\xff" * 32, sig),  # not a curve point
        lambda pk, sig: (b"\x01" + b"\x00" * 31, sig),  # identity: small order
        lambda pk, sig: (SigningKey.generate().public_key, sig),  # another key
    ],
)
def test_bad_signatures_and_keys_return_false(mutate: object) -> None:
    assert callable(mutate)
    key, message, sig = _signed()
    public, signature = mutate(key.public_key, sig)
    assert verify(public, message, signature) is False
    assert verify(key.public_key, message, sig) is True


@pytest.mark.parametrize(
    "pair",
    [
        lambda pk, sig: (pk.upper(), sig),
        lambda pk, sig: (pk, sig.upper()),
        lambda pk, sig: (pk[:-2], sig),
        lambda pk, sig: (pk, sig[:-2]),
        lambda pk, sig: (pk, "g" * 128),
        lambda pk, sig: (None, sig),
        lambda pk, sig: (pk, 12),
    ],
)
def test_verify_hex_rejects_malformed_hex(pair: object) -> None:
    assert callable(pair)
    key, message, sig = _signed()
    public_hex, signature_hex = pair(key.public_hex, sig.hex())
    assert verify_hex(public_hex, message, signature_hex) is False
    assert verify_hex(key.public_hex, message, sig.hex()) is True


# --- openssl interop ---------------------------------------------------------------


def _openssl(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    assert OPENSSL is not None
    return subprocess.run([OPENSSL, *map(str, args)], capture_output=True, timeout=30, check=False)


@needs_openssl
def test_openssl_key_signed_by_comity_verifies_in_openssl(tmp_path: Path) -> None:
    k, pub, msg, sig = (tmp_path / n for n in ("k.pem", "pub.pem", "msg", "sig"))
    assert _openssl("genpkey", "-algorithm", "ed25519", "-out", k).returncode == 0
    assert _openssl("pkey", "-in", k, "-pubout", "-out", pub).returncode == 0
    key = load_signing_key(k)
    assert key.public_pem() == pub.read_bytes()  # same SPKI PEM bytes as openssl
    assert public_key_from_text(pub.read_bytes()) == key.public_hex
    msg.write_bytes(b'{"record":"comity"}\n\x00\xff')
    sig.write_bytes(key.sign(msg.read_bytes()))
    ok = _openssl(
        "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-in", msg, "-sigfile", sig
    )
    assert ok.returncode == 0, ok.stderr
    assert b"Signature Verified Successfully" in ok.stdout
    msg.write_bytes(b'{"record":"comitY"}\n\x00\xff')
    bad = _openssl(
        "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-in", msg, "-sigfile", sig
    )
    assert bad.returncode != 0


@needs_openssl
def test_openssl_signature_verifies_in_comity(tmp_path: Path) -> None:
    k, msg, sig = tmp_path / "k.pem", tmp_path / "msg", tmp_path / "sig"
    assert _openssl("genpkey", "-algorithm", "ed25519", "-out", k).returncode == 0
    msg.write_bytes(b"precommit \xe2\x82\xac")
    done = _openssl("pkeyutl", "-sign", "-inkey", k, "-rawin", "-in", msg, "-out", sig)
    assert done.returncode == 0, done.stderr
    key = load_signing_key(k)
    assert len(sig.read_bytes()) == 64
    assert verify(key.public_key, msg.read_bytes(), sig.read_bytes()) is True
    assert verify_hex(key.public_hex, msg.read_bytes(), sig.read_bytes().hex()) is True
    assert verify(key.public_key, msg.read_bytes() + b" ", sig.read_bytes()) is False
    assert key.sign(msg.read_bytes()) == sig.read_bytes()  # deterministic: same bytes


@needs_openssl
def test_comity_saved_key_is_usable_by_openssl(tmp_path: Path) -> None:
    # RFC 8032 §7.1 TEST 2 through files: Comity writes the key, openssl signs,
    # and the signature is the published one.
    _, public, message, signature = RFC8032_VECTORS[1].values
    key = SigningKey(bytes.fromhex(str(RFC8032_VECTORS[1].values[0])))
    k, msg, sig = tmp_path / "k.pem", tmp_path / "msg", tmp_path / "sig"
    save_signing_key(k, key)
    msg.write_bytes(bytes.fromhex(str(message)))
    done = _openssl("pkeyutl", "-sign", "-inkey", k, "-rawin", "-in", msg, "-out", sig)
    assert done.returncode == 0, done.stderr
    assert sig.read_bytes().hex() == signature
    text = _openssl("pkey", "-in", k, "-noout", "-text_pub")
    assert text.returncode == 0, text.stderr
    printed = text.stdout.decode().split("pub:", 1)[1]
    assert "".join(printed.split()).replace(":", "") == public
