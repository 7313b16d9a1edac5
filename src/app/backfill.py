"""Backfill: one job per day of a date range, with deterministic ids so no day runs twice (A5)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from portside.app.dispatching import job_options
from portside.app.registry import Registry
from portside.app.runmode import with_run_mode
from portside.ports import JobOptions, NewJob, QueuePort, ValidationError

__all__ = ["MAX_BACKFILL_DAYS", "BackfillPlan", "BackfillReport", "PlannedJob", "plan_backfill"]

MAX_BACKFILL_DAYS = 3660


@dataclass(frozen=True)
class PlannedJob:
    """One day's job."""

    day: date
    job_id: str
    data: dict[str, Any]
    options: JobOptions


class BackfillReport(BaseModel):
    """What a backfill did (or, with ``dry_run``, would do)."""

    model_config = ConfigDict(frozen=True)

    job: str
    queue: str
    start: date
    end: date
    dry_run: bool
    planned: int
    enqueued: int
    existing: int
    new_job_ids: list[str]
    existing_states: dict[str, int]

    def summary(self) -> str:
        """One line for the CLI."""
        verb = "would enqueue" if self.dry_run else "enqueued"
        states = ", ".join(f"{state} {n}" for state, n in sorted(self.existing_states.items()))
        tail = f" ({states})" if states else ""
        return (
            f"{self.job} {self.start}..{self.end}: {self.planned} days, {verb} {self.enqueued}, "
            f"{self.existing} already present{tail}"
        )


@dataclass(frozen=True)
class BackfillPlan:
    """The jobs of a backfill, one per day in ``start..end`` (inclusive)."""

    job: str
    queue: str
    start: date
    end: date
    jobs: list[PlannedJob]

    async def run(
        self,
        queue: QueuePort,
        *,
        dry_run: bool = False,
        chunk_size: int = 100,
        on_progress: Callable[[int], None] | None = None,
    ) -> BackfillReport:
        """Enqueue the days whose job id is not on the queue yet.

        Args:
            queue: The queue port.
            dry_run: Only look; enqueue nothing.
            chunk_size: Jobs looked up and enqueued per round trip.
            on_progress: Called with the number of days handled after each chunk.
        """
        new_ids: list[str] = []
        states: Counter[str] = Counter()
        for start in range(0, len(self.jobs), chunk_size):
            chunk = self.jobs[start : start + chunk_size]
            infos = await asyncio.gather(*(queue.get_job(self.queue, job.job_id) for job in chunk))
            missing = [job for job, info in zip(chunk, infos, strict=True) if info is None]
            states.update(info.state for info in infos if info is not None)
            if missing and not dry_run:
                await queue.enqueue_bulk(
                    self.queue,
                    [NewJob(name=self.job, data=job.data, options=job.options) for job in missing],
                )
            new_ids.extend(job.job_id for job in missing)
            if on_progress is not None:
                on_progress(len(chunk))
        return BackfillReport(
            job=self.job,
            queue=self.queue,
            start=self.start,
            end=self.end,
            dry_run=dry_run,
            planned=len(self.jobs),
            enqueued=len(new_ids),
            existing=len(self.jobs) - len(new_ids),
            new_job_ids=new_ids,
            existing_states=dict(states),
        )


def plan_backfill(
    registry: Registry,
    name: str,
    start: date,
    end: date,
    data: Mapping[str, Any] | None = None,
) -> BackfillPlan:
    """Validate a backfill request and build one job per day.

    Args:
        registry: Where ``name`` is defined.
        name: A job with a ``date_field``.
        start: First day (inclusive).
        end: Last day (inclusive); not before ``start``.
        data: The other payload fields, the same for every day.

    Raises:
        UnknownJobError: ``name`` is not registered.
        ValidationError: no date field, a bad range, or a payload the model rejects.
    """
    definition = registry.get(name)
    if definition.date_field is None:
        raise ValidationError(
            f"job {name!r} cannot be backfilled: it has no date_field",
            fix="set date_field on its JobDefinition, or use `portside dispatch`",
            field="job",
        )
    if start > end:
        raise ValidationError(
            f"--from {start} is after --to {end}",
            fix="give the earlier day as --from",
            field="from",
        )
    days = (end - start).days + 1
    if days > MAX_BACKFILL_DAYS:
        raise ValidationError(
            f"the range {start}..{end} has {days} days, over the {MAX_BACKFILL_DAYS}-day limit",
            fix="split it into smaller backfills",
            field="to",
        )
    base = dict(data or {})
    date_key = definition.payload.model_fields[definition.field_name(definition.date_field)]
    date_keys = {definition.date_field, definition.field_name(definition.date_field)}
    if date_key.alias:
        date_keys.add(date_key.alias)
    clash = date_keys & base.keys()
    if clash:
        raise ValidationError(
            f"--data sets {sorted(clash)[0]!r}, which the backfill fills in for each day",
            fix=f"remove {sorted(clash)[0]!r} from --data",
            field="data",
        )
    jobs = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        payload = definition.validate({**base, definition.date_field: day.isoformat()})
        job_id = definition.job_id_for(payload)
        jobs.append(
            PlannedJob(
                day=day,
                job_id=job_id,
                data=with_run_mode(payload.model_dump(mode="json", by_alias=True), "backfill"),
                options=job_options(definition, job_id=job_id),
            )
        )
    return BackfillPlan(job=name, queue=definition.queue, start=start, end=end, jobs=jobs)
