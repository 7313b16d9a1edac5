"""``POST /jobs/{name}`` (enqueue a registered job) and ``GET /jobs/{job_id}`` (its status)."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

import pydantic
from fastapi import APIRouter, Depends, Path, Query, Request

from portside.app.dispatching import dispatch
from portside.app.http.job_lookup import find_job
from portside.app.http.problems import ApiError, FieldProblem, field_problems, responses
from portside.app.http.schemas import EnqueuedJob, JobStatus
from portside.app.http.state import ApiState, api_state
from portside.ports.validation import JOB_ID_PATTERN, MAX_NAME_LENGTH

__all__ = ["ENQUEUE_OPERATION", "read_json_object", "router"]

ENQUEUE_OPERATION = "enqueueJob"
MAX_DELAY = 365 * 86_400.0

router = APIRouter(tags=["jobs"])
State = Annotated[ApiState, Depends(api_state)]


async def read_json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object; an empty body is ``{}``.

    Raises:
        ApiError: 400 for malformed JSON, 422 for JSON that is not an object.
    """
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as error:
        raise ApiError(
            400,
            f"the request body is not valid JSON ({error})",
            error="malformed_json",
        ) from error
    if not isinstance(value, dict):
        raise ApiError(
            422,
            f"the payload must be a JSON object, got a JSON {type(value).__name__}",
            fields=[FieldProblem(loc=["body"], msg="Input should be an object", type="dict_type")],
        )
    return value


@router.post(
    "/jobs/{name}",
    operation_id=ENQUEUE_OPERATION,
    status_code=202,
    summary="Enqueue a registered job",
    responses=responses(400, 404, 413, 422, 503),
)
async def enqueue_job(
    request: Request,
    api: State,
    name: Annotated[str, Path(max_length=100, description="A registered job name.")],
    job_id: Annotated[
        str | None,
        Query(
            alias="jobId",
            min_length=1,
            max_length=MAX_NAME_LENGTH,
            pattern=JOB_ID_PATTERN,
            description="Idempotency: the same id twice is one job. No ':', not all digits.",
        ),
    ] = None,
    delay: Annotated[
        float, Query(ge=0, le=MAX_DELAY, description="Seconds before the job is due.")
    ] = 0.0,
) -> EnqueuedJob:
    """Validate the body against the job's payload model and queue the job (A6, Q2).

    The body is the payload itself (a JSON object). Answers 202 with the job id at once; poll
    ``GET /jobs/{jobId}`` for the outcome.
    """
    if name not in api.registry:
        known = ", ".join(api.registry.names())
        raise ApiError(404, f"unknown job {name!r}; registered jobs: {known}", error="unknown_job")
    definition = api.registry.get(name)
    data = await read_json_object(request)
    try:
        payload = definition.payload.model_validate(data)
    except pydantic.ValidationError as error:
        fields = field_problems(error.errors(include_url=False), ("body",))
        where = ", ".join(".".join(str(part) for part in field.loc) for field in fields)
        raise ApiError(
            422,
            f"invalid payload for job {name!r}: {where}",
            error="invalid_payload",
            fields=fields,
        ) from error
    ref = await dispatch(
        api.registry,
        api.infra.queue,
        name,
        payload,
        job_id=job_id or f"{name}.{uuid.uuid4().hex}",
        delay=delay,
    )
    return EnqueuedJob.of(ref)


@router.get(
    "/jobs/{job_id}",
    summary="A job's state, progress and outcome",
    responses=responses(404, 422, 503),
)
async def job_status(
    api: State,
    job_id: Annotated[str, Path(min_length=1, max_length=256, description="The job id.")],
    queue: Annotated[
        str | None,
        Query(max_length=200, description="Look on this queue only (default: every queue)."),
    ] = None,
) -> JobStatus:
    """State (waiting, delayed, active, completed, failed, paused), progress, attempts, and
    the result or failure reason (A6, Q7). 404 when no queue has the job."""
    queues = api.queues
    if queue is not None:
        if queue not in queues:
            raise ApiError(404, f"unknown queue {queue!r}", error="unknown_queue")
        queues = (queue,)
    info = await find_job(api.infra.queue, job_id, queues, api.queue_of_job)
    if info is None:
        raise ApiError(404, f"no job with id {job_id!r}", error="unknown_job")
    return JobStatus.of(info)
