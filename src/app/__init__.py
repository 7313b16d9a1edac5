"""The job platform on ports: registry, worker runtime, scheduler, dispatch, backfill, cache."""

from __future__ import annotations

from portside.app.backfill import BackfillPlan, BackfillReport, plan_backfill
from portside.app.cache import DEFAULT_TTL, ReadThroughCache
from portside.app.context import JobContext
from portside.app.definition import JobDefinition, JobSchedule, RetryPolicy
from portside.app.dispatch import dispatch
from portside.app.errors import InvalidPayloadError, UnknownJobError, UnknownQueueError
from portside.app.failures import RetryOutcome, purge_failures, retry_failure
from portside.app.registry import QueueSettings, Registry
from portside.app.runmode import META_KEY
from portside.app.runtime import WorkerRuntime
from portside.app.scheduler import ScheduleReport, sync_schedules

__all__ = [
    "DEFAULT_TTL",
    "META_KEY",
    "BackfillPlan",
    "BackfillReport",
    "InvalidPayloadError",
    "JobContext",
    "JobDefinition",
    "JobSchedule",
    "QueueSettings",
    "ReadThroughCache",
    "Registry",
    "RetryOutcome",
    "RetryPolicy",
    "ScheduleReport",
    "UnknownJobError",
    "UnknownQueueError",
    "WorkerRuntime",
    "dispatch",
    "plan_backfill",
    "purge_failures",
    "retry_failure",
    "sync_schedules",
]
