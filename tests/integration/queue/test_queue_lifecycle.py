"""Worker lifecycle on real Redis: shutdown, crashes, lock renewal, lost connections (Q10)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as redis

from portside.adapters.bullmq import BullMQQueue
from portside.ports import Job, JobOptions, QueuePort
from portside.testing.waiting import wait_for

pytestmark = pytest.mark.integration


async def test_q10_close_waits_for_in_flight_jobs_within_the_grace(
    queue_adapter: QueuePort,
) -> None:
    """Q10: ``close(grace)`` stops intake, lets the running job finish, then returns."""
    started, release = asyncio.Event(), asyncio.Event()

    async def handler(job: Job) -> Any:
        started.set()
        await release.wait()
        return "finished"

    first = await queue_adapter.enqueue("graceful", "first", {})
    second = await queue_adapter.enqueue("graceful", "second", {})
    worker = queue_adapter.consume("graceful", handler)
    await worker.start()
    async with asyncio.timeout(10):
        await started.wait()
    closing = asyncio.create_task(worker.close(grace=10))
    await asyncio.sleep(0)  # let close() stop intake before the job ends
    release.set()
    async with asyncio.timeout(10):
        await closing
    done = await queue_adapter.get_job("graceful", first.id)
    assert done is not None
    assert (done.state, done.result) == ("completed", "finished")
    untouched = await queue_adapter.get_job("graceful", second.id)
    assert untouched is not None
    assert untouched.state == "waiting"


async def test_q10_close_releases_jobs_that_outlive_the_grace(
    queue_adapter: QueuePort, raw_redis: redis.Redis, redis_prefix: str
) -> None:
    """Q10: a job still running when the grace ends goes back to waiting, lock removed and
    no attempt used, so the next worker runs it again."""
    started = asyncio.Event()

    async def stuck(job: Job) -> Any:
        started.set()
        await asyncio.Event().wait()

    ref = await queue_adapter.enqueue("released", "long", {}, options=JobOptions(attempts=1))
    worker = queue_adapter.consume("released", stuck)
    await worker.start()
    async with asyncio.timeout(10):
        await started.wait()
    await worker.close(grace=0.1)
    info = await queue_adapter.get_job("released", ref.id)
    assert info is not None
    assert (info.state, info.attempts_made) == ("waiting", 0)
    assert not await raw_redis.exists(f"{redis_prefix}:released:{ref.id}:lock")

    async def quick(job: Job) -> Any:
        return job.attempt

    queue_adapter.consume("released", quick)
    outcomes = await queue_adapter.drain("released")  # type: ignore[attr-defined]
    assert [(o.job_id, o.status, o.result) for o in outcomes] == [(ref.id, "completed", 1)]


async def test_q10_sigterm_finishes_the_in_flight_job_and_exits_0(
    queue_adapter: QueuePort, worker_process: Callable[..., Any]
) -> None:
    """Q10: SIGTERM to a worker process: intake stops, the running job completes, exit 0."""
    ref = await queue_adapter.enqueue("terminated", "work", {})
    child = await worker_process("terminated", "work", work_seconds=0.5, close_grace=10)
    await child.line("ready")
    assert await child.line("started") == f"started {ref.id}"
    child.process.send_signal(signal.SIGTERM)
    assert await child.line("done") == f"done {ref.id}"
    await child.line("closed")
    assert await child.exit_code() == 0
    info = await queue_adapter.get_job("terminated", ref.id)
    assert info is not None
    assert (info.state, info.result) == ("completed", {"pid": "child"})


@pytest.mark.reliability
async def test_q10_sigkill_loses_no_job(
    make_adapter: Callable[..., BullMQQueue],
    worker_process: Callable[..., Any],
    events_until: Callable[..., Any],
) -> None:
    """Q10: a worker killed with SIGKILL mid-job loses nothing: once its lock expires the
    stalled check puts the job back and another worker completes it (attempt 1 again)."""
    adapter = make_adapter(stalled_interval=0.3, lock_duration=1.0)
    stream = adapter.events("crashy")
    ref = await adapter.enqueue("crashy", "work", {}, options=JobOptions(attempts=1))
    child = await worker_process("crashy", "hang", lock_duration=1.0, stalled_interval=0.3)
    assert await child.line("started") == f"started {ref.id}"
    child.process.kill()
    assert await child.exit_code() == -signal.SIGKILL

    async def handler(job: Job) -> Any:
        return {"recovered": job.attempt}

    worker = adapter.consume("crashy", handler)
    await worker.start()
    try:
        stalled = await events_until(
            stream, lambda e: e.kind == "stalled" and e.job_id == ref.id, "the stalled event"
        )
        assert stalled.attempt == 1
        done = await events_until(
            stream, lambda e: e.kind == "completed" and e.job_id == ref.id, "the re-run"
        )
        assert (done.attempt, done.result) == (1, {"recovered": 1})
    finally:
        await worker.close(grace=5)
        await stream.aclose()
    info = await adapter.get_job("crashy", ref.id)
    assert info is not None
    assert (info.state, info.attempts_made) == ("completed", 1)


@pytest.mark.reliability
async def test_q10_lock_renewal_keeps_a_long_job_from_stalling(
    make_adapter: Callable[..., BullMQQueue], raw_redis: redis.Redis, redis_prefix: str
) -> None:
    """Q10: a job running far longer than the lock duration keeps its lock (renewed every
    half duration) and is never taken for stalled."""
    adapter = make_adapter(stalled_interval=0.2, lock_duration=1.2)
    stream = adapter.events("long")
    started, release = asyncio.Event(), asyncio.Event()

    async def long_job(job: Job) -> Any:
        started.set()
        await release.wait()
        return "done"

    ref = await adapter.enqueue("long", "work", {})
    worker = adapter.consume("long", long_job)
    await worker.start()
    lock = f"{redis_prefix}:long:{ref.id}:lock"
    try:
        async with asyncio.timeout(10):
            await started.wait()
        renewals = 0
        last = await raw_redis.pttl(lock)
        began = time.monotonic()

        async def renewed_three_times() -> bool:
            nonlocal renewals, last
            ttl = await raw_redis.pttl(lock)
            if ttl > last:
                renewals += 1
            last = ttl
            return renewals >= 3

        await wait_for(renewed_three_times, message="three lock renewals", interval=0.02)
        assert time.monotonic() - began > 1.2, "the job should have outlived one lock duration"
        info = await adapter.get_job("long", ref.id)
        assert info is not None
        assert info.state == "active"
        release.set()
        events = []
        async with asyncio.timeout(10):
            async for event in stream:
                events.append(event.kind)
                if event.kind == "completed":
                    break
        assert "stalled" not in events
    finally:
        release.set()
        await worker.close(grace=5)
        await stream.aclose()


async def test_q10_worker_survives_client_kill_of_its_connections(
    make_adapter: Callable[..., BullMQQueue],
    raw_redis: redis.Redis,
    events_until: Callable[..., Any],
) -> None:
    """Q10: killing every connection of a worker (CLIENT KILL) does not stop it: it
    reconnects with backoff and takes the next job; status shows it alive."""
    adapter = make_adapter(worker_name="killme", retry_backoff=0.02)
    stream = adapter.events("resilient")

    async def handler(job: Job) -> Any:
        return job.name

    worker = adapter.consume("resilient", handler)
    await worker.start()
    try:
        first = await adapter.enqueue("resilient", "before", {})
        await events_until(
            stream, lambda e: e.kind == "completed" and e.job_id == first.id, "job 1"
        )
        fetched_before = worker.status().last_fetch_at
        assert fetched_before is not None

        async def worker_clients() -> list[dict[str, str]]:
            return [c for c in await raw_redis.client_list() if ":w:killme" in c.get("name", "")]

        async def both_connected() -> bool:
            return len(await worker_clients()) == 2

        # The blocking connection opens when the worker first waits for a job, which may be
        # after job 1 already ran: wait for it rather than look once.
        await wait_for(both_connected, message="the worker's two connections")
        for client in await worker_clients():
            await raw_redis.client_kill_filter(_id=client["id"])
        second = await adapter.enqueue("resilient", "after", {})
        done = await events_until(
            stream, lambda e: e.kind == "completed" and e.job_id == second.id, "job 2 after kill"
        )
        assert done.result == "after"
        # The completed event comes from Redis; the worker counts the job once the finish
        # script's reply is back, and reconnects its blocking connection only when it next
        # waits for a job. Both follow the event, so wait for them with a deadline.
        await wait_for(
            lambda: worker.status().processed == 2, message="the worker to count both jobs"
        )
        await wait_for(both_connected, message="the worker to reconnect both connections")
        status = worker.status()
        assert status.running
        assert status.processed == 2
        assert status.last_fetch_at is not None
        assert status.last_fetch_at > fetched_before
    finally:
        await worker.close(grace=5)
        await stream.aclose()


async def test_q10_enqueue_while_redis_is_down_fails_fast() -> None:
    """Q10: with nothing listening, enqueue raises BackendUnavailableError after a bounded
    retry instead of hanging."""
    import socket

    from portside.ports import BackendUnavailableError

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    adapter = BullMQQueue(f"redis://127.0.0.1:{port}/0", retries=2, retry_backoff=0.02)
    try:
        began = time.monotonic()
        with pytest.raises(BackendUnavailableError) as info:
            await adapter.enqueue("down", "x", {})
        assert time.monotonic() - began < 5
        assert info.value.field == "redis_url"
        assert f"127.0.0.1:{port}" in str(info.value)
        worker = adapter.consume("down", lambda job: asyncio.sleep(0))
        with pytest.raises(BackendUnavailableError):
            await worker.start()
    finally:
        await adapter.close()


@pytest.mark.reliability
async def test_q10_worker_survives_a_redis_restart(tmp_path: Any) -> None:
    """Q10: Redis restarts (AOF on) under a running worker: the worker reconnects, keeps
    its queue, and jobs from before and after the restart all complete."""
    import shutil
    import socket
    import subprocess

    binary = shutil.which("redis-server") or shutil.which("valkey-server")
    if binary is None:
        pytest.skip("needs redis-server or valkey-server on PATH to restart a private server")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(tmp_path),
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--save",
        "",
    ]

    async def start_server() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        probe = redis.Redis(port=port)

        async def up() -> bool:
            try:
                return bool(await probe.ping())
            except Exception:
                return False

        try:
            await wait_for(up, message=f"redis-server on port {port} to accept connections")
        finally:
            await probe.aclose()
        return proc

    server = await start_server()
    adapter = BullMQQueue(f"redis://127.0.0.1:{port}/0", prefix="restart", retry_backoff=0.02)
    seen: list[str] = []

    async def handler(job: Job) -> Any:
        seen.append(job.name)
        return None

    worker = adapter.consume("jobs", handler)
    try:
        await worker.start()
        await adapter.enqueue("jobs", "before", {})
        await wait_for(lambda: "before" in seen, message="the job enqueued before the restart")
        server.terminate()
        server.wait(timeout=10)
        server = await start_server()
        await adapter.enqueue("jobs", "after", {})
        await wait_for(lambda: "after" in seen, message="the job enqueued after the restart")
        assert worker.status().running
        assert (await adapter.counts("jobs")).completed == 2
    finally:
        await adapter.close()
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.reliability
async def test_q10_a_failing_slot_restarts_and_the_job_is_recovered(
    make_adapter: Callable[..., BullMQQueue],
    monkeypatch: pytest.MonkeyPatch,
    events_until: Callable[..., Any],
) -> None:
    """Q10: an unexpected error inside the worker loop does not stop the worker: the slot
    starts over, and the job it held is requeued by the stalled check once its lock ends."""
    from portside.adapters.bullmq.worker.commands import QueueCommands

    original = QueueCommands.move_to_finished
    failures = {"left": 1}

    def flaky(self: QueueCommands, *args: Any, **kwargs: Any) -> Any:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("injected bug while finishing")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(QueueCommands, "move_to_finished", flaky)
    adapter = make_adapter(stalled_interval=0.2, lock_duration=0.5)
    stream = adapter.events("bumpy")
    runs: list[tuple[str, int]] = []

    async def handler(job: Job) -> Any:
        runs.append((job.name, job.attempt))
        return job.name

    first = await adapter.enqueue("bumpy", "first", {})
    worker = adapter.consume("bumpy", handler)
    await worker.start()
    try:
        second = await adapter.enqueue("bumpy", "second", {})
        await events_until(stream, lambda e: e.kind == "completed" and e.job_id == second.id, "2nd")
        await events_until(stream, lambda e: e.kind == "completed" and e.job_id == first.id, "1st")
    finally:
        await worker.close(grace=5)
        await stream.aclose()
    assert runs.count(("first", 1)) == 2, runs
    assert worker.status().processed == 2
