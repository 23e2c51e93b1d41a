"""The P2P wire (node/wire.py, docs/PROTOCOL.md §13): signed requests, signed replies,
and the replay cache. Every refusal names a fixed reason code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ledger.canonical import canonical_bytes
from ledger.hashing import sha256_hex
from ledger.keys import SigningKey
from node.wire import (
    MAX_TS_SKEW_MS,
    REPLY_DOMAIN,
    REQUEST_DOMAIN,
    ReplayCache,
    SignedRequest,
    WireRefusal,
    check_body,
    check_request,
    open_payload,
    parse_request_headers,
    reply_is_authentic,
    reply_sign_bytes,
    request_sign_bytes,
    sign_reply,
    sign_request,
)

CHAIN = "comity-test"
PATH = "/p2p/v1/batch"
NOW = 1_760_000_000_000
SENDER = SigningKey.generate()
RECEIVER = SigningKey.generate()
STRANGER = SigningKey.generate()


def _signed(**overrides: object) -> tuple[bytes, SignedRequest]:
    args: dict[str, object] = {
        "key": SENDER,
        "chain_id": CHAIN,
        "path": PATH,
        "receiver": RECEIVER.public_hex,
        "payload": {"items": []},
        "now_ms": NOW,
    }
    args.update(overrides)
    return sign_request(**args)  # type: ignore[arg-type]


def _check(
    request: SignedRequest,
    replay: ReplayCache | None = None,
    *,
    path: str = PATH,
    chain_id: str = CHAIN,
    now_ms: int = NOW,
) -> None:
    check_request(
        request,
        chain_id=chain_id,
        path=path,
        own_key=RECEIVER.public_hex,
        allowed={SENDER.public_hex},
        now_ms=now_ms,
        replay=replay if replay is not None else ReplayCache(),
    )


def test_sign_bytes_are_canonical_json_of_the_documented_fields() -> None:
    assert request_sign_bytes(
        CHAIN, PATH, "aa" * 32, "bb" * 32, 5, "cc" * 16, "dd" * 32
    ) == canonical_bytes(
        {
            "domain": REQUEST_DOMAIN,
            "chain_id": CHAIN,
            "path": PATH,
            "from": "aa" * 32,
            "to": "bb" * 32,
            "ts_ms": 5,
            "nonce": "cc" * 16,
            "body_sha256": "dd" * 32,
        }
    )
    request = SignedRequest("aa" * 32, "bb" * 32, 5, "cc" * 16, "dd" * 32, "ee" * 64)
    assert reply_sign_bytes(CHAIN, PATH, request, "ff" * 32, 200, "11" * 32) == canonical_bytes(
        {
            "domain": REPLY_DOMAIN,
            "chain_id": CHAIN,
            "path": PATH,
            "nonce": "cc" * 16,
            "request_from": "aa" * 32,
            "request_sha256": "dd" * 32,
            "from": "ff" * 32,
            "status": 200,
            "body_sha256": "11" * 32,
        }
    )


def test_a_signed_request_opens() -> None:
    body, request = _signed()
    parsed = parse_request_headers(request.headers())
    assert parsed == request and len(parsed.nonce) == 32
    _check(parsed)
    check_body(parsed, sha256_hex(body))
    assert open_payload(body) == {"items": []}
    assert _signed()[1].nonce != request.nonce  # a fresh nonce for every request


def _tamper(field: str, value: object) -> Callable[[SignedRequest], SignedRequest]:
    changes: dict[str, Any] = {field: value}
    return lambda request: replace(request, **changes)


REFUSALS: list[tuple[str, Callable[[SignedRequest], SignedRequest], dict[str, object], str]] = [
    ("wrong receiver", _tamper("receiver", STRANGER.public_hex), {}, "wire_wrong_receiver"),
    ("non-validator sender", _tamper("sender", STRANGER.public_hex), {}, "wire_unknown_sender"),
    ("stale ts", _tamper("ts_ms", NOW - MAX_TS_SKEW_MS - 1), {}, "wire_stale"),
    ("future ts", _tamper("ts_ms", NOW + MAX_TS_SKEW_MS + 1), {}, "wire_stale"),
    ("ts changed after signing", _tamper("ts_ms", NOW + 1), {}, "wire_bad_signature"),
    ("nonce changed", _tamper("nonce", "00" * 16), {}, "wire_bad_signature"),
    ("body hash changed", _tamper("body_sha256", "00" * 32), {}, "wire_bad_signature"),
    (
        "signature flipped",
        lambda r: replace(r, signature=("0" if r.signature[0] != "0" else "1") + r.signature[1:]),
        {},
        "wire_bad_signature",
    ),
    ("wrong path", lambda r: r, {"path": "/p2p/v1/blocks"}, "wire_bad_signature"),
    ("wrong chain", lambda r: r, {"chain_id": "another-chain"}, "wire_bad_signature"),
]


@pytest.mark.parametrize(
    ("what", "tamper", "where", "reason"), REFUSALS, ids=[row[0] for row in REFUSALS]
)
def test_refusals(
    what: str,
    tamper: Callable[[SignedRequest], SignedRequest],
    where: dict[str, object],
    reason: str,
) -> None:
    _, request = _signed()
    with pytest.raises(WireRefusal) as refused:
        _check(tamper(request), **where)  # type: ignore[arg-type]
    assert refused.value.reason == reason


def test_a_replayed_request_is_refused() -> None:
    replay = ReplayCache()
    _, request = _signed()
    _check(request, replay)
    with pytest.raises(WireRefusal) as refused:
        _check(request, replay, now_ms=NOW + 1000)
    assert refused.value.reason == "wire_replay"
    _check(_signed(now_ms=NOW + 1000)[1], replay, now_ms=NOW + 1000)  # a new nonce is fine


def test_a_body_that_is_not_the_signed_one_is_refused() -> None:
    body, request = _signed()
    with pytest.raises(WireRefusal) as refused:
        check_body(request, sha256_hex(body + b" "))
    assert refused.value.reason == "wire_body_mismatch"


@pytest.mark.parametrize("body", [b"[1,2]", b"not json", b"", b'"x"'])
def test_a_body_must_be_a_json_object(body: bytes) -> None:
    with pytest.raises(WireRefusal) as refused:
        open_payload(body)
    assert refused.value.reason == "wire_bad_body"


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("x-comity-from", None),
        ("x-comity-from", "AB" * 32),
        ("x-comity-to", "ab" * 31),
        ("x-comity-ts", None),
        ("x-comity-ts", "-5"),
        ("x-comity-ts", "1e9"),
        ("x-comity-ts", "9" * 17),
        ("x-comity-ts", "١٢٣"),
        ("x-comity-nonce", "ab" * 15),
        ("x-comity-body-sha256", "zz" * 32),
        ("x-comity-signature", "ab" * 63),
    ],
)
def test_malformed_headers_are_refused(header: str, value: str | None) -> None:
    headers = _signed()[1].headers()
    if value is None:
        del headers[header]
    else:
        headers[header] = value
    with pytest.raises(WireRefusal) as refused:
        parse_request_headers(headers)
    assert refused.value.reason == "wire_bad_headers"


def test_reasons_never_carry_peer_text() -> None:
    _, request = _signed(key=STRANGER)
    with pytest.raises(WireRefusal) as refused:
        _check(request)
    assert STRANGER.public_hex[:8] not in str(refused.value)


# --- replies ------------------------------------------------------------------------------


def test_a_signed_reply_is_authentic_only_for_its_request() -> None:
    _, request = _signed()
    body = b'{"height":7}'
    headers = sign_reply(RECEIVER, CHAIN, PATH, request, 200, body)
    server = RECEIVER.public_hex
    assert reply_is_authentic(server, CHAIN, PATH, request, 200, body, headers)
    other = _signed()[1]
    cases = {
        "another request's nonce": (server, PATH, other, 200, body, headers),
        "another sender's request": (
            server,
            PATH,
            replace(request, sender="aa" * 32),
            200,
            body,
            headers,
        ),
        "another request body": (
            server,
            PATH,
            replace(request, body_sha256="00" * 32),
            200,
            body,
            headers,
        ),
        "another path": (server, "/p2p/v1/status", request, 200, body, headers),
        "another status": (server, PATH, request, 403, body, headers),
        "a rewritten body": (server, PATH, request, 200, b'{"height":1000000000}', headers),
        "another server key": (STRANGER.public_hex, PATH, request, 200, body, headers),
        "unsigned": (server, PATH, request, 200, body, {}),
        "signed by a stand-in": (
            server,
            PATH,
            request,
            200,
            body,
            {**sign_reply(STRANGER, CHAIN, PATH, request, 200, body), "x-comity-from": server},
        ),
    }
    for what, (key, path, req, status, content, hdrs) in cases.items():
        assert not reply_is_authentic(key, CHAIN, path, req, status, content, hdrs), what


# --- replay cache -------------------------------------------------------------------------


def test_one_sender_cannot_evict_anothers_nonces() -> None:
    replay = ReplayCache(per_sender_max=10, total_max=1000)
    replay.remember("honest", "n0", NOW, NOW)
    for i in range(500):
        replay.remember("flooder", f"f{i}", NOW + i, NOW + i)
    assert replay.is_replay("honest", "n0", NOW)
    assert len(replay) == 11
    assert replay.is_replay("flooder", "f0", NOW)  # forgotten, yet refused: below floor
    assert not replay.is_replay("flooder", "fresh", NOW + 500)


def test_the_total_cap_takes_from_the_largest_sender() -> None:
    replay = ReplayCache(per_sender_max=100, total_max=120)
    for i in range(30):
        replay.remember("a", f"a{i}", NOW + i, NOW + i)
    for i in range(100):
        replay.remember("b", f"b{i}", NOW + i, NOW + i)
    assert len(replay) == 120
    assert all(replay.is_replay("a", f"a{i}", NOW + i) for i in range(30))
    assert all(replay.is_replay("b", f"b{i}", NOW + i) for i in range(100))


def test_nonces_past_the_window_are_dropped_yet_stay_refused() -> None:
    replay = ReplayCache(window_ms=1000)
    replay.remember("a", "old", NOW, NOW)
    replay.remember("a", "new", NOW + 5000, NOW + 5000)
    assert len(replay) == 1
    assert replay.is_replay("a", "old", NOW)  # e.g. after our clock steps back


def test_a_released_nonce_can_be_used_once_more() -> None:
    replay = ReplayCache()
    replay.remember("a", "n", NOW, NOW)
    replay.forget("a", "n")
    assert not replay.is_replay("a", "n", NOW) and len(replay) == 0


def test_senders_past_the_cap_are_dropped_least_recent_first() -> None:
    replay = ReplayCache(senders_max=3)
    for sender in "abcd":
        replay.remember(sender, "n", NOW, NOW)
    assert not replay.is_replay("a", "n", NOW) and replay.is_replay("d", "n", NOW)
    assert len(replay) == 3


def test_the_protocol_doc_shows_the_exact_sign_bytes() -> None:
    """docs/PROTOCOL.md §13's two examples are what the code signs."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md").read_text()
    request = SignedRequest(
        "aa" * 32, "bb" * 32, 1_760_000_000_000, "cc" * 16, "dd" * 32, "ee" * 64
    )
    path = "/p2p/v1/status"
    signed = request_sign_bytes(
        "comity-devnet",
        path,
        request.sender,
        request.receiver,
        request.ts_ms,
        request.nonce,
        request.body_sha256,
    )
    reply = reply_sign_bytes("comity-devnet", path, request, "bb" * 32, 200, "11" * 32)
    assert f"\n{signed.decode()}\n" in doc and f"\n{reply.decode()}\n" in doc
