"""Dead-letter operations shared by the CLI and the admin API: list, retry, purge (A4)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

from portside.app.definition import DEFAULT_KEEP_COMPLETED, DEFAULT_KEEP_FAILED
from portside.app.dispatching import job_options
from portside.app.logs import event
from portside.app.registry import Registry
from portside.infra import Infra
from portside.ports import (
    DEFAULT_FAILURE_RETENTION,
    DeadLetter,
    JobOptions,
    JobRef,
    ValidationError,
)

__all__ = ["RetryOutcome", "purge_failures", "retry_failure", "retry_job_id"]

_log = logging.getLogger("portside.failures")


class RetryOutcome(BaseModel):
    """How a dead letter went back to its queue.

    ``requeued``: the failed job itself moved back to waiting with fresh attempts.
    ``re-enqueued``: the queue no longer had it, so a copy was enqueued under ``retry_job_id``.
    """

    model_config = ConfigDict(frozen=True)

    failure: DeadLetter
    job: JobRef
    how: Literal["requeued", "re-enqueued"]


def retry_job_id(failure: DeadLetter) -> str:
    """The id of the copy enqueued for ``failure``: stable, so a retried retry is one job."""
    digest = hashlib.sha256(failure.id.encode("utf-8")).hexdigest()[:12]
    return f"{failure.job_id[:150]}.retry-{digest}"


def _now() -> datetime:
    return datetime.now(UTC)


async def retry_failure(
    registry: Registry,
    infra: Infra,
    failure_id: str,
    *,
    clock: Callable[[], datetime] = _now,
) -> RetryOutcome:
    """Send one dead letter back to its queue and mark it retried.

    Raises:
        ValidationError: unknown id, or already retried (the message names the retry job).
    """
    history = infra.require_history()
    failure = await history.get_failure(failure_id)
    if failure is None:
        raise ValidationError(
            f"no dead letter with id {failure_id!r}",
            fix="list them with `portside failed list`",
            field="failure_id",
        )
    if failure.retried_at is not None:
        raise ValidationError(
            f"dead letter {failure_id!r} was already retried as job {failure.retry_job_id!r} at "
            f"{failure.retried_at.isoformat()}",
            fix="look that job up instead; a new failure gets a new dead letter",
            field="failure_id",
        )
    how: Literal["requeued", "re-enqueued"] = "requeued"
    job_id = failure.job_id
    if not await infra.queue.retry_failed(failure.queue, job_id=failure.job_id):
        how = "re-enqueued"
        job_id = retry_job_id(failure)
        options = (
            job_options(registry.get(failure.name), job_id=job_id)
            if failure.name in registry
            else JobOptions(
                job_id=job_id,
                remove_on_complete=DEFAULT_KEEP_COMPLETED,
                remove_on_fail=DEFAULT_KEEP_FAILED,
            )
        )
        await infra.queue.enqueue(failure.queue, failure.name, failure.data, options=options)
    marked = await history.mark_retried(failure.id, retry_job_id=job_id, retried_at=clock())
    event(
        _log,
        "dead_letter.retried",
        failure_id=failure.id,
        queue=failure.queue,
        job_id=failure.job_id,
        retry_job_id=job_id,
        how=how,
    )
    return RetryOutcome(
        failure=marked or failure,
        job=JobRef(queue=failure.queue, id=job_id, name=failure.name),
        how=how,
    )


async def purge_failures(
    infra: Infra,
    older_than: timedelta = DEFAULT_FAILURE_RETENTION,
    *,
    clock: Callable[[], datetime] = _now,
) -> int:
    """Delete dead letters older than ``older_than`` (default 30 days); return how many."""
    if older_than < timedelta(0):
        raise ValidationError(
            f"older_than is {older_than}", fix="give a positive age", field="older_than"
        )
    removed = await infra.require_history().purge_failures(older_than, now=clock())
    event(_log, "dead_letters.purged", removed=removed, older_than_days=older_than.days)
    return removed
