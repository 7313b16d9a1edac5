"""Job schedulers of the queue fake, modelled on BullMQ's: one pending job each (Q11)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from portside.ports import (
    JobOptions,
    Schedule,
    next_cron_time,
)
from portside.ports.validation import json_payload

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
        """The state of a scheduler checked by ``ports.inputs.check_schedule``."""
        data = json_payload(schedule.data, "schedule.data")
        return cls(schedule=schedule, data=data, options=schedule.options or JobOptions())

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
