"""Sealed details of a private act (node/sealed_access.py, docs/PRIVACY.md "Reading on a node").

An act filed with ``visibility: "parties"`` carries its ``sealed`` member in its
private body, not in the committed header: the chain holds only the body's
commitment. So the reader opens a private act's details from the body this
node keeps, and lets through exactly whom the body read lets through
(``node/body_access.py``): a party's node only, the body held and not purged,
a token allowed for the act's case (which is in the body). A non-party's node
gives the refusal it gives for the body, whether the act has sealed details
or not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ledger.errors import ClientError
from ledger.keys import SigningKey
from ledger.records import Envelope
from ledger.sealed import seal
from node.access_log import AccessLog
from node.sealed_access import SealedReader, public_of
from node.tokens import TokenInfo
from tests.unit.test_governance import Chain
from tests.unit.test_private_app import _commit_as, _private

DETAILS = {"subscriber": "user-5150", "iban": "TH00 0000 0000"}
CASE = "CN-2026-SEALED-1"


def _token(state: str = "TH", *cases: str, role: str = "investigator") -> TokenInfo:
    return TokenInfo("tok", role, "l", "2026-01-01T00:00:00Z", False, "0" * 64, state, cases)


def _enc_public(chain: Chain, state: str) -> bytes:
    return bytes.fromhex(chain.app.state.members[state].enc_pubkey)


def _filed(
    chain: Chain, me: str, *, sealed_to: tuple[str, ...] = ("CN", "TH"), hold: bool = True
) -> tuple[Envelope, dict[str, Any]]:
    """CN's private preservation request about a provider in TH, committed as seen by
    ``me``'s node (holding the body if ``hold`` and ``me`` is a party)."""
    fields: dict[str, Any] = {"case_ref": CASE}
    if sealed_to:
        fields["sealed"] = seal(DETAILS, {s: _enc_public(chain, s) for s in sealed_to})
    chain.app.me = me
    envelope, body = _private(chain, **fields)
    assert envelope.record["parties"] == ["CN", "TH"] and "sealed" not in envelope.record
    if hold and me in envelope.record["parties"]:
        chain.app.bodies.put(envelope.id, body)
    _commit_as(chain, envelope)
    return envelope, body


def _reader(chain: Chain, state: str, tmp_path: Path, *, old: tuple[bytes, ...] = ()) -> Any:
    key = chain.keys(state).enc.private_bytes_raw()
    log = AccessLog(tmp_path / f"{state}-access-log.jsonl", SigningKey.generate())
    return SealedReader(state, chain.app, key, log, old_keys=old)


def _refusal(reader: SealedReader, record_id: str, token: TokenInfo) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as info:
        reader.read(record_id, token=token)
    return info.value.status, info.value.code, str(info.value)


def _outcomes(reader: SealedReader) -> list[str]:
    return [e["outcome"] for e in reader.log.page(-1, 100)]


def test_a_party_node_opens_the_sealed_details_of_a_private_act(tmp_path: Path) -> None:
    chain = Chain()
    envelope, _ = _filed(chain, "TH")
    reader = _reader(chain, "TH", tmp_path)
    answer = reader.read(envelope.id, token=_token())
    assert answer["details"] == DETAILS and answer["state"] == "TH"
    assert answer["access_log"]["seq"] == 0 and _outcomes(reader) == ["ok"]


def test_a_token_bound_to_the_acts_case_reads_and_another_case_is_refused(
    tmp_path: Path,
) -> None:
    """The case is in the body: the header alone would refuse every case-bound token."""
    chain = Chain()
    envelope, _ = _filed(chain, "TH")
    reader = _reader(chain, "TH", tmp_path)
    assert reader.read(envelope.id, token=_token("TH", CASE))["details"] == DETAILS
    assert reader.read(envelope.id, token=_token("TH", CASE, role="auditor"))["details"] == DETAILS
    status, code, _ = _refusal(reader, envelope.id, _token("TH", "TH-OTHER"))
    assert (status, code) == (403, "case_not_allowed")
    assert _outcomes(reader) == ["ok", "ok", "case_not_allowed"]


def test_a_wrong_case_token_learns_nothing_of_whether_details_exist(tmp_path: Path) -> None:
    chain = Chain()
    with_details, _ = _filed(chain, "TH")
    without, _ = _filed(chain, "TH", sealed_to=())
    reader = _reader(chain, "TH", tmp_path)
    elsewhere = _token("TH", "TH-OTHER")
    assert _refusal(reader, with_details.id, elsewhere) == _refusal(reader, without.id, elsewhere)
    status, code, _ = _refusal(reader, without.id, _token())  # a reader of the body: told
    assert (status, code) == (404, "no_sealed_details")


def test_a_non_party_node_refuses_as_for_the_body_whether_or_not_details_exist(
    tmp_path: Path,
) -> None:
    chain = Chain()
    with_details, _ = _filed(chain, "FR", sealed_to=("CN", "TH", "FR"))
    without, _ = _filed(chain, "FR", sealed_to=())
    reader = _reader(chain, "FR", tmp_path)
    refused = _refusal(reader, with_details.id, _token("FR"))
    assert refused == (403, "not_a_party", "FR is not a party of this act")
    assert _refusal(reader, without.id, _token("FR")) == refused
    assert _outcomes(reader) == ["not_a_recipient", "not_a_recipient"]


def test_a_party_that_is_not_a_recipient_is_refused(tmp_path: Path) -> None:
    chain = Chain()
    envelope, _ = _filed(chain, "TH", sealed_to=("CN",))
    reader = _reader(chain, "TH", tmp_path)
    assert _refusal(reader, envelope.id, _token())[:2] == (403, "not_a_recipient")
    assert _outcomes(reader) == ["not_a_recipient"]


def test_a_body_not_on_this_node_is_a_clear_404(tmp_path: Path) -> None:
    chain = Chain()
    envelope, _ = _filed(chain, "TH", hold=False)
    reader = _reader(chain, "TH", tmp_path)
    assert _refusal(reader, envelope.id, _token())[:2] == (404, "body_not_held")


def test_a_purged_body_is_a_clear_404(tmp_path: Path) -> None:
    chain = Chain()
    envelope, body = _filed(chain, "TH")
    chain.store.purge_body(envelope.with_body(body), "TH", "2026-06-01T00:00:00Z")
    reader = _reader(chain, "TH", tmp_path)
    status, code, message = _refusal(reader, envelope.id, _token())
    assert (status, code) == (404, "body_purged") and "2026-06-01T00:00:00Z" in message


def test_a_void_body_still_opens_as_the_body_read_serves_it(tmp_path: Path) -> None:
    """A void body is kept as evidence and served by the body read: so are its details."""
    chain = Chain()
    envelope, body = _filed(chain, "TH", hold=False)
    chain.store.put_body(envelope.with_body(body), valid=False)
    assert chain.store.body_note(envelope.id) == {"status": "void"}
    assert _reader(chain, "TH", tmp_path).read(envelope.id, token=_token())["details"] == DETAILS


def test_details_sealed_before_a_key_rotation_open_with_the_keyring(tmp_path: Path) -> None:
    chain = Chain()
    envelope, _ = _filed(chain, "TH")  # sealed to TH's genesis key
    old = chain.keys("TH").enc.private_bytes_raw()
    new = X25519PrivateKey.generate().private_bytes_raw()
    fields = {"action": "rotate_enc_key", "state": "TH", "enc_pubkey": public_of(new).hex()}
    chain.commit(chain.admin("TH", "member_proposal", **fields))
    assert chain.app.state.members["TH"].enc_pubkey == public_of(new).hex()
    log = AccessLog(tmp_path / "access-log.jsonl", SigningKey.generate())
    reader = SealedReader("TH", chain.app, new, log, old_keys=(old,))
    assert public_of(reader.keys_for(envelope.id)[0]) == public_of(old)  # the chain's key first
    assert reader.read(envelope.id, token=_token())["details"] == DETAILS
    bare = SealedReader("TH", chain.app, new, log)  # without the keyring: not opened
    assert _refusal(bare, envelope.id, _token())[:2] == (422, "sealed_integrity")
