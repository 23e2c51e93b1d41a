"""Ed25519 keys in a PKCS#11 token (node/hsm.py), against SoftHSM2.

The token's CKM_EDDSA signatures must be RFC 8032's, byte for byte what PyNaCl
gives for the same key (Ed25519 is deterministic, RFC 8032 §5.1.6): checked on
RFC 8032 §7.1's test vectors, imported into the token, and on keys the token
made itself. The PIN's file must be 0600, and no error ever shows the PIN.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import nacl.signing
import pytest

from ledger.keys import SigningKey, verify
from node import hsm
from node.config import ConfigError, load_config
from node.hsm import HsmError, Pkcs11Key, generate_keypair, open_signer, read_pin
from tests import softhsm

#: RFC 8032 §7.1, TEST 1, TEST 2 and TEST 3: (secret key, public key, message, signature).
RFC8032 = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
        "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
]


@pytest.fixture(autouse=True)
def _softhsm() -> None:
    softhsm.require_softhsm()
    softhsm.process_conf()


def key_on(token: str, tmp_path: Path, label: str = "node", **extra: Any) -> Pkcs11Key:
    pin_file = softhsm.write_pin(tmp_path / f"{token}.pin", softhsm.PIN)
    fields: dict[str, Any] = {"module": softhsm.MODULE, "token": token, "label": label}
    fields.update(extra or {"pin_file": pin_file})
    return Pkcs11Key(**fields)


def import_seed(key: Pkcs11Key, seed: bytes) -> None:
    """Put a known Ed25519 key pair into the token (test only: Comity never imports seeds)."""
    import pkcs11
    from pkcs11 import Attribute, KeyType, ObjectClass

    token = hsm._open_token(key)
    public = bytes(nacl.signing.SigningKey(seed).verify_key)
    common = {Attribute.KEY_TYPE: KeyType.EC_EDWARDS, Attribute.EC_PARAMS: hsm.ED25519_OID_DER}
    common |= {Attribute.LABEL: key.label, Attribute.TOKEN: True}
    with token.lock:
        token.session.create_object(
            common
            | {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.VALUE: seed}
            | {Attribute.SIGN: True, Attribute.SENSITIVE: True, Attribute.PRIVATE: True}
        )
        token.session.create_object(
            common
            | {Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.VERIFY: True}
            | {Attribute.EC_POINT: b"\x04\x20" + public}
        )
    assert pkcs11.Mechanism.EDDSA  # the binding knows PKCS#11 3.0's mechanism


def test_rfc8032_vectors_sign_the_same_in_the_token_and_in_pynacl(tmp_path: Path) -> None:
    token = softhsm.new_token()
    for number, (seed_hex, public_hex, message_hex, signature_hex) in enumerate(RFC8032):
        key = key_on(token, tmp_path, label=f"rfc8032-{number}")
        import_seed(key, bytes.fromhex(seed_hex))
        signer = open_signer(key)
        message = bytes.fromhex(message_hex)
        assert signer.public_hex == public_hex
        assert signer.sign(message).hex() == signature_hex
        assert signer.sign(message) == SigningKey(bytes.fromhex(seed_hex)).sign(message)


def test_a_key_made_in_the_token_verifies_with_pynacl_and_stays_inside(tmp_path: Path) -> None:
    from pkcs11 import Attribute
    from pkcs11.exceptions import AttributeSensitive

    key = key_on(softhsm.new_token(), tmp_path)
    signer = generate_keypair(key)
    for message in (b"", b"vote", os.urandom(1000)):
        signature = signer.sign(message)
        nacl.signing.VerifyKey(signer.public_key).verify(message, signature)
        assert verify(signer.public_key, message, signature)
        assert signer.sign(message) == signature  # deterministic, RFC 8032 §5.1.6
    assert open_signer(key).public_hex == signer.public_hex  # found again by its label
    private = signer._handle
    assert private[Attribute.SENSITIVE] is True
    assert private[Attribute.EXTRACTABLE] is False
    assert private[Attribute.NEVER_EXTRACTABLE] is True
    with pytest.raises(AttributeSensitive):
        private[Attribute.VALUE]
    assert repr(signer) == f"Pkcs11Signer(public={signer.public_hex})"


def test_keygen_refuses_a_label_in_use(tmp_path: Path) -> None:
    key = key_on(softhsm.new_token(), tmp_path)
    generate_keypair(key)
    with pytest.raises(HsmError, match="exists already"):
        generate_keypair(key)


def test_a_missing_key_label_is_named(tmp_path: Path) -> None:
    key = key_on(softhsm.new_token(), tmp_path, label="no-such-key")
    with pytest.raises(HsmError) as caught:
        open_signer(key)
    assert str(caught.value) == (
        f"no private key: key 'no-such-key' on token {key.token!r} of {softhsm.MODULE} "
        "does not exist"
    )


def test_a_missing_token_is_named(tmp_path: Path) -> None:
    key = key_on("no-such-token", tmp_path)
    with pytest.raises(HsmError, match="no token labelled 'no-such-token'"):
        open_signer(key)


def test_a_wrong_pin_is_refused_without_showing_it(tmp_path: Path) -> None:
    wrong = "wrong-pin-31337"
    token = softhsm.new_token()
    key = key_on(token, tmp_path, pin_file=softhsm.write_pin(tmp_path / "wrong.pin", wrong))
    with pytest.raises(HsmError) as caught:
        open_signer(key)
    message = str(caught.value)
    assert "refused the PIN (CKR_PIN_INCORRECT)" in message
    assert wrong not in message and softhsm.PIN not in message
    assert caught.value.__cause__ is None and caught.value.__context__ is not None
    assert wrong not in repr(caught.value.__context__)


def test_a_second_key_on_an_open_token_needs_the_same_pin(tmp_path: Path) -> None:
    token = softhsm.new_token()
    generate_keypair(key_on(token, tmp_path))
    wrong = softhsm.write_pin(tmp_path / "other.pin", "another-pin-2")
    with pytest.raises(HsmError, match="refused the PIN") as caught:
        open_signer(key_on(token, tmp_path, pin_file=wrong))
    assert "another-pin-2" not in str(caught.value)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_a_pin_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    key = key_on("any", tmp_path, pin_file=softhsm.write_pin(tmp_path / "pin", "12345", mode))
    with pytest.raises(HsmError, match="chmod 600") as caught:
        read_pin(key)
    assert "12345" not in str(caught.value)


def test_pin_from_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text("1234\r\n")
    pin_file.chmod(0o600)
    assert read_pin(key_on("t", tmp_path, pin_file=pin_file)) == "1234"
    monkeypatch.setenv("COMITY_TEST_PIN", "5678")
    assert read_pin(key_on("t", tmp_path, pin_env="COMITY_TEST_PIN")) == "5678"
    monkeypatch.setenv("COMITY_TEST_PIN", "")
    with pytest.raises(HsmError, match="COMITY_TEST_PIN is not set or empty"):
        read_pin(key_on("t", tmp_path, pin_env="COMITY_TEST_PIN"))
    pin_file.write_text("12\n34\n")
    with pytest.raises(HsmError, match="one PIN of 1 to 256 bytes on one line"):
        read_pin(key_on("t", tmp_path, pin_file=pin_file))
    fifo = tmp_path / "fifo.pin"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(HsmError, match="is not a regular file"):
        read_pin(key_on("t", tmp_path, pin_file=fifo))
    link = tmp_path / "link.pin"
    link.symlink_to(pin_file)
    with pytest.raises(HsmError, match="cannot read the PIN file"):
        read_pin(key_on("t", tmp_path, pin_file=link))


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"token": "a", "slot": 1, "pin_env": "P"}, "exactly one of token"),
        ({"pin_env": "P"}, "exactly one of token"),
        ({"token": "a"}, "exactly one of pin_file and pin_env"),
        ({"token": "a", "pin_env": "P", "pin_file": "/p"}, "exactly one of pin_file"),
        ({"token": "a", "pin_env": "BAD-NAME"}, "pin_env"),
        ({"token": "a", "pin_env": "P", "pin": "1234"}, "pin\n  Extra inputs"),
    ],
)
def test_the_key_table_is_checked(fields: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        Pkcs11Key(module=Path("/m.so"), label="k", **fields)


def test_node_toml_names_a_token_key(tmp_path: Path) -> None:
    (tmp_path / "genesis.json").write_text("{}")
    softhsm.write_pin(tmp_path / "pin", "1234")
    base = """state = "CN"
genesis_path = "genesis.json"
data_dir = "data"
api = {port = 8000}
p2p = {port = 8100}
"""
    table = f"""
[node_key_pkcs11]
module = "{softhsm.MODULE}"
token = "comity-cn"
label = "node"
pin_file = "pin"
"""
    (tmp_path / "node.toml").write_text(base + table)
    config = load_config(tmp_path / "node.toml")
    assert config.node_key_path is None and config.node_key_pkcs11 is not None
    assert config.node_key_pkcs11.pin_file == tmp_path / "pin"  # relative to the file
    (tmp_path / "node.key").write_text("")
    (tmp_path / "node.toml").write_text(base + 'node_key_path = "node.key"\n' + table)
    with pytest.raises(ConfigError, match="exactly one of node_key_path and"):
        load_config(tmp_path / "node.toml")
    (tmp_path / "node.toml").write_text(base)
    with pytest.raises(ConfigError, match="exactly one of node_key_path and"):
        load_config(tmp_path / "node.toml")
    (tmp_path / "node.toml").write_text(base + table.replace(str(softhsm.MODULE), "/no/lib.so"))
    with pytest.raises(ConfigError, match=r"node_key_pkcs11.module = /no/lib.so does not exist"):
        load_config(tmp_path / "node.toml")


def test_threads_share_the_token_safely(tmp_path: Path) -> None:
    signer = generate_keypair(key_on(softhsm.new_token(), tmp_path))
    failures: list[bytes] = []

    def work(seed: int) -> None:
        for i in range(50):
            message = f"{seed}-{i}".encode()
            if not verify(signer.public_key, message, signer.sign(message)):
                failures.append(message)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_a_non_edwards_key_with_the_label_is_refused(tmp_path: Path) -> None:
    from pkcs11 import KeyType

    key = key_on(softhsm.new_token(), tmp_path, label="ec")
    token = hsm._open_token(key)
    with token.lock:
        token.session.generate_keypair(KeyType.RSA, 2048, label="ec", store=True)
    with pytest.raises(HsmError, match="not an EdDSA signing key"):
        open_signer(key)


def test_a_token_that_stops_signing_is_a_clear_error(tmp_path: Path) -> None:
    key = key_on(softhsm.new_token(), tmp_path)
    signer = generate_keypair(key)
    hsm.close_all()  # the session is gone, as when a network HSM drops it
    with pytest.raises(HsmError) as caught:
        signer.sign(b"vote")
    assert str(caught.value).startswith(f"the token of {key.where()} failed to sign: ")
    assert open_signer(key).public_hex == signer.public_hex  # a new login works again


async def test_a_token_key_signs_p2p_messages_off_the_event_loop(tmp_path: Path) -> None:
    """node/peers.py and api/p2p.py sign through ``off_loop``: a token key's C_Sign runs
    on the signing thread, a key in memory signs inline (a hop costs more than it)."""
    token_key = generate_keypair(key_on(softhsm.new_token(), tmp_path))
    memory_key = SigningKey.generate()
    loop_thread = threading.current_thread().name

    def where(key: Any) -> tuple[str, bytes]:
        return threading.current_thread().name, key.sign(b"request")

    thread, signature = await hsm.off_loop(token_key, where, token_key)
    assert thread.startswith("comity-pkcs11") and thread != loop_thread
    assert verify(token_key.public_key, b"request", signature)
    assert (await hsm.off_loop(memory_key, where, memory_key))[0] == loop_thread
