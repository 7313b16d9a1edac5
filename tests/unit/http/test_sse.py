"""O4 over HTTP: SSE framing, Last-Event-ID parsing, replay from a seq, then live, then end."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from httpx_sse import ServerSentEvent, aconnect_sse

from portside.app.http.problems import ApiError
from portside.app.http.sse import (
    MAX_SEQ,
    PING,
    event_stream,
    frame,
    parse_last_event_id,
    resume_from,
)
from portside.examples.agents import TERMINAL_EVENTS
from portside.ports import OutboxEvent
from tests.unit.http.support import Api


def _event(seq: int, type: str = "run.step.completed", **payload: Any) -> OutboxEvent:
    return OutboxEvent(
        id=f"e{seq}",
        stream="run-1",
        seq=seq,
        type=type,
        payload=payload,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


@pytest.mark.parametrize(("header", "seq"), [(None, None), ("", None), ("  ", None), ("7", 7)])
def test_last_event_id_parses_sequence_numbers(header: str | None, seq: int | None) -> None:
    assert parse_last_event_id(header) == seq
    assert parse_last_event_id(" 12 ") == 12


@pytest.mark.parametrize("header", ["abc", "-1", "1.5", "0x10", "٣", str(MAX_SEQ + 1), "1 2"])
def test_last_event_id_that_is_no_seq_is_a_400(header: str) -> None:
    with pytest.raises(ApiError) as raised:
        parse_last_event_id(header)
    assert raised.value.status == 400
    assert raised.value.error == "invalid_last_event_id"


def test_resume_from_prefers_the_later_position() -> None:
    assert resume_from(1, None) == 1
    assert resume_from(1, 5) == 6
    assert resume_from(10, 5) == 10
    assert resume_from(3, 0) == 3


def test_a_frame_carries_seq_as_id_and_one_line_of_json() -> None:
    text = frame(_event(3, note="two\nlines", emoji="✓")).decode()
    lines = text.split("\n")
    assert lines[0] == "id: 3"
    assert lines[1] == "event: run.step.completed"
    assert lines[2].startswith("data: ")
    assert text.endswith("\n\n")
    assert len(lines) == 5
    data = json.loads(lines[2].removeprefix("data: "))
    assert data["seq"] == 3
    assert data["payload"] == {"note": "two\nlines", "emoji": "✓"}


def test_an_event_type_cannot_break_the_framing() -> None:
    text = frame(_event(1, type="evil\nid: 99")).decode()
    assert "\nid: 99" not in text


async def _iterate(items: list[OutboxEvent]) -> AsyncIterator[OutboxEvent]:
    for item in items:
        yield item


async def _collect(frames: AsyncIterator[bytes]) -> list[bytes]:
    """Every frame sent, however the stream grouped them into chunks."""
    return _split([chunk async for chunk in frames])


def _split(chunks: list[bytes]) -> list[bytes]:
    return [part + b"\n\n" for part in b"".join(chunks).split(b"\n\n") if part]


async def test_stream_skips_redeliveries_and_ends_at_the_terminal_event() -> None:
    events = [_event(1), _event(2), _event(2), _event(3, "run.completed"), _event(4)]
    frames = await _collect(
        event_stream(
            _iterate(events),
            first_seq=1,
            terminal=TERMINAL_EVENTS,
            ping_seconds=10,
            closing=asyncio.Event(),
        )
    )
    assert frames[0] == b"retry: 1000\n\n"
    assert [chunk.split(b"\n")[0] for chunk in frames[1:]] == [b"id: 1", b"id: 2", b"id: 3"]


async def test_stream_sends_keepalive_comments_while_idle() -> None:
    never: asyncio.Future[OutboxEvent] = asyncio.get_running_loop().create_future()

    async def silent() -> AsyncIterator[OutboxEvent]:
        yield await never

    frames = event_stream(
        silent(), first_seq=1, terminal=TERMINAL_EVENTS, ping_seconds=0.01, closing=asyncio.Event()
    )
    assert await anext(frames) == b"retry: 1000\n\n"
    assert await anext(frames) == PING
    await frames.aclose()


async def test_stream_ends_when_the_server_closes() -> None:
    closing = asyncio.Event()
    never: asyncio.Future[OutboxEvent] = asyncio.get_running_loop().create_future()

    async def silent() -> AsyncIterator[OutboxEvent]:
        yield await never

    frames = event_stream(
        silent(), first_seq=1, terminal=TERMINAL_EVENTS, ping_seconds=60, closing=closing
    )
    await anext(frames)
    closing.set()
    assert [chunk async for chunk in frames] == []


async def test_o4_stream_follows_commits_live_after_the_replay(api: Api) -> None:
    """Replay of what is stored, then events committed while the stream is open, in order."""
    run_id = (await api.client.post("/runs", json={"input": "x", "steps": 1})).json()["runId"]
    frames = event_stream(
        api.outbox.subscribe(run_id, 1),
        first_seq=1,
        terminal=TERMINAL_EVENTS,
        ping_seconds=60,
        closing=asyncio.Event(),
    )
    assert await anext(frames) == b"retry: 1000\n\n"
    assert (await anext(frames)).startswith(b"id: 1\nevent: run.created\n")
    pending = asyncio.ensure_future(anext(frames))
    await api.drain()  # the orchestrator commits events 2..5 while the stream waits
    rest = _split([await pending, *[chunk async for chunk in frames]])
    assert [chunk.split(b"\n")[:2] for chunk in rest] == [
        [b"id: 2", b"event: run.started"],
        [b"id: 3", b"event: run.step.started"],
        [b"id: 4", b"event: run.step.completed"],
        [b"id: 5", b"event: run.completed"],
    ]


async def _sse(api: Api, url: str, **headers: str) -> tuple[int, list[ServerSentEvent]]:
    async with aconnect_sse(api.client, "GET", url, headers=headers) as source:
        response = source.response
        if response.status_code != 200:
            await response.aread()
            return response.status_code, []
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        events = [sse async for sse in source.aiter_sse() if sse.data]
    return 200, events


async def _finished_run(api: Api, steps: int = 2) -> str:
    run_id: str = (await api.client.post("/runs", json={"input": "x", "steps": steps})).json()[
        "runId"
    ]
    await api.drain()
    return run_id


async def test_o4_sse_replays_a_whole_finished_run_and_ends(api: Api) -> None:
    run_id = await _finished_run(api)
    status, events = await _sse(api, f"/runs/{run_id}/events?from_seq=1")
    assert status == 200
    assert [sse.id for sse in events] == [str(seq) for seq in range(1, 8)]
    assert events[-1].event == "run.completed"
    assert [json.loads(sse.data)["seq"] for sse in events] == list(range(1, 8))
    assert json.loads(events[0].data)["stream"] == run_id


async def test_o4_sse_starts_at_from_seq(api: Api) -> None:
    run_id = await _finished_run(api)
    _, events = await _sse(api, f"/runs/{run_id}/events?from_seq=4")
    assert [sse.id for sse in events] == ["4", "5", "6", "7"]


async def test_o4_last_event_id_resumes_right_after_it(api: Api) -> None:
    run_id = await _finished_run(api)
    _, events = await _sse(api, f"/runs/{run_id}/events", **{"Last-Event-ID": "5"})
    assert [sse.id for sse in events] == ["6", "7"]
    _, later = await _sse(api, f"/runs/{run_id}/events?from_seq=2", **{"Last-Event-ID": "6"})
    assert [sse.id for sse in later] == ["7"]


async def test_reconnecting_after_the_end_gets_an_empty_stream_that_closes(api: Api) -> None:
    run_id = await _finished_run(api)
    status, events = await _sse(api, f"/runs/{run_id}/events", **{"Last-Event-ID": "7"})
    assert (status, events) == (200, [])


@pytest.mark.parametrize(
    ("query", "headers", "status"),
    [
        ("?from_seq=0", {}, 422),
        ("?from_seq=abc", {}, 422),
        (f"?from_seq={MAX_SEQ + 1}", {}, 422),
        ("", {"Last-Event-ID": "seven"}, 400),
        ("", {"Last-Event-ID": "-3"}, 400),
    ],
)
async def test_bad_stream_positions_are_4xx(
    api: Api, query: str, headers: dict[str, str], status: int
) -> None:
    run_id = await _finished_run(api, steps=1)
    code, _ = await _sse(api, f"/runs/{run_id}/events{query}", **headers)
    assert code == status


async def test_a_failing_read_ends_the_stream_with_an_error_frame() -> None:
    async def broken() -> AsyncIterator[OutboxEvent]:
        yield _event(1)
        raise RuntimeError("events before seq 2 were purged")

    frames = await _collect(
        event_stream(
            broken(),
            first_seq=1,
            terminal=TERMINAL_EVENTS,
            ping_seconds=10,
            closing=asyncio.Event(),
        )
    )
    assert frames[1].startswith(b"id: 1\n")
    assert frames[2].startswith(b"event: error\ndata: ")
    assert b"purged" in frames[2]
    assert b"\nid:" not in frames[2]
    assert len(frames) == 3
