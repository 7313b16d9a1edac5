"""Input checks of the Postgres outbox, run before anything is written (O1)."""

from __future__ import annotations

import json
from typing import Any

from portside.ports import ValidationError
from portside.ports.validation import check_stream_name, check_text, encode_payload

__all__ = ["AppendInput", "check_append", "check_from_seq", "check_older_than"]

AppendInput = tuple[str, str, dict[str, Any], str, str | None]
"""(stream, type, payload, payload as JSON text, key)."""


def check_append(stream: object, type: object, payload: object, key: object) -> AppendInput:
    """Validate the arguments of ``append``; return them normalised.

    Raises:
        ValidationError: Naming the bad argument (``stream``, ``type``, ``payload...``, ``key``).
    """
    name = check_stream_name(stream)
    kind = check_text(type, "type", "event type")
    text = encode_payload(payload, field="payload")
    data = json.loads(text)
    event_key = None if key is None else check_text(key, "key", "event key")
    return name, kind, data, text, event_key


def type_name(value: object) -> str:
    """The class name of ``value`` for error messages."""
    return value.__class__.__name__


def check_from_seq(from_seq: object) -> int:
    """Validate ``subscribe``'s ``from_seq`` (an int, at least 1)."""
    if isinstance(from_seq, bool) or not isinstance(from_seq, int):
        raise ValidationError(
            f"from_seq must be an int, got {type_name(from_seq)}",
            fix="pass the first seq to read (1 for the whole stream)",
            field="from_seq",
        )
    if from_seq < 1:
        raise ValidationError(
            f"from_seq is {from_seq}",
            fix="seq starts at 1 in every stream; pass 1 or more",
            field="from_seq",
        )
    return from_seq


def check_older_than(older_than: object) -> float:
    """Validate ``purge_published``'s age in seconds (a finite number, at least 0)."""
    if isinstance(older_than, bool) or not isinstance(older_than, (int, float)):
        raise ValidationError(
            f"older_than must be a number of seconds, got {type_name(older_than)}",
            fix="pass seconds as int or float, e.g. 7 * 86400",
            field="older_than",
        )
    value = float(older_than)
    if not value >= 0 or value == float("inf"):
        raise ValidationError(
            f"older_than is {older_than!r}",
            fix="pass a finite number of seconds, 0 or more",
            field="older_than",
        )
    return value
