"""A7: POST /runs writes the run and its first event in one unit of work, the orchestrator
job writes every step exactly once, and GET /runs/{id} reports it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from portside.examples.agents import (
    ORCHESTRATOR_QUEUE,
    AgentRuns,
    InMemoryAgentRunStore,
    NewRun,
    RunRecord,
    RunRequest,
    RunWriter,
)
from portside.ports import BackendUnavailableError, JobOptions, OutboxEvent, OutboxPort
from tests.unit.http.support import Api


async def stream_of(api: Api, run_id: str) -> list[OutboxEvent]:
    """Every committed event of the run, read through ``subscribe`` up to the row's last seq."""
    run = api.runs.rows[run_id]
    events: list[OutboxEvent] = []
    if run.last_seq == 0:
        return events
    subscription = api.outbox.subscribe(run_id, 1)
    async for event in subscription:
        events.append(event)
        if event.seq == run.last_seq:
            break
    await subscription.aclose()  # type: ignore[attr-defined]
    return events


def kinds(events: list[OutboxEvent]) -> list[str]:
    return [event.type for event in events]


async def start(api: Api, **body: Any) -> dict[str, Any]:
    response = await api.client.post("/runs", json={"input": "compare tariffs", **body})
    assert response.status_code == 202, response.text
    started: dict[str, Any] = response.json()
    return started


async def test_a7_start_writes_row_and_first_event_and_queues_the_orchestrator(api: Api) -> None:
    started = await start(api, steps=2)
    run_id = started["runId"]
    assert started["status"] == "queued"
    assert started["jobId"] == f"agent-run.{run_id}"
    assert started["eventsUrl"] == f"/runs/{run_id}/events?from_seq=1"

    row = api.runs.rows[run_id]
    assert (row.status, row.last_seq, row.steps) == ("queued", 1, 2)
    (created,) = await stream_of(api, run_id)
    assert (created.seq, created.type) == (1, "run.created")
    assert created.payload["input"] == "compare tariffs"
    job = await api.queue.get_job(ORCHESTRATOR_QUEUE, started["jobId"])
    assert job is not None
    assert job.state == "waiting"


async def test_a7_orchestrator_writes_each_step_then_the_terminal_event(api: Api) -> None:
    run_id = (await start(api, steps=3))["runId"]
    await api.drain()
    events = await stream_of(api, run_id)
    assert kinds(events) == [
        "run.created",
        "run.started",
        *["run.step.started", "run.step.completed"] * 3,
        "run.completed",
    ]
    assert [event.seq for event in events] == list(range(1, 10))  # O4: gap-free
    view = (await api.client.get(f"/runs/{run_id}")).json()
    assert view["status"] == "completed"
    assert view["completedSteps"] == 3
    assert view["lastSeq"] == 9
    assert view["result"]["steps"] == 3
    assert view["finishedAt"] is not None


async def test_a7_a_transient_failure_resumes_without_repeating_an_event(api: Api) -> None:
    run_id = (await start(api, steps=3, failAtStep=2))["runId"]
    first = await api.drain()
    assert [outcome.status for outcome in first] == ["retrying"]
    await api.queue.advance(1)  # the orchestrator's backoff: exponential from 1 s
    second = await api.drain()
    assert [outcome.status for outcome in second] == ["completed"]

    events = await stream_of(api, run_id)
    assert kinds(events) == [
        "run.created",
        "run.started",
        "run.step.started",
        "run.step.completed",
        "run.step.started",  # step 2, attempt 1: fails after this
        "run.attempt.failed",
        "run.resumed",  # attempt 2 goes on with step 2 without starting it again
        "run.step.completed",
        "run.step.started",
        "run.step.completed",
        "run.completed",
    ]
    steps = [(event.type, event.payload["step"]) for event in events if "step" in event.payload]
    assert len(steps) == len(set(steps)) == 6  # each step started and completed exactly once
    assert events[5].payload["willRetry"] is True
    assert events[6].payload == {
        "runId": run_id,
        "jobId": f"agent-run.{run_id}",
        "attempt": 2,
        "fromStep": 2,
    }
    assert api.runs.rows[run_id].attempts == 2


async def test_a7_a_permanent_failure_ends_the_run_and_dead_letters_the_job(api: Api) -> None:
    run_id = (await start(api, steps=2, failAtStep=1, failure="permanent"))["runId"]
    outcomes = await api.drain()
    assert [(o.status, o.failure_kind) for o in outcomes] == [("failed", "permanent")]
    events = await stream_of(api, run_id)
    assert kinds(events)[-1] == "run.failed"
    assert events[-1].payload["classification"] == "permanent"
    view = (await api.client.get(f"/runs/{run_id}")).json()
    assert view["status"] == "failed"
    assert "credentials" in view["error"]
    letters = await api.infra.require_history().list_failures(queue=ORCHESTRATOR_QUEUE)
    assert [letter.job_id for letter in letters] == [f"agent-run.{run_id}"]


async def test_a7_a_duplicate_orchestrator_job_adds_no_event(api: Api) -> None:
    run_id = (await start(api, steps=1))["runId"]
    await api.drain()
    before = api.runs.rows[run_id].last_seq
    await api.queue.enqueue(
        ORCHESTRATOR_QUEUE, "agent-run", {"runId": run_id}, options=JobOptions(job_id="dup-1")
    )
    (outcome,) = await api.drain()
    assert outcome.status == "completed"
    assert outcome.result == {"runId": run_id, "status": "completed", "steps": 1, "lastSeq": before}
    assert api.runs.rows[run_id].last_seq == before


async def test_a7_an_orchestrator_job_for_an_unknown_run_fails_permanently(api: Api) -> None:
    await api.queue.enqueue(ORCHESTRATOR_QUEUE, "agent-run", {"runId": "run-missing"})
    (outcome,) = await api.drain()
    assert (outcome.status, outcome.failure_kind) == ("failed", "permanent")
    assert "does not exist" in (outcome.error or "")


class _FailingInsert:
    """A store whose row insert fails after the event was appended in the same unit of work."""

    def __init__(self, inner: InMemoryAgentRunStore) -> None:
        self.inner = inner

    def write(self, outbox: OutboxPort) -> AbstractAsyncContextManager[RunWriter]:
        return self._write(outbox)

    @asynccontextmanager
    async def _write(self, outbox: OutboxPort) -> AsyncIterator[RunWriter]:
        async with self.inner.write(outbox) as unit:
            yield _Broken(unit)

    async def get(self, outbox: OutboxPort, run_id: str) -> RunRecord | None:
        return await self.inner.get(outbox, run_id)


class _Broken:
    def __init__(self, unit: RunWriter) -> None:
        self.unit = unit

    @property
    def tx(self) -> Any:
        return self.unit.tx

    async def insert(self, run: NewRun) -> RunRecord:
        raise RuntimeError("disk full")

    async def lock(self, run_id: str) -> RunRecord | None:
        return await self.unit.lock(run_id)

    async def save(self, run: RunRecord) -> RunRecord:
        return await self.unit.save(run)


async def test_o1_no_event_without_the_run_row(api: Api) -> None:
    """The run row and run.created commit together or not at all."""
    store = InMemoryAgentRunStore()
    runs = AgentRuns(_FailingInsert(store))
    with pytest.raises(RuntimeError, match="disk full"):
        await runs.start(api.infra, RunRequest(input="x"))
    assert store.rows == {}
    assert await api.outbox.pending() == 0


class _DownQueue:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call {name}")

    async def enqueue(self, *args: Any, **kwargs: Any) -> Any:
        raise BackendUnavailableError("redis is down")


async def test_a_run_whose_enqueue_failed_is_queued_when_its_event_is_published(api: Api) -> None:
    """The outbox handler re-queues the orchestrator (idempotent job id) from run.created."""
    runs = AgentRuns(api.runs)
    healthy_infra = api.infra
    broken = _replace_queue(api.infra, _DownQueue())
    with pytest.raises(BackendUnavailableError):
        await runs.start(broken, RunRequest(input="x"))
    (run_id,) = api.runs.rows
    assert await api.queue.get_job(ORCHESTRATOR_QUEUE, f"agent-run.{run_id}") is None
    remove = api.outbox.add_handler(runs.outbox_handler(healthy_infra.queue))
    try:
        assert await api.outbox.drain_once() == 1
    finally:
        remove()
    job = await api.queue.get_job(ORCHESTRATOR_QUEUE, f"agent-run.{run_id}")
    assert job is not None
    assert job.state == "waiting"


def _replace_queue(infra: Any, queue: Any) -> Any:
    """An object like ``infra`` with another queue (Infra itself checks its ports)."""

    class _View:
        def __getattr__(self, name: str) -> Any:
            return queue if name == "queue" else getattr(infra, name)

    return _View()


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"input": "x", "steps": 0}, ["body", "steps"]),
        ({"input": "x", "steps": 51}, ["body", "steps"]),
        ({"input": "x", "steps": "many"}, ["body", "steps"]),
        ({"input": ""}, ["body", "input"]),
        ({"input": "nul\u0000byte"}, ["body", "input"]),
        ({}, ["body", "input"]),
        ({"input": "x", "agent": "Bad Agent"}, ["body", "agent"]),
        ({"input": "x", "stepDelayMs": False}, ["body", "stepDelayMs"]),
        ({"input": "x", "steps": True}, ["body", "steps"]),
        ({"input": "x", "surprise": True}, ["body", "surprise"]),
        ({"input": "x", "failure": "sometimes"}, ["body", "failure"]),
    ],
)
async def test_invalid_run_requests_are_422_with_the_field(
    api: Api, body: Mapping[str, Any], where: list[str]
) -> None:
    response = await api.client.post("/runs", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["fields"][0]["loc"] == where
    assert api.runs.rows == {}


async def test_malformed_run_request_is_400(api: Api) -> None:
    response = await api.client.post(
        "/runs", content=b'{"input": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_json"


async def test_unknown_runs_are_404(api: Api) -> None:
    for run_id in ("run-nope", "bad%00id", "white space", "%E2%9C%93"):
        response = await api.client.get(f"/runs/{run_id}")
        assert response.status_code == 404, run_id
        assert response.json()["error"] == "unknown_run"
        assert (await api.client.get(f"/runs/{run_id}/events")).status_code == 404
    assert (await api.client.get("/runs/" + "r" * 201)).status_code == 422
