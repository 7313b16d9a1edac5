"""Q17: the default classification of parse errors, the HTTP table and ``Retry-After``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pydantic
import pytest

from portside.ports import (
    JobTimeoutError,
    PermanentError,
    TransientError,
    ValidationError,
    default_classify,
    http_classify,
    retry_after,
)
from portside.ports.http_failures import MAX_RETRY_AFTER, parse_retry_after, status_kind


def _raised(action: object) -> BaseException:
    assert callable(action)
    try:
        action()
    except Exception as error:
        return error
    raise AssertionError("nothing was raised")


class _Payload(pydantic.BaseModel):
    n: int


@pytest.mark.parametrize(
    ("what", "error", "kind"),
    [
        ("invalid JSON", _raised(lambda: json.loads("{oops")), "permanent"),
        ("undecodable bytes", _raised(lambda: b"\xff".decode("utf-8")), "permanent"),
        ("unencodable text", _raised(lambda: "é".encode("ascii")), "permanent"),
        ("pydantic validation", _raised(lambda: _Payload.model_validate({"n": "x"})), "permanent"),
        ("portside validation", ValidationError("bad date", field="date"), "permanent"),
        ("PermanentError", PermanentError("revoked"), "permanent"),
        ("TransientError", TransientError("503"), "transient"),
        ("a timeout", JobTimeoutError("slow"), "transient"),
        ("ValueError in general", ValueError("I/O operation on closed file"), "transient"),
        ("int() of bad text", _raised(lambda: int("x")), "transient"),
        ("connection reset", ConnectionResetError("peer"), "transient"),
        ("KeyError", KeyError("k"), "transient"),
    ],
)
def test_q17_default_classification_table(what: str, error: BaseException, kind: str) -> None:
    """Q17: parse and schema errors are permanent; a plain ValueError stays transient."""
    assert default_classify(error) == kind, what


def _status_error(status: int, headers: dict[str, str] | None = None) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "https://api.example.com/items")
    response = httpx.Response(status, headers=headers, request=request)
    try:
        response.raise_for_status()
    except httpx.HTTPStatusError as error:
        return error
    raise AssertionError(f"HTTP {status} raised nothing")


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "permanent"),
        (401, "permanent"),
        (403, "permanent"),
        (404, "permanent"),
        (409, "permanent"),
        (422, "permanent"),
        (408, "transient"),
        (425, "transient"),
        (429, "transient"),
        (500, "transient"),
        (502, "transient"),
        (503, "transient"),
        (504, "transient"),
    ],
)
def test_q17_http_classify_sorts_httpx_status_errors(status: int, kind: str) -> None:
    """Q17: 4xx is permanent except 408, 425 and 429; 5xx is transient."""
    assert http_classify(_status_error(status)) == kind


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.ConnectTimeout("slow"),
        httpx.RemoteProtocolError("closed mid-answer"),
    ],
)
def test_q17_http_classify_retries_connection_errors_and_timeouts(error: Exception) -> None:
    assert http_classify(error) == "transient"


def test_q17_http_classify_falls_back_to_the_defaults() -> None:
    assert http_classify(json.JSONDecodeError("bad", "{", 0)) == "permanent"
    assert http_classify(PermanentError("revoked")) == "permanent"
    assert http_classify(RuntimeError("boom")) == "transient"


def test_q17_an_error_without_a_status_is_not_an_http_answer() -> None:
    class Odd(Exception):
        def __init__(self) -> None:
            super().__init__("odd")
            self.response = {"status_code": 404}  # botocore-style dict, not an HTTP answer

    assert http_classify(Odd()) == "transient"
    assert retry_after(Odd()) is None


def test_q17_retry_after_reads_seconds_from_a_transient_answer() -> None:
    assert retry_after(_status_error(429, {"Retry-After": "120"})) == 120.0
    assert retry_after(_status_error(503, {"retry-after": "7"})) == 7.0
    assert retry_after(_status_error(503)) is None


def test_q17_retry_after_of_a_permanent_answer_is_ignored() -> None:
    assert retry_after(_status_error(404, {"Retry-After": "120"})) is None


def test_q17_retry_after_reads_an_http_date() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(later, now=now.timestamp()) == 90.0
    earlier = format_datetime(now - timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(earlier, now=now.timestamp()) == 0.0


@pytest.mark.parametrize("value", ["", "soon", "-5", "1.5", "Sat, 32 Foo 2026", None, 12])
def test_q17_unreadable_retry_after_falls_back_to_the_backoff(value: object) -> None:
    assert parse_retry_after(value) is None


def test_q17_retry_after_is_capped_at_a_day() -> None:
    assert parse_retry_after("999999999") == MAX_RETRY_AFTER


def test_q17_transient_error_carries_its_wait() -> None:
    assert retry_after(TransientError("rate limited", retry_after=2.5)) == 2.5
    assert retry_after(TransientError("plain")) is None
    assert retry_after(RuntimeError("plain")) is None


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), True, "5"])
def test_q17_a_bad_retry_after_is_refused_naming_the_field(bad: object) -> None:
    with pytest.raises(ValidationError, match="retry_after") as info:
        TransientError("rate limited", retry_after=bad)  # type: ignore[arg-type]
    assert info.value.field == "retry_after"


def test_q17_status_kind_says_nothing_below_400() -> None:
    assert status_kind(302) is None
    assert http_classify(_status_error(302)) == "transient"


def test_q17_a_response_property_that_raises_reads_as_no_answer() -> None:
    class Strict(Exception):
        @property
        def response(self) -> object:
            raise RuntimeError("no response was set")

    assert http_classify(Strict()) == "transient"
    assert retry_after(Strict()) is None
