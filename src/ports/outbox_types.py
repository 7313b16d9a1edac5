"""Value types of the outbox port."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from pydantic import ConfigDict

from portside.ports.model import PortModel

__all__ = ["OutboxErrorCallback", "OutboxEvent", "OutboxHandler", "OutboxStream"]


class OutboxEvent(PortModel):
    """One committed event. ``id`` is stable across redeliveries: dedupe on it (O6).

    ``seq`` starts at 1 in each stream and has no gaps (O4).
    """

    model_config = ConfigDict(frozen=True)

    id: str
    stream: str
    seq: int
    type: str
    payload: dict[str, Any]
    key: str | None = None
    created_at: datetime
    published_at: datetime | None = None
    trace_context: str | None = None
    """The trace context of the append (OBS1): publishing and delivery spans link to it."""


class OutboxStream(PortModel):
    """One stream of the outbox: its last ``seq`` handed out and its committed events not
    yet published (``pending``)."""

    model_config = ConfigDict(frozen=True)

    stream: str
    last_seq: int
    pending: int = 0


OutboxHandler = Callable[[OutboxEvent], Awaitable[None]]
"""Receives published events in ``seq`` order per stream; may see an event twice after a crash."""

OutboxErrorCallback = Callable[[BaseException], None]
"""Told about every connection loss, reconnect failure or handler error of the publisher."""
