"""One publisher transaction's work: hand claimed events to handlers, then mark them published."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from portside.adapters.postgres.events import event_from_row
from portside.adapters.postgres.queries import query
from portside.ports import OutboxEvent, OutboxHandler

__all__ = ["Delivery", "HandlerFailure", "deliver_rows"]

_log = logging.getLogger("portside.outbox.publisher")


@dataclass(frozen=True)
class HandlerFailure:
    """A handler raised on ``event``; it and the rest of its stream stay unpublished."""

    event: OutboxEvent
    error: Exception


@dataclass
class Delivery:
    """What one batch achieved.

    Attributes:
        published: Events delivered to every handler and marked published.
        delivered_streams: Streams with at least one published event.
        failures: At most one per stream: the event whose delivery failed.
    """

    published: int = 0
    delivered_streams: set[str] = field(default_factory=set)
    failures: list[HandlerFailure] = field(default_factory=list)


async def deliver_rows(
    conn: Any, rows: Sequence[Any], handlers: Sequence[OutboxHandler]
) -> Delivery:
    """Deliver ``rows`` (ordered by stream, then seq) and mark the delivered ones published.

    Runs inside the claiming transaction, so a crash or a rollback leaves every event of the
    batch unpublished for redelivery (at-least-once). After a handler fails, the later events
    of that stream are not delivered in this batch: order within a stream is kept.
    """
    result = Delivery()
    delivered: list[str] = []
    failed: set[str] = set()
    for row in rows:
        stream = row["stream"]
        if stream in failed:
            continue
        event = event_from_row(row)
        try:
            for handler in handlers:
                await handler(event)
        except Exception as exc:
            _log.warning(
                "outbox handler failed on %s seq %d (event %s): %s: %s",
                stream,
                event.seq,
                event.id,
                type(exc).__name__,
                exc,
            )
            failed.add(stream)
            result.failures.append(HandlerFailure(event, exc))
            continue
        delivered.append(event.id)
        result.delivered_streams.add(stream)
    if delivered:
        await conn.execute(query("mark_published"), delivered)
        result.published = len(delivered)
    return result
