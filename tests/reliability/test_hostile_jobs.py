"""Q2: jobs with corrupt stored data fail permanently and never block a queue or a worker."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from portside.adapters.bullmq import BullMQQueue
from portside.app import WorkerRuntime
from portside.infra import Infra
from portside.ports import Backoff, Job, JobInfo, JobOptions
from portside.testing import wait_for
from tests.reliability.app_registry import JOB_NAMES, QUEUES, registry
from tests.reliability.conftest import Figures
from tests.reliability.producers import job_options
from tests.reliability.records import create_runs_table
from tests.reliability.scale import Scale
from tests.reliability.workers import Servers, WorkerSpawner

pytestmark = pytest.mark.reliability

QUEUE = "hostile:stored"
# The raw bytes of the job hash's `data` field, and the state the job must end in.
CORRUPT: dict[str, tuple[bytes, str]] = {
    "invalid-json": (b"{nope", "failed"),
    "array": (b"[1, 2]", "failed"),
    "string": (b'"text"', "failed"),
    "number": (b"42", "failed"),
    "null": (b"null", "failed"),
    "int-too-long": (b'{"a": ' + b"9" * 5000 + b"}", "failed"),
    "nan-literal": (b'{"a": NaN}', "completed"),
    "huge-exponent": (b'{"a": 1e999}', "completed"),
    "nul-escape": (b'{"a": "\\u0000"}', "completed"),
    "surrogate-escape": (b'{"a": "\\ud800"}', "completed"),
    "empty": (b"", "completed"),
    "deep-array": (b"[" * 100_000 + b"]" * 100_000, "failed"),
    "deep-object": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "failed"),
    "invalid-utf8": (b'{"a": "\xff\xfe"}', "failed"),
}
CASES = [pytest.param(name, raw, end, id=name) for name, (raw, end) in CORRUPT.items()]


async def _corrupt(redis: Redis, queue: BullMQQueue, name: str, job_id: str, raw: bytes) -> None:
    """Overwrite a waiting job's stored data, as a foreign producer could have written it."""
    await redis.hset(queue.bullmq_name(name).key(job_id), "data", raw)


@pytest.mark.parametrize(("case", "raw", "end"), CASES)
async def test_q2_a_job_with_corrupt_stored_data_never_blocks_the_queue(
    redis_url: str, redis_prefix: str, case: str, raw: bytes, end: str
) -> None:
    """``get_job`` reads the corrupt job; a worker then fails it (permanent, the reason names
    the data) or, when its data is still a JSON object, completes it; the next job completes.
    """
    # Short locks: a job whose worker slot crashed is requeued in seconds, not a minute.
    queue = BullMQQueue(redis_url, prefix=redis_prefix, lock_duration=2, stalled_interval=1)
    bad_id = f"bad-{case}"
    try:
        await queue.pause(QUEUE)
        await queue.enqueue(QUEUE, "job", {"placeholder": 1}, options=JobOptions(job_id=bad_id))
        await queue.enqueue(QUEUE, "job", {"n": 1}, options=JobOptions(job_id="good-after"))
        redis = Redis.from_url(redis_url)
        try:
            await _corrupt(redis, queue, QUEUE, bad_id, raw)
        finally:
            await redis.aclose()
        waiting = await queue.get_job(QUEUE, bad_id)
        assert waiting is not None, waiting
        assert waiting.state == "paused", waiting

        async def handler(job: Job) -> str:
            return f"handled {job.id}"

        worker = queue.consume(QUEUE, handler, concurrency=2)
        await worker.start()
        await queue.resume(QUEUE)
        finished: dict[str, JobInfo] = {}

        async def both_finished() -> bool:
            for job_id in (bad_id, "good-after"):
                info = await queue.get_job(QUEUE, job_id)
                if info is not None and info.state in ("completed", "failed"):
                    finished[job_id] = info
            return len(finished) == 2

        await wait_for(both_finished, timeout=30, message=f"the {case} job and the next to end")
        assert worker.status().running
    finally:
        await queue.close()
    bad, good = finished[bad_id], finished["good-after"]
    assert (good.state, good.result) == ("completed", "handled good-after")
    assert bad.state == end, bad
    if end == "failed":
        assert bad.failure_kind == "permanent", bad
        assert bad.attempts_made == 1, "a permanent failure used more than one attempt"
        assert bad.failed_reason, bad.failed_reason
        assert "data" in bad.failed_reason, bad.failed_reason


async def test_q2_the_worker_process_survives_payloads_that_fail_validation(
    servers: Servers,
    spawn_workers: Callable[[Servers], WorkerSpawner],
    queue_adapter: BullMQQueue,
    redis_url: str,
    scale: Scale,
    figures: Figures,
) -> None:
    """A real ``portside worker``: jobs whose payload fails the job's model or is not JSON
    fail permanently with a dead letter each, and the good jobs around them complete."""
    queue, name = QUEUES[0], JOB_NAMES[0]
    payloads: dict[str, Any] = {
        "wrong-type": {"n": "seven"},
        "missing-field": {},
        "extra-field": {"n": 1, "surprise": True},
        "float-for-int": {"n": 1.5},
        "nested": {"n": {"n": 1}},
    }
    raw: dict[str, bytes] = {"not-json": b"{nope", "array": b"[]", "long-int": b"9" * 5000}
    await queue_adapter.pause(queue)
    await queue_adapter.enqueue(queue, name, {"n": 0}, options=job_options("good-before"))
    for key, payload in payloads.items():
        await queue_adapter.enqueue(queue, name, payload, options=JobOptions(job_id=f"bad-{key}"))
    redis = Redis.from_url(redis_url)
    try:
        for key, data in raw.items():
            await queue_adapter.enqueue(queue, name, {"n": 0}, options=job_options(f"raw-{key}"))
            await _corrupt(redis, queue_adapter, queue, f"raw-{key}", data)
    finally:
        await redis.aclose()
    await queue_adapter.enqueue(queue, name, {"n": 1}, options=job_options("good-after"))
    bad_ids = [f"bad-{key}" for key in payloads] + [f"raw-{key}" for key in raw]

    worker = spawn_workers(servers).start(mode="run", queues=[queue])
    await worker.ready()
    await queue_adapter.resume(queue)

    async def settled() -> bool:
        counts = await queue_adapter.counts(queue)
        return counts.completed == 2 and counts.failed == len(bad_ids)

    await wait_for(settled, timeout=scale.deadline, message="every job to complete or fail")
    db = await asyncpg.connect(servers.postgres_dsn)
    try:
        letters = await db.fetch("SELECT job_id, failure_kind, attempts FROM job_failures")
    finally:
        await db.close()
    assert worker.returncode is None, worker.tail()
    worker.send(signal.SIGTERM)
    assert await worker.exited(timeout=30) == 0, worker.tail()

    for job_id in ("good-before", "good-after"):
        info = await queue_adapter.get_job(queue, job_id)
        assert info is not None, info
        assert info.state == "completed", info
    for job_id in bad_ids:
        info = await queue_adapter.get_job(queue, job_id)
        assert info is not None, info
        assert info.state == "failed", info
        assert (info.failure_kind, info.attempts_made) == ("permanent", 1), info
    assert {row["job_id"]: (row["failure_kind"], row["attempts"]) for row in letters} == {
        job_id: ("permanent", 1) for job_id in bad_ids
    }
    figures.update(
        inputs_tried=len(bad_ids),
        failed_permanently=len(bad_ids),
        dead_letters=len(letters),
        good_completed=2,
    )


async def test_a4_a_job_whose_stored_data_is_not_json_gets_a_dead_letter(
    infra: Infra, redis_url: str
) -> None:
    """A3/A4: corrupt data fails the job permanently *and* leaves a run row and a dead letter
    (keeping the stored text) for operators."""
    queue, name = QUEUES[0], JOB_NAMES[0]
    adapter: Any = infra.queue
    await adapter.pause(queue)
    await adapter.enqueue(queue, name, {"n": 0}, options=job_options("raw-not-json"))
    redis = Redis.from_url(redis_url)
    try:
        await _corrupt(redis, adapter, queue, "raw-not-json", b"{nope")
    finally:
        await redis.aclose()
    runtime = WorkerRuntime(
        registry, infra, queues=[queue], sample_interval=None, retention_interval=None
    )
    await runtime.start()
    try:
        await adapter.resume(queue)

        async def failed() -> bool:
            info = await adapter.get_job(queue, "raw-not-json")
            return info is not None and info.state == "failed"

        await wait_for(failed, timeout=30, message="the job with corrupt data to fail")
    finally:
        await runtime.stop(grace=5)
    history = infra.require_history()
    letters = await history.list_failures()
    assert [(letter.job_id, letter.failure_kind) for letter in letters] == [
        ("raw-not-json", "permanent")
    ]
    assert letters[0].data == {"raw": "{nope"}
    runs = await history.list_runs(job_id="raw-not-json")
    assert [(run.status, run.failure_kind) for run in runs] == [("failed", "permanent")]


@pytest.mark.parametrize(
    "job_id",
    [
        "tab-\t-id",
        "newline-\n-id",
        "emoji-\U0001f680-id",
    ],
)
async def test_a3_any_accepted_job_id_runs_and_is_recorded(
    infra: Infra, postgres_dsn: str, job_id: str
) -> None:
    """A job id the queue accepted is one the platform can run and record (A3)."""
    await create_runs_table(postgres_dsn)
    queue, name = QUEUES[0], JOB_NAMES[0]
    options = JobOptions(job_id=job_id, attempts=2, backoff=Backoff.fixed(0.1))
    await infra.queue.enqueue(queue, name, {"n": 0}, options=options)
    runtime = WorkerRuntime(
        registry, infra, queues=[queue], sample_interval=None, retention_interval=None
    )
    await runtime.start()
    try:

        async def ended() -> bool:
            info = await infra.queue.get_job(queue, job_id)
            return info is not None and info.state in ("completed", "failed")

        await wait_for(ended, timeout=30, message=f"job {job_id!r} to end")
    finally:
        await runtime.stop(grace=5)
    info = await infra.queue.get_job(queue, job_id)
    assert info is not None, info
    assert info.state == "completed", info
    (run,) = await infra.require_history().list_runs(job_id=job_id)
    assert (run.status, run.attempt) == ("completed", 1)
