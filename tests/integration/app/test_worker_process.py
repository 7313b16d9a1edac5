"""Q10, A2: a real ``portside worker`` process: SIGTERM lets the in-flight job finish, exit 0."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from portside.app.runmode import with_run_mode
from portside.infra import Infra
from portside.testing import wait_for
from tests.integration.app.worker_support import Worker, worker_env

pytestmark = pytest.mark.integration

QUEUE = "platform:hold"

APP = textwrap.dedent(
    '''
    """A job that holds until the test releases it (BLPOP: no polling)."""
    import os

    from pydantic import BaseModel
    from redis.asyncio import Redis

    from portside.app import JobDefinition, Registry


    class Hold(BaseModel):
        token: str


    async def hold(payload: Hold, ctx) -> str:
        redis = Redis.from_url(os.environ["HOLD_REDIS_URL"])
        try:
            await redis.rpush(os.environ["HOLD_STARTED_KEY"], payload.token)
            released = await redis.blpop([os.environ["HOLD_RELEASE_KEY"]], timeout=60)
        finally:
            await redis.aclose()
        return f"finished {payload.token}" if released else "never released"


    registry = Registry(
        [JobDefinition(name="hold", queue="platform:hold", payload=Hold, handler=hold, timeout=90)]
    )
    '''
)


@pytest.fixture
async def spawn(
    tmp_path: Path, redis_url: str, redis_prefix: str, postgres_dsn: str
) -> AsyncIterator[Callable[..., Awaitable[Worker]]]:
    """Start ``portside worker ARGS`` on the hold app; kills whatever is left at the end."""
    (tmp_path / "hold_app.py").write_text(APP)
    env = worker_env(
        redis_url,
        redis_prefix,
        postgres_dsn,
        "hold_app:registry",
        app_dir=tmp_path,
        HOLD_REDIS_URL=redis_url,
        HOLD_STARTED_KEY=f"{redis_prefix}:hold:started",
        HOLD_RELEASE_KEY=f"{redis_prefix}:hold:release",
    )
    started: list[asyncio.subprocess.Process] = []

    async def start(*args: str, **overrides: str) -> Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "portside.app.cli",
            "worker",
            *args,
            env={**env, **overrides},
            cwd=tmp_path,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # so the cleanup below can end the whole group
        )
        started.append(process)
        return Worker(process)

    yield start
    for process in started:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


@pytest.fixture
async def worker(spawn: Callable[..., Awaitable[Worker]]) -> Worker:
    """One ``portside worker --grace 30`` process."""
    return await spawn("--grace", "30")


async def test_q10_sigterm_lets_the_in_flight_job_finish_and_exits_0(
    worker: Worker,
    platform_infra: Infra,
    redis_url: str,
    redis_prefix: str,
    db: asyncpg.Connection,
    record_property: Any,
) -> None:
    await wait_for(
        lambda: "worker.ready" in worker.names() or worker.process.returncode is not None,
        timeout=60,
        message="the worker to log worker.ready",
    )
    assert "worker.ready" in worker.names(), worker.other
    redis = Redis.from_url(redis_url)
    try:
        first = await platform_infra.queue.enqueue(
            QUEUE, "hold", with_run_mode({"token": "in-flight"}, "manual")
        )
        started = await redis.blpop([f"{redis_prefix}:hold:started"], timeout=60)
        assert started is not None, "the job never started"

        worker.process.send_signal(signal.SIGTERM)
        await wait_for(
            lambda: "worker.stopping" in worker.names(),
            timeout=30,
            message="the worker to log worker.stopping after SIGTERM",
        )
        late = await platform_infra.queue.enqueue(QUEUE, "hold", {"token": "after-sigterm"})
        assert worker.process.returncode is None, "the worker quit with a job in flight"
        await redis.rpush(f"{redis_prefix}:hold:release", "go")

        code = await worker.wait(timeout=60)
    finally:
        await redis.aclose()

    assert code == 0, worker.other
    done = await platform_infra.queue.get_job(QUEUE, first.id)
    assert done is not None
    assert (done.state, done.result) == ("completed", "finished in-flight")
    waiting = await platform_infra.queue.get_job(QUEUE, late.id)
    assert waiting is not None, "intake did not stop"
    assert waiting.state == "waiting", "intake did not stop"
    row = await db.fetchrow(
        "SELECT status, run_mode, attempt FROM job_runs WHERE job_id = $1", first.id
    )
    assert row is not None
    assert tuple(row) == ("completed", "manual", 1)
    names = worker.names()
    assert (
        names.index("worker.signal") < names.index("job.completed") < names.index("worker.stopped")
    )
    ready = worker.event("worker.ready")
    # Start-up from process start to every consumer fetching; the target is < 500 ms on an
    # idle machine, the bound here leaves room for a loaded CI host.
    completed = datetime.fromisoformat(worker.event("job.completed")["ts"])
    stopped = datetime.fromisoformat(worker.event("worker.stopped")["ts"])
    assert (stopped - completed).total_seconds() < 10, (
        "the worker kept waiting for its grace period after the in-flight job had finished"
    )
    record_property("worker_startup_ms", ready["startup_ms"])
    record_property("runtime_start_ms", ready["start_ms"])
    assert ready["startup_ms"] < 5000, ready


async def test_q10_supervisor_forwards_sigterm_to_every_worker_process(
    spawn: Callable[..., Awaitable[Worker]],
) -> None:
    group = await spawn("--processes", "2", "--grace", "5")
    await wait_for(
        lambda: group.names().count("worker.ready") == 2 or group.process.returncode is not None,
        timeout=60,
        message="both worker processes to log worker.ready",
    )
    pids = {event["pid"] for event in group.events if event["event"] == "worker.starting"}
    assert len(pids) == 2, group.other
    assert group.process.pid not in pids, group.other

    group.process.send_signal(signal.SIGTERM)
    code = await group.wait(timeout=60)

    assert code == 0, group.other
    assert group.names().count("worker.stopped") == 2


async def test_q10_supervisor_ends_the_group_when_a_worker_dies(
    spawn: Callable[..., Awaitable[Worker]],
) -> None:
    group = await spawn("--processes", "2", "--grace", "5")
    await wait_for(
        lambda: group.names().count("worker.ready") == 2 or group.process.returncode is not None,
        timeout=60,
        message="both worker processes to log worker.ready",
    )
    victim = next(event["pid"] for event in group.events if event["event"] == "worker.starting")

    os.kill(victim, signal.SIGKILL)
    code = await group.wait(timeout=60)

    assert code == 1
    assert group.names().count("worker.stopped") == 1  # the survivor stopped cleanly


async def test_a2_supervisor_passes_connection_strings_to_its_workers_off_the_command_line(
    spawn: Callable[..., Awaitable[Worker]], redis_url: str, postgres_dsn: str
) -> None:
    """A2: with --redis-url and --postgres-dsn given to ``--processes 2`` (and unusable ones
    in its environment), both worker processes connect, and neither command line holds them."""
    group = await spawn(
        "--processes",
        "2",
        "--grace",
        "5",
        "--redis-url",
        redis_url,
        "--postgres-dsn",
        postgres_dsn,
        PORTSIDE_REDIS_URL="redis://127.0.0.1:1/0",
        PORTSIDE_POSTGRES_DSN="postgresql://nobody@127.0.0.1:1/none",
    )
    await wait_for(
        lambda: group.names().count("worker.ready") == 2 or group.process.returncode is not None,
        timeout=60,
        message="both worker processes to log worker.ready",
    )
    assert group.names().count("worker.ready") == 2, group.other
    pids = {event["pid"] for event in group.events if event["event"] == "worker.starting"}
    assert len(pids) == 2, group.other
    for pid in pids:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert b"worker" in command
        for secret in (redis_url, postgres_dsn):
            assert not any(secret.encode() in part for part in command), command
    group.process.send_signal(signal.SIGTERM)
    assert await group.wait(timeout=60) == 0, group.other


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_a2_worker_serves_prometheus_metrics(
    spawn: Callable[..., Awaitable[Worker]],
) -> None:
    port = free_port()
    worker = await spawn("--metrics-port", str(port), "--grace", "5")
    await wait_for(
        lambda: "worker.ready" in worker.names() or worker.process.returncode is not None,
        timeout=60,
        message="the worker to log worker.ready",
    )

    scraped: list[str] = []

    async def depth_sampled() -> bool:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        scraped.append(response.text)
        return 'portside_queue_depth{queue="platform:hold"}' in response.text

    await wait_for(depth_sampled, timeout=30, message="the queue depth gauge on /metrics")
    worker.process.send_signal(signal.SIGTERM)
    code = await worker.wait(timeout=60)

    assert "portside_worker_startup_seconds" in scraped[-1]
    assert 'portside_queue_depth{queue="platform:hold"} 0.0' in scraped[-1]
    assert code == 0
