"""``comity devnet`` signs each state's console in: a token per state, 0600, in its URL's fragment."""

from __future__ import annotations

import stat
from pathlib import Path

from api.cli import devnet
from node.tokens import BODY_READER_ROLES, TokenStore, list_tokens, tokens_path


def test_each_state_gets_a_console_token_kept_0600_and_printed_in_the_fragment(
    tmp_path: Path,
) -> None:
    rows = devnet.prepare(tmp_path, 2, 17400)
    text = devnet.hint(tmp_path, rows)
    for row in rows:
        path = tmp_path / row["state"] / devnet.CONSOLE_TOKEN
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        secret = path.read_text().strip()
        assert f"  {row['state']}: {row['api_url']}/#token={secret}" in text
        token = TokenStore(tokens_path(tmp_path / row["state"] / "data")).authenticate(secret)
        assert token is not None and token.state == row["state"]
        assert token.role == devnet.CONSOLE_ROLE and token.role in BODY_READER_ROLES
    assert f"{rows[0]['api_url']}/ is the console" in text  # the older hint stays true


def test_a_second_run_reuses_the_token(tmp_path: Path) -> None:
    devnet.prepare(tmp_path, 1, 17400)
    first = (tmp_path / "CN" / devnet.CONSOLE_TOKEN).read_text()
    devnet.prepare(tmp_path, 1, 17400)
    assert (tmp_path / "CN" / devnet.CONSOLE_TOKEN).read_text() == first
    assert len(list_tokens(tmp_path / "CN" / "data")) == 1
