"""``comity run --byzantine`` works only for fault campaigns, and its signatures are
real second signatures (node/byzantine.py)."""

from __future__ import annotations

import pytest

from ledger.keys import SigningKey, verify
from node.byzantine import ENV_FLAG, ByzantineRefused, parse_behaviours, sign_with_nonce


def test_second_signatures_are_valid_and_distinct() -> None:
    key = SigningKey.generate()
    message = b"one record"
    signatures = {sign_with_nonce(key, message) for _ in range(5)} | {key.sign(message)}
    assert len(signatures) == 6
    assert all(verify(key.public_key, message, s) for s in signatures)
    assert not verify(key.public_key, b"another record", sign_with_nonce(key, message))


def test_the_flag_is_refused_without_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_FLAG, raising=False)
    with pytest.raises(ByzantineRefused, match=ENV_FLAG):
        parse_behaviours("lying-heights", None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lying-heights,teleport", "unknown"),
        ("", "unknown"),
        ("dup-records", "--byzantine-signer"),
    ],
)
def test_bad_behaviour_lists_are_refused(
    text: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_FLAG, "1")
    with pytest.raises(ByzantineRefused, match=message):
        parse_behaviours(text, None)


def test_a_valid_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_FLAG, "1")
    assert parse_behaviours("lying-heights, junk-blocks", None) == {"lying-heights", "junk-blocks"}
