"""HTTP failures, transient or permanent, and their ``Retry-After`` (Q17); no client imported.

The rules read what an HTTP client's error carries: ``error.response.status_code`` and
``error.response.headers``, the shape of ``httpx.HTTPStatusError`` (and of
``requests.HTTPError``). Nothing here imports an HTTP client.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple

from portside.ports.queue_types import FailureKind

__all__ = [
    "MAX_RETRY_AFTER",
    "RETRYABLE_CLIENT_STATUSES",
    "HttpFailure",
    "http_failure",
    "parse_retry_after",
    "status_kind",
]

RETRYABLE_CLIENT_STATUSES = frozenset({408, 425, 429})
"""4xx answers worth a retry: Request Timeout, Too Early, Too Many Requests."""

MAX_RETRY_AFTER = 86_400.0
"""The longest wait a ``Retry-After`` header can ask for, in seconds (one day): a wrong
header cannot park a job for longer."""


class HttpFailure(NamedTuple):
    """An HTTP answer found on an error: its status, kind and requested wait."""

    status: int
    kind: FailureKind | None
    """``transient`` or ``permanent`` by the status table; None for a status below 400."""
    retry_after: float | None
    """Seconds from ``Retry-After`` for a transient status, else None."""


def status_kind(status: int) -> FailureKind | None:
    """The kind of a failed HTTP answer by its status code (Q17).

    5xx and 408, 425, 429 are transient; every other 4xx is permanent (a retry sends the
    same request and gets the same answer). Below 400 the table says nothing (None).
    """
    if status >= 500 or status in RETRYABLE_CLIENT_STATUSES:
        return "transient"
    if status >= 400:
        return "permanent"
    return None


def parse_retry_after(value: object, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delay-seconds or an HTTP date.

    A date in the past means 0; a wait beyond ``MAX_RETRY_AFTER`` is cut to it; a value that
    is neither form is ignored (None), so the retry policy's backoff applies.

    Args:
        value: The header value.
        now: Epoch seconds to measure an HTTP date from (default: the system clock).
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        seconds = float(int(text))
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None  # RFC 9110 dates are GMT; a date without a zone is not one
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _header(headers: Any, name: str) -> object:
    if isinstance(headers, Mapping):
        # httpx.Headers and requests' CaseInsensitiveDict ignore case; a plain dict may not.
        found = headers.get(name)
        if found is None:
            found = next((v for k, v in headers.items() if str(k).lower() == name.lower()), None)
        return found
    return None


def http_failure(error: BaseException, *, now: float | None = None) -> HttpFailure | None:
    """The HTTP answer an error carries (``error.response``), or None when it carries none.

    Args:
        error: Typically ``httpx.HTTPStatusError`` from ``response.raise_for_status()``.
        now: Epoch seconds for an HTTP-date ``Retry-After`` (default: the system clock).
    """
    response = _attribute(error, "response")
    status = _attribute(response, "status_code")
    if isinstance(status, bool) or not isinstance(status, int):
        return None
    kind = status_kind(status)
    wait = None
    if kind == "transient":
        headers = _attribute(response, "headers")
        wait = parse_retry_after(_header(headers, "Retry-After"), now=now)
    return HttpFailure(status, kind, wait)


def _attribute(value: object, name: str) -> Any:
    """``value.name``, or None; a property that raises (httpx's ``request`` on an error built
    without one raises RuntimeError) must not break classifying a failure."""
    try:
        return getattr(value, name, None)
    except Exception:
        return None
