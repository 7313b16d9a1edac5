"""Repeatable jobs as BullMQ job schedulers (``upsertJobScheduler``) via the ``bullmq`` package."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from bullmq import Queue as BullQueue
from bullmq.job import optsFromJSON
from redis.asyncio import Redis

from portside.adapters.bullmq.jobs import BullMQJob
from portside.adapters.bullmq.names import QueueName
from portside.adapters.bullmq.options import PORTSIDE_KEY, from_bullmq_opts, ms, to_bullmq_opts
from portside.ports import (
    JobOptions,
    Schedule,
    ValidationError,
)
from portside.ports.inputs import check_schedule

__all__ = ["Schedules"]

log = logging.getLogger("portside.adapters.bullmq")


def _template_opts(schedule: Schedule) -> dict[str, Any]:
    options = schedule.options or JobOptions()
    opts = to_bullmq_opts(options, custom_id=False)
    opts.pop("delay", None)
    if schedule.options is None:
        # Defaults apply (attempts from the environment); remember that none were given so
        # the schedule reads back as it was written.
        opts.setdefault(PORTSIDE_KEY, {})["implicit"] = True
    return opts


def _options_back(raw: Any) -> JobOptions | None:
    if not isinstance(raw, dict):
        return None
    own = raw.get(PORTSIDE_KEY)
    if isinstance(own, dict) and own.get("implicit"):
        return None
    return from_bullmq_opts(raw)


def _schedule_from(record: Mapping[str, Any]) -> Schedule:
    """A record of ``Queue.getJobSchedulers`` as a Schedule; ValidationError if it is none."""
    template = record.get("template") or {}
    data = template.get("data")
    every = record.get("every")
    return Schedule(
        scheduler_id=str(record["key"]),
        name=str(record.get("name") or record["key"]),
        data=data if isinstance(data, dict) else {},
        pattern=record.get("pattern") if every is None else None,
        every=int(every) / 1000 if every is not None else None,
        timezone=record.get("tz"),
        options=_options_back(template.get("opts")),
    )


class Schedules:
    """Job schedulers of the queues of one adapter (one ``bullmq.Queue`` per queue)."""

    def __init__(self, client: Redis) -> None:
        self._client = client
        self._queues: dict[str, BullQueue] = {}

    def _queue(self, queue: QueueName) -> BullQueue:
        found = self._queues.get(queue.portside)
        if found is None:
            found = BullQueue(queue.name, {"connection": self._client, "prefix": queue.prefix})
            self._queues[queue.portside] = found
        return found

    async def upsert(self, queue: QueueName, schedule: object) -> None:
        """Create or replace a scheduler; calling it again with the same id changes nothing
        but the settings.

        Raises:
            ValidationError: naming the field (``pattern``, ``timezone``, ``options.job_id``
                ...) before anything is written.
        """
        schedule = check_schedule(schedule)
        repeat: dict[str, Any] = {}
        if schedule.pattern is not None:
            repeat["pattern"] = schedule.pattern
        else:
            assert schedule.every is not None
            repeat["every"] = max(1, ms(schedule.every))
        if schedule.timezone is not None:
            repeat["tz"] = schedule.timezone
        opts = _template_opts(schedule)
        await self._queue(queue).upsertJobScheduler(
            schedule.scheduler_id, repeat, schedule.name, schedule.data, opts
        )

    async def remove(self, queue: QueueName, scheduler_id: str) -> bool:
        """Remove a scheduler and its pending iteration; False if there was none."""
        result = await self._queue(queue).removeJobScheduler(scheduler_id)
        return bool(result == 0)

    async def list(self, queue: QueueName) -> list[Schedule]:
        """Every scheduler of the queue, soonest next run first.

        A scheduler that is no valid ``Schedule`` (Node BullMQ accepts some cron patterns
        portside refuses) is left out with a warning, so one such record does not hide the rest.
        """
        records = await self._queue(queue).getJobSchedulers(0, -1, True)
        schedules: list[Schedule] = []
        for record in records:
            try:
                schedules.append(_schedule_from(record))
            except ValidationError as exc:
                log.warning(
                    "skipping job scheduler %r of queue %s that portside cannot read: %s",
                    record.get("key"),
                    queue.portside,
                    exc,
                )
        return schedules

    async def next_iteration(self, queue: QueueName, job: BullMQJob) -> None:
        """Materialise the next run of the scheduler that produced ``job`` (Node's worker does
        this when it takes a scheduled job)."""
        scheduler_id = job.text("rjk")
        if not scheduler_id:
            return
        try:
            opts = optsFromJSON(dict(job.stored.opts))
            data = dict(job.data)
            await self._queue(queue).jobScheduler.upsertJobScheduler(
                scheduler_id,
                opts.get("repeat"),
                job.name,
                data,
                opts,
                override=False,
                producer_id=job.id,
            )
        except Exception:
            log.exception(
                "could not schedule the next run of scheduler %s on %s",
                scheduler_id,
                queue.portside,
            )
