"""Block headers, sign-bytes and commit certificates (docs/DESIGN.md "Block hash",
"Precommit sign-bytes", "Commit certificate"; docs/PROTOCOL.md §7-§9).

Quorum is ⌊2n/3⌋+1 (Buchman, Kwon, Milosevic, arXiv:1807.04938 §2 with equal
voting power).
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import pytest

from ledger.block import (
    HEADER_FIELDS,
    BlockHeader,
    CommitCertificate,
    CommitSignature,
    Validator,
    genesis_hash,
    proposal_sign_bytes,
    validators_hash,
    verify_certificate,
    vote_sign_bytes,
)
from ledger.canonical import canonical_bytes
from ledger.errors import CertificateError, EncodingError
from ledger.keys import SigningKey

CHAIN = "comity-test"
KEYS = {state: SigningKey(bytes([i + 1]) * 32) for i, state in enumerate(("DE", "ES", "FR", "IT"))}
VALIDATORS = [Validator(state, key.public_hex) for state, key in KEYS.items()]
STRANGER = SigningKey(b"\x77" * 32)
BLOCK_HASH = "ab" * 32
HEIGHT, ROUND = 7, 2


def make_header(**changes: Any) -> BlockHeader:
    header = BlockHeader(
        chain_id=CHAIN,
        height=1,
        time="2026-11-22T06:10:10.123Z",
        prev_hash="00" * 32,
        proposer="FR",
        record_count=2,
        ledger_size=2,
        ledger_root="11" * 32,
        validators_hash="22" * 32,
    )
    return dataclasses.replace(header, **changes)


# --- header ------------------------------------------------------------------------------


def test_header_hash_is_sha256_of_jcs_header() -> None:
    header = make_header()
    jcs = (
        b'{"chain_id":"comity-test","height":1,"ledger_root":"'
        + b"11" * 32
        + b'","ledger_size":2,"prev_hash":"'
        + b"00" * 32
        + b'","proposer":"FR",'
        b'"record_count":2,"time":"2026-11-22T06:10:10.123Z","validators_hash":"'
        + b"22" * 32
        + b'"}'
    )
    assert canonical_bytes(header.to_json()) == jcs
    assert header.hash() == hashlib.sha256(jcs).hexdigest()


def test_header_hash_covers_every_field() -> None:
    base = make_header()
    changed = {
        "chain_id": "other",
        "height": 2,
        "time": "2026-11-22T06:10:10.124Z",
        "prev_hash": "01" * 32,
        "proposer": "DE",
        "record_count": 3,
        "ledger_size": 3,
        "ledger_root": "12" * 32,
        "validators_hash": "23" * 32,
    }
    assert set(changed) == set(HEADER_FIELDS)
    hashes = {make_header(**{name: value}).hash() for name, value in changed.items()}
    assert len(hashes) == len(HEADER_FIELDS) and base.hash() not in hashes


def test_header_json_round_trip() -> None:
    header = make_header()
    assert BlockHeader.from_json(header.to_json()) == header
    assert list(header.to_json()) == list(HEADER_FIELDS)


def _header_json(**changes: Any) -> dict[str, Any]:
    obj = make_header().to_json()
    for name, value in changes.items():
        if value is ...:
            del obj[name]
        else:
            obj[name] = value
    return obj


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ([], "header"),
        (None, "header"),
        (_header_json(extra=1), "header"),
        (_header_json(hash="ab" * 32), "header"),
        *[(_header_json(**{name: ...}), f"header.{name}") for name in HEADER_FIELDS],
        (_header_json(height="1"), "header.height"),
        (_header_json(height=-1), "header.height"),
        (_header_json(height=True), "header.height"),
        (_header_json(height=1.0), "header.height"),
        (_header_json(record_count=None), "header.record_count"),
        (_header_json(ledger_size=-5), "header.ledger_size"),
        (_header_json(prev_hash="AB" * 32), "header.prev_hash"),
        (_header_json(prev_hash=""), "header.prev_hash"),
        (_header_json(ledger_root="11" * 31), "header.ledger_root"),
        (_header_json(validators_hash=0), "header.validators_hash"),
        (_header_json(chain_id=1), "header.chain_id"),
        (_header_json(time=None), "header.time"),
        (_header_json(proposer=["FR"]), "header.proposer"),
    ],
)
def test_header_from_json_refuses(obj: Any, field: str) -> None:
    with pytest.raises(EncodingError) as info:
        BlockHeader.from_json(obj)
    assert (info.value.code, info.value.field) == ("malformed_json", field)


def test_genesis_hash_is_sha256_of_jcs_genesis() -> None:
    genesis = {"chain_id": CHAIN, "members": [{"state": "FR", "name": "France"}]}
    jcs = b'{"chain_id":"comity-test","members":[{"name":"France","state":"FR"}]}'
    assert genesis_hash(genesis) == hashlib.sha256(jcs).hexdigest()


def test_validators_hash_sorted_by_state() -> None:
    rows = b",".join(
        b'{"pubkey":"' + KEYS[s].public_hex.encode() + b'","state":"' + s.encode() + b'"}'
        for s in sorted(KEYS)
    )
    expected = hashlib.sha256(b"[" + rows + b"]").hexdigest()
    assert validators_hash(VALIDATORS) == expected
    assert validators_hash(reversed(VALIDATORS)) == expected
    assert validators_hash(VALIDATORS[:3]) != expected


# --- sign-bytes ----------------------------------------------------------------------------


def test_precommit_sign_bytes_literal() -> None:
    assert vote_sign_bytes("precommit", CHAIN, 5, 0, BLOCK_HASH) == (
        b'{"block_hash":"'
        + b"ab" * 32
        + b'","chain_id":"comity-test","height":5,"round":0,"type":"precommit"}'
    )


def test_prevote_and_nil_sign_bytes_literal() -> None:
    assert (
        vote_sign_bytes("prevote", "c", 1, 3, None)
        == b'{"block_hash":null,"chain_id":"c","height":1,"round":3,"type":"prevote"}'
    )


def test_unknown_vote_type_refused() -> None:
    with pytest.raises(ValueError, match="unknown vote type"):
        vote_sign_bytes("proposal", CHAIN, 1, 0, BLOCK_HASH)


def test_proposal_sign_bytes_literal() -> None:
    assert proposal_sign_bytes(CHAIN, 5, 1, BLOCK_HASH, -1) == (
        b'{"block_hash":"' + b"ab" * 32 + b'","chain_id":"comity-test","height":5,'
        b'"round":1,"type":"proposal","valid_round":-1}'
    )


# --- commit certificates -------------------------------------------------------------------


def _sig(
    key: SigningKey,
    *,
    vote_type: str = "precommit",
    chain_id: str = CHAIN,
    height: int = HEIGHT,
    round_: int = ROUND,
    block_hash: str | None = BLOCK_HASH,
) -> CommitSignature:
    message = vote_sign_bytes(vote_type, chain_id, height, round_, block_hash)
    return CommitSignature(key.public_hex, key.sign(message).hex())


def _cert(
    *sigs: CommitSignature, height: int = HEIGHT, block_hash: str = BLOCK_HASH
) -> CommitCertificate:
    return CommitCertificate(height, ROUND, block_hash, tuple(sigs))


def _check(cert: CommitCertificate, validators: list[Validator] = VALIDATORS) -> None:
    verify_certificate(cert, CHAIN, validators, BLOCK_HASH, HEIGHT)


def test_quorum_of_three_of_four_accepted() -> None:
    _check(_cert(_sig(KEYS["DE"]), _sig(KEYS["FR"]), _sig(KEYS["IT"])))
    _check(_cert(*(_sig(k) for k in KEYS.values())))


def test_certificate_json_round_trip() -> None:
    cert = _cert(_sig(KEYS["DE"]), _sig(KEYS["FR"]), _sig(KEYS["IT"]))
    again = CommitCertificate.from_json(cert.to_json())
    assert again == cert
    _check(again)
    assert set(cert.to_json()) == {"height", "round", "block_hash", "signatures"}


@pytest.mark.parametrize(
    ("cert", "message"),
    [
        pytest.param(
            _cert(_sig(KEYS["DE"]), _sig(KEYS["FR"])), "quorum of 4 is 3", id="two-of-four"
        ),
        pytest.param(_cert(), "quorum of 4 is 3", id="empty"),
        pytest.param(
            _cert(_sig(KEYS["DE"]), _sig(KEYS["FR"]), _sig(KEYS["FR"])),
            "signed twice",
            id="duplicate-signer",
        ),
        pytest.param(
            _cert(_sig(KEYS["DE"]), _sig(KEYS["FR"]), _sig(STRANGER)),
            "not a validator",
            id="non-validator",
        ),
        pytest.param(
            _cert(_sig(KEYS["DE"]), _sig(KEYS["FR"]), _sig(KEYS["IT"]), _sig(STRANGER)),
            "not a validator",
            id="quorum-plus-stranger",
        ),
        pytest.param(
            _cert(
                _sig(KEYS["DE"]),
                _sig(KEYS["FR"]),
                CommitSignature(KEYS["IT"].public_hex, _sig(KEYS["ES"]).signature),
            ),
            "bad precommit signature",
            id="bad-signature",
        ),
        pytest.param(
            _cert(
                _sig(KEYS["DE"]),
                _sig(KEYS["FR"]),
                CommitSignature(KEYS["IT"].public_hex, "zz" * 64),
            ),
            "bad precommit signature",
            id="signature-not-hex",
        ),
        pytest.param(
            _cert(_sig(KEYS["DE"]), _sig(KEYS["FR"]), _sig(KEYS["IT"]), height=HEIGHT + 1),
            "height",
            id="wrong-height",
        ),
        pytest.param(
            _cert(_sig(KEYS["DE"]), _sig(KEYS["FR"]), _sig(KEYS["IT"]), block_hash="cd" * 32),
            "block hash",
            id="wrong-block-hash",
        ),
        pytest.param(
            _cert(_sig(KEYS["DE"]), _sig(KEYS["FR"]), _sig(KEYS["IT"], vote_type="prevote")),
            "bad precommit signature",
            id="prevote-not-precommit",
        ),
        pytest.param(
            _cert(_sig(KEYS["DE"]), _sig(KEYS["FR"]), _sig(KEYS["IT"], round_=ROUND + 1)),
            "bad precommit signature",
            id="other-round",
        ),
        pytest.param(
            _cert(_sig(KEYS["DE"]), _sig(KEYS["FR"]), _sig(KEYS["IT"], chain_id="x")),
            "bad precommit signature",
            id="other-chain",
        ),
        pytest.param(
            _cert(_sig(KEYS["DE"]), _sig(KEYS["FR"]), _sig(KEYS["IT"], height=HEIGHT - 1)),
            "bad precommit signature",
            id="signed-other-height",
        ),
        pytest.param(
            _cert(_sig(KEYS["DE"]), _sig(KEYS["FR"]), _sig(KEYS["IT"], block_hash=None)),
            "bad precommit signature",
            id="nil-precommit",
        ),
    ],
)
def test_bad_certificates_refused(cert: CommitCertificate, message: str) -> None:
    with pytest.raises(CertificateError, match=message):
        _check(cert)


def test_precommits_by_all_prevote_signatures_refused() -> None:
    # Three valid prevotes are not a commit: only precommits count.
    cert = _cert(*(_sig(KEYS[s], vote_type="prevote") for s in ("DE", "FR", "IT")))
    with pytest.raises(CertificateError, match="bad precommit signature"):
        _check(cert)


@pytest.mark.parametrize(
    ("n", "signers", "ok"),
    [
        (1, 1, True),
        (1, 0, False),
        (2, 2, True),
        (2, 1, False),
        (3, 3, True),
        (3, 2, False),
        (4, 3, True),
        (4, 2, False),
        (7, 5, True),
        (7, 4, False),
    ],
)
def test_quorum_is_floor_two_n_over_three_plus_one(n: int, signers: int, ok: bool) -> None:
    keys = [SigningKey(bytes([0x40 + i]) * 32) for i in range(n)]
    validators = [Validator(f"S{chr(65 + i)}", k.public_hex) for i, k in enumerate(keys)]
    cert = _cert(*(_sig(k) for k in keys[:signers]))
    if ok:
        _check(cert, validators)
    else:
        with pytest.raises(CertificateError, match="quorum"):
            _check(cert, validators)


@pytest.mark.parametrize(
    "obj",
    [
        {},
        {"height": 1, "round": 0, "block_hash": BLOCK_HASH},
        {"height": "1", "round": 0, "block_hash": BLOCK_HASH, "signatures": []},
        {"height": 1, "round": 0, "block_hash": "AB" * 32, "signatures": []},
        {"height": 1, "round": 0, "block_hash": BLOCK_HASH, "signatures": [{"validator": "x"}]},
        {"height": 1, "round": 0, "block_hash": BLOCK_HASH, "signatures": None},
        [],
    ],
)
def test_certificate_from_json_refuses_malformed(obj: Any) -> None:
    with pytest.raises(EncodingError) as info:
        CommitCertificate.from_json(obj)
    assert info.value.field == "commit"
