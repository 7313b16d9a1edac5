"""The outbox port: events appended in the caller's transaction, published in order."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, runtime_checkable

from portside.ports.outbox_types import (
    OutboxErrorCallback,
    OutboxEvent,
    OutboxHandler,
    OutboxStream,
)

__all__ = ["OutboxPort", "Transaction"]

Transaction = Any
"""The adapter's open unit of work: an ``asyncpg`` connection inside a transaction for the
Postgres adapter, or the object ``transaction()`` yields."""


@runtime_checkable
class OutboxPort(Protocol):
    """Transactional outbox with ordered, replayable event streams."""

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """Open a unit of work; events appended to it exist only if it commits (O1)."""
        ...

    async def append(
        self,
        tx: Transaction,
        stream: str,
        type: str,
        payload: Mapping[str, Any],
        *,
        key: str | None = None,
        trace_context: str | None = None,
    ) -> OutboxEvent:
        """Insert an event inside ``tx``; it gets the stream's next gap-free ``seq``.
        ``trace_context`` (propagation headers as JSON, OBS1) is stored with it."""
        ...

    def add_handler(self, handler: OutboxHandler) -> Callable[[], None]:
        """Deliver every published event to ``handler``; returns a function that removes it."""
        ...

    @property
    def running(self) -> bool:
        """Whether the publisher is started (``start`` called, ``stop`` not since)."""
        ...

    async def start(self, *, on_error: OutboxErrorCallback | None = None) -> None:
        """Start the push-driven publisher (LISTEN/NOTIFY, no polling) with a catch-up scan."""
        ...

    async def stop(self) -> None:
        """Stop the publisher after its in-flight batch."""
        ...

    async def drain_once(self, stream: str | None = None) -> int:
        """Publish everything committed before the call (one stream or all); return the count."""
        ...

    def subscribe(self, stream: str, from_seq: int = 1) -> AsyncIterator[OutboxEvent]:
        """Events of ``stream`` with ``seq >= from_seq``: stored, then live; no gap, no repeat."""
        ...

    async def pending(self) -> int:
        """How many committed events are not yet published."""
        ...

    async def streams(self) -> list[OutboxStream]:
        """Every stream that has had an event, by name, with its last seq and pending count."""
        ...

    async def purge_published(self, older_than: float) -> int:
        """Delete published events older than ``older_than`` seconds (retention); return count."""
        ...

    async def close(self) -> None:
        """Stop the publisher and release every connection."""
        ...
