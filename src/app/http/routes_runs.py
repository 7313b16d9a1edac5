"""``GET /runs/{run_id}/events``: a run's event stream as Server-Sent Events, for any run
service (the service itself brings ``POST /runs`` and ``GET /runs/{run_id}``)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query
from fastapi.responses import StreamingResponse

from portside.app.http.problems import ApiError, responses
from portside.app.http.runs import RunPosition, RunService
from portside.app.http.sse import MAX_SEQ, event_stream, parse_last_event_id, resume_from
from portside.app.http.state import ApiState, api_state
from portside.ports import OutboxEvent

__all__ = ["RunId", "router"]

router = APIRouter(tags=["runs"])
State = Annotated[ApiState, Depends(api_state)]
RunId = Annotated[str, Path(min_length=1, max_length=200, description="The run id.")]

_STREAM_DOC = {
    200: {
        "description": "The run's events as Server-Sent Events: one frame per event with "
        "`id: <seq>`, `event: <type>` and `data: <JSON>` ({id, stream, seq, type, payload, "
        "createdAt}); comment lines (`: ping`) keep idle connections open. The stream ends "
        "after the run's terminal event (`run.completed` or `run.failed` for agent runs).",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
    **responses(400, 404, 422, 503),
}


async def _no_events() -> AsyncIterator[OutboxEvent]:
    nothing: tuple[OutboxEvent, ...] = ()
    for event in nothing:
        yield event


async def _counted(api: ApiState, frames: AsyncGenerator[bytes, None]) -> AsyncIterator[bytes]:
    api.metrics.streams.inc()
    try:
        async for chunk in frames:
            yield chunk
    finally:
        api.metrics.streams.dec()
        await frames.aclose()


async def _position(api: ApiState, runs: RunService, run_id: str) -> RunPosition:
    position = await runs.position(api.infra, run_id)
    if position is None:
        raise ApiError(404, f"no run with id {run_id!r}", error="unknown_run")
    return position


@router.get(
    "/runs/{run_id}/events",
    summary="Stream a run's events (SSE), replayed from a sequence number then live",
    response_class=StreamingResponse,
    responses=_STREAM_DOC,
)
async def run_events(
    run_id: RunId,
    api: State,
    from_seq: Annotated[
        int, Query(ge=1, le=MAX_SEQ, description="First event to send (1 = the whole run).")
    ] = 1,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            max_length=64,
            description="Set by reconnecting clients: resume after this seq (wins over from_seq).",
        ),
    ] = None,
) -> StreamingResponse:
    """Replays the stored events from `from_seq` (or after `Last-Event-ID`), then follows new
    ones live, with no gap and no duplicate (O4); ends after the terminal event."""
    first = resume_from(from_seq, parse_last_event_id(last_event_id))
    runs = api.require_runs()
    run = await _position(api, runs, run_id)
    if run.finished and first > run.last_seq:
        # Nothing left to send and nothing will come: end the stream right away.
        frames: AsyncIterator[bytes] = event_stream(
            _no_events(),
            first_seq=first,
            terminal=runs.terminal_events,
            ping_seconds=api.settings.sse_ping_seconds,
            closing=api.closing,
        )
    else:
        events = api.infra.outbox.subscribe(run.stream, first)
        if api.tracing is not None:
            from portside.app.tracing.outbox import sse_spans

            events = sse_spans(events, api.tracing)
        frames = _counted(
            api,
            event_stream(
                events,
                first_seq=first,
                terminal=runs.terminal_events,
                ping_seconds=api.settings.sse_ping_seconds,
                closing=api.closing,
                on_sent=api.metrics.events_sent.inc,
                encode=api.frames,
            ),
        )
    return StreamingResponse(
        frames,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
