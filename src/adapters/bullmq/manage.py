"""Managing single jobs on BullMQ's scripts: list, remove, promote, change delay, update data,
clean, and read a job's logs."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, NamedTuple

from redis.asyncio import Redis

from portside.adapters.bullmq.control import get_job
from portside.adapters.bullmq.jobs import job_info
from portside.adapters.bullmq.names import QueueName
from portside.adapters.bullmq.transport.scripts import run_script, script
from portside.ports import (
    JobInfo,
    JobLogs,
    JobNotFoundError,
    JobPage,
    JobState,
    JobStateError,
    PortsideError,
)

__all__ = [
    "change_delay",
    "clean",
    "get_logs",
    "list_jobs",
    "promote_job",
    "remove_job",
    "update_data",
]


class _Part(NamedTuple):
    """One Redis structure a listed state reads, in that state's ascending order."""

    kind: str  # the key's suffix: wait, prioritized, delayed, ...
    is_list: bool
    state: JobState  # what its jobs are reported as


_ZSETS = ("delayed", "completed", "failed", "waiting-children")


def _parts(state: JobState, paused: bool) -> list[_Part]:
    """The structures of ``state``, ascending: next to run first (the tail of ``wait``,
    then ``prioritized`` by score), soonest due, earliest started, earliest finished."""
    if state in ("waiting", "paused"):
        ready = [
            _Part("wait", True, "paused" if paused else "waiting"),
            _Part("prioritized", False, "paused" if paused else "waiting"),
        ]
        if state == "waiting":
            return [] if paused else ready
        return [*(ready if paused else []), _Part("paused", True, "paused")]
    if state == "active":
        return [_Part("active", True, "active")]
    assert state in _ZSETS
    return [_Part(state, False, state)]


def _range(part: _Part, first: int, last: int, ascending: bool) -> tuple[Any, ...]:
    """The command reading positions ``first``-``last`` of ``part`` in the wanted order."""
    if part.is_list:  # lists hold the newest job at the head
        if ascending:
            return ("LRANGE", part.kind, -(last + 1), -(first + 1))
        return ("LRANGE", part.kind, first, last)
    return ("ZRANGE" if ascending else "ZREVRANGE", part.kind, first, last)


async def list_jobs(
    client: Redis,
    queue: QueueName,
    states: Sequence[JobState],
    offset: int,
    limit: int,
    ascending: bool,
) -> JobPage:
    """A page of the jobs in ``states``, state by state (BullMQ ``getJobs`` with exact
    paging across states): three round trips, sizes, ids, then the job hashes."""
    paused = bool(await client.hexists(queue.key("meta"), "paused"))
    parts = [part for state in states for part in _ordered(_parts(state, paused), ascending)]
    async with client.pipeline(transaction=True) as pipe:
        for part in parts:
            (pipe.llen if part.is_list else pipe.zcard)(queue.key(part.kind))
        sizes = [int(size) for size in await pipe.execute()]
    wanted: list[tuple[_Part, tuple[Any, ...]]] = []
    start = 0
    for part, size in zip(parts, sizes, strict=True):
        first, last = max(offset - start, 0), min(offset + limit - start, size) - 1
        if first <= last:
            kind, key, *bounds = _range(part, first, last, ascending)
            wanted.append((part, (kind, queue.key(key), *bounds)))
        start += size
    ids = await _read_ids(client, wanted)
    jobs = await _infos(client, queue, ids, paused)
    return JobPage(jobs=jobs, total=sum(sizes))


def _ordered(parts: list[_Part], ascending: bool) -> list[_Part]:
    return parts if ascending else parts[::-1]


async def _read_ids(
    client: Redis, wanted: list[tuple[_Part, tuple[Any, ...]]]
) -> list[tuple[str, JobState]]:
    if not wanted:
        return []
    async with client.pipeline(transaction=True) as pipe:
        for _, command in wanted:
            pipe.execute_command(*command)
        replies: list[Any] = await pipe.execute()
    found: list[tuple[str, JobState]] = []
    for (part, command), reply in zip(wanted, replies, strict=True):
        ids = [str(job_id) for job_id in reply]
        if part.is_list and command[2] < 0:  # read from the tail: oldest last, so turn it
            ids.reverse()
        found.extend((job_id, part.state) for job_id in ids)
    return found


async def _infos(
    client: Redis, queue: QueueName, ids: list[tuple[str, JobState]], paused: bool
) -> list[JobInfo]:
    if not ids:
        return []
    async with client.pipeline(transaction=False) as pipe:
        for job_id, _ in ids:
            pipe.hgetall(queue.job_key(job_id))
        hashes: list[dict[str, str]] = await pipe.execute()
    return [
        job_info(queue.portside, job_id, fields, state, paused, queue.root)
        for (job_id, state), fields in zip(ids, hashes, strict=True)
        if fields  # removed between the reads
    ]


async def _known(client: Redis, queue: QueueName, job_id: str) -> JobInfo:
    info = await get_job(client, queue, job_id)
    if info is None:
        raise JobNotFoundError(queue.portside, job_id)
    return info


def _active(queue: QueueName, job_id: str) -> JobStateError:
    return JobStateError(
        queue.portside,
        job_id,
        "active",
        f"job {job_id!r} of queue {queue.portside!r} is active",
        fix="wait until it finished (wait_until_finished), or pass force=True to remove it "
        "anyway (its worker's result is then dropped)",
        field="force",
    )


async def remove_job(client: Redis, queue: QueueName, job_id: str, *, force: bool) -> None:
    """BullMQ's ``removeJob`` with its children (refused while locked; ``force`` drops the
    job's own lock first)."""
    info = await _known(client, queue, job_id)
    job_key = queue.job_key(job_id)
    if info.state == "active":
        if not force:
            raise _active(queue, job_id)
        await client.delete(job_key + ":lock")
    args = (job_id, "1", queue.base)
    reply = await run_script(client, script("removeJob"), (job_key, queue.key("repeat")), args)
    if reply == 1:
        return
    if reply == -8:
        scheduler = await client.hget(job_key, "rjk")
        raise JobStateError(
            queue.portside,
            job_id,
            info.state,
            f"job {job_id!r} of queue {queue.portside!r} is the next run of job scheduler "
            f"{scheduler!r}",
            fix=f"remove the schedule instead: remove_schedule({queue.portside!r}, {scheduler!r})",
            field="job_id",
        )
    if await client.exists(job_key + ":lock"):
        raise _active(queue, job_id)
    raise JobStateError(
        queue.portside,
        job_id,
        info.state,
        f"job {job_id!r} of queue {queue.portside!r} waits for a child job that is active",
        fix="wait until the child finished, or remove the child first",
        field="job_id",
    )


def _not_delayed(queue: QueueName, info: JobInfo, action: str) -> JobStateError:
    return JobStateError(
        queue.portside,
        info.id,
        info.state,
        f"cannot {action} job {info.id!r} of queue {queue.portside!r}: it is {info.state}, "
        "not delayed",
        fix="only a delayed job can be promoted or have its delay changed",
        field="job_id",
    )


async def promote_job(client: Redis, queue: QueueName, job_id: str) -> None:
    """BullMQ's ``promote``: a delayed job waits from now on."""
    k = queue.key
    keys = tuple(
        k(x) for x in ("delayed", "wait", "paused", "meta", "prioritized", "active", "pc", "events")
    )
    reply = await run_script(client, script("promote"), (*keys, k("marker")), (queue.base, job_id))
    if reply != 0:
        raise _not_delayed(queue, await _known(client, queue, job_id), "promote")


async def change_delay(client: Redis, queue: QueueName, job_id: str, delay_ms: int) -> None:
    """BullMQ's ``changeDelay``: a delayed job becomes due ``delay_ms`` from now."""
    k = queue.key
    keys = (k("delayed"), k("meta"), k("marker"), k("events"))
    now = int(time.time() * 1000)
    args = (delay_ms, now, job_id, queue.job_key(job_id))
    reply = await run_script(client, script("changeDelay"), keys, args)
    if reply == -1:
        raise JobNotFoundError(queue.portside, job_id)
    if reply != 0:
        info = await _known(client, queue, job_id)
        raise _not_delayed(queue, info, "change the delay of")


async def update_data(client: Redis, queue: QueueName, job_id: str, payload: str) -> None:
    """BullMQ's ``updateData``: replace the stored payload (JSON text)."""
    keys = (queue.job_key(job_id),)
    if await run_script(client, script("updateData"), keys, (payload,)) == -1:
        raise JobNotFoundError(queue.portside, job_id)


async def clean(
    client: Redis, queue: QueueName, kind: str, grace_ms: int, limit: int | None
) -> list[str]:
    """BullMQ's ``cleanJobsInSet`` for ``completed`` or ``failed``: remove jobs finished at
    least ``grace_ms`` ago, oldest first, at most ``limit``; returns their ids."""
    keys = (queue.key(kind), queue.key("events"), queue.key("repeat"))
    before = int(time.time() * 1000) - grace_ms
    args = (queue.base, before, limit or 0, kind)
    removed = await run_script(client, script("cleanJobsInSet"), keys, args)
    if not isinstance(removed, list):
        raise PortsideError(f"BullMQ's cleanJobsInSet answered {removed!r}")
    return [str(job_id) for job_id in removed]


async def get_logs(
    client: Redis,
    queue: QueueName,
    job_id: str,
    offset: int,
    limit: int | None,
    ascending: bool,
) -> JobLogs:
    """A job's log lines (BullMQ ``getJobLogs``: the ``<job key>:logs`` list)."""
    key = queue.job_key(job_id)
    if ascending:
        first, last = offset, -1 if limit is None else offset + limit - 1
    else:
        first, last = (0 if limit is None else -(offset + limit)), -(offset + 1)
    async with client.pipeline(transaction=True) as pipe:
        pipe.exists(key)
        pipe.lrange(key + ":logs", first, last)
        pipe.llen(key + ":logs")
        exists, lines, count = await pipe.execute()
    if not exists:
        raise JobNotFoundError(queue.portside, job_id)
    found = [str(line) for line in lines]
    return JobLogs(lines=found if ascending else found[::-1], count=int(count))
