"""The console's pages under ``/ui`` (OPS1): server-rendered HTML, read-only. Actions go to the
admin API from the console's script, with the session cookie and the console's header."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qs

import pydantic
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from portside.app.admin import LIST_STATES, FailureQuery, RunQuery
from portside.app.http.auth import SESSION_COOKIE, console_session, same_secret
from portside.app.http.console.live import ChangeSignal, queue_frames
from portside.app.http.console.render import SECURITY_HEADERS, can_read, login_redirect, page
from portside.app.http.settings import ADMIN_TOKEN_ENV
from portside.app.http.sse import event_stream
from portside.app.http.state import ApiState, api_state
from portside.ports import RUN_MODES, JobState, OutboxEvent, PortsideError

__all__ = ["PAGE_SIZE", "router"]

PAGE_SIZE = 25
State = Annotated[ApiState, Depends(api_state)]
router = APIRouter(prefix="/ui", include_in_schema=False)
RUN_STATUSES = ("running", "completed", "retrying", "failed", "lost")


def _page_number(raw: str | None) -> int:
    return int(raw) if raw and raw.isdigit() and 0 < int(raw) < 10_000 else 1


def _moment(raw: str | None) -> datetime | None:
    """A filter's date or date-time (``2026-01-31`` or ``2026-01-31T10:00``), read as UTC."""
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _safe_next(target: str | None) -> str:
    return target if target and target.startswith("/ui") and "//" not in target else "/ui/queues"


@router.get("")
async def home() -> Response:
    return RedirectResponse("/ui/queues", status_code=303, headers=SECURITY_HEADERS)


@router.get("/login")
async def login_form(request: Request, api: State, next: str | None = None) -> Response:
    return page(
        request,
        api,
        "login.html",
        next=_safe_next(next),
        enabled=api.settings.admin_token is not None,
        token_env=ADMIN_TOKEN_ENV,
        error=None,
    )


@router.post("/login")
async def login(request: Request, api: State) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    token = api.settings.admin_token
    given = (form.get("token") or [""])[0]
    target = _safe_next((form.get("next") or [""])[0])
    if token is None or not same_secret(given, token):
        return page(
            request,
            api,
            "login.html",
            status=401,
            next=target,
            enabled=token is not None,
            token_env=ADMIN_TOKEN_ENV,
            error="That is not the admin token.",
        )
    response = RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
    response.set_cookie(
        SESSION_COOKIE,
        console_session(token),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
async def logout() -> Response:
    response = RedirectResponse("/ui/login", status_code=303, headers=SECURITY_HEADERS)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/queues")
async def queues_page(request: Request, api: State) -> Response:
    if not can_read(request, api):
        return login_redirect(request)
    return page(request, api, "queues.html", queues=await api.admin.queues())


@router.get("/queues/{queue}")
async def queue_page(
    request: Request,
    api: State,
    queue: str,
    state: str = "waiting",
    page_number: Annotated[str | None, Query(alias="page")] = None,
) -> Response:
    if not can_read(request, api):
        return login_redirect(request)
    if queue not in api.admin.queue_names:
        return page(request, api, "missing.html", status=404, what=f"queue {queue!r}")
    listed: JobState = next((known for known in LIST_STATES if known == state), "waiting")
    number = _page_number(page_number)
    jobs = await api.admin.jobs(queue, listed, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    return page(
        request,
        api,
        "queue.html",
        summary=await api.admin.queue(queue),
        state=listed,
        states=LIST_STATES,
        jobs=jobs,
        page_number=number,
        pages=max(1, -(-jobs.total // PAGE_SIZE)),
    )


@router.get("/queues/{queue}/jobs/{job_id}")
async def job_page(request: Request, api: State, queue: str, job_id: str) -> Response:
    if not can_read(request, api):
        return login_redirect(request)
    if queue not in api.admin.queue_names:
        return page(request, api, "missing.html", status=404, what=f"queue {queue!r}")
    detail = await api.admin.job(queue, job_id)
    if detail is None:
        return page(request, api, "missing.html", status=404, what=f"job {job_id!r}")
    return page(request, api, "job.html", detail=detail, job=detail.job)


def _filters(request: Request, names: tuple[str, ...]) -> dict[str, str]:
    return {name: request.query_params.get(name, "").strip() for name in names}


@router.get("/dead-letters")
async def dead_letters_page(request: Request, api: State) -> Response:
    if not can_read(request, api):
        return login_redirect(request)
    filters = _filters(request, ("queue", "name", "failureKind", "failedAfter", "failedBefore"))
    number = _page_number(request.query_params.get("page"))
    problem = None
    letters: list[Any] = []
    try:
        query = FailureQuery(
            queue=filters["queue"] or None,
            name=filters["name"] or None,
            failure_kind=filters["failureKind"] or None,
            failed_after=_moment(filters["failedAfter"]),
            failed_before=_moment(filters["failedBefore"]),
            offset=(number - 1) * PAGE_SIZE,
            limit=PAGE_SIZE,
        )
        letters = await api.admin.failures(query)
    except (pydantic.ValidationError, PortsideError) as error:
        problem = str(error)
    return page(
        request,
        api,
        "dead_letters.html",
        letters=letters,
        filters=filters,
        problem=problem,
        page_number=number,
        queues=sorted(api.admin.queue_names),
    )


def _business_keys(raw: str) -> dict[str, str]:
    keys = {}
    for pair in raw.replace(",", " ").split():
        name, _, value = pair.partition("=")
        if name and value:
            keys[name] = value
    return keys


@router.get("/runs")
async def runs_page(request: Request, api: State) -> Response:
    if not can_read(request, api):
        return login_redirect(request)
    filters = _filters(
        request,
        ("queue", "name", "jobId", "status", "runMode", "keys", "startedAfter", "startedBefore"),
    )
    number = _page_number(request.query_params.get("page"))
    problem = None
    runs: list[Any] = []
    try:
        query = RunQuery(
            queue=filters["queue"] or None,
            name=filters["name"] or None,
            job_id=filters["jobId"] or None,
            status=filters["status"] or None,
            run_mode=filters["runMode"] or None,
            keys=_business_keys(filters["keys"]),
            started_after=_moment(filters["startedAfter"]),
            started_before=_moment(filters["startedBefore"]),
            offset=(number - 1) * PAGE_SIZE,
            limit=PAGE_SIZE,
        )
        runs = await api.admin.runs(query)
    except (pydantic.ValidationError, PortsideError) as error:
        problem = str(error)
    return page(
        request,
        api,
        "runs.html",
        runs=runs,
        filters=filters,
        problem=problem,
        page_number=number,
        queues=sorted(api.admin.queue_names),
        statuses=RUN_STATUSES,
        modes=RUN_MODES,
    )


@router.get("/schedulers")
async def schedulers_page(request: Request, api: State) -> Response:
    if not can_read(request, api):
        return login_redirect(request)
    return page(request, api, "schedulers.html", schedulers=await api.admin.schedulers())


@router.get("/outbox")
async def outbox_page(request: Request, api: State) -> Response:
    if not can_read(request, api):
        return login_redirect(request)
    return page(request, api, "outbox.html", streams=await api.admin.outbox_streams())


@router.get("/outbox/{stream}")
async def stream_page(request: Request, api: State, stream: str) -> Response:
    if not can_read(request, api):
        return login_redirect(request)
    streams = {found.stream: found for found in await api.admin.outbox_streams()}
    found = streams.get(stream)
    if found is None:
        return page(request, api, "missing.html", status=404, what=f"outbox stream {stream!r}")
    return page(request, api, "stream.html", stream=found, tail_from=max(1, found.last_seq - 19))


def _sse(frames: Any) -> StreamingResponse:
    headers = {**SECURITY_HEADERS, "X-Accel-Buffering": "no"}
    return StreamingResponse(frames, media_type="text/event-stream", headers=headers)


@router.get("/live/queues")
async def live_queues(request: Request, api: State) -> Response:
    if not can_read(request, api):
        return Response(status_code=401, headers=SECURITY_HEADERS)
    signal: ChangeSignal = request.app.state.console_signal
    return _sse(queue_frames(api.admin, signal, api.closing))


@router.get("/live/outbox/{stream}")
async def live_stream(request: Request, api: State, stream: str, from_seq: int = 1) -> Response:
    if not can_read(request, api):
        return Response(status_code=401, headers=SECURITY_HEADERS)
    first = max(1, from_seq)
    frames = event_stream(
        api.infra.outbox.subscribe(stream, first),
        first_seq=first,
        terminal=(),
        ping_seconds=api.settings.sse_ping_seconds,
        closing=api.closing,
        encode=_message_frame,
    )
    return _sse(frames)


def _message_frame(event: OutboxEvent) -> bytes:
    """An SSE frame without ``event:``, so the browser's ``onmessage`` sees every type."""
    data = {
        "seq": event.seq,
        "type": event.type,
        "payload": event.payload,
        "createdAt": event.created_at.isoformat(),
    }
    return f"id: {event.seq}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
