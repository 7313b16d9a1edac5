"""One attempt of a job: run the handler, decide how it ended, and the commands recording it."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import traceback
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from portside.adapters.bullmq.jobs import KIND_FIELD, BullMQJob, clean_text
from portside.adapters.bullmq.options import ms
from portside.adapters.bullmq.retry_delays import UnknownBackoffError, retry_delay
from portside.adapters.bullmq.worker.commands import QueueCommands
from portside.ports import (
    AbandonedHandler,
    Classifier,
    FailureKind,
    JobHandler,
    JobStalledError,
    JobTimeoutError,
    PermanentError,
    ValidationError,
    describe_error,
    retry_after,
)
from portside.ports.queue_types import MAX_STACKTRACES

__all__ = ["Ending", "failure", "record_commands", "run_attempt"]

log = logging.getLogger("portside.adapters.bullmq")


Command = tuple[Any, ...]


@dataclass(slots=True)
class Ending:
    """How an attempt ended: ``completed``, ``retrying`` (with a delay) or ``failed``."""

    job: BullMQJob
    status: Literal["completed", "retrying", "failed"]
    value: str = "null"
    result: Any = None
    error: str | None = None
    failure_kind: FailureKind | None = None
    delay_ms: int = 0
    fields: dict[str, str] | None = None


def _stacktrace(job: BullMQJob, error: BaseException) -> str:
    try:
        previous = json.loads(job.text("stacktrace") or "[]")
    except (ValueError, RecursionError):
        previous = []
    if not isinstance(previous, list):
        previous = []
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    previous.append(text)
    return json.dumps(previous[-MAX_STACKTRACES:], separators=(",", ":"))


def _classify(classify: Classifier, error: BaseException) -> FailureKind:
    try:
        kind = classify(error)
    except Exception:
        log.exception("the failure classifier raised; treating the failure as transient")
        return "transient"
    return "permanent" if kind == "permanent" else "transient"


def failure(
    job: BullMQJob, error: BaseException, kind: FailureKind, *, final: bool = False
) -> Ending:
    """The ending of a failed attempt: a retry if attempts and the classification allow it."""
    reason = clean_text(describe_error(error))
    fields = {"failedReason": reason, "stacktrace": _stacktrace(job, error), KIND_FIELD: kind}
    if kind == "transient" and job.attempt < job.max_attempts and not final:
        asked = retry_after(error)
        if asked is not None:
            delay = ms(asked)  # Q17: the failure's own wait replaces the backoff
        else:
            try:
                delay = retry_delay(job.stored.backoff, job.attempt)
            except UnknownBackoffError as exc:
                log.warning("job %s of %s: %s; retrying at once", job.id, job.queue, exc)
                delay = 0
        return Ending(
            job, "retrying", error=reason, failure_kind=kind, delay_ms=delay, fields=fields
        )
    return Ending(job, "failed", value=reason, error=reason, failure_kind=kind, fields=fields)


def _encode_result(result: Any) -> tuple[Any, str]:
    if isinstance(result, BaseModel):
        result = result.model_dump(mode="json")
    return result, json.dumps(result, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


async def _tell_abandoned(
    on_abandoned: AbandonedHandler | None, job: BullMQJob, error: JobStalledError
) -> None:
    if on_abandoned is None:
        return
    try:
        await on_abandoned(job, error)
    except Exception:
        log.exception("on_abandoned failed for job %s of %s", job.id, job.queue)


async def run_attempt(
    job: BullMQJob,
    handler: JobHandler,
    default_timeout: float | None,
    classify: Classifier,
    on_abandoned: AbandonedHandler | None = None,
) -> Ending:
    """Run ``handler`` once for ``job`` and return how the attempt ended.

    The attempt is limited to the job's own timeout, else to ``default_timeout`` (the
    worker's). A timeout becomes ``JobTimeoutError`` (transient). Cancellation of the calling task
    propagates; a ``CancelledError`` raised by the handler itself is a transient failure.

    A job whose stored data cannot be decoded still reaches the handler (so a runtime that
    reads ``job.data`` gets the ``ValidationError`` and can record it), but its attempt
    always ends failed for good with that error, whatever the handler did: no retry can
    fix the stored data, and completing would hide it.

    A job that stalled more often than allowed (BullMQ marks it ``defa`` when it requeues it)
    fails for good with ``JobStalledError`` without calling ``handler``; ``on_abandoned`` is
    told first, so the failure is recorded (Q16).
    """
    deferred = job.fields.get("defa")
    if deferred:
        reason = clean_text(deferred)
        if reason.startswith("child "):
            # A parent whose child failed with failParentOnFailure ("child <key> failed"):
            # no attempt can fix it, and nothing was abandoned.
            return failure(job, PermanentError(reason), "permanent", final=True)
        stalled = JobStalledError(
            reason,
            fix="find out why its worker died or blocked its event loop while holding it "
            "(a crash, a CPU-bound handler, a lock duration shorter than its work)",
        )
        await _tell_abandoned(on_abandoned, job, stalled)
        return failure(job, stalled, "transient", final=True)
    limit = job.stored.timeout or default_timeout
    scope: asyncio.Timeout | None = None
    try:
        if limit is None:
            result = await handler(job)
        else:
            async with asyncio.timeout(limit) as scope:
                result = await handler(job)
    except asyncio.CancelledError as exc:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        return _checked(job, failure(job, exc, "transient"), exc)
    except TimeoutError as exc:
        if scope is not None and scope.expired():
            error: Exception = JobTimeoutError(f"attempt exceeded its {limit:g}s timeout")
            error.__cause__ = exc
            return _checked(job, failure(job, error, "transient"), error)
        return _checked(job, failure(job, exc, _classify(classify, exc)), exc)
    except Exception as exc:
        return _checked(job, failure(job, exc, _classify(classify, exc)), exc)
    try:
        result, encoded = _encode_result(result)
    except (TypeError, ValueError) as exc:
        error = PermanentError(f"handler result is not JSON serializable ({exc})")
        return _checked(job, failure(job, error, "permanent"), error)
    if job.data_problem() is None:
        return Ending(job, "completed", value=encoded, result=result)
    return _checked(job, None, None)


def _checked(job: BullMQJob, ending: Ending | None, raised: BaseException | None) -> Ending:
    """``ending``, unless the job's data cannot be decoded: then a permanent failure."""
    problem = job.data_problem()
    if problem is None:
        assert ending is not None
        return ending
    if isinstance(raised, ValidationError) and raised.field == "data":
        problem = raised  # the same error, with the handler's traceback
    return failure(job, problem, "permanent")


# -- recording the end of an attempt --------------------------------------------------------


def _finish_opts(
    commands: QueueCommands, ending: Ending, limiter: dict[str, int] | None
) -> dict[str, Any]:
    job = ending.job
    stored = job.stored
    if ending.status == "completed":
        keep = stored.keep_completed or commands.keep_completed
    else:
        keep = stored.keep_failed or commands.keep_failed
    return {
        "token": job.token,
        "keepJobs": keep,
        "lockDuration": commands.lock_duration_ms,
        "attempts": job.max_attempts,
        "name": commands.worker_name,
        "limiter": limiter,
        "maxMetricsSize": "",
    }


def record_commands(
    commands: QueueCommands,
    ending: Ending,
    *,
    fetch_opts: bytes | None,
    limiter: dict[str, int] | None,
    max_events: int,
) -> tuple[list[Command], bool]:
    """The commands to send for ``ending``, and whether the last one also fetches a job.

    - completed / failed for good: ``moveToFinished`` (fetch next when ``fetch_opts``);
    - retry with backoff: portside's ``retrying`` event, then ``moveToDelayed`` (fetch next);
    - retry at once: the event, then ``retryJob`` (which cannot fetch).

    Args:
        fetch_opts: The slot's packed fetch options, or None when the worker takes no jobs.
    """
    job = ending.job
    now = int(time.time() * 1000)
    fetch = fetch_opts is not None
    if ending.status in ("completed", "failed"):
        completed = ending.status == "completed"
        main = commands.move_to_finished(
            job.id,
            now,
            completed=completed,
            value=ending.value,
            fetch_next=fetch,
            opts=_finish_opts(commands, ending, limiter),
            fields=None if completed else ending.fields,
        )
        return [main], fetch
    assert ending.fields is not None
    event = commands.emit(
        max_events,
        "retrying",
        {
            "jobId": job.id,
            "name": job.name,
            "attemptsMade": str(job.attempt),
            "failedReason": ending.error or "",
            "kind": ending.failure_kind or "transient",
            "delay": str(ending.delay_ms),
        },
    )
    if ending.delay_ms > 0:
        delayed = commands.move_to_delayed(
            job.id, now, ending.delay_ms, job.token, fields=ending.fields, fetch_opts=fetch_opts
        )
        return [event, delayed], fetch
    return [event, commands.retry_job(job.id, now, job.token, ending.fields)], False
