"""Server-Sent Events for run streams: framing, ``Last-Event-ID`` and replay-then-live (O4).

Each event is one frame whose ``id`` is the event's ``seq``; a client that reconnects sends
the last id it saw as ``Last-Event-ID`` and the stream resumes right after it. The stream
ends after the run's terminal event (its run service's ``terminal_events``; ``run.completed``
or ``run.failed`` for the examples' agent runs).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Collection
from typing import Any

from portside.app.http.problems import ApiError
from portside.app.http.sse_reader import FrameCache, ReadAhead
from portside.ports import OutboxEvent

__all__ = [
    "MAX_SEQ",
    "RETRY_MILLISECONDS",
    "FrameCache",
    "error_frame",
    "event_stream",
    "frame",
    "parse_last_event_id",
    "resume_from",
]

_log = logging.getLogger("portside.http.sse")

MAX_SEQ = 2**53 - 1
RETRY_MILLISECONDS = 1000
PING = b": ping\n\n"


def parse_last_event_id(value: str | None) -> int | None:
    """The ``seq`` a reconnecting client saw last, or None for a fresh stream.

    An empty header means "no id" (the SSE spec's reset). Anything but a decimal ``seq``
    is a client error (400): portside only ever sends sequence numbers as ids.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_SEQ:
        raise ApiError(
            400,
            f"Last-Event-ID {text[:40]!r} is not an event sequence number: send the id of the "
            "last event received (a non-negative integer), or no header",
            error="invalid_last_event_id",
        )
    return int(text)


def resume_from(from_seq: int, last_event_id: int | None) -> int:
    """The first ``seq`` to send: after ``Last-Event-ID`` when given, else ``from_seq``.

    Both may come in the same request (a browser reconnecting to a URL with ``from_seq``);
    the later position wins so nothing is sent twice.
    """
    if last_event_id is None:
        return from_seq
    return max(from_seq, last_event_id + 1)


def _line(text: str) -> str:
    return " ".join(text.splitlines())


def error_frame(error: BaseException) -> bytes:
    """An ``event: error`` frame (no id, so a reconnect resumes after the last real event)."""
    text = json.dumps({"error": type(error).__name__, "detail": _line(str(error))})
    return f"event: error\ndata: {text}\n\n".encode()


def frame(event: OutboxEvent) -> bytes:
    """One SSE frame: ``id: <seq>``, ``event: <type>``, ``data: <one-line JSON>``."""
    data: dict[str, Any] = {
        "id": event.id,
        "stream": event.stream,
        "seq": event.seq,
        "type": event.type,
        "payload": event.payload,
        "createdAt": event.created_at.isoformat(),
    }
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"id: {event.seq}\nevent: {_line(event.type)}\ndata: {text}\n\n".encode()


async def event_stream(
    events: AsyncIterator[OutboxEvent],
    *,
    first_seq: int,
    terminal: Collection[str],
    ping_seconds: float,
    closing: asyncio.Event,
    on_sent: Callable[[int], None] = lambda count: None,
    encode: Callable[[OutboxEvent], bytes] = frame,
) -> AsyncGenerator[bytes, None]:
    """Frames for ``events`` (a ``subscribe`` iterator starting at ``first_seq``).

    Ends after a ``terminal`` event, when ``events`` ends, when ``closing`` is set (the
    server shuts down), or after an ``event: error`` frame when reading fails. Sends a
    keep-alive comment after ``ping_seconds`` without events. An event older than the last
    one sent is skipped, so a redelivery is never a duplicate. Frames read while the previous
    chunk was being sent go out together as one chunk.

    Args:
        on_sent: Told how many events each chunk carried (metrics).
        encode: Event -> frame; pass a shared ``FrameCache`` so that an event streamed to
            many clients is encoded once.
    """
    yield f"retry: {RETRY_MILLISECONDS}\n\n".encode()
    reader = ReadAhead(events, encode=encode, first_seq=first_seq, terminal=terminal)
    closed = asyncio.ensure_future(closing.wait())
    closed.add_done_callback(lambda _: reader.wake())
    reader.start()
    try:
        while not closing.is_set():
            if reader.ready:
                chunk, count = reader.take()
                on_sent(count)
                yield chunk
            elif reader.error is not None:
                # The status line is sent already: tell the client in-band, then end.
                _log.warning("run event stream failed: %s", reader.error)
                yield error_frame(reader.error)
                return
            elif reader.finished:
                return
            else:
                try:
                    async with asyncio.timeout(ping_seconds):
                        await reader.wait()
                except TimeoutError:
                    yield PING
    finally:
        closed.cancel()
        await reader.close()
