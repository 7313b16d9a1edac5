"""Enqueue registered jobs: payload validation, run mode and job ids (Q1, Q2, A5)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from portside.app.definition import JobDefinition
from portside.app.registry import Registry
from portside.app.runmode import with_run_mode
from portside.ports import JobOptions, JobRef, QueuePort, RunMode
from portside.ports.validation import check_job_id

__all__ = ["dispatch", "job_options", "prepare"]


def job_options(
    definition: JobDefinition[Any],
    *,
    job_id: str | None = None,
    delay: float = 0.0,
    priority: int = 0,
) -> JobOptions:
    """Queue options from the definition's retry policy and retention plus per-call settings.

    Every job the platform enqueues (dispatch, backfill, schedules, dead-letter retries,
    webhook deliveries) carries its definition's retention (Q15). The timeout is not sent:
    the worker runtime enforces it, so the attempt is still recorded.
    """
    return JobOptions(
        job_id=job_id,
        delay=delay,
        priority=priority,
        attempts=definition.retry.resolved_attempts(),
        backoff=definition.retry.backoff,
        remove_on_complete=definition.remove_on_complete,
        remove_on_fail=definition.remove_on_fail,
    )


def prepare(
    definition: JobDefinition[Any],
    data: Mapping[str, Any] | BaseModel,
    *,
    mode: RunMode,
    job_id: str | None = None,
    deterministic_id: bool = False,
) -> tuple[dict[str, Any], str | None]:
    """Validate ``data`` and return the job data to enqueue and its job id.

    Raises:
        ValidationError: the payload does not fit the model (field-level message), or the
            job id is invalid.
    """
    payload = definition.validate(data)
    if job_id is not None:
        job_id = check_job_id(job_id, "job_id")
    elif deterministic_id:
        job_id = definition.job_id_for(payload)
    body = with_run_mode(payload.model_dump(mode="json", by_alias=True), mode)
    return body, job_id


async def dispatch(
    registry: Registry,
    queue: QueuePort,
    name: str,
    data: Mapping[str, Any] | BaseModel,
    *,
    mode: RunMode = "manual",
    job_id: str | None = None,
    deterministic_id: bool = False,
    delay: float = 0.0,
    priority: int = 0,
) -> JobRef:
    """Validate and enqueue one job of ``registry`` on its queue.

    Args:
        registry: Where ``name`` is defined.
        queue: The queue port (``get_infra().queue``).
        name: The job name.
        data: The payload; validated with the job's model.
        mode: Run mode recorded in run history.
        job_id: An explicit id (idempotent: the same id twice is one job).
        deterministic_id: Derive the id from the payload's ``id_keys`` instead.
        delay: Seconds before the job becomes due.
        priority: 0 (highest, default) or more.

    Raises:
        UnknownJobError: ``name`` is not registered.
        ValidationError: bad payload or job id.
    """
    definition = registry.get(name)
    body, final_id = prepare(
        definition, data, mode=mode, job_id=job_id, deterministic_id=deterministic_id
    )
    options = job_options(definition, job_id=final_id, delay=delay, priority=priority)
    return await queue.enqueue(definition.queue, definition.name, body, options=options)
