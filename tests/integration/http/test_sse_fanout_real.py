"""Many SSE clients of one run on the real server: shared outbox reads, each client still gets
every event once, in order (A6, O4; issue 9)."""

from __future__ import annotations

import asyncio

import pytest
from httpx_sse import ServerSentEvent

from portside.testing import wait_for
from tests.integration.http.support import RunningApi, WorkerProcess, events_of, run_status

pytestmark = pytest.mark.integration

DEADLINE = 60.0


async def test_o4_many_clients_early_resumed_and_late_each_get_every_event_once(
    api_server: RunningApi, worker_process: WorkerProcess
) -> None:
    """O4/A6: twenty clients follow a run from its start, one reconnects with Last-Event-ID
    and one arrives mid-run from seq 1: each gets its events exactly once, in seq order, and
    every client gets the same frame for the same event."""
    async with api_server.client() as client:
        response = await client.post("/runs", json={"input": "x", "steps": 10, "stepDelayMs": 40})
        assert response.status_code == 202, response.text
        run_id = response.json()["runId"]

        async def read(**position: int) -> list[ServerSentEvent]:
            return [sse async for sse in events_of(client, run_id, **position)]

        early = [asyncio.ensure_future(read()) for _ in range(20)]

        async def progressed() -> bool:
            return bool((await run_status(client, run_id))["lastSeq"] >= 8)

        await wait_for(progressed, timeout=DEADLINE, message="the run to reach seq 8")
        resumed = asyncio.ensure_future(read(last_event_id=3))
        late = asyncio.ensure_future(read())
        streams = await asyncio.wait_for(asyncio.gather(*early, resumed, late), DEADLINE)

    from_four = streams[20]
    whole = [*streams[:20], streams[21]]
    last = int(whole[0][-1].id)
    assert whole[0][-1].event == "run.completed"
    for events in whole:
        assert [int(sse.id) for sse in events] == list(range(1, last + 1))
    assert [int(sse.id) for sse in from_four] == list(range(4, last + 1))
    frames = {sse.id: (sse.event, sse.data) for sse in whole[0]}
    for events in [*whole, from_four]:
        assert all(frames[sse.id] == (sse.event, sse.data) for sse in events)
