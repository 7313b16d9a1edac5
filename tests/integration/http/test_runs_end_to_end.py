"""Issue 8 done-when: POST /runs -> a real worker process runs the orchestrator -> the outbox
publishes -> SSE clients (late, or reconnecting with Last-Event-ID) get every event once,
in order (A7, O4). Real uvicorn, real Redis and Postgres, a real ``portside worker``."""

from __future__ import annotations

import pytest

from portside.infra import Infra
from portside.testing import wait_for
from tests.integration.http.support import RunningApi, WorkerProcess, events_of, run_status

pytestmark = pytest.mark.integration


def _expected(steps: int) -> list[str]:
    return ["run.created", "run.started", *["run.step.started", "run.step.completed"] * steps,
            "run.completed"]  # fmt: skip


async def test_a7_o4_a_late_sse_client_gets_every_event_exactly_once_in_order(
    infra: Infra, api_server: RunningApi, worker_process: WorkerProcess
) -> None:
    async with api_server.client() as client:
        response = await client.post(
            "/runs", json={"input": "compare retail tariffs", "steps": 6, "stepDelayMs": 100}
        )
        assert response.status_code == 202, response.text
        run_id = response.json()["runId"]

        async def progressed() -> bool:
            last_seq: int = (await run_status(client, run_id))["lastSeq"]
            return last_seq >= 4

        await wait_for(progressed, timeout=30, message="the worker to write four events")
        # Connect late: events 1..4+ are replayed from the table, the rest arrive live.
        received = [sse async for sse in events_of(client, run_id, from_seq=1)]

        assert [int(sse.id) for sse in received] == list(range(1, 16))
        assert [sse.event for sse in received] == _expected(6)
        final = await run_status(client, run_id)
        assert final["status"] == "completed"
        assert final["lastSeq"] == 15

    async def published() -> bool:
        return await infra.outbox.pending() == 0

    await wait_for(published, timeout=30, message="the API's publisher to publish every event")
    await wait_for(
        lambda: worker_process.seen("job.completed"),
        timeout=30,
        message="the worker process to log the orchestrator job's completion",
    )


async def test_o4_a_client_that_reconnects_with_last_event_id_misses_nothing(
    api_server: RunningApi, worker_process: WorkerProcess
) -> None:
    async with api_server.client() as client:
        run_id = (
            await client.post(
                "/runs", json={"input": "summarise the grid", "steps": 8, "stepDelayMs": 150}
            )
        ).json()["runId"]
        first = [sse async for sse in events_of(client, run_id, stop_after=5)]
        assert [sse.id for sse in first] == ["1", "2", "3", "4", "5"]
        assert first[-1].event not in ("run.completed", "run.failed")  # dropped mid-stream

        rest = [sse async for sse in events_of(client, run_id, last_event_id=5)]
        ids = [int(sse.id) for sse in first + rest]
        assert ids == list(range(1, 20))  # no gap, no duplicate
        assert [sse.event for sse in first + rest] == _expected(8)

        again = [sse async for sse in events_of(client, run_id, last_event_id=19)]
        assert again == []  # reconnecting after the end: the stream just closes


async def test_a7_a_transient_step_failure_is_retried_by_the_real_worker_without_duplicates(
    api_server: RunningApi, worker_process: WorkerProcess
) -> None:
    async with api_server.client() as client:
        run_id = (
            await client.post("/runs", json={"input": "flaky tool", "steps": 3, "failAtStep": 2})
        ).json()["runId"]
        received = [sse async for sse in events_of(client, run_id)]
        kinds = [sse.event for sse in received]
        assert kinds == [
            "run.created",
            "run.started",
            "run.step.started",
            "run.step.completed",
            "run.step.started",
            "run.attempt.failed",
            "run.resumed",
            "run.step.completed",
            "run.step.started",
            "run.step.completed",
            "run.completed",
        ]
        assert [int(sse.id) for sse in received] == list(range(1, 12))
        status = await run_status(client, run_id)
        assert (status["status"], status["attempts"]) == ("completed", 2)


async def test_concurrent_clients_at_different_positions_agree(
    api_server: RunningApi, worker_process: WorkerProcess
) -> None:
    import asyncio

    async with api_server.client() as client:
        run_id = (
            await client.post("/runs", json={"input": "x", "steps": 4, "stepDelayMs": 50})
        ).json()["runId"]

        async def read(start: int) -> list[int]:
            return [int(sse.id) async for sse in events_of(client, run_id, from_seq=start)]

        whole, tail, last = await asyncio.gather(read(1), read(7), read(11))
    assert whole == list(range(1, 12))
    assert tail == list(range(7, 12))
    assert last == [11]
