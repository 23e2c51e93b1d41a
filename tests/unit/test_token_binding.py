"""Tokens bound to a state, a role and optionally cases (node/tokens.py; issue 17, L5).

``require_body_reader`` is the one rule for reading private details: the
sealed endpoint applies it, and so does the private-body endpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger.errors import ClientError, Forbidden, Unauthorized
from node.tokens import (
    CASES_MAX,
    TokenInfo,
    TokenStore,
    check_body_reader,
    create_token,
    list_tokens,
    require_body_reader,
    tokens_path,
)


def _info(role: str, *, state: str | None = "TH", cases: tuple[str, ...] = ()) -> TokenInfo:
    return TokenInfo("t1", role, "l", "2026-01-01T00:00:00Z", False, "0" * 64, state, cases)


ALLOWED = [
    ("investigator, all cases", _info("investigator"), "CASE-1"),
    ("investigator, a record in no case", _info("investigator"), None),
    ("authority, all cases", _info("authority"), "CASE-9"),
    ("investigator bound to the case", _info("investigator", cases=("CASE-1", "C2")), "CASE-1"),
    ("auditor bound to the case", _info("auditor", cases=("CASE-1",)), "CASE-1"),
    ("a token made before states were bound", _info("investigator", state=None), "CASE-1"),
]


@pytest.mark.parametrize(("what", "token", "case_ref"), ALLOWED, ids=[a[0] for a in ALLOWED])
def test_allowed_readers(what: str, token: TokenInfo, case_ref: str | None) -> None:
    assert require_body_reader(token, state="TH", case_ref=case_ref) is token


REFUSED = [
    ("operator", _info("operator"), "CASE-1", "role_not_allowed", "token.role"),
    ("auditor for all cases", _info("auditor"), "CASE-1", "role_not_allowed", "token.role"),
    ("another state", _info("investigator", state="VN"), "CASE-1", "state_not_allowed", "token.state"),
    ("another case", _info("investigator", cases=("CASE-1",)), "CASE-2", "case_not_allowed", "case_ref"),
    ("a record in no case", _info("authority", cases=("CASE-1",)), None, "case_not_allowed", "case_ref"),
    ("auditor, another case", _info("auditor", cases=("CASE-1",)), "CASE-2", "case_not_allowed", "case_ref"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("what", "token", "case_ref", "code", "field"), REFUSED, ids=[r[0] for r in REFUSED]
)
def test_refused_readers(
    what: str, token: TokenInfo, case_ref: str | None, code: str, field: str
) -> None:
    with pytest.raises(Forbidden) as caught:
        require_body_reader(token, state="TH", case_ref=case_ref)
    assert (caught.value.status, caught.value.code, caught.value.field) == (403, code, field)


def test_no_token_is_401_token_required() -> None:
    with pytest.raises(Unauthorized) as caught:
        require_body_reader(None, state="TH", case_ref="CASE-1")
    assert (caught.value.status, caught.value.code) == (401, "token_required")


def test_the_check_before_lookup_ignores_cases_only() -> None:
    bound = _info("investigator", cases=("CASE-1",))
    assert check_body_reader(bound, state="TH") is bound  # the case is checked with the record
    with pytest.raises(Forbidden, match="auditor"):
        check_body_reader(_info("auditor"), state="TH")


def test_create_token_stores_state_and_cases(tmp_path: Path) -> None:
    token_id, secret = create_token(
        tmp_path, "auditor", "court of X", state="TH", cases=["CASE-1", "CASE-2", "CASE-1"]
    )
    [row] = list_tokens(tmp_path)
    assert (row["id"], row["state"], row["cases"]) == (token_id, "TH", ["CASE-1", "CASE-2"])
    info = TokenStore(tokens_path(tmp_path)).authenticate(secret)
    assert info is not None and (info.role, info.state, info.cases) == (
        "auditor",
        "TH",
        ("CASE-1", "CASE-2"),
    )
    assert require_body_reader(info, state="TH", case_ref="CASE-2") is info
    create_token(tmp_path, "authority", "TH central authority", state="TH")
    assert [r["role"] for r in list_tokens(tmp_path)] == ["auditor", "authority"]


BAD_BINDINGS = [
    ({"state": "th"}, "bad_state"),
    ({"state": "THA"}, "bad_state"),
    ({"cases": [""]}, "bad_cases"),
    ({"cases": ["x" * 129]}, "bad_cases"),
    ({"cases": [f"C{i}" for i in range(CASES_MAX + 1)]}, "bad_cases"),
]


@pytest.mark.parametrize(("binding", "code"), BAD_BINDINGS)
def test_bad_bindings_are_refused_and_nothing_is_stored(
    tmp_path: Path, binding: dict[str, object], code: str
) -> None:
    with pytest.raises(ClientError) as caught:
        create_token(tmp_path, "investigator", "x", **binding)  # type: ignore[arg-type]
    assert caught.value.code == code
    assert list_tokens(tmp_path) == []


def test_a_file_with_a_bad_binding_fails_closed(tmp_path: Path) -> None:
    _, secret = create_token(tmp_path, "investigator", "x", state="TH", cases=["CASE-1"])
    path = tokens_path(tmp_path)
    raw = json.loads(path.read_text())
    raw["tokens"][0]["cases"] = "CASE-1"  # a string, not a list
    path.write_text(json.dumps(raw))
    assert TokenStore(path).authenticate(secret) is None
