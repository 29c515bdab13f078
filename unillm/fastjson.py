"""JSON bodies through orjson (several times faster than json on the per-call paths), exact where
orjson alone is not: what it refuses goes through json, and so does text with an integer beyond
64 bits, which orjson would read as a float without a word."""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["dumps", "loads"]

# Every digit byte as b"1", every other byte as b"0": a run of 20 digits (where an integer beyond
# 64 bits can hide) becomes twenty b"1" in a row, which a C substring search finds. ~0.6 µs for a
# 600-byte body, where the regex \d{20,} took ~5 µs, four times orjson's own parse.
_DIGITS_AS_ONES = bytes(0x31 if 0x30 <= byte <= 0x39 else 0x30 for byte in range(256))
_TWENTY_DIGITS = b"1" * 20


def _has_long_number(data: bytes) -> bool:
    return _TWENTY_DIGITS in bytes(data).translate(_DIGITS_AS_ONES)


def dumps(value: Any) -> bytes:
    """`value` as compact JSON (text as UTF-8, not \\u escapes). What orjson refuses (a non-str key,
    an int beyond 64 bits) is written by json."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":")).encode()


def loads(data: bytes) -> Any:
    """`json.loads`, through orjson first. json reads what orjson refuses (NaN, UTF-16) and anything
    with a run of 20 digits. Raises ValueError (json.JSONDecodeError) for what neither reads."""
    if _has_long_number(data):
        return json.loads(data)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)
