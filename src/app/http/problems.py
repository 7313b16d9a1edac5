"""Error responses: one ``application/problem+json`` shape (RFC 9457) for every 4xx/5xx, and
the handlers that produce it."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from portside.app.errors import UnknownJobError, UnknownQueueError
from portside.ports import (
    BackendUnavailableError,
    ConfigurationError,
    JobNotFoundError,
    JobStateError,
    ValidationError,
)

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "ApiError",
    "FieldProblem",
    "Problem",
    "field_problems",
    "install_error_handlers",
    "problem_response",
    "responses",
]

_log = logging.getLogger("portside.http")

PROBLEM_MEDIA_TYPE = "application/problem+json"

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    503: "unavailable",
}


class FieldProblem(BaseModel):
    """One invalid input: where it is (``["body", "date"]``), what is wrong, and the kind."""

    model_config = ConfigDict(frozen=True)

    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """Every error response (RFC 9457 problem details): the HTTP ``status`` and its
    ``title``, a machine-readable ``error`` code, a sentence, and field details."""

    model_config = ConfigDict(frozen=True)

    type: str = "about:blank"
    title: str
    status: int
    error: str
    detail: str
    fields: list[FieldProblem] = []


class ApiError(Exception):
    """Raise from an endpoint to answer ``status`` with a ``Problem`` body."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        error: str | None = None,
        fields: Sequence[FieldProblem] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.error = error or _CODES.get(status, "error")
        self.fields = list(fields)
        self.headers = dict(headers or {})


def problem_response(
    status: int,
    detail: str,
    *,
    error: str | None = None,
    fields: Sequence[FieldProblem] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A ``Problem`` response (``application/problem+json``)."""
    body = Problem(
        title=_title(status),
        status=status,
        error=error or _CODES.get(status, "error"),
        detail=detail,
        fields=list(fields),
    )
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=status,
        headers=headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def field_problems(
    errors: Iterable[Mapping[str, Any]], prefix: tuple[str, ...] = ()
) -> list[FieldProblem]:
    """``FieldProblem``s from pydantic's ``errors()`` (locations prefixed with ``prefix``)."""
    return [
        FieldProblem(
            loc=[*prefix, *(part if isinstance(part, int) else str(part) for part in item["loc"])],
            msg=str(item["msg"]),
            type=str(item["type"]),
        )
        for item in errors
    ]


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting ``Problem`` bodies for ``statuses``."""
    described = {
        400: "Malformed request (e.g. a body that is not JSON).",
        401: "Missing or wrong bearer token.",
        403: "The admin API is disabled (no admin token configured).",
        404: "Unknown job, run or dead letter.",
        409: "Conflict with the current state.",
        413: "Request body larger than the configured limit.",
        422: "Invalid input; `fields` lists each problem.",
        503: "A backend (Redis, Postgres) is unavailable; retry later.",
    }
    return {
        status: {"model": Problem, "description": described.get(status, "Error.")}
        for status in statuses
    }


def _json_invalid(errors: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    return next((item for item in errors if item.get("type") == "json_invalid"), None)


async def _request_invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    broken = _json_invalid(errors)
    if broken is not None:
        reason = (broken.get("ctx") or {}).get("error", "invalid JSON")
        return problem_response(
            400, f"the request body is not valid JSON ({reason})", error="malformed_json"
        )
    fields = field_problems(errors)
    where = ", ".join(".".join(str(part) for part in field.loc) for field in fields)
    return problem_response(422, f"invalid input: {where}", fields=fields)


def _route_methods(route: Any, scope: Mapping[str, Any], path: str) -> set[str]:
    """The methods ``route`` serves on ``path`` (a route, or a router FastAPI included)."""
    candidates = getattr(route, "_effective_candidates", None)
    if candidates is not None:  # FastAPI's included router: look at the routes it holds
        methods: set[str] = set()
        for candidate in candidates:
            regex = getattr(candidate, "path_regex", None)
            if regex is not None and regex.match(path):
                methods.update(getattr(candidate, "methods", None) or ())
        return methods
    match, _ = route.matches({**scope, "method": "\x00"})
    if match is Match.NONE:
        return set()
    return set(getattr(route, "methods", None) or ())


def _allowed_methods(request: Request, named: str) -> str:
    """Every method some route serves on the request's path (Starlette names only the first
    route that matched the path)."""
    methods = {method.strip() for method in named.split(",") if method.strip()}
    for route in request.app.router.routes:
        methods |= _route_methods(route, request.scope, request.url.path)
    return ", ".join(sorted(methods))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request, headers.get("Allow", ""))
        detail = f"{request.method} is not allowed here; allowed: {headers['Allow']}"
        return problem_response(405, detail, headers=headers)
    return problem_response(exc.status_code, str(exc.detail), headers=headers)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return problem_response(
        exc.status, exc.detail, error=exc.error, fields=exc.fields, headers=exc.headers
    )


async def _unknown_job(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(404, str(exc), error="unknown_job")


async def _job_not_found(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(404, str(exc), error="unknown_job")


async def _job_state(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(409, str(exc), error="wrong_state")


async def _unknown_queue(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(404, str(exc), error="unknown_queue")


async def _portside_invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ValidationError)
    fields = [FieldProblem(loc=[exc.field], msg=exc.message, type="value_error")]
    return problem_response(422, str(exc), fields=fields if exc.field else [])


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    _log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(500, "internal error; the server log has the details", error="internal")


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    _log.warning("backend unavailable: %s", exc)
    return problem_response(503, str(exc), headers={"Retry-After": "1"})


async def _misconfigured(request: Request, exc: Exception) -> JSONResponse:
    _log.error("configuration error: %s", exc)
    return problem_response(503, str(exc), error="misconfigured")


def install_error_handlers(app: FastAPI) -> None:
    """Answer every anticipated error with a ``Problem`` body and a 4xx (or 503) status."""
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(UnknownJobError, _unknown_job)
    app.add_exception_handler(UnknownQueueError, _unknown_queue)
    app.add_exception_handler(JobNotFoundError, _job_not_found)
    app.add_exception_handler(JobStateError, _job_state)
    app.add_exception_handler(ValidationError, _portside_invalid)
    app.add_exception_handler(BackendUnavailableError, _unavailable)
    app.add_exception_handler(ConfigurationError, _misconfigured)
    # A driver's own connection errors (a refused or reset socket) are outages, not bugs.
    app.add_exception_handler(OSError, _unavailable)
    app.add_exception_handler(Exception, _unexpected)
