"""The job registry of the reliability workers: no-op jobs that record each run in Postgres."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from pydantic import BaseModel, ConfigDict
from redis.asyncio import Redis

from portside.app import JobContext, JobDefinition, Registry, RetryPolicy
from portside.ports import Backoff, TransientError

QUEUES = tuple(f"reliability:q{index}" for index in range(4))
JOB_NAMES = tuple(f"work-{index}" for index in range(4))
MODE_ENV = "RELIABILITY_MODE"
RECORD_STARTS_ENV = "RELIABILITY_RECORD_STARTS"
CONCURRENCY_ENV = "RELIABILITY_CONCURRENCY"
GATE_URL_ENV = "RELIABILITY_GATE_URL"
GATE_KEY_ENV = "RELIABILITY_GATE_KEY"
GATE_TIMEOUT = 300


class Work(BaseModel):
    """A job's payload: its number within the test."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n: int


class _Gate:
    """The Redis lists of ``gate`` mode: ``<key>:started`` and ``<key>:release:<job id>``."""

    def __init__(self) -> None:
        self._client: Redis | None = None

    def client(self) -> Redis:
        if self._client is None:
            self._client = Redis.from_url(os.environ[GATE_URL_ENV])
        return self._client

    async def pass_through(self, job_id: str) -> None:
        key = os.environ[GATE_KEY_ENV]
        client = self.client()
        await client.rpush(f"{key}:started", job_id)
        released = await client.blpop([f"{key}:release:{job_id}"], timeout=GATE_TIMEOUT)
        if released is None:
            raise TransientError(f"the test never released job {job_id}")


_gate = _Gate()


async def _record(ctx: JobContext, event: str) -> None:
    # Through the outbox's transaction, the way application jobs reach Postgres on ports only.
    async with ctx.infra.outbox.transaction() as tx:
        await tx.execute(
            "INSERT INTO reliability_runs (job_id, queue, event, attempt, pid) "
            "VALUES ($1, $2, $3, $4, $5)",
            ctx.job_id,
            ctx.job.queue,
            event,
            ctx.attempt,
            os.getpid(),
        )


async def work(payload: Work, ctx: JobContext) -> int:
    """Record the start (if asked), hold or pass the gate per mode, record the completion.

    Each worker process chooses its behaviour through the environment, so a test can count
    exactly what ran where (rows of ``reliability_runs`` carry the worker's pid):

    - ``RELIABILITY_MODE``: ``run`` (default), ``hold`` (never finish: the worker is about to
      be killed) or ``gate`` (wait until the test releases this job through Redis);
    - ``RELIABILITY_RECORD_STARTS=1``: record each attempt's start too;
    - ``RELIABILITY_CONCURRENCY``: slots per queue in this process (default 10);
    - ``RELIABILITY_GATE_URL`` and ``RELIABILITY_GATE_KEY``: the gate's Redis and key prefix.
    """
    mode = os.environ.get(MODE_ENV, "run")
    if os.environ.get(RECORD_STARTS_ENV) == "1":
        await _record(ctx, "started")
    if mode == "hold":
        await asyncio.Event().wait()  # held until the process is killed
    elif mode == "gate":
        await _gate.pass_through(ctx.job_id)
    await _record(ctx, "completed")
    return payload.n


def _definitions() -> list[JobDefinition[Any]]:
    concurrency = int(os.environ.get(CONCURRENCY_ENV, "10"))
    return [
        JobDefinition(
            name=name,
            queue=queue,
            payload=Work,
            handler=work,
            # Transient failures (a record that hit a restarting server) retry quickly.
            retry=RetryPolicy(attempts=50, backoff=Backoff.fixed(0.2)),
            timeout=GATE_TIMEOUT + 60,
            concurrency=concurrency,
            # The tests count every finished job in BullMQ's own sets: keep them all.
            remove_on_complete=False,
            remove_on_fail=False,
        )
        for name, queue in zip(JOB_NAMES, QUEUES, strict=True)
    ]


registry = Registry(_definitions())
