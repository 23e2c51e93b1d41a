"""Ed25519 keys that live in a PKCS#11 token (an HSM), through ``CKM_EDDSA``.

Theory of operation
-------------------
A ``Pkcs11Key`` (node.toml's ``[node_key_pkcs11]`` table, or the CLI's
``--pkcs11-*`` options) names a module (the vendor's PKCS#11 library), the
token by label or slot id, the key pair by ``CKA_LABEL``, and where the user
PIN comes from: a file of mode 0600 or an environment variable. The PIN is
read once, handed to ``C_Login`` and kept only as a digest (to check that a
second key on the same token comes with the same PIN); it is never logged and
never put in an error message.

``open_signer`` logs in, finds the private key (``CKK_EC_EDWARDS``, with
``CKA_SIGN``) and its public key, reads the public key from ``CKA_EC_POINT``
(a DER OCTET STRING of the 32-byte RFC 8032 key), checks the curve is
edwards25519 (Ed448 keys are the same key type), and signs a challenge that
PyNaCl must verify under that public key before the signer is returned: a
public object that does not belong to the private key is caught at start-up,
not as a chain of invalid votes. Ed25519 is deterministic (RFC 8032 §5.1.6),
so the token's signatures are byte for byte PyNaCl's for the same key.

A PKCS#11 login belongs to the whole process (PKCS#11 3.0 §5.6: all sessions
of an application share it), and a session must not be used by two threads
at once. So each token is opened once per process: one logged-in session,
shared by every signer on that token, and one lock around each ``C_Sign``.
``Pkcs11Signer.sign`` may be called from any thread (the node calls it from
its signing thread, node/driver.py); calls are serialised by the lock.

A token is slower than PyNaCl and may sit across a network, so a node signs its
P2P requests and replies on the token's signing thread (``off_loop``), never on
the event loop; a key in memory signs inline, where a thread hop would cost more
than its ~20 µs signature.

``generate_keypair`` creates the pair on the token: private key sensitive,
not extractable, ``CKA_SIGN`` only; it refuses a label already in use.

The binding is python-pkcs11 (the ``hsm`` extra). It is imported only when a
token is used, so a node whose keys are PEM files does not need it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import secrets
import stat
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

import nacl.exceptions
import nacl.signing
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ledger.errors import ComityError

#: DER of the edwards25519 OID 1.3.101.112 (RFC 8410 §3), as CKA_EC_PARAMS.
ED25519_OID_DER = bytes.fromhex("06032b6570")
#: The same curve named as a PrintableString, which PKCS#11 3.0 §2.3.10 also allows.
ED25519_NAME_DER = b"\x13\x0cedwards25519"
PIN_BYTES_MAX = 256
CHALLENGE = b"comity pkcs11 self-test: the token's key must match its public key"


T = TypeVar("T")


class HsmError(ComityError):
    """The PKCS#11 module, token, PIN or key cannot be used (the message says which)."""


class Pkcs11Key(BaseModel):
    """Where a key lives in a token, and where its PIN comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    module: Path  # the PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so
    token: str | None = Field(None, min_length=1, max_length=32)  # CKA_LABEL of the token
    slot: int | None = Field(None, ge=0)
    label: str = Field(min_length=1, max_length=128)  # CKA_LABEL of the key pair
    pin_file: Path | None = None  # mode 0600, the PIN on its first line
    pin_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")

    @model_validator(mode="after")
    def _one_of_each(self) -> Self:
        if (self.token is None) == (self.slot is None):
            raise ValueError("give exactly one of token (its label) and slot")
        if (self.pin_file is None) == (self.pin_env is None):
            raise ValueError("give exactly one of pin_file and pin_env")
        return self

    def where(self) -> str:
        """The token and key, for messages (never the PIN)."""
        token = f"token {self.token!r}" if self.token is not None else f"slot {self.slot}"
        return f"key {self.label!r} on {token} of {self.module}"


def read_pin(key: Pkcs11Key) -> str:
    """The user PIN from ``pin_file`` (must be 0600) or ``pin_env``."""
    if key.pin_env is not None:
        value = os.environ.get(key.pin_env, "")
        if not value:
            raise HsmError(f"the PIN variable {key.pin_env} is not set or empty")
        return _check_pin(value, f"the PIN variable {key.pin_env}")
    assert key.pin_file is not None  # by _one_of_each
    path = key.pin_file
    try:
        # O_NONBLOCK: a FIFO put in the PIN file's place must not hang the start-up.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise HsmError(f"cannot read the PIN file {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise HsmError(f"the PIN file {path} is not a regular file")
        if info.st_mode & 0o077:
            raise HsmError(
                f"the PIN file {path} is readable or writable by group or others; chmod 600 it"
            )
        raw = os.read(fd, PIN_BYTES_MAX + 3)
    finally:
        os.close(fd)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HsmError(f"the PIN file {path} is not UTF-8") from None
    return _check_pin(text.removesuffix("\n").removesuffix("\r"), f"the PIN file {path}")


def _check_pin(pin: str, source: str) -> str:
    if not pin or len(pin.encode()) > PIN_BYTES_MAX or any(c in pin for c in "\r\n\0"):
        raise HsmError(f"{source} must hold one PIN of 1 to {PIN_BYTES_MAX} bytes on one line")
    return pin


@dataclass
class _Token:
    """One logged-in session on one token, shared in this process (see above)."""

    session: Any
    lock: threading.Lock
    pin_digest: bytes


_tokens: dict[tuple[str, str], _Token] = {}
_tokens_lock = threading.Lock()


def _pkcs11() -> Any:
    try:
        import pkcs11
    except ImportError:
        raise HsmError(
            "keys in PKCS#11 need the python-pkcs11 package: pip install 'comity[hsm]'"
        ) from None
    return pkcs11


def _open_token(key: Pkcs11Key) -> _Token:
    pkcs11 = _pkcs11()
    exc_mod = pkcs11.exceptions
    pin = read_pin(key)
    digest = hashlib.sha256(pin.encode()).digest()
    ident = (str(key.module), key.token if key.token is not None else f"#{key.slot}")
    with _tokens_lock:
        found = _tokens.get(ident)
        if found is not None:
            if not hmac.compare_digest(found.pin_digest, digest):
                raise HsmError(
                    f"the token of {key.where()} refused the PIN (another PIN is in use)"
                )
            return found
        if not key.module.is_file():
            raise HsmError(f"the PKCS#11 module {key.module} does not exist")
        try:
            lib = pkcs11.lib(str(key.module))
        except (exc_mod.PKCS11Error, OSError, RuntimeError) as exc:
            raise HsmError(
                f"cannot load the PKCS#11 module {key.module}: {type(exc).__name__}"
            ) from None
        token = _find_token(lib, key, exc_mod)
        try:
            session = token.open(rw=True, user_pin=pin)
        except exc_mod.PinIncorrect:
            raise HsmError(
                f"the token of {key.where()} refused the PIN (CKR_PIN_INCORRECT)"
            ) from None
        except exc_mod.PinLocked:
            raise HsmError(f"the token of {key.where()} has locked its user PIN") from None
        except exc_mod.PKCS11Error as exc:
            raise HsmError(
                f"cannot log in to the token of {key.where()}: {type(exc).__name__}"
            ) from None
        found = _Token(session, threading.Lock(), digest)
        _tokens[ident] = found
        return found


def _find_token(lib: Any, key: Pkcs11Key, exc_mod: Any) -> Any:
    try:
        if key.token is not None:
            return lib.get_token(token_label=key.token)
        for slot in lib.get_slots(token_present=True):
            if slot.slot_id == key.slot:
                return slot.get_token()
    except exc_mod.NoSuchToken:
        pass
    except exc_mod.MultipleTokensReturned:
        raise HsmError(f"more than one token matches {key.where()}; name its slot") from None
    except exc_mod.PKCS11Error as exc:
        raise HsmError(f"cannot list the tokens of {key.module}: {type(exc).__name__}") from None
    what = f"labelled {key.token!r}" if key.token is not None else f"in slot {key.slot}"
    raise HsmError(f"no token {what} in the PKCS#11 module {key.module}")


def close_all() -> None:
    """Log out of and close every token this process opened (tests, shutdown)."""
    with _tokens_lock:
        for token in _tokens.values():
            # A token already gone at shutdown: nothing is left to close.
            with token.lock, contextlib.suppress(Exception):
                token.session.close()
        _tokens.clear()


_signing_thread: ThreadPoolExecutor | None = None
_signing_thread_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _signing_thread
    with _signing_thread_lock:
        if _signing_thread is None:
            _signing_thread = ThreadPoolExecutor(1, thread_name_prefix="comity-pkcs11")
        return _signing_thread


async def off_loop(key: object, work: Callable[..., T], *args: Any) -> T:
    """``work(*args)``, which signs with ``key``: on the signing thread if ``key`` is
    in a token, inline if it is in memory."""
    if not isinstance(key, Pkcs11Signer):
        return work(*args)
    return await asyncio.get_running_loop().run_in_executor(_executor(), work, *args)


class Pkcs11Signer:
    """An Ed25519 key in a token: ``sign`` is ``ledger.keys.SigningKey.sign``'s twin."""

    __slots__ = ("_errors", "_handle", "_mechanism", "_token", "_where", "public_hex", "public_key")

    def __init__(self, token: _Token, handle: Any, public_key: bytes, where: str) -> None:
        pkcs11 = _pkcs11()
        self._token, self._handle, self._where = token, handle, where
        self._mechanism, self._errors = pkcs11.Mechanism.EDDSA, pkcs11.exceptions.PKCS11Error
        self.public_key: bytes = public_key
        self.public_hex: str = public_key.hex()

    def sign(self, message: bytes) -> bytes:
        with self._token.lock:
            try:
                signature = self._handle.sign(message, mechanism=self._mechanism)
            except self._errors as exc:
                raise HsmError(
                    f"the token of {self._where} failed to sign: {type(exc).__name__}"
                ) from None
        if len(signature) != 64:
            raise HsmError(f"the token of {self._where} gave a {len(signature)}-byte signature")
        return bytes(signature)

    def __repr__(self) -> str:
        return f"Pkcs11Signer(public={self.public_hex})"


def open_signer(key: Pkcs11Key) -> Pkcs11Signer:
    """Log in, find the key pair named by ``key``, and check it signs as Ed25519."""
    pkcs11 = _pkcs11()
    token = _open_token(key)
    with token.lock:
        private, public = _find_pair(token, key, pkcs11)
        public_key = _public_key(public, key, pkcs11)
    signer = Pkcs11Signer(token, private, public_key, key.where())
    try:
        nacl.signing.VerifyKey(public_key).verify(CHALLENGE, signer.sign(CHALLENGE))
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
        raise HsmError(
            f"{key.where()}: the private key's signature does not verify under its public "
            "key object (the two objects labelled so are not one pair)"
        ) from None
    return signer


def _find_pair(token: _Token, key: Pkcs11Key, pkcs11: Any) -> tuple[Any, Any]:
    Attribute, ObjectClass, exc_mod = pkcs11.Attribute, pkcs11.ObjectClass, pkcs11.exceptions
    found: list[Any] = []
    for cls in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
        try:
            objects = list(
                token.session.get_objects({Attribute.CLASS: cls, Attribute.LABEL: key.label})
            )
        except exc_mod.PKCS11Error as exc:
            raise HsmError(f"cannot search {key.where()}: {type(exc).__name__}") from None
        kind = "private" if cls == ObjectClass.PRIVATE_KEY else "public"
        if not objects:
            raise HsmError(f"no {kind} key: {key.where()} does not exist")
        if len(objects) > 1:
            raise HsmError(f"{len(objects)} {kind} keys match {key.where()}; labels must be unique")
        found.append(objects[0])
    private, public = found
    if private[Attribute.KEY_TYPE] != pkcs11.KeyType.EC_EDWARDS or not private[Attribute.SIGN]:
        raise HsmError(f"{key.where()} is not an EdDSA signing key (CKK_EC_EDWARDS, CKA_SIGN)")
    return private, public


def _public_key(public: Any, key: Pkcs11Key, pkcs11: Any) -> bytes:
    Attribute = pkcs11.Attribute
    params = bytes(public[Attribute.EC_PARAMS])
    if params not in (ED25519_OID_DER, ED25519_NAME_DER):
        raise HsmError(f"{key.where()} is not on edwards25519 (an Ed448 key?)")
    return decode_ec_point(bytes(public[Attribute.EC_POINT]), key.where())


def decode_ec_point(point: bytes, where: str) -> bytes:
    """The 32-byte key from CKA_EC_POINT: a DER OCTET STRING (04 20 ...), or, as some
    tokens give it, the 32 bytes themselves."""
    if len(point) == 34 and point[:2] == b"\x04\x20":
        return point[2:]
    if len(point) == 32:
        return point
    raise HsmError(f"{where}: CKA_EC_POINT is not a 32-byte Ed25519 public key")


def generate_keypair(key: Pkcs11Key) -> Pkcs11Signer:
    """Create an Ed25519 pair labelled ``key.label`` on the token; refuse a used label."""
    pkcs11 = _pkcs11()
    Attribute, ObjectClass, exc_mod = pkcs11.Attribute, pkcs11.ObjectClass, pkcs11.exceptions
    token = _open_token(key)
    with token.lock:
        if any(True for _ in token.session.get_objects({Attribute.LABEL: key.label})):
            raise HsmError(f"{key.where()} exists already; choose another label")
        key_id = secrets.token_bytes(16)
        try:
            token.session.generate_keypair(
                pkcs11.KeyType.EC_EDWARDS,
                mechanism=pkcs11.Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
                label=key.label,
                id=key_id,
                store=True,
                public_template={
                    Attribute.EC_PARAMS: ED25519_OID_DER,
                    Attribute.VERIFY: True,
                    Attribute.TOKEN: True,
                },
                private_template={
                    Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                    Attribute.SIGN: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.PRIVATE: True,
                    Attribute.TOKEN: True,
                    Attribute.DERIVE: False,
                },
            )
        except exc_mod.PKCS11Error as exc:
            raise HsmError(
                f"the token of {key.where()} could not create an Ed25519 key pair: "
                f"{type(exc).__name__}"
            ) from None
    return open_signer(key)
