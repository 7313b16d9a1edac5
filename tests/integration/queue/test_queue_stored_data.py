"""Job hashes written by another producer with bad data or bytes that are not UTF-8 (Q2, A3)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as redis

from portside.adapters.bullmq import BullMQQueue
from portside.ports import Job, JobInfo, JobOptions, ValidationError
from portside.testing.waiting import wait_for

pytestmark = pytest.mark.integration

BAD_DATA: dict[str, tuple[bytes, str]] = {
    "not-json": (b"{nope", "job data is not valid JSON"),
    "list": (b"[1, 2]", "job data is a JSON list, not an object"),
    "invalid-utf8": (b'{"a": "\xff\xfe"}', "job data is not valid UTF-8 (byte 0xff at offset 7)"),
}


@pytest.fixture
async def bytes_redis(redis_url: str) -> AsyncIterator[redis.Redis]:
    """A client that writes and reads raw bytes, as a foreign producer could."""
    client = redis.Redis.from_url(redis_url, protocol=2)
    try:
        yield client
    finally:
        await client.aclose()


async def _paused_jobs(adapter: BullMQQueue, queue: str, ids: list[str]) -> None:
    await adapter.pause(queue)
    for job_id in ids:
        await adapter.enqueue(queue, "job", {"n": 1}, options=JobOptions(job_id=job_id))


async def _ended(adapter: BullMQQueue, queue: str, ids: list[str]) -> dict[str, JobInfo]:
    ended: dict[str, JobInfo] = {}

    async def all_ended() -> bool:
        for job_id in ids:
            info = await adapter.get_job(queue, job_id)
            if info is not None and info.state in ("completed", "failed"):
                ended[job_id] = info
        return len(ended) == len(ids)

    await wait_for(all_ended, timeout=15, message=f"jobs {ids} to complete or fail")
    return ended


@pytest.mark.parametrize(("raw", "message"), list(BAD_DATA.values()), ids=list(BAD_DATA))
async def test_q2_a3_bad_stored_data_reaches_the_handler_and_fails_the_job_permanently(
    make_adapter: Callable[..., BullMQQueue], bytes_redis: redis.Redis, raw: bytes, message: str
) -> None:
    """Q2, A3: the handler runs and reading ``job.data`` raises ValidationError (field
    ``data``) with ``raw_data`` holding the stored text; the job fails permanently on its
    first attempt with a reason naming the data, and the next job completes."""
    adapter = make_adapter()
    await _paused_jobs(adapter, "stored", ["bad", "next"])
    await bytes_redis.hset(adapter.bullmq_name("stored").job_key("bad"), "data", raw)
    seen: dict[str, tuple[str | None, str | None]] = {}

    async def handler(job: Job) -> Any:
        try:
            return job.data["n"]
        except ValidationError as error:
            seen[job.id] = (error.field, getattr(job, "raw_data", None))
            raise

    worker = adapter.consume("stored", handler, concurrency=2)
    await worker.start()
    await adapter.resume("stored")
    ended = await _ended(adapter, "stored", ["bad", "next"])
    await worker.close(grace=5)
    bad, good = ended["bad"], ended["next"]
    assert (good.state, good.result) == ("completed", 1)
    assert (bad.state, bad.failure_kind, bad.attempts_made) == ("failed", "permanent", 1)
    assert bad.failed_reason is not None
    assert bad.failed_reason.startswith(f"ValidationError: {message}"), bad.failed_reason
    assert seen == {"bad": ("data", raw.decode(errors="replace"))}


async def test_q2_a_handler_that_never_reads_bad_data_still_fails_the_job(
    make_adapter: Callable[..., BullMQQueue], bytes_redis: redis.Redis
) -> None:
    """Q2: a job whose stored data cannot be decoded never completes, even with a handler
    that ignores its payload; the worker goes on with the next job."""
    adapter = make_adapter()
    await _paused_jobs(adapter, "ignored", ["bad", "next"])
    await bytes_redis.hset(adapter.bullmq_name("ignored").job_key("bad"), "data", b"[]")

    async def handler(job: Job) -> Any:
        return job.id

    worker = adapter.consume("ignored", handler)
    await worker.start()
    await adapter.resume("ignored")
    ended = await _ended(adapter, "ignored", ["bad", "next"])
    await worker.close(grace=5)
    assert (ended["next"].state, ended["next"].result) == ("completed", "next")
    bad = ended["bad"]
    assert (bad.state, bad.failure_kind) == ("failed", "permanent")
    assert bad.failed_reason is not None
    assert "job data is a JSON list" in bad.failed_reason


async def test_q7_get_job_reads_bytes_that_are_not_utf8_with_replacement_characters(
    make_adapter: Callable[..., BullMQQueue], bytes_redis: redis.Redis
) -> None:
    """Q7: ``get_job`` returns a JobInfo for a hash holding bytes that are not UTF-8 in any
    field (U+FFFD in their place) instead of raising."""
    adapter = make_adapter()
    await _paused_jobs(adapter, "peek", ["odd"])
    key = adapter.bullmq_name("peek").job_key("odd")
    await bytes_redis.hset(
        key,
        mapping={
            "data": b'{"a": "\xff"}',
            "name": b"n\xfe",
            "progress": b"\xff",
            "priority": b"\xff",
        },
    )
    info = await adapter.get_job("peek", "odd")
    assert info is not None
    assert (info.data, info.name, info.progress, info.priority) == (
        {"a": "\ufffd"},
        "n\ufffd",
        "\ufffd",
        0,
    )


async def test_q2_bytes_that_are_not_utf8_in_other_fields_never_stop_a_worker(
    make_adapter: Callable[..., BullMQQueue], bytes_redis: redis.Redis
) -> None:
    """Q2: invalid bytes in the name, opts, stack trace and even the id of stored jobs crash
    nothing: the jobs run (names with U+FFFD), a failure is recorded over the odd stack
    trace, a job with an odd id is finished under its exact bytes, and the worker stays up."""
    adapter = make_adapter()
    target = adapter.bullmq_name("odd-fields")
    await _paused_jobs(adapter, "odd-fields", ["odd", "next"])
    await bytes_redis.hset(
        target.job_key("odd"),
        mapping={"name": b"na\xffme", "opts": b'{"x": "\xfe"}', "stacktrace": b'["\xff"]'},
    )
    odd_id = b"next-\xff"
    fields: dict[Any, Any] = await bytes_redis.hgetall(target.job_key("next"))
    await bytes_redis.hset(target.base.encode() + odd_id, mapping=fields)
    waiting = (
        "paused" if await bytes_redis.lpos(target.key("paused"), "next") is not None else "wait"
    )
    await bytes_redis.lpush(target.key(waiting), odd_id)
    names: list[str] = []

    async def handler(job: Job) -> Any:
        names.append(job.name)
        if job.name != "job":
            raise RuntimeError(f"refusing {job.name}")
        return None

    worker = adapter.consume("odd-fields", handler)
    await worker.start()
    await adapter.resume("odd-fields")
    await wait_for(
        lambda: worker.status().processed == 3, message="the three jobs with odd bytes to end"
    )
    assert worker.status().running
    await worker.close(grace=5)
    assert sorted(names) == ["job", "job", "na\ufffdme"]
    counts = await adapter.counts("odd-fields")
    assert (counts.completed, counts.failed, counts.active) == (2, 1, 0)
    assert await bytes_redis.zscore(target.key("completed"), odd_id) is not None
    odd = await adapter.get_job("odd-fields", "odd")
    assert odd is not None
    assert odd.failed_reason == "RuntimeError: refusing na\ufffdme"
