"""Repeatable jobs as BullMQ job schedulers (``upsertJobScheduler``) via the ``bullmq`` package."""

from __future__ import annotations

import json
import logging
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

from bullmq import Queue as BullQueue
from bullmq.job import optsFromJSON
from croniter import (  # type: ignore[import-untyped]
    CroniterBadCronError,
    CroniterBadDateError,
)
from redis.asyncio import Redis

from portside.adapters.bullmq.jobs import BullJob
from portside.adapters.bullmq.names import QueueName
from portside.adapters.bullmq.options import PORTSIDE_KEY, from_bullmq_opts, ms, to_bullmq_opts
from portside.ports import JobOptions, Schedule, ValidationError

__all__ = ["Schedules"]

log = logging.getLogger("portside.adapters.bullmq")


def _template_opts(schedule: Schedule) -> dict[str, Any]:
    options = schedule.options or JobOptions()
    for name, bad in (
        ("job_id", options.job_id is not None),
        ("delay", options.delay > 0),
        ("dedupe_key", options.dedupe_key is not None),
    ):
        if bad:
            raise ValidationError(
                f"schedule {schedule.scheduler_id!r} sets options.{name}",
                fix="job schedulers choose ids and times of their jobs themselves; drop "
                f"options.{name}",
                field=f"options.{name}",
            )
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

    async def upsert(self, queue: QueueName, schedule: Schedule) -> None:
        """Create or replace a scheduler; calling it again with the same id changes nothing
        but the settings."""
        if not isinstance(schedule, Schedule):
            raise ValidationError(
                f"schedule must be a Schedule, got {type(schedule).__name__}",
                fix="build it with portside.ports.Schedule(...)",
                field="schedule",
            )
        repeat: dict[str, Any] = {}
        if schedule.pattern is not None:
            repeat["pattern"] = schedule.pattern
        else:
            assert schedule.every is not None
            repeat["every"] = max(1, ms(schedule.every))
        if schedule.timezone is not None:
            repeat["tz"] = schedule.timezone
        opts = _template_opts(schedule)
        try:
            await self._queue(queue).upsertJobScheduler(
                schedule.scheduler_id, repeat, schedule.name, schedule.data, opts
            )
        except ZoneInfoNotFoundError as exc:
            raise ValidationError(
                f"timezone {schedule.timezone!r} is unknown",
                fix="use an IANA zone name such as 'Europe/Berlin'",
                field="timezone",
            ) from exc
        except (CroniterBadCronError, CroniterBadDateError, ValueError) as exc:
            raise ValidationError(
                f"pattern {schedule.pattern!r} is not a valid cron expression ({exc})",
                fix="use 5 fields (minute hour day month weekday) or 6 with seconds first",
                field="pattern",
            ) from exc

    async def remove(self, queue: QueueName, scheduler_id: str) -> bool:
        """Remove a scheduler and its pending iteration; False if there was none."""
        result = await self._queue(queue).removeJobScheduler(scheduler_id)
        return bool(result == 0)

    async def list(self, queue: QueueName) -> list[Schedule]:
        """Every scheduler of the queue, soonest next run first."""
        records = await self._queue(queue).getJobSchedulers(0, -1, True)
        schedules: list[Schedule] = []
        for record in records:
            template = record.get("template") or {}
            raw_opts = template.get("opts")
            data = template.get("data")
            every = record.get("every")
            schedules.append(
                Schedule(
                    scheduler_id=str(record["key"]),
                    name=str(record.get("name") or record["key"]),
                    data=data if isinstance(data, dict) else {},
                    pattern=record.get("pattern") if every is None else None,
                    every=int(every) / 1000 if every is not None else None,
                    timezone=record.get("tz"),
                    options=_options_back(raw_opts),
                )
            )
        return schedules

    async def next_iteration(self, queue: QueueName, job: BullJob) -> None:
        """Materialise the next run of the scheduler that produced ``job`` (Node's worker does
        this when it takes a scheduled job)."""
        scheduler_id = job.fields.get("rjk")
        if not scheduler_id:
            return
        opts = optsFromJSON(dict(job.settings.opts))
        try:
            data = json.loads(job.fields.get("data") or "{}")
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
