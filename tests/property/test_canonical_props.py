"""Property tests: Comity's canonical_bytes equals the RFC 8785 reference encoder.

canonical_bytes takes a fast orjson path unless an object key holds a
character above U+D7FF (where code-point order and the UTF-16 order of
RFC 8785 §3.2.3 can differ). These properties check both paths against
``rfc8785.dumps`` (the Trail of Bits reference package) over the whole
accepted subset, and that parse_json reads canonical bytes back exactly.
"""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.canonical import (
    MAX_SAFE_INT,
    _careful_parse,
    canonical_bytes,
    check_value,
    parse_json,
)
from ledger.errors import EncodingError

# Characters for keys and strings: any scalar value (no surrogates), with extra
# weight on the ranges where UTF-16 and code-point order disagree (§3.2.3),
# on control characters (§3.2.2.2 escapes) and on the characters JSON escapes.
# codec="utf-8" is what keeps lone surrogates out (they cannot be encoded).
_chars = st.one_of(
    st.characters(codec="utf-8"),
    st.characters(codec="utf-8", min_codepoint=0xE000, max_codepoint=0xFFFF),
    st.characters(codec="utf-8", min_codepoint=0x10000, max_codepoint=0x10FFFF),
    st.characters(min_codepoint=0x00, max_codepoint=0x7F),
    st.sampled_from('"\\/\x7f\u2028\u2029\ufeff'),
)
_text = st.text(alphabet=_chars, max_size=12)
_ints = st.one_of(
    st.integers(min_value=-MAX_SAFE_INT, max_value=MAX_SAFE_INT),
    st.sampled_from([0, -1, 1, MAX_SAFE_INT, -MAX_SAFE_INT, 2**31, -(2**31), 2**32]),
)
_scalars = st.one_of(st.none(), st.booleans(), _ints, _text)
json_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(_text, children, max_size=6),
    ),
    max_leaves=25,
)
json_objects = st.dictionaries(_text, json_values, min_size=1, max_size=6)


def _tagged(value: Any) -> Any:
    """A form where True != 1 and order of dict insertion is irrelevant."""
    if isinstance(value, dict):
        return ("object", sorted((k, _tagged(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("array", [_tagged(v) for v in value])
    return (type(value).__name__, value)


@settings(max_examples=250, deadline=None)
@given(json_values)
def test_canonical_bytes_equal_rfc8785_reference(value: Any) -> None:
    assert canonical_bytes(value) == bytes(rfc8785.dumps(value))


@settings(max_examples=150, deadline=None)
@given(json_objects)
def test_objects_with_wide_keys_equal_rfc8785_reference(value: dict[str, Any]) -> None:
    # Same property, on objects only, so both encoder paths are exercised often.
    assert canonical_bytes(value) == bytes(rfc8785.dumps(value))


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_parse_json_reads_canonical_bytes_back(value: Any) -> None:
    assert _tagged(parse_json(canonical_bytes(value))) == _tagged(value)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_canonicalisation_is_idempotent(value: Any) -> None:
    once = canonical_bytes(value)
    assert canonical_bytes(parse_json(once)) == once


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.text(
            alphabet=st.sampled_from("\ue000\uffff\U0001f600\U00010000a"), min_size=1, max_size=3
        ),
        st.integers(0, 9),
        min_size=2,
    )
)
def test_utf16_key_order(value: dict[str, int]) -> None:
    # RFC 8785 §3.2.3: keys sorted by their UTF-16 code units.
    keys = list(parse_json(canonical_bytes(value)))
    assert keys == sorted(value, key=lambda k: k.encode("utf-16-be"))
    assert check_value(value) is any(max(k) > "\ud7ff" for k in value)


# --- the fast parse path never disagrees with the careful one ------------------------


def _outcome(parse: Any, text: bytes) -> Any:
    try:
        return ("ok", _tagged(parse(text)))
    except EncodingError as exc:
        return ("error", exc.code)


def _json_text(draw: st.DrawFn, value: Any) -> str:
    """A JSON text of ``value`` with hostile variations: duplicate keys, \\u escapes
    of ':' and other characters, floats, big integers, spaces."""
    if isinstance(value, dict):
        members = [f"{_json_string(draw, k)}:{_json_text(draw, v)}" for k, v in value.items()]
        if members and draw(st.integers(0, 4)) == 0:  # repeat a member (maybe with \u in it)
            members.insert(draw(st.integers(0, len(members))), draw(st.sampled_from(members)))
        return "{" + draw(st.sampled_from([",", " , "])).join(members) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_json_text(draw, v) for v in value) + "]"
    if isinstance(value, str):
        return _json_string(draw, value)
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return draw(
        st.sampled_from(
            [
                str(value),
                str(value),
                f"{value}.0",
                f"{value}e0",
                str(value * 10 ** draw(st.integers(0, 25))),
            ]
        )
    )


def _json_string(draw: st.DrawFn, text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\' or ord(ch) < 0x20 or draw(st.integers(0, 9)) == 0:
            out.append(
                "".join(f"\\u{unit:04x}" for unit in memoryview(ch.encode("utf-16-be")).cast("H"))
                if ch > "\uffff"
                else f"\\u{ord(ch):04x}"
            )
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


_colon_text = st.text(alphabet=st.sampled_from(':a"\\\u00e9\U0001f600'), max_size=6)
_colon_values = st.recursive(
    st.one_of(st.none(), st.booleans(), _ints, _colon_text),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(_colon_text, children, max_size=4)
    ),
    max_leaves=15,
)


@settings(max_examples=400, deadline=None)
@given(st.data(), st.one_of(json_values, _colon_values))
def test_fast_parse_agrees_with_the_careful_parse(data: Any, value: Any) -> None:
    text = _json_text(data.draw, value).encode("utf-8", "surrogatepass")
    assert _outcome(parse_json, text) == _outcome(_careful_parse, text)


@pytest.mark.parametrize(
    "text",
    [
        b'{"a":1,"a":1}',
        b'{"a":{"b:":1,"b:":1}}',
        b'{"a:b":1,"a:b":2}',
        b'{"\\u003a":1,":":2}',
        b'{"a":"\\u003a","a":"\\u003a"}',
        b"[1.5]",
        b"1e3",
        b"9007199254740992",
        b"-9007199254740992",
        b"123456789012345678901234567890",
        b"[" * 33 + b"]" * 33,
        b"[" * 32 + b"]" * 32,
        b'"\\ud800"',
        b"\xef\xbb\xbf{}",
        b'{"a":NaN}',
        b'"\xff"',
        b'{"a":[{"b":1,"c":2,"b":3}]}',
        b'{"k":"v:w","k":"v:w"}',
        b'{"x":1}  ',
        b"[]",
        b"{}",
    ],
)
def test_fast_parse_agrees_on_hostile_texts(text: bytes) -> None:
    assert _outcome(parse_json, text) == _outcome(_careful_parse, text)
    if b'"a":1,"a":1' in text or b'"b":3' in text:
        assert _outcome(parse_json, text) == ("error", "duplicate_key")
