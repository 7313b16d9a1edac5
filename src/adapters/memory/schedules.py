"""Repeatable jobs of the in-memory fake, modelled on BullMQ job schedulers (Q11)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from portside.ports import (
    JobOptions,
    Schedule,
    ValidationError,
    check_cron_pattern,
    next_cron_time,
    resolve_timezone,
)
from portside.ports.validation import check_job_name, json_payload

__all__ = ["ScheduleState", "job_id_for"]


def job_id_for(scheduler_id: str, at: float) -> str:
    """BullMQ's id for a scheduler's iteration: ``repeat:<scheduler id>:<epoch millis>``."""
    return f"repeat:{scheduler_id}:{round(at * 1000)}"


@dataclass
class ScheduleState:
    """A scheduler and the iteration it has pending.

    BullMQ keeps exactly one upcoming job per scheduler and creates the next when that job
    starts; iterations missed while no worker ran are skipped, not replayed.
    """

    schedule: Schedule
    data: dict[str, Any]
    options: JobOptions
    next_at: float = 0.0
    job_id: str | None = None

    @classmethod
    def build(cls, schedule: Schedule) -> ScheduleState:
        """Check everything a job made from ``schedule`` needs, naming the bad field."""
        try:
            check_job_name(schedule.name)
        except ValidationError as exc:
            raise ValidationError(exc.message, fix=exc.fix, field="schedule.name") from None
        data = json_payload(schedule.data, "schedule.data")
        options = schedule.options or JobOptions()
        for option in ("job_id", "dedupe_key"):
            if getattr(options, option) is not None:
                raise ValidationError(
                    f"schedule.options.{option} is set",
                    fix="leave it out: the scheduler names and dedupes its own jobs",
                    field=f"schedule.options.{option}",
                )
        if options.delay:
            raise ValidationError(
                "schedule.options.delay is set",
                fix="leave it out: the pattern or 'every' decides when each job runs",
                field="schedule.options.delay",
            )
        # Schedule checks both already; repeated for one built with model_construct().
        if schedule.pattern is not None:
            check_cron_pattern(schedule.pattern, "schedule.pattern")
        resolve_timezone(schedule.timezone, "schedule.timezone")
        return cls(schedule=schedule, data=data, options=options)

    def first_at(self, now: float) -> float:
        """When the first iteration runs: at once for ``every``, else the next cron match."""
        pattern = self.schedule.pattern
        if pattern is None:
            return now
        return next_cron_time(pattern, now, self.schedule.timezone)

    def following(self, previous: float, now: float) -> float:
        """The iteration after the one due at ``previous``, skipping slots already past."""
        every = self.schedule.every
        if every is not None:
            upcoming = previous + every
            if upcoming < now:  # behind: the first slot on the same cadence after now
                upcoming = previous + every * (math.floor((now - previous) / every) + 1)
            return upcoming
        assert self.schedule.pattern is not None
        return next_cron_time(self.schedule.pattern, max(previous, now), self.schedule.timezone)
