"""Enqueueing the reliability jobs: in bulk, and as a caller that retries while Redis is down."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from portside.ports import (
    BackendUnavailableError,
    Backoff,
    JobOptions,
    JobRef,
    NewJob,
    QueuePort,
)
from portside.testing import wait_for

__all__ = ["ResilientProducer", "enqueue_all", "job_options"]

BULK_CHUNK = 500


def job_options(job_id: str) -> JobOptions:
    """A caller-chosen id (so a retried enqueue is the same job) and a quick retry policy."""
    return JobOptions(job_id=job_id, attempts=50, backoff=Backoff.fixed(0.2))


async def enqueue_all(
    queue: QueuePort, queue_name: str, job_name: str, ids: list[str]
) -> list[JobRef]:
    """Enqueue one job per id (payload ``{"n": index}``) in bulk chunks; every ref returned."""
    refs: list[JobRef] = []
    for begin in range(0, len(ids), BULK_CHUNK):
        chunk = ids[begin : begin + BULK_CHUNK]
        jobs = [
            NewJob(name=job_name, data={"n": begin + offset}, options=job_options(job_id))
            for offset, job_id in enumerate(chunk)
        ]
        refs += await queue.enqueue_bulk(queue_name, jobs)
    return refs


@dataclass
class ResilientProducer:
    """Enqueues like a real caller facing an unreliable Redis.

    An enqueue that raises ``BackendUnavailableError`` (the adapter's own retries ran out) is
    retried once ``reachable()`` says Redis answers again; only an enqueue that returned a
    ``JobRef`` counts as accepted. Job ids are chosen by the caller, so a retry of an enqueue
    whose reply was lost finds the job instead of adding a second one.
    """

    queue: QueuePort
    queue_name: str
    job_name: str
    reachable: Callable[[], Awaitable[bool]]
    deadline: float
    accepted: set[str] = field(default_factory=set)
    unavailable: int = 0
    bulk_calls: int = 0

    async def produce(self, ids: list[str], *, bulk: int = 0) -> None:
        """Enqueue ``ids`` one by one, or ``bulk`` at a time (all-or-nothing per call)."""
        step = bulk or 1
        for begin in range(0, len(ids), step):
            chunk = ids[begin : begin + step]
            await self._until_accepted(chunk, bulk=bool(bulk))

    async def _until_accepted(self, chunk: list[str], *, bulk: bool) -> None:
        while True:
            try:
                if bulk:
                    jobs = [
                        NewJob(name=self.job_name, data={"n": 0}, options=job_options(job_id))
                        for job_id in chunk
                    ]
                    refs = await self.queue.enqueue_bulk(self.queue_name, jobs)
                    self.bulk_calls += 1
                else:
                    (job_id,) = chunk
                    refs = [
                        await self.queue.enqueue(
                            self.queue_name, self.job_name, {"n": 0}, options=job_options(job_id)
                        )
                    ]
            except BackendUnavailableError:
                self.unavailable += 1
                await wait_for(
                    self.reachable,
                    timeout=self.deadline,
                    message=f"Redis to answer again so {self.queue_name} can be enqueued to",
                )
                continue
            assert [ref.id for ref in refs] == chunk, (refs, chunk)
            self.accepted.update(chunk)
            return
