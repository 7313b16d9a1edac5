"""InMemoryQueue on its virtual clock: delays, backoff, timeouts, rate limits, schedules."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from portside.adapters.memory import DEFAULT_START, InMemoryQueue, VirtualClock
from portside.ports import (
    Backoff,
    Job,
    JobOptions,
    NewJob,
    RateLimit,
    Schedule,
    TransientError,
    ValidationError,
)


async def _fail(job: Job) -> Any:
    raise TransientError("503")


async def _ok(job: Job) -> Any:
    return job.name


async def test_q3_retry_schedule_1s_5s_30s_takes_well_under_a_second() -> None:
    """Q3: the whole 1 s / 5 s / 30 s schedule runs on virtual time, in milliseconds."""
    began = time.perf_counter()
    queue = InMemoryQueue()
    attempts_at: list[float] = []

    async def handler(job: Job) -> Any:
        attempts_at.append(queue.clock.now() - DEFAULT_START)
        raise TransientError("upstream 503")

    options = JobOptions(attempts=4, backoff=Backoff.schedule(1, 5, 30))
    ref = await queue.enqueue("sync", "pull", {}, options=options)
    queue.consume("sync", handler)
    outcomes = await queue.drain("sync")
    for step in (1, 5, 30):
        await queue.advance(step)
        outcomes += await queue.drain("sync")
    elapsed = time.perf_counter() - began
    assert attempts_at == [0, 1, 6, 36]
    assert [(o.status, o.attempt) for o in outcomes] == [
        ("retrying", 1),
        ("retrying", 2),
        ("retrying", 3),
        ("failed", 4),
    ]
    info = await queue.get_job("sync", ref.id)
    assert info is not None
    assert info.finished_at == DEFAULT_START + 36
    assert elapsed < 0.25, f"the virtual retry schedule took {elapsed:.3f} s"


async def test_delayed_jobs_become_waiting_when_the_clock_passes_them() -> None:
    """Q3: promotion happens on advance, whoever moves the (shared) clock."""
    clock = VirtualClock()
    queue = InMemoryQueue(clock)
    ref = await queue.enqueue("later", "x", {}, options=JobOptions(delay=30))
    clock.advance(29.999)
    assert (await queue.counts("later")).delayed == 1
    clock.advance(0.001)
    info = await queue.get_job("later", ref.id)
    assert info is not None
    assert info.state == "waiting"


async def test_q5_virtual_time_also_ends_a_timed_out_attempt() -> None:
    """Q5: an attempt whose deadline passes on the virtual clock times out at once (the
    fake's documented choice: real time or virtual time, whichever comes first)."""
    queue = InMemoryQueue()
    started = asyncio.Event()

    async def hang(job: Job) -> Any:
        started.set()
        await asyncio.Event().wait()

    await queue.enqueue("slow", "crawl", {}, options=JobOptions(attempts=1))
    queue.consume("slow", hang, timeout=30)
    drained = asyncio.create_task(queue.drain("slow"))
    async with asyncio.timeout(5):
        await started.wait()
        await queue.advance(29)
        assert not drained.done()
        await queue.advance(2)
        outcomes = await drained
    assert [(o.status, o.failure_kind) for o in outcomes] == [("failed", "transient")]
    assert outcomes[0].error is not None
    assert "JobTimeoutError" in outcomes[0].error
    assert "30 s timeout" in outcomes[0].error


async def test_q6_started_worker_waits_for_the_rate_limit_window() -> None:
    """Q6: a rate-limited started worker resumes when the virtual window passes."""
    queue = InMemoryQueue()
    done: list[str] = []
    third = asyncio.Event()

    async def record(job: Job) -> Any:
        done.append(job.name)
        if len(done) == 3:
            third.set()

    await queue.enqueue_bulk("api", [NewJob(name=f"call-{i}", data={}) for i in range(3)])
    worker = queue.consume("api", record, rate_limit=RateLimit(max=2, per=60))
    async with worker:
        assert [o.name for o in await queue.drain("api")] == ["call-0", "call-1"]
        await queue.advance(60)
        async with asyncio.timeout(5):
            await third.wait()
    assert done == ["call-0", "call-1", "call-2"]


async def test_q11_every_schedule_produces_one_job_per_interval() -> None:
    """Q11: the first job runs at once; the next when its time comes; missed slots are
    skipped, not replayed (BullMQ keeps one upcoming job per scheduler)."""
    queue = InMemoryQueue()
    await queue.upsert_schedule(
        "ticks", Schedule(scheduler_id="tick", name="tick", data={"n": 1}, every=60)
    )
    queue.consume("ticks", _ok)
    assert len(await queue.drain("ticks")) == 1
    await queue.advance(59)
    assert await queue.drain("ticks") == []
    await queue.advance(1)
    assert len(await queue.drain("ticks")) == 1
    await queue.advance(600)
    assert len(await queue.drain("ticks")) == 1
    ids = [info.id for info in queue.jobs("ticks")]
    start_ms = round(DEFAULT_START * 1000)
    assert ids[:3] == [f"repeat:tick:{start_ms + ms}" for ms in (0, 60_000, 120_000)]
    delayed = queue.jobs("ticks", state="delayed")
    assert [info.id for info in delayed] == [f"repeat:tick:{start_ms + 720_000}"]


async def test_q11_cron_schedule_fires_on_the_pattern() -> None:
    """Q11: a cron scheduler's jobs wait for the pattern's next match."""
    queue = InMemoryQueue()
    await queue.upsert_schedule(
        "crons", Schedule(scheduler_id="quarter", name="report", pattern="*/15 * * * *")
    )
    (pending,) = queue.jobs("crons")
    assert (pending.state, pending.delay) == ("delayed", 900.0)
    queue.consume("crons", _ok)
    await queue.advance(899)
    assert await queue.drain("crons") == []
    await queue.advance(1)
    assert [o.name for o in await queue.drain("crons")] == ["report"]


async def test_q11_changed_schedule_replaces_its_pending_job_and_purge_keeps_it() -> None:
    """Q11: upserting different settings replaces the upcoming job; purge leaves scheduler
    jobs alone (as BullMQ does); remove_schedule drops the upcoming job."""
    queue = InMemoryQueue()
    first = Schedule(scheduler_id="s", name="n", pattern="0 * * * *")
    await queue.upsert_schedule("q", first)
    await queue.upsert_schedule("q", first.model_copy(update={"pattern": "30 * * * *"}))
    (pending,) = queue.jobs("q")
    assert pending.delay == 1800.0
    await queue.enqueue("q", "plain", {}, options=JobOptions(delay=5))
    assert await queue.purge("q") == 1
    assert [info.id for info in queue.jobs("q")] == [pending.id]
    assert await queue.remove_schedule("q", "s")
    assert queue.jobs("q") == []


@pytest.mark.parametrize(
    ("schedule", "field", "words"),
    [
        (
            Schedule(scheduler_id="s", name="n", every=5, options=JobOptions(job_id="fixed")),
            "schedule.options.job_id",
            "job schedulers name their jobs themselves",
        ),
        # Schedule() itself refuses these two; model_construct() skips that check, so the
        # fake's own check is what answers here.
        (
            Schedule.model_construct(scheduler_id="s", name="n", pattern="61 * * * *"),
            "schedule.pattern",
            "minute",
        ),
        (
            Schedule.model_construct(scheduler_id="s", name="n", every=5, timezone="Nowhere/Land"),
            "schedule.timezone",
            "IANA",
        ),
        (Schedule(scheduler_id="s", name="  ", every=5), "schedule.name", "empty"),
        (
            Schedule(scheduler_id="s", name="n", every=5, options=JobOptions(delay=3)),
            "schedule.options.delay",
            "the pattern or 'every' decides when each job runs",
        ),
    ],
)
async def test_q11_bad_schedules_name_the_field(schedule: Schedule, field: str, words: str) -> None:
    queue = InMemoryQueue()
    with pytest.raises(ValidationError) as info:
        await queue.upsert_schedule("q", schedule)
    assert info.value.field == field
    assert words in str(info.value)
    assert await queue.list_schedules("q") == []


async def test_dedupe_ttl_holds_the_key_for_its_time_only() -> None:
    """Q1: with ``dedupe_ttl`` the key blocks duplicates for that long, finished or not."""
    queue = InMemoryQueue()
    options = JobOptions(dedupe_key="k", dedupe_ttl=10)
    first = await queue.enqueue("d", "x", {}, options=options)
    queue.consume("d", _ok)
    await queue.drain("d")
    assert (await queue.enqueue("d", "x", {}, options=options)).id == first.id
    await queue.advance(10)
    assert (await queue.enqueue("d", "x", {}, options=options)).id != first.id
