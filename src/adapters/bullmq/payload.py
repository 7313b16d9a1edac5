"""Text read from job hashes: any bytes made safe, and ``data`` decoded or explained.

The worker's connection decodes replies as UTF-8 with ``surrogateescape``, so bytes that are
not UTF-8 (written by some other producer) arrive as lone surrogates instead of breaking the
reply. ``clean_text`` turns such text into valid Unicode (U+FFFD for each bad byte) before it
goes anywhere that must encode it; ``decode_data`` refuses it in a job's payload.
"""

from __future__ import annotations

import json
from typing import Any

from portside.ports import ValidationError

__all__ = ["RAW_DATA_LIMIT", "clean_text", "decode_data", "raw_data_text"]

RAW_DATA_LIMIT = 2000
"""Characters of a job's stored data kept in ``raw_data`` (for dead letters and logs)."""

_JSON_KINDS = {
    list: "list",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}
_FIX = (
    "enqueue the job again with a JSON object as its data (portside and Node BullMQ "
    "producers always store one); the stored text is in the job's raw_data"
)


def clean_text(value: str) -> str:
    """``value`` as valid Unicode: escaped undecodable bytes and lone surrogates become U+FFFD."""
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:
            return value.encode("utf-8", "replace").decode("utf-8")
    return value


def raw_data_text(raw: str | None) -> str | None:
    """The stored data as clean text, cut to ``RAW_DATA_LIMIT`` characters."""
    if raw is None:
        return None
    return clean_text(raw[:RAW_DATA_LIMIT])


def _invalid_utf8(raw: str) -> str | None:
    """Where ``raw`` (decoded with ``surrogateescape``) held bytes that are not UTF-8."""
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        stored = raw.encode("utf-8", "surrogateescape")
        try:
            stored.decode("utf-8")
        except UnicodeDecodeError as exc:
            return f"byte 0x{stored[exc.start]:02x} at offset {exc.start}"
        return "a lone surrogate"  # pragma: no cover - hiredis only escapes bad bytes
    return None


def decode_data(raw: str | None) -> dict[str, Any] | ValidationError:
    """A job's payload from its stored ``data`` text, or the error explaining why not.

    A missing or empty field is an empty payload, as in BullMQ.
    """
    if not raw:
        return {}
    if not raw.isascii():
        where = _invalid_utf8(raw)
        if where is not None:
            return _problem(f"job data is not valid UTF-8 ({where})")
    try:
        data = json.loads(raw)
    except RecursionError:
        return _problem("job data is nested too deeply to decode")
    except ValueError as exc:
        return _problem(f"job data is not valid JSON ({exc})")
    if type(data) is dict:
        return data
    kind = _JSON_KINDS.get(type(data), type(data).__name__)
    return _problem(f"job data is a JSON {kind}, not an object")


def _problem(message: str) -> ValidationError:
    return ValidationError(message, fix=_FIX, field="data")
