"""The BullMQ commands that record how an attempt ended, fetching the next job when allowed."""

from __future__ import annotations

import time
from typing import Any

from portside.adapters.bullmq.attempts import Ending
from portside.adapters.bullmq.commands import QueueCommands

__all__ = ["record_commands"]

Command = tuple[Any, ...]


def _finish_opts(
    commands: QueueCommands, ending: Ending, limiter: dict[str, int] | None
) -> dict[str, Any]:
    job = ending.job
    settings = job.settings
    return {
        "token": job.token,
        "keepJobs": settings.keep_completed
        if ending.status == "completed"
        else settings.keep_failed,
        "lockDuration": commands.lock_duration_ms,
        "attempts": job.max_attempts,
        "name": commands.worker_name,
        "limiter": limiter,
        "maxMetricsSize": "",
    }


def record_commands(
    commands: QueueCommands,
    ending: Ending,
    *,
    fetch_opts: bytes | None,
    limiter: dict[str, int] | None,
    max_events: int,
) -> tuple[list[Command], bool]:
    """The commands to send for ``ending``, and whether the last one also fetches a job.

    - completed / failed for good: ``moveToFinished`` (fetch next when ``fetch_opts``);
    - retry with backoff: portside's ``retrying`` event, then ``moveToDelayed`` (fetch next);
    - retry at once: the event, then ``retryJob`` (which cannot fetch).

    Args:
        fetch_opts: The slot's packed fetch options, or None when the worker takes no jobs.
    """
    job = ending.job
    now = int(time.time() * 1000)
    fetch = fetch_opts is not None
    if ending.status in ("completed", "failed"):
        completed = ending.status == "completed"
        main = commands.move_to_finished(
            job.id,
            now,
            completed=completed,
            value=ending.value,
            fetch_next=fetch,
            opts=_finish_opts(commands, ending, limiter),
            fields=None if completed else ending.fields,
        )
        return [main], fetch
    assert ending.fields is not None
    event = commands.emit(
        max_events,
        "retrying",
        {
            "jobId": job.id,
            "name": job.name,
            "attemptsMade": str(job.attempt),
            "failedReason": ending.error or "",
            "kind": ending.failure_kind or "transient",
            "delay": str(ending.delay_ms),
        },
    )
    if ending.delay_ms > 0:
        delayed = commands.move_to_delayed(
            job.id, now, ending.delay_ms, job.token, fields=ending.fields, fetch_opts=fetch_opts
        )
        return [event, delayed], fetch
    return [event, commands.retry_job(job.id, now, job.token, ending.fields)], False
