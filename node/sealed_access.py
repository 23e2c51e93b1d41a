"""Opening sealed details for an authorised caller of a recipient state's node.

Theory of operation
-------------------
A node holds its state's X25519 key (``enc_pubkey`` in genesis). When an
authorised caller asks for the sealed details of a committed record, the
node checks the caller's token against the record's case
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
only the state, the committed records, the key and the log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ledger.errors import ClientError, NotFound
from ledger.sealed import NotARecipient, SealedIntegrityError, open_sealed
from node.access_log import AccessLog
from node.application import CommittedRecords
from node.tokens import TokenInfo


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


def open_reader(
    state: str,
    records: CommittedRecords,
    *,
    enc_key: X25519PrivateKey | None,
    enc_key_path: Path | None,
    access_log: AccessLog,
) -> SealedReader:
    """The reader of a node: its key as ``node_enc_key`` finds it, its access log."""
    return SealedReader(state, records, node_enc_key(enc_key, enc_key_path), access_log)


class SealedReader:
    def __init__(
        self, state: str, records: CommittedRecords, key: bytes | None, access_log: AccessLog
    ) -> None:
        self.state = state
        self.records = records
        self.key = key
        self.log = access_log

    def read(self, record_id: str, *, token: TokenInfo) -> dict[str, Any]:
        if not self.records.store.has_record(record_id):
            raise NotFound(
                f"no committed record with id {record_id}", field="id", code="record_not_found"
            )
        record = self.records.load_envelope(record_id).record
        sealed = record.get("sealed")
        if not isinstance(sealed, dict):
            raise NotFound(
                "this record carries no sealed details", field="sealed", code="no_sealed_details"
            )
        case_ref = record.get("case_ref")
        self.log.authorize(
            token,
            record_id=record_id,
            state=self.state,
            case_ref=case_ref if isinstance(case_ref, str) else None,
        )
        if self.state not in (sealed.get("recipients") or {}):
            self._log(record_id, token, "not_a_recipient")
            raise NotARecipient(
                f"{self.state} is not a recipient of these sealed details",
                field="sealed.recipients",
            )
        if self.key is None:
            raise EncKeyUnavailable("this node has no X25519 key configured (enc_key_path)")
        try:
            details = open_sealed(sealed, self.state, self.key)
        except SealedIntegrityError as exc:
            self._log(record_id, token, "integrity_failed")
            raise SealedUnreadable(
                f"sealed details failed their integrity check: {exc}", field="sealed"
            ) from exc
        entry = self._log(record_id, token, "ok")
        return {
            "id": record_id,
            "state": self.state,
            "details": details,
            "plaintext_sha256": sealed["plaintext_sha256"],
            "access_log": {"seq": entry["seq"], "hash": entry["hash"]},
        }

    def _log(self, record_id: str, token: TokenInfo, outcome: str) -> dict[str, Any]:
        return self.log.append(record_id=record_id, state=self.state, token=token, outcome=outcome)
