"""Helpers of the plan-example integration tests: run a registry's jobs, wait for a job."""

from __future__ import annotations

from typing import Any

from portside.app import Registry, WorkerRuntime
from portside.infra import Infra
from portside.ports import JobInfo
from portside.testing import wait_for


def runtime(registry: Registry, infra: Infra, **options: Any) -> WorkerRuntime:
    """A worker for ``registry`` without the background samplers and purges."""
    return WorkerRuntime(registry, infra, sample_interval=None, retention_interval=None, **options)


async def finished(infra: Infra, queue: str, job_id: str, timeout: float = 60) -> JobInfo:
    """The job once completed or failed."""
    found: list[JobInfo] = []

    async def done() -> bool:
        info = await infra.queue.get_job(queue, job_id)
        if info is not None and info.state in ("completed", "failed"):
            found.append(info)
            return True
        return False

    await wait_for(done, timeout=timeout, message=f"job {job_id} of {queue} to finish")
    return found[0]
