"""Hand-written RFC 8785 (JCS) vectors and the refusals of Comity's subset.

Sections cited are of RFC 8785 unless stated otherwise. The subset itself
(no floats, |n| < 2^53, valid Unicode, bounded nesting) is docs/DESIGN.md's
"Canonical JSON" decision; see ledger/canonical.py.
"""

from __future__ import annotations

import datetime
import decimal
import enum
from collections import OrderedDict
from typing import Any

import pytest

from ledger.canonical import MAX_DEPTH, MAX_SAFE_INT, canonical_bytes, check_value, parse_json
from ledger.errors import EncodingError

# --- RFC 8785 §3.2.3: sorting of object properties by UTF-16 code units ----------

# The RFC's own example (§3.2.3), input exactly as printed there.
RFC_SORT_INPUT = (
    b"{\n"
    b'  "\\u20ac": "Euro Sign",\n'
    b'  "\\r": "Carriage Return",\n'
    b'  "\\ufb33": "Hebrew Letter Dalet With Dagesh",\n'
    b'  "1": "One",\n'
    b'  "\\ud83d\\ude00": "Emoji: Grinning Face",\n'
    b'  "\\u0080": "Control",\n'
    b'  "\\u00f6": "Latin Small Letter O With Diaeresis"\n'
    b"}"
)
# Expected order per the RFC: \r, 1, U+0080, U+00F6, U+20AC, U+1F600, U+FB33.
RFC_SORT_OUTPUT = (
    b'{"\\r":"Carriage Return","1":"One",'
    b'"\xc2\x80":"Control",'
    b'"\xc3\xb6":"Latin Small Letter O With Diaeresis",'
    b'"\xe2\x82\xac":"Euro Sign",'
    b'"\xf0\x9f\x98\x80":"Emoji: Grinning Face",'
    b'"\xef\xac\xb3":"Hebrew Letter Dalet With Dagesh"}'
)


def test_rfc8785_3_2_3_sorting_example_from_text() -> None:
    assert canonical_bytes(parse_json(RFC_SORT_INPUT)) == RFC_SORT_OUTPUT


def test_rfc8785_3_2_3_sorting_example_from_python_values() -> None:
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    assert canonical_bytes(value) == RFC_SORT_OUTPUT


def test_rfc8785_3_2_3_utf16_order_differs_from_code_point_order() -> None:
    # U+1F600 is the surrogate pair D83D DE00 in UTF-16, which sorts before
    # U+E000; by code point (or UTF-8 bytes) it would sort after.
    value = {"\ue000": 1, "\U0001f600": 2, "\uffff": 3, "\ud7ff": 4}
    assert canonical_bytes(value) == ('{"\ud7ff":4,"\U0001f600":2,"\ue000":1,"\uffff":3}'.encode())


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"b": 1, "a": 2, "A": 3, "aa": 4, "": 5}, b'{"":5,"A":3,"a":2,"aa":4,"b":1}'),
        ({"\u00e9": 1, "z": 2}, '{"z":2,"\u00e9":1}'.encode()),
        ({"a": {"d": 1, "c": [3, {"f": 0, "e": None}]}}, b'{"a":{"c":[3,{"e":null,"f":0}],"d":1}}'),
    ],
)
def test_rfc8785_3_2_3_key_order_and_recursion(value: Any, expected: bytes) -> None:
    assert canonical_bytes(value) == expected


# --- RFC 8785 §3.2.2.2: strings ---------------------------------------------------

_SHORT = {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r"}


@pytest.mark.parametrize("code", range(0x20))
def test_rfc8785_3_2_2_2_control_characters(code: int) -> None:
    escape = _SHORT.get(code, f"\\u{code:04x}")  # lowercase hex, as ECMAScript writes it
    assert canonical_bytes(chr(code)) == f'"{escape}"'.encode()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"', b'"\\""'),
        ("\\", b'"\\\\"'),
        ("/", b'"/"'),  # solidus is not escaped
        ("\x7f", b'"\x7f"'),  # DEL is not a control char for JSON
        ("\u2028\u2029", b'"\xe2\x80\xa8\xe2\x80\xa9"'),  # raw, unlike some JS minifiers
        ("\u00e9\u4e2d\U0001f600", '"\u00e9\u4e2d\U0001f600"'.encode()),
        ("\ufeff", b'"\xef\xbb\xbf"'),
    ],
)
def test_rfc8785_3_2_2_2_no_other_escapes(text: str, expected: bytes) -> None:
    assert canonical_bytes(text) == expected


def test_rfc8785_3_2_4_string_and_literals_from_the_example() -> None:
    # The §3.2.4 example minus its "numbers" member (floats are outside the subset).
    source = (
        b'{"literals": [null, true, false],'
        b' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/"}'
    )
    expected = (
        b'{"literals":[null,true,false],"string":"\xe2\x82\xac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonical_bytes(parse_json(source)) == expected


# --- structures, literals and integers (§3.2.2) ---------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({}, b"{}"),
        ([], b"[]"),
        ([{}, [], [[]]], b"[{},[],[[]]]"),
        ({"a": {}}, b'{"a":{}}'),
        ([None, True, False], b"[null,true,false]"),
        ("", b'""'),
        (0, b"0"),
        (-1, b"-1"),
        (MAX_SAFE_INT, b"9007199254740991"),
        (-MAX_SAFE_INT, b"-9007199254740991"),
        ({"n": [1, -2, 30]}, b'{"n":[1,-2,30]}'),
    ],
)
def test_rfc8785_3_2_2_literals_structures_integers(value: Any, expected: bytes) -> None:
    assert canonical_bytes(value) == expected
    assert parse_json(expected) == value


def test_parse_then_encode_removes_whitespace() -> None:
    # §3.2.1: no whitespace between tokens.
    assert (
        canonical_bytes(parse_json(b' { "b" : [ 1 , 2 ] ,\n\t"a" : null } '))
        == b'{"a":null,"b":[1,2]}'
    )


def test_negative_zero_integer_is_zero() -> None:
    # "-0" is an integer literal; JCS writes integer zero as "0" (§3.2.2.3).
    assert parse_json(b"-0") == 0
    assert canonical_bytes(parse_json(b"-0")) == b"0"


# --- refusals ----------------------------------------------------------------------


def _refused(call: Any, *args: Any) -> EncodingError:
    with pytest.raises(EncodingError) as info:
        call(*args)
    return info.value


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (2**53, "$"),
        (-(2**53), "$"),
        ({"a": [0, 2**63]}, "$.a[1]"),
        (10**400, "$"),
    ],
)
def test_integer_out_of_range_refused(value: int, field: str) -> None:
    err = _refused(canonical_bytes, value)
    assert (err.code, err.field) == ("integer_out_of_range", field)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (b"9007199254740992", "$"),
        (b"-9007199254740992", "$"),
        (b'{"a":18446744073709551616}', "$.a"),
    ],
)
def test_integer_out_of_range_refused_when_parsing(text: bytes, field: str) -> None:
    err = _refused(parse_json, text)
    assert (err.code, err.field) == ("integer_out_of_range", field)


def test_integer_of_5000_digits_refused_cleanly() -> None:
    # Python's int() raises a bare ValueError past 4300 digits; it must not leak.
    err = _refused(parse_json, b"1" * 5000)
    assert (err.code, err.field) == ("integer_out_of_range", None)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (b"1.0", "$"),
        (b"1e3", "$"),
        (b"1E3", "$"),
        (b"-0.0", "$"),
        (b"1e400", "$"),
        (b'{"a":{"b":[1,2.5]}}', "$.a.b[1]"),
    ],
)
def test_floats_refused_when_parsing(text: bytes, field: str) -> None:
    err = _refused(parse_json, text)
    assert (err.code, err.field) == ("float_not_allowed", field)


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (1.0, "$"),
        (-0.0, "$"),
        (float("nan"), "$"),
        (float("inf"), "$"),
        ({"x": [0, 1e3]}, "$.x[1]"),
    ],
)
def test_floats_refused_when_encoding(value: Any, field: str) -> None:
    err = _refused(canonical_bytes, value)
    assert (err.code, err.field) == ("float_not_allowed", field)


@pytest.mark.parametrize("text", [b"NaN", b"Infinity", b"-Infinity", b'{"a":[NaN]}'])
def test_nan_and_infinity_literals_refused(text: bytes) -> None:
    # RFC 8259 §6 has no such literals; Python's json module accepts them by default.
    err = _refused(parse_json, text)
    assert (err.code, err.field) == ("malformed_json", None)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (b'{"a":1,"a":2}', "$.a"),
        (b'{"a":1,"a":1}', "$.a"),
        (b'{"x":{"b":1,"c":2,"b":3}}', "$.x.b"),
        (b'[0,{"k":[],"k":{}}]', "$[1].k"),
        (b'{"\\u00e9":1,"\xc3\xa9":2}', "$.\u00e9"),  # same key, escaped and raw
    ],
)
def test_duplicate_keys_refused(text: bytes, field: str) -> None:
    # RFC 8785 §3.1 / I-JSON (RFC 7493 §2.3): member names must be unique.
    err = _refused(parse_json, text)
    assert (err.code, err.field) == ("duplicate_key", field)


@pytest.mark.parametrize(
    "text",
    [
        b'"\xff"',
        b'"\xc0\xaf"',  # overlong encoding of "/"
        b'"\xed\xa0\x80"',  # UTF-8-encoded surrogate (CESU-8)
        b'"\xe2\x82"',  # truncated sequence
        b'{"a":"\xf4\x90\x80\x80"}',  # above U+10FFFF
    ],
)
def test_invalid_utf8_refused(text: bytes) -> None:
    # RFC 8785 §3.2.2.2 / RFC 8259 §8.1: text is UTF-8.
    err = _refused(parse_json, text)
    assert (err.code, err.field) == ("invalid_utf8", None)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (b'"\\ud800"', "$"),
        (b'"\\udfff"', "$"),
        (b'"a\\ude00\\ud83d"', "$"),  # pair in the wrong order
        (b'{"a":["x","\\udc00"]}', "$.a[1]"),
        (b'{"\\ud800":1}', "$"),  # in a key: the object is named
    ],
)
def test_lone_surrogate_escapes_refused(text: bytes, field: str) -> None:
    # RFC 8785 §3.2.2.2: strings must be valid Unicode, so lone surrogates are errors.
    err = _refused(parse_json, text)
    assert (err.code, err.field) == ("invalid_unicode", field)


def test_lone_surrogate_in_python_string_refused() -> None:
    err = _refused(canonical_bytes, {"k": ["\udc80"]})
    assert (err.code, err.field) == ("invalid_unicode", "$.k[0]")


def _nested_lists(levels: int) -> Any:
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


def test_nesting_of_max_depth_accepted() -> None:
    assert MAX_DEPTH == 32
    value = _nested_lists(MAX_DEPTH)
    text = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert canonical_bytes(value) == text
    assert parse_json(text) == value
    assert parse_json(b"[" * MAX_DEPTH + b"7" + b"]" * MAX_DEPTH) is not None


def test_nesting_of_33_levels_refused() -> None:
    deepest = "$" + "[0]" * MAX_DEPTH
    err = _refused(canonical_bytes, _nested_lists(MAX_DEPTH + 1))
    assert (err.code, err.field) == ("too_deep", deepest)
    err = _refused(parse_json, b"[" * 33 + b"]" * 33)
    assert (err.code, err.field) == ("too_deep", deepest)
    err = _refused(parse_json, b'{"a":' * 33 + b"{}" + b"}" * 33)
    assert (err.code, err.field) == ("too_deep", "$" + ".a" * 32)


def test_nesting_of_100000_levels_refused_without_crashing() -> None:
    err = _refused(parse_json, b"[" * 100_000 + b"]" * 100_000)
    assert err.code == "too_deep"
    err = _refused(parse_json, b'{"a":' * 100_000 + b"1" + b"}" * 100_000)
    assert err.code == "too_deep"
    err = _refused(canonical_bytes, _nested_lists(100_000))
    assert (err.code, err.field) == ("too_deep", "$" + "[0]" * MAX_DEPTH)


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({1: "a"}, "$"),
        ({None: 1}, "$"),
        ({"a": {b"k": 1}}, "$.a"),
        ({("t",): 1}, "$"),
        ({"a": [{True: 1}]}, "$.a[0]"),
    ],
)
def test_non_string_keys_refused(value: Any, field: str) -> None:
    err = _refused(canonical_bytes, value)
    assert (err.code, err.field) == ("bad_type", field)


class _Colour(enum.IntEnum):
    RED = 1


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ((1, 2), "$"),
        ({1, 2}, "$"),
        (b"bytes", "$"),
        (decimal.Decimal("1"), "$"),
        (datetime.date(2026, 1, 1), "$"),
        (object(), "$"),
        (_Colour.RED, "$"),  # int subclass: its str() is not its JSON form
        (OrderedDict(a=1), "$"),  # dict subclass
        ({"a": [frozenset()]}, "$.a[0]"),
    ],
)
def test_non_json_python_types_refused(value: Any, field: str) -> None:
    err = _refused(canonical_bytes, value)
    assert (err.code, err.field) == ("bad_type", field)


@pytest.mark.parametrize(
    "text", [b"", b"{", b"[1,]", b"{'a':1}", b'"\x01"', b"01", b"1 2", b"\xef\xbb\xbf{}"]
)
def test_malformed_json_refused(text: bytes) -> None:
    err = _refused(parse_json, text)
    assert (err.code, err.field) == ("malformed_json", None)


def test_check_value_reports_reference_path_only_for_wide_keys() -> None:
    # Keys above U+D7FF need UTF-16 ordering, which the orjson path lacks (§3.2.3).
    assert check_value({"a": {"\u00e9": 1}}) is False
    assert check_value({"a": [{"\ue000": 1}]}) is True
    assert check_value(["\U0001f600"]) is False  # values never affect key order


def test_errors_are_client_errors_with_status_400() -> None:
    err = _refused(parse_json, b"1.5")
    assert err.status == 400
    assert err.to_json() == {
        "error": {"code": "float_not_allowed", "message": err.message, "field": "$"}
    }
