"""Scheduler bootstrap: make the queue's job schedulers match the registry, idempotently (Q11)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict

from portside.app.definition import JobDefinition
from portside.app.dispatching import job_options
from portside.app.registry import Registry
from portside.app.runmode import with_run_mode
from portside.ports import QueuePort, Schedule
from portside.ports.validation import check_queue_name

__all__ = ["ScheduleReport", "desired_schedules", "sync_schedules"]

_log = logging.getLogger("portside.scheduler")


class ScheduleReport(BaseModel):
    """What ``sync_schedules`` changed. Entries are ``queue/scheduler_id``."""

    model_config = ConfigDict(frozen=True)

    created: list[str]
    updated: list[str]
    unchanged: list[str]
    removed: list[str]

    def summary(self) -> str:
        """One line for the CLI."""
        return (
            f"schedules: {len(self.created)} created, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged, {len(self.removed)} removed"
        )


def schedule_for(definition: JobDefinition[Any]) -> Schedule | None:
    """The queue schedule of a scheduled job (scheduler id = job name), or None."""
    trigger = definition.schedule
    if trigger is None:
        return None
    payload = definition.validate(dict(trigger.data))
    return Schedule(
        scheduler_id=definition.name,
        name=definition.name,
        data=with_run_mode(payload.model_dump(mode="json", by_alias=True), "scheduled"),
        pattern=trigger.pattern,
        every=trigger.every,
        timezone=trigger.timezone,
        options=job_options(definition),
    )


def desired_schedules(registry: Registry) -> dict[str, list[Schedule]]:
    """Per registry queue, the schedules it should have (possibly none)."""
    desired: dict[str, list[Schedule]] = {queue: [] for queue in registry.queues()}
    for definition in registry:
        schedule = schedule_for(definition)
        if schedule is not None:
            desired[definition.queue].append(schedule)
    return desired


def _same(current: Schedule, wanted: Schedule) -> bool:
    keys = ("name", "data", "pattern", "every", "timezone")
    if any(getattr(current, key) != getattr(wanted, key) for key in keys):
        return False
    if current.options is None or wanted.options is None:
        return current.options is wanted.options
    options = ("attempts", "backoff", "remove_on_complete", "remove_on_fail")
    return all(getattr(current.options, key) == getattr(wanted.options, key) for key in options)


async def sync_schedules(
    registry: Registry, queue: QueuePort, *, prune_queues: Iterable[str] = ()
) -> ScheduleReport:
    """Upsert every scheduled job of ``registry`` and remove the schedules it no longer has.

    The registry owns the schedulers of its queues: any other scheduler found on them is
    removed. ``prune_queues`` names extra queues to empty of schedulers (a queue whose last
    job was deleted from the registry). Running it twice changes nothing the second time.
    """
    desired = desired_schedules(registry)
    for extra in prune_queues:
        desired.setdefault(check_queue_name(extra), [])
    created: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    removed: list[str] = []
    for queue_name, schedules in sorted(desired.items()):
        existing = {found.scheduler_id: found for found in await queue.list_schedules(queue_name)}
        for schedule in schedules:
            label = f"{queue_name}/{schedule.scheduler_id}"
            current = existing.pop(schedule.scheduler_id, None)
            if current is not None and _same(current, schedule):
                unchanged.append(label)
                continue
            await queue.upsert_schedule(queue_name, schedule)
            (created if current is None else updated).append(label)
            _log.info(
                "schedule.upserted",
                extra={"portside": {"queue": queue_name, "scheduler_id": schedule.scheduler_id}},
            )
        for scheduler_id in sorted(existing):
            if await queue.remove_schedule(queue_name, scheduler_id):
                removed.append(f"{queue_name}/{scheduler_id}")
                _log.info(
                    "schedule.removed",
                    extra={"portside": {"queue": queue_name, "scheduler_id": scheduler_id}},
                )
    return ScheduleReport(created=created, updated=updated, unchanged=unchanged, removed=removed)
