"""Hypothesis strategies of hostile input: payloads, names, options, dates and raw JSON text."""

from __future__ import annotations

import datetime as dt
import decimal
import math
from typing import Any

from hypothesis import strategies as st

from portside.ports.validation import MAX_PAYLOAD_BYTES

__all__ = [
    "BAD_JSON_TOKENS",
    "BIG",
    "SURROGATES",
    "bad_json_values",
    "embed",
    "good_json",
    "hostile_payloads",
    "hostile_text",
    "mostly",
    "nested",
    "raw_json_documents",
]

SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
SAFE_INT = 2**53 - 1
BIG = 2**256
"""Bound of generated integers: Hypothesis replays and shrinks unbounded ones into numbers
too long for str(); the 5,000-digit case is tested on its own."""

JSON_CHARS = st.characters(codec="utf-8", exclude_characters="\x00")
"""Characters every adapter must accept in JSON strings and keys (Postgres cannot store NUL)."""

good_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-SAFE_INT, SAFE_INT)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=JSON_CHARS),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(alphabet=JSON_CHARS, max_size=10),
            children,
            max_size=4,
        )
    ),
    max_leaves=10,
)
"""JSON values every adapter must accept (no NUL: Postgres cannot store it)."""


def mostly(valid: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any]) -> Any:
    """``valid`` three times in four, so that the accepting path is exercised too."""
    return st.integers(0, 3).flatmap(lambda roll: hostile if roll == 0 else valid)


def nested(depth: int, leaf: Any = 1, kind: str = "list") -> Any:
    """``depth`` levels of lists (or single-key dicts) around ``leaf``, built without recursion."""
    value = leaf
    for _ in range(depth):
        value = [value] if kind == "list" else {"a": value}
    return value


def _with_surrogate(parts: tuple[str, str, str]) -> str:
    return "".join(parts)


hostile_text = st.tuples(st.text(max_size=8), SURROGATES, st.text(max_size=8)).map(_with_surrogate)
"""Text holding a lone surrogate: what decoding invalid UTF-8 with ``surrogateescape`` gives."""


class _Opaque:
    """An object JSON has no encoding for."""


bad_json_values: st.SearchStrategy[Any] = st.one_of(
    hostile_text,
    st.sampled_from([math.nan, math.inf, -math.inf]),
    st.integers(min_value=SAFE_INT + 1, max_value=BIG)
    | st.integers(min_value=-BIG, max_value=-SAFE_INT - 1),
    st.just(10**5000),  # too long for str(): the error message must not print it
    st.integers(65, 3000).map(nested),
    st.integers(65, 3000).map(lambda depth: nested(depth, kind="dict")),
    st.binary(max_size=8),
    st.builds(set),
    st.builds(_Opaque),
    st.dates(),
    st.decimals(allow_nan=False),
    st.complex_numbers(allow_nan=False),
    st.just(decimal.Decimal("NaN")),
    st.just(dt.datetime(2024, 5, 1, tzinfo=dt.UTC)),
)
"""Values no JSON payload may contain (each must be refused, naming where it is)."""


def embed(container: Any, value: Any, path: list[int]) -> Any:
    """``container`` with ``value`` placed somewhere inside, chosen by ``path``."""
    if isinstance(container, dict) and container and path:
        keys = sorted(container)
        key = keys[path[0] % len(keys)]
        return {**container, key: embed(container[key], value, path[1:])}
    if isinstance(container, list) and container and path:
        index = path[0] % len(container)
        return [
            *container[:index],
            embed(container[index], value, path[1:]),
            *container[index + 1 :],
        ]
    if isinstance(container, dict):
        return {**container, "hostile": value}
    return {"wrapped": container, "hostile": value}


@st.composite
def hostile_payloads(draw: st.DrawFn) -> Any:
    """A payload that must be refused: a bad value inside a good one, a bad or non-string
    key, a payload that is not an object, or one over the size limit."""
    kind = draw(st.sampled_from(["value", "key", "not-object", "oversized", "int-key"]))
    if kind == "value":
        base = draw(st.dictionaries(st.text(max_size=5), good_json, min_size=1, max_size=4))
        path = draw(st.lists(st.integers(0, 10), max_size=4))
        return embed(base, draw(bad_json_values), path)
    if kind == "key":
        return {draw(hostile_text): draw(good_json)}
    if kind == "int-key":
        return {draw(st.integers(-BIG, BIG)): draw(good_json)}
    if kind == "not-object":
        return draw(
            st.one_of(st.lists(good_json, max_size=3), st.text(), st.integers(-BIG, BIG), st.none())
        )
    extra = draw(st.integers(1, 1000))
    pieces = draw(st.integers(1, 4))
    size = (MAX_PAYLOAD_BYTES + extra) // pieces + 1
    return {f"blob{n}": "x" * size for n in range(pieces)}


BAD_JSON_TOKENS = [
    # JSON text no body may carry: non-finite and huge numbers, lone surrogates, NUL, bytes
    # that are not UTF-8 (invalid, overlong, surrogate and out-of-range encodings), nesting
    # 100,000 deep, unterminated and malformed literals.
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"1e400",
    b"-1e400",
    b"1e-400",
    b"9" * 5000,
    b"123456789012345678901234567890",
    b'"\\ud800"',
    b'"\\udfff\\ud800"',
    b'"\\u0000"',
    b'"\xff\xfe"',
    b'"\xc0\xaf"',
    b'"\xed\xa0\x80"',
    b'"\xf4\x90\x80\x80"',
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    b"[" * 5_000,
    b"tru",
    b"'single'",
]


@st.composite
def raw_json_documents(draw: st.DrawFn, base: dict[str, Any]) -> bytes:
    """``base`` as JSON text with one hostile token put in a field's place, or around it."""
    import json

    token = draw(st.sampled_from(BAD_JSON_TOKENS) | st.binary(min_size=1, max_size=16))
    where = draw(st.sampled_from(["field", "extra", "whole", "prefix", "duplicate"]))
    fields = [f'"{key}": {json.dumps(value)}'.encode() for key, value in base.items()]
    if where == "field" and fields:
        index = draw(st.integers(0, len(fields) - 1))
        key = list(base)[index]
        fields[index] = f'"{key}": '.encode() + token
    elif where == "extra":
        fields.append(b'"extra": ' + token)
    elif where == "whole":
        return token
    elif where == "prefix":
        return (
            draw(st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe", b"\x00"]))
            + b"{"
            + b", ".join(fields)
            + b"}"
        )
    elif fields:
        fields.append(fields[0].split(b":", 1)[0] + b": " + token)
    return b"{" + b", ".join(fields) + b"}"
