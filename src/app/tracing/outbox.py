"""``TracedOutbox``: appends are spans whose context is stored with the event; publishing an
event to a handler is a span linked to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, cast

from opentelemetry.trace import SpanKind

from portside.app.tracing.spans import Tracing, record_failure
from portside.ports import OutboxEvent, OutboxHandler, OutboxPort, Transaction

__all__ = ["OUTBOX_SYSTEM", "TracedOutbox", "event_attributes", "sse_spans"]

OUTBOX_SYSTEM = "portside_outbox"
"""``messaging.system`` of outbox spans."""


def event_attributes(stream: str, operation: str, kind: str) -> dict[str, Any]:
    """Attributes of an outbox span (OpenTelemetry messaging semantic conventions): the
    stream is the destination; the span name says ``outbox`` (streams are run ids, too many
    to name spans after)."""
    return {
        "messaging.system": OUTBOX_SYSTEM,
        "messaging.operation.type": kind,
        "messaging.operation.name": operation,
        "messaging.destination.name": stream,
    }


class TracedOutbox:
    """Wraps an ``OutboxPort``: ``append`` runs in an ``append outbox`` span (kind producer,
    operation type ``create``) whose context the event keeps (``trace_context``); each
    handler's delivery of a published event runs in a ``publish outbox`` span (kind consumer,
    operation type ``process``) linked to it. Everything else is delegated unchanged."""

    def __init__(self, inner: OutboxPort, tracing: Tracing) -> None:
        self._inner = inner
        self._tracing = tracing

    def port(self) -> OutboxPort:
        """This wrapper, typed as the port it implements."""
        return cast(OutboxPort, self)

    @property
    def inner(self) -> OutboxPort:
        """The wrapped adapter."""
        return self._inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

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
        """Insert an event inside ``tx`` in a span whose context the event keeps."""
        attributes = event_attributes(stream, "append", "create")
        attributes["portside.outbox.event_type"] = type
        with self._tracing.start("append outbox", SpanKind.PRODUCER, attributes) as span:
            event = await self._inner.append(
                tx,
                stream,
                type,
                payload,
                key=key,
                trace_context=trace_context or self._tracing.inject(),
            )
            span.set_attribute("messaging.message.id", event.id)
            span.set_attribute("portside.outbox.seq", event.seq)
            return event

    def add_handler(self, handler: OutboxHandler) -> Callable[[], None]:
        """Deliver published events to ``handler``, each in a span linked to its append."""
        tracing = self._tracing

        async def traced(event: OutboxEvent) -> None:
            attributes = event_attributes(event.stream, "publish", "process")
            attributes["messaging.message.id"] = event.id
            attributes["portside.outbox.seq"] = event.seq
            attributes["portside.outbox.event_type"] = event.type
            with tracing.tracer.start_as_current_span(
                "publish outbox",
                kind=SpanKind.CONSUMER,
                attributes=attributes,
                links=tracing.link(event.trace_context),
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                try:
                    await handler(event)
                except Exception as error:
                    record_failure(span, error)
                    raise

        return self._inner.add_handler(traced)


async def sse_spans(
    events: AsyncIterator[OutboxEvent], tracing: Tracing
) -> AsyncIterator[OutboxEvent]:
    """``events`` as they are handed to a Server-Sent Events stream, each in a ``send sse``
    span (kind producer, operation type ``send``) linked to the event's append; the span
    lasts until the stream asks for the next event (the frame is encoded and queued)."""
    async for event in events:
        attributes = event_attributes(event.stream, "send", "send")
        attributes["messaging.message.id"] = event.id
        attributes["portside.outbox.seq"] = event.seq
        span = tracing.tracer.start_span(
            "send sse",
            kind=SpanKind.PRODUCER,
            attributes=attributes,
            links=tracing.link(event.trace_context),
        )
        try:
            yield event
        finally:
            span.end()
