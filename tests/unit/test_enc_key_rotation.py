"""The X25519 key ceremony: ``comity enc-key``, the keyring, and reading after a rotation.

docs/GOVERNANCE.md "Rotating the encryption key": details sealed before a
rotation stay under the old key; the node keeps the old key in a keyring
sealed to the new one, and ``node/sealed_access.py`` opens each record with
the key the chain names for its height first. ``comity seal`` takes the keys
from the chain (``GET /v1/members``), not from genesis.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

import api.cli.acts as cli_acts
from api.cli.enc_keys import enc_key, write_enc_key
from ledger.errors import ClientError
from ledger.keys import SigningKey
from ledger.sealed import SealedIntegrityError, open_sealed, seal
from node import queries
from node.access_log import AccessLog
from node.sealed_access import (
    EncKeyUnavailable,
    SealedReader,
    load_enc_key,
    open_keyring,
    open_reader,
    public_of,
    seal_keyring,
)
from node.tokens import TokenInfo
from tests.unit.test_governance import Chain

DETAILS = {"phone": "+84 0000 1111", "account": "user-2233"}


def _cli(*args: str) -> str:
    result = CliRunner().invoke(enc_key, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def _sealed_record(chain: Chain, to: dict[str, bytes]) -> str:
    envelope = chain.env("CN", chain.keys("CN").investigator, sealed=seal(DETAILS, to))
    chain.commit(envelope)
    return envelope.id


def _vn_pub(chain: Chain) -> bytes:
    return bytes.fromhex(chain.app.state.members["VN"].enc_pubkey)


def _rotate(chain: Chain, new_hex: str) -> int:
    fields = {"action": "rotate_enc_key", "state": "VN", "enc_pubkey": new_hex}
    return chain.commit(chain.admin("VN", "member_proposal", **fields))


def _read(reader: SealedReader, record_id: str) -> dict[str, Any]:
    token = TokenInfo("t1", "investigator", "l", "2026-01-01T00:00:00Z", False, "0" * 64, "VN", ())
    details: dict[str, Any] = reader.read(record_id, token=token)["details"]
    return details


def _log(directory: Path) -> AccessLog:
    return AccessLog(directory / "access-log.jsonl", SigningKey.generate())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_old_and_new_details_read_after_the_ceremony(tmp_path: Path) -> None:
    chain = Chain()
    old_file = tmp_path / "enc.key"
    write_enc_key(old_file, chain.keys("VN").enc)
    before = _sealed_record(
        chain, {"VN": _vn_pub(chain), "TH": bytes.fromhex(chain.keys("TH").enc_public_hex)}
    )
    # The ceremony: a new key and a keyring, both 0600; the old key is in it, sealed.
    new_hex = _cli("rotate", "--enc-key", str(old_file), "--out", str(tmp_path / "enc-2.key"))
    ring = tmp_path / "enc-2.keyring"
    assert _mode(tmp_path / "enc-2.key") == 0o600 and _mode(ring) == 0o600
    old_private = chain.keys("VN").enc.private_bytes_raw()
    assert old_private.hex() not in ring.read_text()
    assert json.loads(ring.read_text())["sealed_to"] == new_hex
    shown = _cli("show", "--enc-key", str(tmp_path / "enc-2.key")).splitlines()
    assert shown == [f"current {new_hex}", f"former  {chain.keys('VN').enc_public_hex}"]
    # Sealed just before the rotation (old key), committed after it.
    late = seal(DETAILS, {"VN": _vn_pub(chain)})
    height = _rotate(chain, new_hex)
    assert chain.app.state.enc_pubkey_at("VN", height + 1) == new_hex
    after = _sealed_record(chain, {"VN": _vn_pub(chain)})
    assert _vn_pub(chain).hex() == new_hex
    straddling = chain.env("CN", chain.keys("CN").investigator, sealed=late)
    chain.commit(straddling)
    reader = open_reader(
        "VN",
        chain.app,
        enc_key=None,
        enc_key_path=tmp_path / "enc-2.key",
        data_dir=tmp_path,
        access_log=_log(tmp_path),
    )
    for record_id in (before, after, straddling.id):
        assert _read(reader, record_id) == DETAILS
    # The key the chain names for the record's height is tried first.
    assert public_of(reader.keys_for(before)[0]) == bytes.fromhex(chain.keys("VN").enc_public_hex)
    assert public_of(reader.keys_for(after)[0]).hex() == new_hex
    entries = reader.log.page(-1, 10)
    assert [e["outcome"] for e in entries] == ["ok", "ok", "ok"]
    # Without the keyring the old details are refused, and the attempt is logged.
    bare = SealedReader(
        "VN", chain.app, reader.key, AccessLog(tmp_path / "bare.log", SigningKey.generate())
    )
    with pytest.raises(ClientError) as info:
        _read(bare, before)
    assert (info.value.status, info.value.code) == (422, "sealed_integrity")
    assert _read(bare, after) == DETAILS
    assert [e["outcome"] for e in bare.log.page(-1, 10)] == ["integrity_failed", "ok"]


def test_a_second_rotation_carries_every_former_key(tmp_path: Path) -> None:
    first = tmp_path / "enc.key"
    original = X25519PrivateKey.generate()
    write_enc_key(first, original)
    _cli("rotate", "--enc-key", str(first), "--out", str(tmp_path / "enc-2.key"))
    third = _cli(
        "rotate", "--enc-key", str(tmp_path / "enc-2.key"), "--out", str(tmp_path / "k3.key")
    )
    second_pub = public_of(load_enc_key(tmp_path / "enc-2.key").private_bytes_raw()).hex()
    original_pub = original.public_key().public_bytes_raw().hex()
    assert _cli("show", "--enc-key", str(tmp_path / "k3.key")).splitlines() == [
        f"current {third}",
        f"former  {original_pub}",
        f"former  {second_pub}",
    ]
    # Details sealed to the very first key open with the third key's files alone.
    sealed = seal(DETAILS, {"VN": bytes.fromhex(original_pub)})
    current = load_enc_key(tmp_path / "k3.key").private_bytes_raw()
    ring = json.loads((tmp_path / "k3.keyring").read_text())
    assert open_sealed(sealed, "VN", open_keyring(ring, current)[0]) == DETAILS
    # Nothing is overwritten.
    again = CliRunner().invoke(
        enc_key, ["rotate", "--enc-key", str(first), "--out", str(tmp_path / "k3.key")]
    )
    assert again.exit_code == 2 and "exists" in again.output


@pytest.mark.parametrize("tamper", ["other_key", "swapped_pubkey", "garbled", "version"])
def test_a_keyring_that_is_not_this_nodes_is_refused(tamper: str) -> None:
    current, old, stranger = (X25519PrivateKey.generate().private_bytes_raw() for _ in range(3))
    doc = seal_keyring(public_of(current), [old])
    assert open_keyring(doc, current) == [old]
    if tamper == "other_key":
        doc = seal_keyring(public_of(stranger), [old])
    elif tamper == "swapped_pubkey":
        doc["keys"][0]["pubkey"] = public_of(stranger).hex()
    elif tamper == "garbled":
        doc["keys"][0]["sealed_private"] = "00" * 80
    else:
        doc["version"] = 2
    with pytest.raises(EncKeyUnavailable) as info:
        open_keyring(doc, current)
    assert (info.value.status, info.value.code) == (503, "enc_keyring_invalid")


class _FakeNode:
    """``NodeClient`` for ``comity seal``: GET /v1/members from a chain's state."""

    chain: Chain

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url

    def members(self) -> dict[str, Any]:
        state = self.chain.app.state
        return {"height": state.height, "members": queries.members_view(state)}

    def close(self) -> None:
        pass


def test_seal_takes_recipient_keys_from_the_chain_not_genesis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = Chain()
    new = X25519PrivateKey.generate()
    _rotate(chain, new.public_key().public_bytes_raw().hex())
    chain.commit(chain.admin("CN", "member_proposal", action="remove", state="FR"))
    proposal = next(iter(p for p in chain.app.state.proposals.values() if p.action == "remove"))
    for voter in ("CN", "TH", "VN"):
        chain.commit(chain.admin(voter, "member_vote", proposal=proposal.id, vote="yes"))
    _FakeNode.chain = chain
    monkeypatch.setattr(cli_acts, "NodeClient", _FakeNode)
    details = tmp_path / "details.json"
    details.write_text(json.dumps(DETAILS))
    record = tmp_path / "record.json"
    record.write_text(json.dumps({"type": "eio"}))
    runner = CliRunner()
    result = runner.invoke(
        cli_acts.seal, ["--to", "VN", "--to", "CN", "--node", "http://n", str(details)]
    )
    assert result.exit_code == 0, result.output
    sealed = json.loads(result.output)
    assert sorted(sealed["recipients"]) == ["CN", "VN"]
    assert open_sealed(sealed, "VN", new.private_bytes_raw()) == DETAILS
    with pytest.raises(SealedIntegrityError):  # not the genesis key any more
        open_sealed(sealed, "VN", chain.keys("VN").enc.private_bytes_raw())
    merged = runner.invoke(
        cli_acts.seal,
        ["--to", "TH", "--node", "http://n", "--record", str(record), str(details)],
    )
    assert json.loads(merged.output)["sealed"]["recipients"].keys() == {"TH"}
    unknown = runner.invoke(cli_acts.seal, ["--to", "BR", "--node", "http://n", str(details)])
    assert unknown.exit_code == 2 and "not members of this chain: BR" in unknown.output
    removed = runner.invoke(cli_acts.seal, ["--to", "FR", "--node", "http://n", str(details)])
    assert removed.exit_code == 2 and "removed from the consortium: FR" in removed.output


def test_a_node_whose_keyring_is_not_its_own_refuses_to_open_a_reader(tmp_path: Path) -> None:
    chain = Chain()
    stranger = X25519PrivateKey.generate().private_bytes_raw()
    (tmp_path / "enc.keyring").write_text(json.dumps(seal_keyring(public_of(stranger), [])))
    with pytest.raises(EncKeyUnavailable) as info:
        open_reader(
            "VN",
            chain.app,
            enc_key=chain.keys("VN").enc,
            enc_key_path=None,
            data_dir=tmp_path,
            access_log=_log(tmp_path),
        )
    assert (info.value.status, info.value.code) == (503, "enc_keyring_invalid")
    (tmp_path / "enc.keyring").write_text("{not json")
    with pytest.raises(EncKeyUnavailable):
        open_reader(
            "VN",
            chain.app,
            enc_key=chain.keys("VN").enc,
            enc_key_path=None,
            data_dir=tmp_path,
            access_log=_log(tmp_path),
        )
    (tmp_path / "enc.keyring").unlink()  # no keyring: a node that never rotated
    reader = open_reader(
        "VN",
        chain.app,
        enc_key=chain.keys("VN").enc,
        enc_key_path=None,
        data_dir=tmp_path,
        access_log=_log(tmp_path),
    )
    assert reader.old_keys == ()
