"""Find a job by id alone: the queue its id names first, then every known queue at once."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence

from portside.ports import JobInfo, QueuePort, ValidationError

__all__ = ["find_job", "job_name_of"]

_SEPARATOR = re.compile(r"[.~]")


def job_name_of(job_id: str) -> str:
    """The job name an id starts with (portside ids are ``<name>.<...>`` or ``<name>~<...>``)."""
    return _SEPARATOR.split(job_id, maxsplit=1)[0]


async def _get(queue: QueuePort, name: str, job_id: str) -> JobInfo | None:
    try:
        return await queue.get_job(name, job_id)
    except ValidationError:
        # An id the adapter cannot even look up (e.g. one BullMQ reserves) names no job.
        return None


async def find_job(
    queue: QueuePort,
    job_id: str,
    queues: Sequence[str],
    queue_of_job: Mapping[str, str],
) -> JobInfo | None:
    """The job ``job_id`` on one of ``queues``, or None.

    One lookup when the id starts with a known job name (every id this API hands out does);
    otherwise, or if that queue does not have it, all the other queues are asked concurrently
    and the first in ``queues`` order that has it wins.

    Args:
        queue: The queue port.
        job_id: The id ``POST /jobs/{name}`` (or a producer) gave the job.
        queues: Every queue to search.
        queue_of_job: Job name -> its queue.
    """
    hinted = queue_of_job.get(job_name_of(job_id))
    if hinted is not None and hinted in queues:
        found = await _get(queue, hinted, job_id)
        if found is not None:
            return found
    rest = [name for name in queues if name != hinted]
    results = await asyncio.gather(*(_get(queue, name, job_id) for name in rest))
    return next((info for info in results if info is not None), None)
