"""Failure classification: which handler exceptions are worth a retry, and when (Q4, Q17)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pydantic

from portside.ports.errors import PermanentError, TransientError, ValidationError
from portside.ports.http_failures import http_failure
from portside.ports.queue_types import FailureKind

__all__ = [
    "PARSE_ERRORS",
    "Classifier",
    "default_classify",
    "describe_error",
    "http_classify",
    "retry_after",
]

Classifier = Callable[[BaseException], FailureKind]

PARSE_ERRORS: tuple[type[BaseException], ...] = (
    json.JSONDecodeError,
    UnicodeError,
    pydantic.ValidationError,
    ValidationError,
)
"""Errors of input that cannot be read or does not fit its schema: permanent by default (Q17).

JSON that does not parse, bytes or text that cannot be decoded or encoded (``UnicodeError``:
``UnicodeDecodeError`` and ``UnicodeEncodeError``), a payload that fails its pydantic model,
and portside's own ``ValidationError``. A plain ``ValueError`` is not among them: it is raised
for too many passing conditions to be sure no retry helps.
"""


def default_classify(error: BaseException) -> FailureKind:
    """Transient or permanent, by portside's defaults (Q4, Q17).

    ``TransientError`` (and its subclasses, timeouts included) is transient;
    ``PermanentError`` and the ``PARSE_ERRORS`` (bad input: no retry makes it valid) are
    permanent; any other exception is transient.
    """
    if isinstance(error, TransientError):
        return "transient"
    if isinstance(error, (PermanentError, *PARSE_ERRORS)):
        return "permanent"
    return "transient"


def http_classify(error: BaseException) -> FailureKind:
    """The classifier for jobs that call HTTP APIs (Q17): the status table, then the defaults.

    An error carrying an HTTP answer (``httpx.HTTPStatusError``: ``error.response``) is
    permanent for a 4xx other than 408, 425 and 429, and transient for those and every 5xx.
    Anything else, connection errors and timeouts included, is classified by
    ``default_classify`` (transient). Use it as ``consume(..., classify=http_classify)`` or
    ``JobDefinition(..., classifier=http_classify)``; a ``Retry-After`` on a transient answer
    sets the next delay with either classifier (see ``retry_after``).
    """
    found = http_failure(error)
    if found is not None and found.kind is not None:
        return found.kind
    return default_classify(error)


def retry_after(error: BaseException) -> float | None:
    """Seconds a failed attempt asks to wait before the next one, or None for the backoff.

    ``TransientError(retry_after=...)`` sets it; so does the ``Retry-After`` header of a
    transient HTTP answer the error carries (429, 503, ... on ``error.response``). Both
    adapters use it for a transient failure that will be retried, in place of the retry
    policy's backoff for that retry (Q17).
    """
    if isinstance(error, TransientError):
        return error.retry_after
    found = http_failure(error)
    return None if found is None else found.retry_after


def describe_error(error: BaseException) -> str:
    """``ClassName: message`` — the failure reason stored on a job."""
    text = str(error)
    name = type(error).__name__
    return f"{name}: {text}" if text else name
