"""Admin endpoints behind the bearer token (OPS3): queues, jobs, run history, dead letters,
job schedulers and the outbox, all through ``AdminService``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal, TypeVar

import pydantic
from fastapi import APIRouter, Depends, Header, Path, Query
from fastapi.responses import StreamingResponse
from pydantic import StringConstraints

from portside.app.admin import FailureQuery, RunQuery
from portside.app.http.admin_schemas import (
    ActionDone,
    JobDetailBody,
    JobList,
    OutboxStreamBody,
    OutboxStreamList,
    Purged,
    QueueBody,
    QueueList,
    RunBody,
    RunList,
    SchedulerBody,
    SchedulerList,
)
from portside.app.http.auth import require_admin
from portside.app.http.problems import ApiError, field_problems, responses
from portside.app.http.schemas import FailedJob, FailedJobList, RetriedJob
from portside.app.http.sse import MAX_SEQ, event_stream, parse_last_event_id, resume_from
from portside.app.http.state import ApiState, api_state
from portside.ports import FailureKind, JobState, RunMode, RunStatus
from portside.ports.validation import MAX_NAME_LENGTH, TEXT_PATTERN

__all__ = ["QUEUE_PATTERN", "STREAM_OPERATION", "require_admin", "router"]

State = Annotated[ApiState, Depends(api_state)]
QUEUE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*(?::[A-Za-z0-9][A-Za-z0-9_.\-]*)*$"
STREAM_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,199}$"
KEY_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,63}=[^=\x00]{1,200}$"
STREAM_OPERATION = "tailOutboxStream"
MAX_AGE_DAYS = 36_500

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])
FailureId = Annotated[str, Path(min_length=1, max_length=100, description="Dead letter id.")]
QueueName = Annotated[
    str, Path(min_length=1, max_length=200, pattern=QUEUE_PATTERN, description="A queue name.")
]
JobId = Annotated[
    str,
    Path(min_length=1, max_length=MAX_NAME_LENGTH, pattern=TEXT_PATTERN, description="The job id."),
]
NO_NUL = r"^[^\x00]*$"
JobName = Annotated[
    str | None,
    Query(min_length=1, max_length=200, pattern=NO_NUL, description="Only jobs of this name."),
]
BusinessKey = Annotated[str, StringConstraints(pattern=KEY_PATTERN)]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Skip this many.")]
Limit = Annotated[int, Query(ge=1, le=500, description="At most this many.")]
ListableState = Literal[
    "waiting", "active", "delayed", "completed", "failed", "paused", "waiting-children"
]
Since = Annotated[
    datetime | None,
    Query(description="From this moment on (inclusive), e.g. 2026-01-31T00:00:00Z."),
]
Until = Annotated[
    datetime | None, Query(description="Before this moment (exclusive), with a time zone.")
]
_ALL = (401, 403, 422, 503)
Q = TypeVar("Q", RunQuery, FailureQuery)


def _query(model: type[Q], **values: object) -> Q:
    try:
        return model.model_validate(values)
    except pydantic.ValidationError as error:
        fields = field_problems(error.errors(include_url=False), ("query",))
        where = ", ".join(".".join(str(part) for part in field.loc) for field in fields)
        raise ApiError(422, f"invalid input: {where}", fields=fields) from error


# -- queues ----------------------------------------------------------------------------------


@router.get(
    "/queues", summary="Every queue with counts, workers and throughput", responses=responses(*_ALL)
)
async def list_queues(api: State) -> QueueList:
    """Per queue: jobs per state, paused flag, connected workers, and attempts per minute
    (completed and failed) over the last 15 minutes."""
    return QueueList(items=[QueueBody.of(summary) for summary in await api.admin.queues()])


@router.get("/queues/{queue}", summary="One queue", responses=responses(404, *_ALL))
async def get_queue(queue: QueueName, api: State) -> QueueBody:
    """Jobs per state, paused flag, workers and recent throughput of one queue."""
    return QueueBody.of(await api.admin.queue(queue))


@router.post("/queues/{queue}/pause", summary="Pause a queue", responses=responses(404, *_ALL))
async def pause_queue(queue: QueueName, api: State) -> QueueBody:
    """Every worker stops taking jobs of the queue until it is resumed; running jobs finish."""
    await api.admin.pause(queue)
    return QueueBody.of(await api.admin.queue(queue))


@router.post("/queues/{queue}/resume", summary="Resume a queue", responses=responses(404, *_ALL))
async def resume_queue(queue: QueueName, api: State) -> QueueBody:
    """Workers take the queue's jobs again."""
    await api.admin.resume(queue)
    return QueueBody.of(await api.admin.queue(queue))


@router.post(
    "/queues/{queue}/purge",
    summary="Remove a queue's waiting and delayed jobs",
    responses=responses(404, *_ALL),
)
async def purge_queue(queue: QueueName, api: State) -> Purged:
    """Removes every waiting and delayed job (BullMQ's drain); active, completed and failed
    jobs stay."""
    return Purged(removed=await api.admin.purge(queue))


# -- jobs ------------------------------------------------------------------------------------


@router.get(
    "/queues/{queue}/jobs",
    summary="A page of a queue's jobs in one state",
    responses=responses(404, *_ALL),
)
async def list_jobs(
    queue: QueueName,
    api: State,
    state: Annotated[ListableState, Query(description="The state to list.")] = "waiting",
    offset: Offset = 0,
    limit: Limit = 50,
) -> JobList:
    """Newest first; ``total`` counts every job in the state."""
    listed: JobState = state
    return JobList.of(await api.admin.jobs(queue, listed, offset=offset, limit=limit))


@router.get(
    "/queues/{queue}/jobs/{job_id}",
    summary="One job with its runs and logs",
    responses=responses(404, *_ALL),
)
async def get_job(queue: QueueName, job_id: JobId, api: State) -> JobDetailBody:
    """Data, options, progress, result, failure reason and kind, stack traces, attempts,
    timestamps, its run-history rows and its log lines."""
    detail = await api.admin.job(queue, job_id)
    if detail is None:
        raise ApiError(404, f"no job {job_id!r} on queue {queue!r}", error="unknown_job")
    return JobDetailBody.of(detail)


@router.post(
    "/queues/{queue}/jobs/{job_id}/retry",
    summary="Retry a failed job",
    responses=responses(404, 409, *_ALL),
)
async def retry_job(queue: QueueName, job_id: JobId, api: State) -> ActionDone:
    """Moves the failed job back to waiting with fresh attempts; 409 if it is not failed."""
    if not await api.admin.retry_job(queue, job_id):
        raise ApiError(409, f"job {job_id!r} of queue {queue!r} is not failed", error="not_failed")
    return ActionDone(detail=f"job {job_id} is waiting again")


@router.post(
    "/queues/{queue}/jobs/{job_id}/promote",
    summary="Run a delayed job now",
    responses=responses(404, 409, *_ALL),
)
async def promote_job(queue: QueueName, job_id: JobId, api: State) -> ActionDone:
    """Makes a delayed job waiting now; 409 if it is not delayed."""
    await api.admin.promote_job(queue, job_id)
    return ActionDone(detail=f"job {job_id} is waiting now")


@router.delete(
    "/queues/{queue}/jobs/{job_id}",
    summary="Delete a job",
    responses=responses(404, 409, *_ALL),
)
async def delete_job(queue: QueueName, job_id: JobId, api: State) -> ActionDone:
    """Removes the job and its children; 409 while it runs."""
    await api.admin.delete_job(queue, job_id)
    return ActionDone(detail=f"job {job_id} was deleted")


# -- run history -----------------------------------------------------------------------------


@router.get("/runs", summary="Query the run history", responses=responses(*_ALL))
async def list_runs(
    api: State,
    queue: Annotated[str | None, Query(max_length=200, pattern=QUEUE_PATTERN)] = None,
    name: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Job name.")
    ] = None,
    job_id: Annotated[
        str | None, Query(alias="jobId", min_length=1, max_length=256, pattern=NO_NUL)
    ] = None,
    status: Annotated[RunStatus | None, Query()] = None,
    run_mode: Annotated[RunMode | None, Query(alias="runMode")] = None,
    key: Annotated[
        list[BusinessKey] | None,
        Query(
            max_length=10,
            description="Business key as `name=value` (e.g. `organizationId=org-1`); "
            "repeat for several, all must match.",
        ),
    ] = None,
    started_after: Annotated[Since, Query(alias="startedAfter")] = None,
    started_before: Annotated[Until, Query(alias="startedBefore")] = None,
    offset: Offset = 0,
    limit: Limit = 50,
) -> RunList:
    """Attempts matching every given filter, newest first."""
    keys = {}
    for pair in key or ():
        field, _, value = pair.partition("=")
        keys[field] = value
    query = _query(
        RunQuery,
        queue=queue,
        name=name,
        job_id=job_id,
        status=status,
        run_mode=run_mode,
        keys=keys,
        started_after=started_after,
        started_before=started_before,
        offset=offset,
        limit=limit,
    )
    return RunList(items=[RunBody.of(run) for run in await api.admin.runs(query)])


# -- dead letters ----------------------------------------------------------------------------


@router.get("/failed-jobs", summary="Dead letters, newest first", responses=responses(*_ALL))
async def list_failed_jobs(
    api: State,
    queue: Annotated[
        str | None, Query(max_length=200, pattern=QUEUE_PATTERN, description="Only this queue.")
    ] = None,
    name: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Job name.")
    ] = None,
    failure_kind: Annotated[FailureKind | None, Query(alias="failureKind")] = None,
    failed_after: Annotated[Since, Query(alias="failedAfter")] = None,
    failed_before: Annotated[Until, Query(alias="failedBefore")] = None,
    include_retried: Annotated[
        bool, Query(alias="includeRetried", description="Include retried ones.")
    ] = False,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many.")] = 100,
) -> FailedJobList:
    """Jobs that failed for good (permanently, or out of attempts), with payload and error."""
    query = _query(
        FailureQuery,
        queue=queue,
        name=name,
        failure_kind=failure_kind,
        failed_after=failed_after,
        failed_before=failed_before,
        include_retried=include_retried,
        offset=offset,
        limit=min(limit, 500),
    )
    return FailedJobList(items=[FailedJob.of(row) for row in await api.admin.failures(query)])


@router.post(
    "/failed-jobs/{failure_id}/retry",
    summary="Send a dead letter back to its queue",
    responses=responses(404, 409, *_ALL),
)
async def retry_failed_job(failure_id: FailureId, api: State) -> RetriedJob:
    """Requeue the failed job with fresh attempts (or a copy, if the queue dropped it) and
    mark the dead letter retried. 409 if it was retried already."""
    failure = await api.admin.failure(failure_id)
    if failure is None:
        raise ApiError(404, f"no dead letter with id {failure_id!r}", error="unknown_failure")
    if failure.retried_at is not None:
        raise ApiError(
            409,
            f"dead letter {failure_id!r} was already retried as job {failure.retry_job_id!r}",
            error="already_retried",
        )
    return RetriedJob.of(await api.admin.retry_failure(failure_id))


@router.post(
    "/failed-jobs/purge", summary="Delete dead letters past an age", responses=responses(*_ALL)
)
async def purge_failed_jobs(
    api: State,
    older_than_days: Annotated[
        float,
        Query(alias="olderThanDays", ge=0, le=MAX_AGE_DAYS, description="Age in days."),
    ] = 30,
) -> Purged:
    """Deletes dead letters that failed longer ago than ``olderThanDays`` (0: all)."""
    return Purged(removed=await api.admin.purge_failures(timedelta(days=older_than_days)))


# -- schedulers and outbox -------------------------------------------------------------------


@router.get("/schedulers", summary="Every job scheduler", responses=responses(*_ALL))
async def list_schedulers(api: State) -> SchedulerList:
    """Pattern or interval, next run and the last scheduled run of each job scheduler."""
    return SchedulerList(items=[SchedulerBody.of(view) for view in await api.admin.schedulers()])


@router.get("/outbox/streams", summary="Outbox streams", responses=responses(*_ALL))
async def list_outbox_streams(api: State) -> OutboxStreamList:
    """Every stream with its last seq and its committed events not yet published."""
    streams = await api.admin.outbox_streams()
    return OutboxStreamList(items=[OutboxStreamBody.of(stream) for stream in streams])


_TAIL_DOC = {
    200: {
        "description": "The stream's events as Server-Sent Events (`id: <seq>`, "
        "`event: <type>`, `data: <JSON>`), stored ones from `from_seq` then live; never ends "
        "on its own.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
    **responses(400, 404, *_ALL),
}


@router.get(
    "/outbox/streams/{stream}/events",
    summary="Tail an outbox stream (SSE)",
    response_class=StreamingResponse,
    responses=_TAIL_DOC,
    operation_id=STREAM_OPERATION,
)
async def tail_outbox_stream(
    stream: Annotated[str, Path(pattern=STREAM_PATTERN, description="The stream name.")],
    api: State,
    from_seq: Annotated[int, Query(ge=1, le=MAX_SEQ, description="First event to send.")] = 1,
    last_event_id: Annotated[
        str | None,
        Header(alias="Last-Event-ID", max_length=64, description="Resume after this seq."),
    ] = None,
) -> StreamingResponse:
    """Follows one outbox stream live, with no gap and no duplicate (O4)."""
    first = resume_from(from_seq, parse_last_event_id(last_event_id))
    frames = event_stream(
        api.infra.outbox.subscribe(stream, first),
        first_seq=first,
        terminal=frozenset(),
        ping_seconds=api.settings.sse_ping_seconds,
        closing=api.closing,
    )
    return StreamingResponse(
        frames,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
