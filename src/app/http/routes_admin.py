"""Admin endpoints behind a bearer token: list and retry dead letters (A4)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from portside.app.failures import retry_failure
from portside.app.http.problems import ApiError, responses
from portside.app.http.schemas import FailedJob, FailedJobList, RetriedJob
from portside.app.http.settings import ADMIN_TOKEN_ENV
from portside.app.http.state import ApiState, api_state

__all__ = ["require_admin", "router"]

State = Annotated[ApiState, Depends(api_state)]
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="adminToken",
    description=f"The value of {ADMIN_TOKEN_ENV}, sent as `Authorization: Bearer <token>`.",
)
QUEUE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*(?::[A-Za-z0-9][A-Za-z0-9_.\-]*)*$"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="portside-admin"'}


async def require_admin(
    api: State,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> None:
    """Let the request through only with the configured bearer token (constant-time compare)."""
    token = api.settings.admin_token
    if token is None:
        raise ApiError(
            403,
            f"the admin API is disabled: set {ADMIN_TOKEN_ENV} on the API server to enable it",
        )
    if credentials is None:
        raise ApiError(
            401,
            f"missing bearer token: send 'Authorization: Bearer <{ADMIN_TOKEN_ENV}>'",
            headers=_CHALLENGE,
        )
    given = credentials.credentials.encode("utf-8", "surrogateescape")
    if not hmac.compare_digest(given, token.get_secret_value().encode("utf-8")):
        raise ApiError(401, "wrong bearer token", headers=_CHALLENGE)


router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])
FailureId = Annotated[str, Path(min_length=1, max_length=100, description="Dead letter id.")]


@router.get(
    "/failed-jobs",
    summary="Dead letters, newest first",
    responses=responses(401, 403, 422, 503),
)
async def failed_jobs(
    api: State,
    queue: Annotated[
        str | None, Query(max_length=200, pattern=QUEUE_PATTERN, description="Only this queue.")
    ] = None,
    include_retried: Annotated[
        bool, Query(alias="includeRetried", description="Include retried ones.")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many.")] = 100,
) -> FailedJobList:
    """Jobs that failed for good (permanently, or out of attempts), with payload and error."""
    rows = await api.infra.require_history().list_failures(
        queue=queue, include_retried=include_retried, limit=limit
    )
    return FailedJobList(items=[FailedJob.of(row) for row in rows])


@router.post(
    "/failed-jobs/{failure_id}/retry",
    summary="Send a dead letter back to its queue",
    responses=responses(401, 403, 404, 409, 422, 503),
)
async def retry_failed_job(failure_id: FailureId, api: State) -> RetriedJob:
    """Requeue the failed job with fresh attempts (or a copy, if the queue dropped it) and
    mark the dead letter retried. 409 if it was retried already."""
    history = api.infra.require_history()
    failure = await history.get_failure(failure_id)
    if failure is None:
        raise ApiError(404, f"no dead letter with id {failure_id!r}", error="unknown_failure")
    if failure.retried_at is not None:
        raise ApiError(
            409,
            f"dead letter {failure_id!r} was already retried as job {failure.retry_job_id!r}",
            error="already_retried",
        )
    outcome = await retry_failure(api.known, api.infra, failure_id)
    return RetriedJob.of(outcome)
