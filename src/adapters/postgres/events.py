"""Turning outbox rows into ``OutboxEvent`` values."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from portside.ports import OutboxEvent

__all__ = ["event_from_row"]


def event_from_row(row: Mapping[str, Any]) -> OutboxEvent:
    """Build an event from a row with the columns of ``read_stream``/``claim_events``.

    The row comes from our own table, already typed by the schema, so validation is skipped.
    """
    return OutboxEvent.model_construct(
        id=row["id"],
        stream=row["stream"],
        seq=row["seq"],
        type=row["type"],
        payload=json.loads(row["payload"]),
        key=row["key"],
        created_at=row["created_at"],
        published_at=row["published_at"],
        trace_context=row["trace_context"],
    )
