"""The job platform on ports: registry, worker runtime, scheduler, dispatch, backfill, cache,
and the ``Application`` that bundles an application's jobs, schema and runs for the CLI.

Names are imported on first use, so ``portside --help`` and a worker's start-up load only
the modules they need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from portside.app.application import Application, MainJob
    from portside.app.backfill import BackfillPlan, BackfillReport, plan_backfill
    from portside.app.cache import DEFAULT_TTL, ReadThroughCache
    from portside.app.context import JobContext
    from portside.app.definition import (
        DEFAULT_KEEP_COMPLETED,
        DEFAULT_KEEP_FAILED,
        JobDefinition,
        JobSchedule,
        RetryPolicy,
    )
    from portside.app.dispatching import dispatch
    from portside.app.errors import InvalidPayloadError, UnknownJobError, UnknownQueueError
    from portside.app.failures import RetryOutcome, purge_failures, retry_failure
    from portside.app.pool import PoolContext, ProcessPool
    from portside.app.registry import QueueSettings, Registry
    from portside.app.runmode import META_KEY
    from portside.app.runtime import WorkerRuntime
    from portside.app.scheduler import ScheduleReport, sync_schedules

_HOMES = {
    "Application": "application",
    "MainJob": "application",
    "BackfillPlan": "backfill",
    "BackfillReport": "backfill",
    "plan_backfill": "backfill",
    "DEFAULT_TTL": "cache",
    "ReadThroughCache": "cache",
    "JobContext": "context",
    "DEFAULT_KEEP_COMPLETED": "definition",
    "DEFAULT_KEEP_FAILED": "definition",
    "JobDefinition": "definition",
    "JobSchedule": "definition",
    "RetryPolicy": "definition",
    "dispatch": "dispatching",
    "InvalidPayloadError": "errors",
    "UnknownJobError": "errors",
    "UnknownQueueError": "errors",
    "RetryOutcome": "failures",
    "purge_failures": "failures",
    "PoolContext": "pool",
    "ProcessPool": "pool",
    "retry_failure": "failures",
    "QueueSettings": "registry",
    "Registry": "registry",
    "META_KEY": "runmode",
    "WorkerRuntime": "runtime",
    "ScheduleReport": "scheduler",
    "sync_schedules": "scheduler",
}

__all__ = [
    "DEFAULT_KEEP_COMPLETED",
    "DEFAULT_KEEP_FAILED",
    "DEFAULT_TTL",
    "META_KEY",
    "Application",
    "BackfillPlan",
    "BackfillReport",
    "InvalidPayloadError",
    "JobContext",
    "JobDefinition",
    "JobSchedule",
    "MainJob",
    "PoolContext",
    "ProcessPool",
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


if not TYPE_CHECKING:
    # Hidden from type checkers, so a misspelt import still fails type-checking.

    def __getattr__(name: str) -> Any:
        home = _HOMES.get(name)
        if home is None:
            raise AttributeError(f"module 'portside.app' has no attribute {name!r}")
        value = getattr(importlib.import_module(f"portside.app.{home}"), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
