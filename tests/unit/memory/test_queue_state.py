"""InMemoryQueue state: inspection, reset, results, progress, stalls, closing, bad input."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from portside.adapters.memory import InMemoryQueue
from portside.adapters.memory.queue.outcomes import trusted_outcome
from portside.ports import (
    ConfigurationError,
    Job,
    JobOptions,
    JobOutcome,
    JobStalledError,
    PermanentError,
    QueuePort,
    ValidationError,
    WorkerHandle,
)


async def _ok(job: Job) -> Any:
    return {"seen": job.data}


def test_the_fake_implements_the_port_protocols() -> None:
    queue = InMemoryQueue()
    assert isinstance(queue, QueuePort)
    assert isinstance(queue.consume("q", _ok), WorkerHandle)


def test_trusted_outcomes_equal_validated_ones() -> None:
    """The unvalidated fast path of drain() builds the same model pydantic would."""
    values: dict[str, Any] = {
        "queue": "q",
        "job_id": "1",
        "name": "n",
        "attempt": 2,
        "status": "retrying",
        "result": None,
        "error": "TransientError: x",
        "failure_kind": "transient",
    }
    fast, slow = trusted_outcome(dict(values)), JobOutcome(**values)
    assert fast == slow
    assert hash(fast) == hash(slow)
    assert fast.model_dump() == slow.model_dump()
    assert fast.model_fields_set == slow.model_fields_set
    assert repr(fast) == repr(slow)


async def test_inspectable_jobs_events_and_queues() -> None:
    queue = InMemoryQueue()
    await queue.enqueue("b", "first", {"n": 1})
    await queue.enqueue("a", "second", {"n": 2}, options=JobOptions(delay=5))
    queue.consume("b", _ok)
    await queue.drain("b")
    assert queue.queues == ["a", "b"]
    assert [(j.queue, j.name, j.state) for j in queue.jobs()] == [
        ("b", "first", "completed"),
        ("a", "second", "delayed"),
    ]
    assert [j.name for j in queue.jobs("a", state="delayed")] == ["second"]
    assert [(e.kind, e.queue, e.attempt) for e in queue.events_log] == [
        ("enqueued", "b", 0),
        ("enqueued", "a", 0),
        ("active", "b", 1),
        ("completed", "b", 1),
    ]


async def test_reset_forgets_jobs_and_events_but_keeps_workers() -> None:
    queue = InMemoryQueue()
    queue.consume("r", _ok)
    await queue.enqueue("r", "x", {}, options=JobOptions(job_id="same"))
    await queue.pause("r")
    queue.reset()
    assert queue.jobs() == []
    assert queue.events_log == []
    assert not await queue.is_paused("r")
    assert (await queue.counts("r")).depth == 0
    ref = await queue.enqueue("r", "x", {"again": True}, options=JobOptions(job_id="same"))
    assert [o.result for o in await queue.drain("r")] == [{"seen": {"again": True}}]
    assert ref.id == "same"


async def test_events_log_keeps_the_most_recent_events() -> None:
    queue = InMemoryQueue(events_log_limit=2)
    for i in range(3):
        await queue.enqueue("q", f"j{i}", {})
    assert [e.name for e in queue.events_log] == ["j1", "j2"]


async def test_each_attempt_gets_its_own_copy_of_the_payload() -> None:
    """Like a real adapter decoding the payload afresh, mutations never leak."""
    queue = InMemoryQueue()
    seen: list[Any] = []

    async def mutate(job: Job) -> Any:
        seen.append(copy.deepcopy(job.data))
        job.data["items"].append("mutated")
        if job.attempt == 1:
            raise RuntimeError("again")

    ref = await queue.enqueue("m", "x", {"items": [1]})
    queue.consume("m", mutate)
    await queue.drain("m")
    assert seen == [{"items": [1]}, {"items": [1]}]
    info = await queue.get_job("m", ref.id)
    assert info is not None
    assert info.data == {"items": [1]}


async def test_a_result_that_is_not_json_fails_the_job_permanently() -> None:
    queue = InMemoryQueue()

    async def returns_object(job: Job) -> Any:
        return object()

    await queue.enqueue("res", "x", {})
    queue.consume("res", returns_object)
    (outcome,) = await queue.drain("res")
    assert (outcome.status, outcome.failure_kind) == ("failed", "permanent")
    assert outcome.error is not None
    assert "result is not JSON" in outcome.error


async def test_progress_must_be_a_number_or_a_dict() -> None:
    queue = InMemoryQueue()

    async def bad_progress(job: Job) -> Any:
        await job.update_progress(True)

    await queue.enqueue("p", "x", {}, options=JobOptions(attempts=1))
    queue.consume("p", bad_progress)
    (outcome,) = await queue.drain("p")
    assert outcome.error is not None
    assert "progress must be a number or a dict, got bool" in outcome.error


async def test_a_classifier_that_raises_is_reported_and_the_failure_stays_transient() -> None:
    queue = InMemoryQueue()

    def broken(error: BaseException) -> Any:
        raise LookupError("rules missing")

    async def fails(job: Job) -> Any:
        raise PermanentError("nope")

    await queue.enqueue("c", "x", {}, options=JobOptions(attempts=1))
    queue.consume("c", fails, classify=broken)
    (outcome,) = await queue.drain("c")
    assert outcome.failure_kind == "transient"
    assert outcome.error == "PermanentError: nope (classify raised LookupError: rules missing)"


async def test_q16_a_job_that_stalls_twice_fails_at_its_next_fetch_without_an_attempt() -> None:
    """Q8, Q10, Q16: in-flight jobs past the grace period go back with ``stalled``; after a
    second stall (BullMQ's maxStalledCount of 1) the next worker to take the job fails it
    without running the handler, as BullMQ does, and tells ``on_abandoned``."""
    queue = InMemoryQueue()
    started = asyncio.Event()
    runs = 0

    async def stuck(job: Job) -> Any:
        nonlocal runs
        runs += 1
        started.set()
        await asyncio.Event().wait()

    ref = await queue.enqueue("s", "x", {})
    for _ in range(2):
        started.clear()
        worker = queue.consume("s", stuck)
        await worker.start()
        await asyncio.wait_for(started.wait(), 5)
        await worker.close(grace=0)
    waiting = await queue.get_job("s", ref.id)
    assert waiting is not None
    assert waiting.state == "waiting"

    told: list[tuple[str, BaseException]] = []

    async def abandoned(job: Job, error: BaseException) -> None:
        told.append((job.id, error))

    queue.consume("s", stuck, on_abandoned=abandoned)
    (outcome,) = await queue.drain("s")
    assert runs == 2
    assert (outcome.status, outcome.failure_kind) == ("failed", "transient")
    ((job_id, error),) = told
    assert job_id == ref.id
    assert isinstance(error, JobStalledError)
    assert str(error) == "job stalled more than allowable limit"
    info = await queue.get_job("s", ref.id)
    assert info is not None
    assert (info.state, info.failure_kind) == ("failed", "transient")
    assert info.failed_reason == "job stalled more than allowable limit"
    kinds = [e.kind for e in queue.events_log]
    assert kinds == ["enqueued", "active", "stalled", "active", "stalled", "active", "failed"]


async def test_event_stream_ends_on_aclose_and_on_queue_close() -> None:
    queue = InMemoryQueue()
    closed_early = queue.events("e")
    await closed_early.aclose()
    assert [e async for e in closed_early] == []
    stream = queue.events("e")
    await queue.enqueue("e", "x", {})
    await queue.close()
    assert [e.kind async for e in stream] == ["enqueued"]


async def test_a_closed_queue_refuses_work() -> None:
    queue = InMemoryQueue()
    await queue.close()
    with pytest.raises(ConfigurationError, match="this InMemoryQueue is closed"):
        await queue.enqueue("q", "x", {})
    with pytest.raises(ConfigurationError):
        await queue.drain()
    await queue.close()


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        (
            {"concurrency": 0},
            "concurrency",
            "concurrency must be an integer from 1 to 10000, got 0",
        ),
        ({"concurrency": True}, "concurrency", "got True"),
        ({"timeout": -1}, "timeout", "timeout is -1"),
        ({"timeout": 0}, "timeout", "pass a finite number above 0"),
        ({"rate_limit": {"max": 0, "per": 1}}, "rate_limit.max", "rate_limit.max is invalid"),
        ({"rate_limit": "60/min"}, "rate_limit", "rate_limit must be a RateLimit"),
        ({"classify": "permanent"}, "classify", "classify must be callable, got str"),
    ],
)
def test_consume_checks_its_arguments(kwargs: dict[str, Any], field: str, message: str) -> None:
    queue = InMemoryQueue()
    with pytest.raises(ValidationError) as info:
        queue.consume("q", _ok, **kwargs)
    assert info.value.field == field
    assert message in str(info.value)


def test_consume_needs_a_callable_handler() -> None:
    with pytest.raises(ValidationError, match="handler must be callable, got NoneType"):
        InMemoryQueue().consume("q", None)  # type: ignore[arg-type]


async def test_lookups_check_their_arguments() -> None:
    queue = InMemoryQueue()
    with pytest.raises(ValidationError, match="job_id must be a non-empty string") as info:
        await queue.get_job("q", 5)  # type: ignore[arg-type]
    assert info.value.field == "job_id"
    with pytest.raises(ValidationError) as bulk:
        await queue.enqueue_bulk("q", "not a list")  # type: ignore[arg-type]
    assert bulk.value.field == "jobs"
    with pytest.raises(ValidationError) as entry:
        await queue.enqueue_bulk("q", [{"name": "x", "data": {}, "colour": "red"}])  # type: ignore[list-item]
    assert entry.value.field == "jobs[0].colour"
    assert "not a known NewJob field" in str(entry.value)


async def test_options_may_be_given_as_a_dict() -> None:
    queue = InMemoryQueue()
    ref = await queue.enqueue("q", "x", {}, options={"job_id": "by-dict", "delay": 3})  # type: ignore[arg-type]
    info = await queue.get_job("q", ref.id)
    assert info is not None
    assert (info.id, info.state, info.delay) == ("by-dict", "delayed", 3.0)
