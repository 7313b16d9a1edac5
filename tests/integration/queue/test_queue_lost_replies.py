"""A fetch whose reply is lost with its connection: the job it took is released, not stalled
(Q10). The hook lets the fetch run in Redis, then drops the connection before the worker
reads the reply, so the job sits in ``active`` locked with the worker's token."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as redis

from portside.adapters.bullmq import BullMQQueue
from portside.adapters.bullmq.transport.pipelined import (
    ConnectionLostError,
    PipelinedConnection,
)
from portside.adapters.bullmq.transport.scripts import script
from portside.ports import Job, JobOptions
from portside.testing.waiting import wait_for

pytestmark = pytest.mark.integration

# Defaults: without the release a lost job would wait 30-60 s for the stalled check, far
# beyond the deadlines below.
TUNING: dict[str, Any] = {"lock_duration": 30.0, "stalled_interval": 30.0, "retry_backoff": 0.02}


def _carries_job(reply: Any) -> bool:
    return type(reply) is list and bool(reply) and type(reply[0]) is list and bool(reply[0])


def lose_reply(connection: PipelinedConnection, script_name: str) -> list[str]:
    """Make the first ``script_name`` reply that carries a job get lost with its connection.

    Returns a list that receives the id of the job whose reply was lost.
    """
    sha = script(script_name).sha
    lost: list[str] = []
    original = connection.call

    def call(command: tuple[Any, ...]) -> asyncio.Future[Any]:
        future = original(command)
        if lost or len(command) < 2 or command[1] != sha:
            return future
        relayed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def relay(done: asyncio.Future[Any]) -> None:
            if done.cancelled():
                relayed.cancel()
            elif done.exception() is not None:
                relayed.set_exception(done.exception())  # type: ignore[arg-type]
            elif not lost and _carries_job(done.result()):
                lost.append(str(done.result()[1]))
                connection.kill()  # the script ran; the worker never sees its reply
                relayed.set_exception(ConnectionLostError("reply lost on purpose"))
            else:
                relayed.set_result(done.result())

        future.add_done_callback(relay)
        return relayed

    connection.call = call  # type: ignore[method-assign]
    return lost


async def _run_until_done(
    adapter: BullMQQueue, queue: str, ids: list[str], handler: Any, script_name: str, **kw: Any
) -> tuple[list[str], Counter[str]]:
    runs: Counter[str] = Counter()

    async def counting(job: Job) -> Any:
        runs[job.id] += 1
        return await handler(job)

    worker = adapter.consume(queue, counting, **kw)
    lost = lose_reply(worker.slots.steps.connection, script_name)  # type: ignore[attr-defined]
    await worker.start()
    try:

        async def all_done() -> bool:
            infos = [await adapter.get_job(queue, job_id) for job_id in ids]
            return all(info is not None and info.state == "completed" for info in infos)

        await wait_for(all_done, timeout=15, message=f"jobs {ids} to complete")
    finally:
        await worker.close(grace=5)
    return lost, runs


async def _assert_clean(adapter: BullMQQueue, raw: redis.Redis, queue: str, ids: list[str]) -> None:
    """Each job completed on its first attempt, never counted as stalled."""
    for job_id in ids:
        info = await adapter.get_job(queue, job_id)
        assert info is not None, info
        assert (info.state, info.attempts_made) == ("completed", 1), info
        stalls = await raw.hget(adapter.bullmq_name(queue).job_key(job_id), "stc")
        assert stalls in (None, "0"), f"job {job_id} was counted as stalled {stalls!r} time(s)"
    assert (await adapter.counts(queue)).active == 0


async def test_q10_a_lost_fetch_reply_releases_the_job_instead_of_stalling_it(
    make_adapter: Callable[..., BullMQQueue],
    raw_redis: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Q10: the slot's first fetch (``moveToActive``) takes a job but its reply is lost; after
    reconnecting the worker releases that job to waiting and runs it once, at once."""
    adapter = make_adapter(**TUNING)
    refs = [await adapter.enqueue("lost-fetch", f"job-{n}", {"n": n}) for n in range(3)]
    ids = [ref.id for ref in refs]

    async def handler(job: Job) -> Any:
        return job.data["n"]

    with caplog.at_level(logging.WARNING, logger="portside.adapters.bullmq"):
        lost, runs = await _run_until_done(adapter, "lost-fetch", ids, handler, "moveToActive")
    assert lost
    assert lost[0] in ids
    assert runs == Counter(dict.fromkeys(ids, 1)), "a job ran more than once or not at all"
    await _assert_clean(adapter, raw_redis, "lost-fetch", ids)
    released = [r.getMessage() for r in caplog.records if "reply was lost" in r.getMessage()]
    assert len(released) == 1, released
    assert lost[0] in released[0], released


async def test_q10_a_lost_finish_and_fetch_reply_releases_the_next_job(
    make_adapter: Callable[..., BullMQQueue], raw_redis: redis.Redis
) -> None:
    """Q10: completing a job and fetching the next is one script; when its reply is lost the
    next job is released (the finished one is not touched) and every job runs once."""
    adapter = make_adapter(**TUNING)
    ids = [(await adapter.enqueue("lost-next", f"job-{n}", {"n": n})).id for n in range(3)]

    async def handler(job: Job) -> Any:
        return job.data["n"]

    lost, runs = await _run_until_done(adapter, "lost-next", ids, handler, "moveToFinished")
    assert lost
    assert lost[0] in ids[1:]
    assert runs == Counter(dict.fromkeys(ids, 1)), "a job ran more than once or not at all"
    await _assert_clean(adapter, raw_redis, "lost-next", ids)


async def test_q10_a_lost_reply_to_a_parked_slots_fetch_releases_the_job(
    make_adapter: Callable[..., BullMQQueue], raw_redis: redis.Redis
) -> None:
    """Q10: an idle worker's waiter fetches for a parked slot when a job arrives; that reply
    is lost, and the slot wakes, releases the job and then runs it."""
    adapter = make_adapter(**TUNING)
    runs: Counter[str] = Counter()

    async def handler(job: Job) -> Any:
        runs[job.id] += 1
        return None

    worker = adapter.consume("lost-parked", handler, concurrency=2)
    await worker.start()
    try:
        slots = worker.slots  # type: ignore[attr-defined]
        await wait_for(
            lambda: len(slots._parked) == 2, message="both slots to park on the empty queue"
        )
        lost = lose_reply(slots.steps.connection, "moveToActive")
        ref = await adapter.enqueue("lost-parked", "late", {})

        async def done() -> bool:
            info = await adapter.get_job("lost-parked", ref.id)
            return info is not None and info.state == "completed"

        await wait_for(done, timeout=15, message="the job whose fetch reply was lost to run")
    finally:
        await worker.close(grace=5)
    assert lost == [ref.id]
    assert runs == Counter({ref.id: 1})
    await _assert_clean(adapter, raw_redis, "lost-parked", [ref.id])


async def test_q10_a_resent_finish_of_a_job_removed_on_completion_counts_once(
    make_adapter: Callable[..., BullMQQueue], caplog: pytest.LogCaptureFixture
) -> None:
    """Q10: with ``remove_on_complete`` the first (lost) finish already deleted the job, so
    the resent one finds no job; that still counts as completed, once, without a warning."""
    adapter = make_adapter(**TUNING)
    options = JobOptions(remove_on_complete=True)
    ids = [(await adapter.enqueue("lost-gone", f"j{n}", {}, options=options)).id for n in range(2)]
    runs: Counter[str] = Counter()

    async def handler(job: Job) -> Any:
        runs[job.id] += 1
        return None

    worker = adapter.consume("lost-gone", handler)
    lost = lose_reply(worker.slots.steps.connection, "moveToFinished")  # type: ignore[attr-defined]
    with caplog.at_level(logging.WARNING, logger="portside.adapters.bullmq"):
        await worker.start()
        try:
            await wait_for(
                lambda: worker.status().processed == 2, message="both jobs to be recorded"
            )
        finally:
            await worker.close(grace=5)
    assert lost == [ids[1]]
    assert runs == Counter(dict.fromkeys(ids, 1))
    assert [
        r.getMessage() for r in caplog.records if "could not be recorded" in r.getMessage()
    ] == []
    counts = await adapter.counts("lost-gone")
    assert (counts.active, counts.waiting, counts.failed) == (0, 0, 0)


async def test_q10_an_unreadable_reply_replaces_the_connection_not_the_worker(
    make_adapter: Callable[..., BullMQQueue], caplog: pytest.LogCaptureFixture
) -> None:
    """Q10: a reply the client cannot parse drops that connection like a network failure:
    the connection reconnects, the fetch it belonged to is recovered, every job runs once, and
    close() raises nothing."""
    adapter = make_adapter(**TUNING)
    await adapter.pause("unreadable")
    ids = [(await adapter.enqueue("unreadable", f"j{n}", {})).id for n in range(3)]
    runs: Counter[str] = Counter()

    async def handler(job: Job) -> Any:
        runs[job.id] += 1
        return None

    worker = adapter.consume("unreadable", handler)
    connection = worker.slots.steps.connection  # type: ignore[attr-defined]
    await worker.start()
    conn = connection._conn
    original = conn.read_response
    broken: list[bool] = []

    async def read_response(*args: Any, **kwargs: Any) -> Any:
        reply = await original(*args, **kwargs)
        if not broken and _carries_job(reply):
            broken.append(True)
            raise ValueError("unparsable reply (injected)")
        return reply

    conn.read_response = read_response
    with caplog.at_level(logging.WARNING, logger="portside.adapters.bullmq"):
        await adapter.resume("unreadable")
        try:
            await wait_for(lambda: sum(runs.values()) == 3, message="the three jobs to run")
            await wait_for(lambda: worker.status().processed == 3, message="three recorded")
        finally:
            await worker.close(grace=5)
    assert broken
    assert runs == Counter(dict.fromkeys(ids, 1))
    assert any("unreadable reply" in r.getMessage() for r in caplog.records)
