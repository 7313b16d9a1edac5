"""SSE fan-out costs: one encoding per event, ready frames in one chunk, bounded read-ahead
(A6, O4; issue 9)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from portside.app.http.sse import FrameCache, event_stream, frame
from portside.app.http.sse_reader import ReadAhead
from portside.examples.agents import TERMINAL_EVENTS
from portside.ports import OutboxEvent
from portside.testing import wait_for

DEADLINE = 10.0


def _event(seq: int, type: str = "run.step.completed") -> OutboxEvent:
    return OutboxEvent(
        id=f"e{seq}",
        stream="run-1",
        seq=seq,
        type=type,
        payload={"seq": seq},
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


class _Counting:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, event: OutboxEvent) -> bytes:
        self.calls += 1
        return frame(event)


class _Source:
    """An endless subscription that records how many events were pulled from it."""

    def __init__(self) -> None:
        self.pulled = 0

    async def events(self) -> AsyncIterator[OutboxEvent]:
        while True:
            self.pulled += 1
            yield _event(self.pulled)


def test_a_frame_cache_encodes_each_event_once_and_stays_bounded() -> None:
    encode = _Counting()
    cache = FrameCache(encode, size=2)
    first = _event(1)
    assert cache(first) == frame(first)
    assert cache(first.model_copy()) == frame(first)
    assert encode.calls == 1
    cache(_event(2))
    cache(_event(3))
    cache(first)
    assert encode.calls == 4, "the oldest frame was not dropped"


async def test_many_streams_of_one_event_share_its_encoding() -> None:
    """Issue 9: clients streaming the same events get the frames encoded once."""
    encode = _Counting()
    cache = FrameCache(encode)
    shared = [_event(1), _event(2, "run.completed")]

    async def subscription() -> AsyncIterator[OutboxEvent]:
        for event in shared:
            yield event

    async def client() -> bytes:
        chunks = event_stream(
            subscription(),
            first_seq=1,
            terminal=TERMINAL_EVENTS,
            ping_seconds=60,
            closing=asyncio.Event(),
            encode=cache,
        )
        return b"".join([chunk async for chunk in chunks])

    bodies = await asyncio.gather(*(client() for _ in range(20)))
    assert len(set(bodies)) == 1
    assert [line for line in bodies[0].split(b"\n") if line.startswith(b"id: ")] == [
        b"id: 1",
        b"id: 2",
    ]
    assert encode.calls == 2


async def test_frames_ready_together_go_out_as_one_chunk() -> None:
    counts: list[int] = []

    async def burst() -> AsyncIterator[OutboxEvent]:
        for seq in range(1, 6):
            yield _event(seq, "run.completed" if seq == 5 else "run.step.completed")

    chunks = [
        chunk
        async for chunk in event_stream(
            burst(),
            first_seq=1,
            terminal=TERMINAL_EVENTS,
            ping_seconds=60,
            closing=asyncio.Event(),
            on_sent=counts.append,
        )
    ]
    assert chunks[0] == b"retry: 1000\n\n"
    assert len(chunks) == 2
    assert [line for line in chunks[1].split(b"\n") if line.startswith(b"id: ")] == [
        f"id: {seq}".encode() for seq in range(1, 6)
    ]
    assert counts == [5]


async def test_read_ahead_stops_at_its_bound_while_the_writer_does_not_take() -> None:
    """A client that does not read holds at most ``limit`` frames in the API process."""
    source = _Source()
    reader = ReadAhead(
        source.events(), encode=frame, first_seq=1, terminal=TERMINAL_EVENTS, limit=8
    )
    reader.start()
    try:
        await wait_for(lambda: source.pulled >= 8, timeout=DEADLINE, message="8 events pulled")
        for _ in range(20):
            await asyncio.sleep(0)  # loop turns (no waiting): room for the reader to overrun
        assert source.pulled == 8
        chunk, count = reader.take()
        assert count == 8
        assert chunk.count(b"id: ") == 8
        await wait_for(lambda: source.pulled >= 16, timeout=DEADLINE, message="8 more pulled")
    finally:
        await reader.close()
    assert reader.finished


async def test_a_closing_server_ends_a_stream_that_never_goes_idle() -> None:
    source = _Source()
    closing = asyncio.Event()
    frames = event_stream(
        source.events(), first_seq=1, terminal=TERMINAL_EVENTS, ping_seconds=60, closing=closing
    )
    assert await anext(frames) == b"retry: 1000\n\n"
    assert b"id: 1\n" in await anext(frames)
    closing.set()
    rest = [chunk async for chunk in frames]
    assert len(rest) <= 1
    assert source.pulled < 1_000
