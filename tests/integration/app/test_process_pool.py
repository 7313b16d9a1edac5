"""Q14: CPU-bound handlers in a process pool, on real BullMQ, Redis and Postgres.

The handlers are in ``pool_jobs`` (a child imports them by name). Each attempt's child records
its pid in a file before it does anything else, so a test can check what happened to that
very process (progress could not say it for a child that dies at once).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as redis

from portside.adapters.bullmq import BullMQQueue
from portside.adapters.bullmq.names import map_queue
from portside.adapters.postgres.history import PostgresHistory
from portside.app import JobDefinition, Registry, RetryPolicy, WorkerRuntime, dispatch
from portside.app.pool import ProcessPool
from portside.infra import Infra, use_infra
from portside.ports import Backoff, JobInfo, OutboxPort
from portside.testing import wait_for
from tests.integration.app.pool_jobs import PID_DIR_ENV, Work, work

pytestmark = pytest.mark.integration

QUEUE = "pool"
LOCK_DURATION = 2.0
"""Short, so a burn several times longer stays quick (1 s lapsed once in a loaded burn-in)."""


def registry(
    *, timeout: float = 30, attempts: int = 2, size: int = 2, memory_limit_mb: int | None = None
) -> Registry:
    return Registry(
        [
            JobDefinition(
                name="work",
                queue=QUEUE,
                payload=Work,
                handler=work,
                executor=ProcessPool(size=size, memory_limit_mb=memory_limit_mb),
                retry=RetryPolicy(attempts=attempts, backoff=Backoff.fixed(0.1)),
                timeout=timeout,
                concurrency=size,
                classification={LookupError: "permanent"},
            )
        ]
    )


@pytest.fixture
async def short_lock_infra(
    redis_url: str, redis_prefix: str, outbox_adapter: OutboxPort, postgres_dsn: str
) -> AsyncIterator[Infra]:
    """Real adapters whose BullMQ locks last ``LOCK_DURATION`` and whose stalled check runs
    twice per lock duration: a worker that cannot renew a lock that long has its job taken as
    stalled."""
    queue = BullMQQueue(
        redis_url,
        prefix=redis_prefix,
        lock_duration=LOCK_DURATION,
        stalled_interval=LOCK_DURATION / 2,
    )
    history = PostgresHistory(postgres_dsn)
    infra = Infra(queue=queue, outbox=outbox_adapter, history=history, name="real")
    try:
        with use_infra(infra):
            yield infra
    finally:
        await queue.close()
        await history.close()


def runtime(reg: Registry, infra: Infra) -> WorkerRuntime:
    return WorkerRuntime(reg, infra, sample_interval=None, retention_interval=None)


async def finished(infra: Infra, job_id: str, timeout: float = 60) -> JobInfo:
    found: list[JobInfo] = []

    async def done() -> bool:
        info = await infra.queue.get_job(QUEUE, job_id)
        if info is not None and info.state in ("completed", "failed"):
            found.append(info)
            return True
        return False

    await wait_for(done, timeout=timeout, message=f"job {job_id} to finish")
    return found[0]


@pytest.fixture(autouse=True)
def pid_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where each attempt's child records its pid (pool children inherit the environment)."""
    monkeypatch.setenv(PID_DIR_ENV, str(tmp_path))
    return tmp_path


async def child_pid(job_id: str, attempt: int = 1) -> int:
    """The pid of the child that ran ``attempt`` of ``job_id``, as the child recorded it."""
    record = Path(os.environ[PID_DIR_ENV]) / f"{job_id}.{attempt}"
    await wait_for(
        record.exists, timeout=30, message=f"attempt {attempt} of job {job_id} to record its pid"
    )
    return int(record.read_text())


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A killed child stays a zombie until reaped; the pool reaps it.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ", 1)[1].startswith("Z")


async def runs(db: asyncpg.Connection, job_id: str) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT attempt, status, failure_kind, error_class, error_message FROM job_runs "
        "WHERE job_id = $1 ORDER BY attempt",
        job_id,
    )


async def test_q14_payload_result_and_progress_cross_as_json(
    platform_infra: Infra, db: asyncpg.Connection
) -> None:
    """Q14: the child gets the payload, its result is stored and its progress reaches the job;
    the handler runs in another process than the worker."""
    reg = registry()
    async with runtime(reg, platform_infra):
        ref = await dispatch(reg, platform_infra.queue, "work", {"mode": "ok", "seconds": 0.05})
        info = await finished(platform_infra, ref.id)
    assert info.state == "completed"
    assert info.result["mode"] == "ok"
    assert info.result["pid"] != os.getpid()
    assert info.progress == {"pid": info.result["pid"], "step": 2}
    assert [row["status"] for row in await runs(db, ref.id)] == ["completed"]


async def test_q14_cpu_burn_longer_than_the_lock_completes_without_a_stall(
    short_lock_infra: Infra, db: asyncpg.Connection, redis_url: str, redis_prefix: str
) -> None:
    """Q14: a handler burning a core for 3x the 2 s lock duration completes on its first
    attempt: the worker's loop stays free (the test's own ticker never waits long), so the lock
    is renewed throughout and the stalled check never takes the job."""
    reg = registry()
    client = redis.from_url(redis_url)
    gaps: list[float] = []
    lock_seen: list[bool] = []
    try:
        async with runtime(reg, short_lock_infra):
            ref = await dispatch(
                reg, short_lock_infra.queue, "work", {"mode": "ok", "seconds": 3 * LOCK_DURATION}
            )
            lock_key = map_queue(QUEUE, redis_prefix).job_key(ref.id) + ":lock"
            await child_pid(ref.id)
            last = time.monotonic()
            while (info := await short_lock_infra.queue.get_job(QUEUE, ref.id)) is not None and (
                info.state == "active"
            ):
                lock_seen.append(bool(await client.exists(lock_key)))
                await asyncio.sleep(0.05)  # the ticker whose delays measure the loop
                now = time.monotonic()
                gaps.append(now - last)
                last = now
            info = await finished(short_lock_infra, ref.id)
    finally:
        await client.aclose()
    assert info.state == "completed"
    assert info.attempts_made == 1
    assert info.result["spins"] > 0
    assert len(lock_seen) > 20
    assert all(lock_seen), "the job's lock lapsed while the child worked"
    assert max(gaps) < LOCK_DURATION, f"the event loop was blocked for {max(gaps):.2f} s"
    assert [row["status"] for row in await runs(db, ref.id)] == ["completed"]


async def test_q14_timeout_kills_the_child_and_fails_the_attempt(
    platform_infra: Infra, db: asyncpg.Connection
) -> None:
    """Q14, Q5: an attempt over its timeout fails as transient and its child is SIGKILLed.

    A first job starts the pool's only child, so the timed job's 5 s are its own work and not
    the child's start-up on a busy machine."""
    reg = registry(timeout=5, attempts=1, size=1)
    async with runtime(reg, platform_infra) as worker:
        warm = await dispatch(reg, platform_infra.queue, "work", {"mode": "ok"}, job_id="warm")
        assert (await finished(platform_infra, warm.id)).state == "completed"
        ref = await dispatch(reg, platform_infra.queue, "work", {"mode": "ok", "seconds": 60})
        pid = await child_pid(ref.id)
        info = await finished(platform_infra, ref.id)
        await wait_for(lambda: gone(pid), timeout=10, message=f"child {pid} to be killed")
        assert worker.running
    assert info.state == "failed"
    (row,) = await runs(db, ref.id)
    assert (row["status"], row["failure_kind"], row["error_class"]) == (
        "failed",
        "transient",
        "JobTimeoutError",
    )


@pytest.mark.parametrize(
    ("mode", "error_class", "says"),
    [
        ("exit", "ChildCrashedError", "exit status 3"),
        ("segfault", "ChildCrashedError", "signal SIGSEGV"),
        ("memory", "ChildOutOfMemoryError", "ran out of memory"),
    ],
)
async def test_q14_a_crashed_child_fails_only_its_attempt_and_is_replaced(
    platform_infra: Infra, db: asyncpg.Connection, mode: str, error_class: str, says: str
) -> None:
    """Q14: a child that dies (os._exit, a segfault, MemoryError under a 512 MB address-space
    limit) fails that attempt as transient and is gone; the retry completes, a job running
    beside it in the other child is untouched, and the pool is back to two working children
    (two jobs at once run in two live children, neither the dead one)."""
    reg = registry(memory_limit_mb=512)
    async with runtime(reg, platform_infra):
        beside = await dispatch(
            reg, platform_infra.queue, "work", {"mode": "ok", "seconds": 1.5}, job_id="beside"
        )
        beside_pid = await child_pid(beside.id)
        ref = await dispatch(reg, platform_infra.queue, "work", {"mode": mode, "until": 2})
        crashed_pid = await child_pid(ref.id)
        info = await finished(platform_infra, ref.id)
        beside_info = await finished(platform_infra, beside.id)
        pair = [
            await dispatch(reg, platform_infra.queue, "work", {"seconds": 0.5}, job_id=f"after-{n}")
            for n in range(2)
        ]
        after = [(await finished(platform_infra, one.id)).result["pid"] for one in pair]
    assert gone(crashed_pid)
    assert info.state == "completed"
    assert info.attempts_made == 2
    assert info.result["pid"] != crashed_pid
    assert (beside_info.state, beside_info.attempts_made) == ("completed", 1)
    assert beside_info.result["pid"] == beside_pid
    assert len(set(after)) == 2
    assert crashed_pid not in after
    first, second = await runs(db, ref.id)
    assert (first["status"], first["failure_kind"], first["error_class"]) == (
        "retrying",
        "transient",
        error_class,
    )
    assert says in first["error_message"]
    assert second["status"] == "completed"


async def test_q14_handler_errors_keep_their_class_and_classification(
    platform_infra: Infra, db: asyncpg.Connection
) -> None:
    """Q14, Q4: an exception raised in the child fails the job with its own class name, and the
    definition's classification applies to it (LookupError is mapped to permanent)."""
    reg = registry()
    async with runtime(reg, platform_infra):
        ref = await dispatch(reg, platform_infra.queue, "work", {"mode": "raise"})
        info = await finished(platform_infra, ref.id)
    assert (info.state, info.attempts_made) == ("failed", 1)
    (row,) = await runs(db, ref.id)
    assert (row["failure_kind"], row["error_class"]) == ("permanent", "LookupError")
    assert "no palette for this image" in row["error_message"]


async def test_q14_shutdown_waits_for_pooled_jobs_within_grace(
    platform_infra: Infra, db: asyncpg.Connection
) -> None:
    """Q14, Q10: stopping the worker waits for an attempt in a child to finish within grace."""
    reg = registry()
    worker = runtime(reg, platform_infra)
    await worker.start()
    ref = await dispatch(reg, platform_infra.queue, "work", {"mode": "ok", "seconds": 1.0})
    pid = await child_pid(ref.id)
    await worker.stop(grace=20)
    info = await platform_infra.queue.get_job(QUEUE, ref.id)
    assert info is not None
    assert info.state == "completed"
    assert gone(pid), "the pool's child outlived the worker"


async def test_q14_shutdown_releases_pooled_jobs_past_grace(
    platform_infra: Infra, db: asyncpg.Connection
) -> None:
    """Q14, Q10: an attempt still running when grace ends is released like any other: its
    child is killed, its run row is closed for a rerun, the job is not completed."""
    reg = registry()
    worker = runtime(reg, platform_infra)
    await worker.start()
    ref = await dispatch(reg, platform_infra.queue, "work", {"mode": "ok", "seconds": 60})
    pid = await child_pid(ref.id)
    begin = time.monotonic()
    await worker.stop(grace=0.5)
    assert time.monotonic() - begin < 10
    assert gone(pid), "the interrupted child was not killed"
    info = await platform_infra.queue.get_job(QUEUE, ref.id)
    assert info is not None
    assert info.state != "completed"
    (row,) = await runs(db, ref.id)
    assert (row["status"], row["error_class"]) == ("retrying", "CancelledError")
