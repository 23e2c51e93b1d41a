"""Canonical bytes: RFC 8785 (JSON Canonicalization Scheme) over a strict subset.

Theory of operation
-------------------
Everything Comity hashes or signs is turned into bytes by ``canonical_bytes``
and by nothing else. The accepted value space is the subset docs/DESIGN.md fixes:
objects with string keys, arrays, strings (valid Unicode, no lone surrogates),
integers with |n| < 2**53, booleans and null. Floats are refused outright,
so the number-formatting part of RFC 8785 (section 3.2.2.3) never applies and
an integer serialises as its plain decimal digits.

Encoding has two paths that produce identical bytes:

* the hot path uses ``orjson`` with sorted keys. orjson escapes exactly the
  characters RFC 8785 section 3.2.2.2 requires (``"``, ``\\``, and U+0000..U+001F,
  with the short forms ``\\b \\t \\n \\f \\r`` and lowercase ``\\u00xx`` otherwise)
  and writes everything else as raw UTF-8;
* orjson sorts keys by code point, RFC 8785 section 3.2.3 by UTF-16 code unit.
  The two orders differ only when a key holds a character above U+D7FF, so an
  object with such a key is encoded by the ``rfc8785`` reference package.

The equality of both paths with ``rfc8785.dumps`` is a property test
(tests/property/test_canonical_props.py).

``parse_json`` is the strict reader used at every edge: it refuses invalid
UTF-8, duplicate keys, floats, NaN/Infinity, out-of-range integers, lone
surrogates and nesting deeper than ``MAX_DEPTH``, naming the offending field.

Both functions have a fast path for the common case and fall back to the
careful one (which names the offending field) whenever the fast path cannot
vouch for the input; they never accept what the careful path refuses:

* ``parse_json`` lets orjson parse (it refuses invalid UTF-8, lone surrogates,
  NaN/Infinity and a BOM itself) and then proves there was no duplicate key
  by counting colons: with no ``\\u`` escape in the text, every ``:`` of the
  text is a member separator or a literal character of a string, and
  orjson's re-encoding of the parsed value writes each of those once more,
  so the two counts are equal exactly when no member was lost to a repeated
  key. One walk without paths then checks integers, floats and depth;
* ``canonical_bytes`` does the same walk and, when every key is ASCII (code
  point order is then UTF-16 order), lets orjson encode.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import rfc8785

from ledger.errors import EncodingError

MAX_SAFE_INT = 2**53 - 1
MAX_DEPTH = 32

JSONValue = Any  # dict[str, JSONValue] | list[JSONValue] | str | int | bool | None


def canonical_bytes(value: JSONValue) -> bytes:
    """Return the RFC 8785 canonical encoding of ``value``.

    Raises ``EncodingError`` naming the field if ``value`` leaves the subset.
    """
    if _plain(value, 0, True):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except (orjson.JSONEncodeError, TypeError):  # a lone surrogate: say where
            pass
    needs_reference = check_value(value)
    if needs_reference:
        return bytes(rfc8785.dumps(value))
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def check_value(value: JSONValue, path: str = "$", depth: int = 0) -> bool:
    """Check ``value`` is in the canonical subset.

    Returns True if some object key needs UTF-16 ordering (a character above
    U+D7FF), in which case the reference encoder must be used.
    """
    kind = type(value)
    # Depth counts containers only: the top-level object or array is level 1,
    # so MAX_DEPTH nested containers pass and one more is refused.
    if depth >= MAX_DEPTH and (kind is dict or kind is list):
        raise EncodingError(
            f"{path}: nesting deeper than {MAX_DEPTH} levels", field=path, code="too_deep"
        )
    if kind is str:
        _check_str(value, path)
        return False
    if kind is bool or value is None:
        return False
    if kind is int:
        if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            raise EncodingError(
                f"{path}: integer {value} is outside ±(2^53-1)",
                field=path,
                code="integer_out_of_range",
            )
        return False
    if kind is dict:
        return _check_object(value, path, depth)
    if kind is list:
        wide = False
        for i, item in enumerate(value):
            wide = check_value(item, f"{path}[{i}]", depth + 1) or wide
        return wide
    if kind is float:
        raise EncodingError(
            f"{path}: floats are not allowed; use an integer or a string",
            field=path,
            code="float_not_allowed",
        )
    if kind is _DuplicateKey:
        where = f"{path}.{value.key}"
        raise EncodingError(f"{where}: duplicate object key", field=where, code="duplicate_key")
    raise EncodingError(
        f"{path}: type {kind.__name__} is not a JSON value", field=path, code="bad_type"
    )


def _check_object(obj: dict[Any, Any], path: str, depth: int) -> bool:
    wide = False
    for key, item in obj.items():
        if type(key) is not str:
            raise EncodingError(
                f"{path}: object key {key!r} is not a string", field=path, code="bad_type"
            )
        _check_str(key, path)
        if not key.isascii() and max(key) > "\ud7ff":
            wide = True
        wide = check_value(item, f"{path}.{key}", depth + 1) or wide
    return wide


def _check_str(text: str, path: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EncodingError(
            f"{path}: string holds a lone surrogate", field=path, code="invalid_unicode"
        ) from exc


def _plain(value: JSONValue, depth: int, ascii_keys: bool) -> bool:
    """True if ``value`` is surely in the subset (and, with ``ascii_keys``, every
    object key is ASCII). False means "ask ``check_value``", not "invalid".

    Strings are not looked at: orjson refuses lone surrogates when it parses
    or encodes. Speed matters here (every record passes through it), hence
    one function, no paths and no call per scalar.
    """
    kind = type(value)
    if kind is dict:
        if depth >= MAX_DEPTH:
            return False
        if ascii_keys:
            for key in value:
                if type(key) is not str or not key.isascii():
                    return False
        items = value.values()
    elif kind is list:
        if depth >= MAX_DEPTH:
            return False
        items = value
    else:
        return (
            kind is str
            or kind is bool
            or value is None
            or (kind is int and -MAX_SAFE_INT <= value <= MAX_SAFE_INT)
        )
    depth += 1
    for item in items:
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if not -MAX_SAFE_INT <= item <= MAX_SAFE_INT:
                return False
        elif kind is dict or kind is list:
            if not _plain(item, depth, ascii_keys):
                return False
        else:
            return False
    return True


def _fast_parse(data: bytes | str) -> tuple[bool, JSONValue]:
    """orjson's parse if it is surely what ``_careful_parse`` would return."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if b"\\u" in raw:
        return False, None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False, None
    if not _plain(value, 0, False):
        return False, None
    if raw.count(b":") != orjson.dumps(value).count(b":"):
        return False, None  # a repeated key: orjson kept only the last
    return True, value


class _DuplicateKey:
    """Stands for an object with a repeated key until check_value names its path."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any] | _DuplicateKey:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                return _DuplicateKey(key)
            seen.add(key)
    return obj


def _parse_int(text: str) -> int:
    # Refuse before int(): Python raises a bare ValueError beyond 4300 digits
    # (the CVE-2020-10735 limit). Shorter out-of-range integers are parsed so
    # that check_value can name their field.
    if len(text) > 400:
        raise EncodingError(
            f"integer {text[:20]}... is outside ±(2^53-1)", code="integer_out_of_range"
        )
    return int(text)


def _reject_constant(text: str) -> Any:
    raise EncodingError(f"{text} is not valid JSON", code="malformed_json")


def parse_json(data: bytes | str) -> JSONValue:
    """Strictly parse JSON text into the canonical subset (see module docstring)."""
    ok, value = _fast_parse(data)
    if ok:
        return value
    return _careful_parse(data)


def _careful_parse(data: bytes | str) -> JSONValue:
    """``parse_json`` by the standard library's parser: slower, and names the field."""
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EncodingError(
                f"body is not valid UTF-8 (byte {exc.start})", code="invalid_utf8"
            ) from exc
    else:
        text = data
    # Floats are parsed as Python floats and refused by check_value, which
    # names the field that holds them (e.g. ``$.evidence[0].size``).
    try:
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_int=_parse_int,
            parse_constant=_reject_constant,
        )
    except EncodingError:
        raise
    except RecursionError as exc:
        raise EncodingError("JSON nesting is too deep", code="too_deep") from exc
    except json.JSONDecodeError as exc:
        raise EncodingError(
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
            code="malformed_json",
        ) from exc
    check_value(value)
    return value
