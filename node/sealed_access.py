"""Opening sealed details for an authorised caller of a recipient state's node.

Theory of operation
-------------------
A node holds its state's X25519 key (``enc_pubkey`` in genesis). When an
authorised caller asks for the sealed details of a committed record, the
node finds them where they are: in the record of an act in clear, in the
private body of a private act (``visibility: "parties"``: the chain holds only
the body's commitment, docs/PRIVACY.md). A private act's details are read
only as its body is (``node/body_access.py``: a party's node, the body held,
403 ``not_a_party`` on any other node whether or not the body has details).
The node checks the caller's token against the act's case
(``AccessLog.authorize``, the need-to-know rule of ``node/tokens.py``), that
its own state is a recipient, decrypts with
``ledger.sealed.open_sealed`` (which checks the plaintext hash), appends an
entry to the local access log (``node/access_log.py``) and only then returns
the plaintext. Refusals after authentication (not a recipient, failed
integrity, a case the token is not bound to) are logged too, so the log
shows attempts as well as reads.

Where the key comes from (one seam, ``node_enc_key``): the node's ``enc_key``
if the runtime set it (an ``X25519PrivateKey``, as the in-process cluster has),
else the PKCS#8 PEM file at the config's ``enc_key_path`` (proposed config key;
the devnet writes ``DIR/<STATE>/enc.key``). ``open_reader`` builds a reader
from those parts and the node's signed access log; the reader itself needs
only the state, the committed records and the bodies this node keeps, the key
and the log.

Old keys after a rotation (``rotate_enc_key``, docs/GOVERNANCE.md): details
sealed before it stay on the chain under the old key, so the node keeps every
former X25519 private key in a keyring file beside the key file
(``keyring_path``: ``enc.key`` -> ``enc.keyring``, mode 0600), each one sealed
with ``crypto_box_seal`` to the current public key. A stolen keyring alone
opens nothing; the current key opens it all. ``comity enc-key rotate`` writes
the new key and the re-sealed keyring. The reader tries first the key the
chain says the state had at the record's height (``ChainState.enc_pubkey_at``):
a sender who sealed just before a rotation used the old one, so the others
are tried after it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.public
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ledger.errors import ClientError, NotFound
from ledger.hashing import is_hex
from ledger.private import is_private
from ledger.sealed import NotARecipient, SealedIntegrityError, open_sealed
from node import body_access
from node.access_log import AccessLog
from node.body_access import PartyRecords
from node.state import ChainState
from node.tokens import TokenInfo

KEYRING_VERSION = 1
KEYRING_SUFFIX = ".keyring"


class EncKeyUnavailable(ClientError):
    status = 503
    default_code = "enc_key_not_configured"


class SealedUnreadable(ClientError):
    status = 422
    default_code = "sealed_integrity"


def load_enc_key(path: Path) -> X25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, X25519PrivateKey):
        raise ValueError(f"{path} does not hold an X25519 private key")
    return key


def node_enc_key(enc_key: X25519PrivateKey | None, path: Path | None) -> bytes | None:
    """This node's X25519 private key (raw 32 bytes), or None if not configured."""
    if enc_key is not None:
        return enc_key.private_bytes_raw()
    if path is not None and path.is_file():
        return load_enc_key(path).private_bytes_raw()
    return None


def public_of(private_key: bytes) -> bytes:
    """The raw X25519 public key of a raw private key."""
    return bytes(nacl.public.PrivateKey(private_key).public_key)


# --- the keyring of former keys -------------------------------------------------------------


def keyring_path(enc_key_path: Path | None, data_dir: Path) -> Path:
    """Beside the key file (``enc.key`` -> ``enc.keyring``), else in the data dir."""
    if enc_key_path is not None:
        return enc_key_path.with_suffix(KEYRING_SUFFIX)
    return data_dir / f"enc{KEYRING_SUFFIX}"


def seal_keyring(current_public: bytes, old_keys: Sequence[bytes]) -> dict[str, Any]:
    """A keyring document: each former private key sealed to ``current_public``."""
    box = nacl.public.SealedBox(nacl.public.PublicKey(current_public))
    return {
        "version": KEYRING_VERSION,
        "sealed_to": current_public.hex(),
        "keys": [
            {"pubkey": public_of(key).hex(), "sealed_private": box.encrypt(key).hex()}
            for key in old_keys
        ],
    }


def _invalid(message: str, field: str) -> EncKeyUnavailable:
    return EncKeyUnavailable(message, field=field, code="enc_keyring_invalid")


def open_keyring(doc: Any, current_private: bytes) -> list[bytes]:
    """The former private keys of a keyring document, oldest first.

    A document that is not this node's keyring is a 503 ``enc_keyring_invalid``:
    the node's key files are wrong, not the caller's request.
    """
    if not isinstance(doc, dict) or doc.get("version") != KEYRING_VERSION:
        raise _invalid(f"not a version {KEYRING_VERSION} keyring", field="keyring")
    if doc.get("sealed_to") != public_of(current_private).hex():
        raise _invalid(
            "the keyring is sealed to another key than this node's enc key",
            field="keyring.sealed_to",
        )
    box = nacl.public.SealedBox(nacl.public.PrivateKey(current_private))
    keys: list[bytes] = []
    for i, entry in enumerate(doc.get("keys") or []):
        try:
            key = box.decrypt(bytes.fromhex(entry["sealed_private"]))
        except (nacl.exceptions.CryptoError, ValueError, KeyError, TypeError) as exc:
            raise _invalid(f"keyring entry {i} does not open", field="keyring.keys") from exc
        if not is_hex(entry.get("pubkey"), 32) or public_of(key).hex() != entry["pubkey"]:
            raise _invalid(
                f"keyring entry {i} opens to another key than its pubkey", field="keyring.keys"
            )
        keys.append(key)
    return keys


def read_keyring(path: Path, current_private: bytes) -> list[bytes]:
    """The former keys in the keyring file at ``path`` (none if there is no file)."""
    if not path.is_file():
        return []
    try:
        doc = json.loads(path.read_bytes())
    except ValueError as exc:
        raise _invalid(f"{path} is not JSON", field="keyring") from exc
    return open_keyring(doc, current_private)


def write_keyring(path: Path, doc: dict[str, Any]) -> None:
    """Create ``path`` (mode 0600, never over an existing file) holding ``doc``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (json.dumps(doc, indent=2) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def open_reader(
    state: str,
    records: PartyRecords,
    *,
    enc_key: X25519PrivateKey | None,
    enc_key_path: Path | None,
    data_dir: Path,
    access_log: AccessLog,
) -> SealedReader:
    """The reader of a node: its key as ``node_enc_key`` finds it, its keyring, its
    signed access log."""
    key = node_enc_key(enc_key, enc_key_path)
    old = [] if key is None else read_keyring(keyring_path(enc_key_path, data_dir), key)
    return SealedReader(state, records, key, access_log, old_keys=old)


class SealedReader:
    def __init__(
        self,
        state: str,
        records: PartyRecords,
        key: bytes | None,
        access_log: AccessLog,
        *,
        old_keys: Sequence[bytes] = (),
    ) -> None:
        self.state = state
        self.records = records
        self.key = key
        self.old_keys = tuple(old_keys)  # oldest first, from the keyring
        self.log = access_log

    def keys_for(self, record_id: str) -> list[bytes]:
        """This node's private keys, the one the chain expects for the record first."""
        keys = [] if self.key is None else [self.key, *reversed(self.old_keys)]
        chain = getattr(self.records, "state", None)
        located = self.records.store.locate(record_id)
        if not isinstance(chain, ChainState) or located is None:
            return keys
        expected = chain.enc_pubkey_at(self.state, located[0])
        return sorted(keys, key=lambda k: public_of(k).hex() != expected)

    def read(self, record_id: str, *, token: TokenInfo) -> dict[str, Any]:
        sealed = self._sealed_of(record_id, token)
        if self.state not in (sealed.get("recipients") or {}):
            self._log(record_id, token, "not_a_recipient")
            raise NotARecipient(
                f"{self.state} is not a recipient of these sealed details",
                field="sealed.recipients",
            )
        if self.key is None:
            raise EncKeyUnavailable("this node has no X25519 key configured (enc_key_path)")
        details = self._open(sealed, record_id)
        if details is None:
            self._log(record_id, token, "integrity_failed")
            raise SealedUnreadable(
                "sealed details failed their integrity check under every key of this node",
                field="sealed",
            )
        entry = self._log(record_id, token, "ok")
        return {
            "id": record_id,
            "state": self.state,
            "details": details,
            "plaintext_sha256": sealed["plaintext_sha256"],
            "access_log": {"seq": entry["seq"], "hash": entry["hash"]},
        }

    def _sealed_of(self, record_id: str, token: TokenInfo) -> dict[str, Any]:
        """The ``sealed`` member of a committed record, once ``token`` may read it there.

        A clear act's is in its record: every node holds it, so its absence is no
        secret and is told before the case check. A private act's is in its body:
        only what ``body_access.readable_body`` lets through reads it, and only
        after that is its absence told."""
        if not self.records.store.has_record(record_id):
            raise NotFound(
                f"no committed record with id {record_id}", field="id", code="record_not_found"
            )
        envelope, note = body_access.committed(self.records, record_id)
        private = is_private(envelope.record)
        if private:
            envelope = body_access.readable_body(
                self.records, envelope, note, token=token, log=self.log, state=self.state
            )
        sealed = envelope.content.get("sealed")
        if not isinstance(sealed, dict):
            raise NotFound(
                "this record carries no sealed details", field="sealed", code="no_sealed_details"
            )
        if not private:
            self.log.authorize(
                token, record_id=record_id, state=self.state, case_ref=body_access.case_of(envelope)
            )
        return sealed

    def _open(self, sealed: dict[str, Any], record_id: str) -> dict[str, Any] | None:
        for key in self.keys_for(record_id):
            try:
                return open_sealed(sealed, self.state, key)
            except SealedIntegrityError:
                continue  # sealed to another of our keys, or tampered: tried by each
        return None

    def _log(self, record_id: str, token: TokenInfo, outcome: str) -> dict[str, Any]:
        return self.log.append(record_id=record_id, state=self.state, token=token, outcome=outcome)
