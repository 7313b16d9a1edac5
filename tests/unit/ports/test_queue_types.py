"""Queue value types: every bad argument raises a portside ValidationError naming it."""

from __future__ import annotations

from typing import Any

import pytest

from portside.ports import (
    Backoff,
    ConfigurationError,
    JobOptions,
    NewJob,
    RateLimit,
    Retention,
    Schedule,
    ValidationError,
    default_attempts,
)
from portside.ports.inputs import coerce_options
from portside.ports.queue_types import ATTEMPTS_ENV, MAX_PRIORITY, default_options


def _error(model: Any, **kwargs: Any) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        model(**kwargs)
    return info.value


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        (
            {"retries": 3},
            "retries",
            "JobOptions.retries is not a known JobOptions field. remove it",
        ),
        (
            {"delay": -1},
            "delay",
            "JobOptions.delay is invalid: Input should be greater than or equal to 0 (got -1)",
        ),
        ({"delay": "soon"}, "delay", "JobOptions.delay is invalid"),
        ({"delay": float("nan")}, "delay", "JobOptions.delay is invalid"),
        ({"priority": -1}, "priority", "JobOptions.priority is invalid"),
        ({"priority": 2_097_152}, "priority", "less than or equal to 2097151"),
        ({"attempts": 0}, "attempts", "JobOptions.attempts is invalid"),
        ({"attempts": 10**30}, "attempts", "JobOptions.attempts is invalid"),
        ({"timeout": 0}, "timeout", "greater than 0"),
        ({"job_id": "a:b"}, "job_id", "JobOptions.job_id is invalid: job id 'a:b' contains ':'"),
        ({"job_id": "42"}, "job_id", "job id '42' is an integer"),
        ({"job_id": 42}, "job_id", "JobOptions.job_id is invalid"),
        (
            {"remove_on_complete": -1},
            "remove_on_complete",
            "keep-count must be from 0 to",
        ),
        ({"dedupe_key": ""}, "dedupe_key", "at least 1 character"),
        ({"backoff": {"kind": "linear"}}, "backoff.kind", "JobOptions.backoff.kind is invalid"),
    ],
)
def test_job_options_refuse_bad_values(kwargs: dict[str, Any], field: str, message: str) -> None:
    error = _error(JobOptions, **kwargs)
    assert message in str(error), str(error)
    assert error.field == field


def test_job_options_report_how_many_problems() -> None:
    error = _error(JobOptions, delay=-1, attempts=0)
    assert "(and 1 more problem)" in str(error)
    assert isinstance(error, ValueError)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, 3), ("", 3), ("  ", 3), ("7", 7), ("1", 1)],
)
def test_q3_default_attempts_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, raw: str | None, expected: int
) -> None:
    """Q3: 3 by default, ``PORTSIDE_DEFAULT_ATTEMPTS`` when set."""
    if raw is None:
        monkeypatch.delenv(ATTEMPTS_ENV, raising=False)
    else:
        monkeypatch.setenv(ATTEMPTS_ENV, raw)
    assert default_attempts() == expected
    assert JobOptions().attempts == expected


@pytest.mark.parametrize("raw", ["0", "-2", "three", "2.5"])
def test_q3_invalid_default_attempts_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv(ATTEMPTS_ENV, raw)
    with pytest.raises(ConfigurationError) as info:
        JobOptions()
    assert str(info.value) == (
        f"PORTSIDE_DEFAULT_ATTEMPTS={raw!r} is not a positive integer. set "
        "PORTSIDE_DEFAULT_ATTEMPTS to 1 or more, or unset it for the default of 3"
    )
    assert info.value.field == ATTEMPTS_ENV


def test_q3_default_options_are_shared_and_follow_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Q3: options for a job that gives none are ``JobOptions()``, one shared instance per
    ``PORTSIDE_DEFAULT_ATTEMPTS`` value, read again on every call."""
    monkeypatch.delenv(ATTEMPTS_ENV, raising=False)
    first = default_options()
    assert first == JobOptions()
    assert first is default_options()
    monkeypatch.setenv(ATTEMPTS_ENV, "9")
    assert default_options().attempts == 9
    monkeypatch.setenv(ATTEMPTS_ENV, "0")
    with pytest.raises(ConfigurationError) as info:
        default_options()
    assert info.value.field == ATTEMPTS_ENV
    monkeypatch.delenv(ATTEMPTS_ENV)
    assert default_options() is first


def test_q3_backoff_delays() -> None:
    assert [Backoff.fixed(2).delay_for(n) for n in (1, 2, 3)] == [2, 2, 2]
    assert [Backoff.exponential(1).delay_for(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 8]
    assert [Backoff.schedule(1, 5, 30).delay_for(n) for n in (1, 2, 3, 4)] == [1, 5, 30, 30]
    assert [Backoff.schedule(1, 5, 25).delay_for(n) for n in (0, 3)] == [1, 25]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "schedule"}, "a schedule backoff needs at least one delay, e.g. (1, 5, 30)"),
        (
            {"kind": "schedule", "delays": (1, -5)},
            "schedule delays must be finite seconds",
        ),
        ({"kind": "fixed", "delays": (1,)}, "'delays' only applies to kind='schedule'"),
        ({"kind": "fixed", "delay": -1}, "Backoff.delay is invalid"),
        ({"kind": "fibonacci"}, "Backoff.kind is invalid"),
    ],
)
def test_q3_bad_backoff(kwargs: dict[str, Any], message: str) -> None:
    assert message in str(_error(Backoff, **kwargs))


@pytest.mark.parametrize(
    ("model", "kwargs", "field", "message"),
    [
        (Retention, {"count": -1}, "count", "Retention.count is invalid"),
        (Retention, {"age": 0}, "age", "Retention.age is invalid"),
        (RateLimit, {"max": 0, "per": 60}, "max", "RateLimit.max is invalid"),
        (RateLimit, {"max": 1, "per": 0}, "per", "RateLimit.per is invalid"),
        (RateLimit, {"max": 1}, "per", "RateLimit.per is invalid: Field required"),
        (NewJob, {"name": "x"}, "data", "NewJob.data is invalid: Field required"),
        (
            NewJob,
            {"name": "x", "data": ["a"]},
            "data",
            "NewJob.data is invalid: must be a dict or a pydantic model (a JSON object), got list",
        ),
        (NewJob, {"name": "x", "data": {1: "a"}}, "data", "has the non-string key 1"),
        (NewJob, {"name": "x", "data": {}, "delay": 1}, "delay", "not a known NewJob field"),
        (
            NewJob,
            {"name": "x", "data": {}, "options": {"delay": -1}},
            "options.delay",
            "NewJob.options.delay is invalid",
        ),
        (Schedule, {"scheduler_id": "s", "name": "n"}, "Schedule", "give exactly one of"),
        (
            Schedule,
            {"scheduler_id": "s", "name": "n", "every": 1, "pattern": "* * * * *"},
            "Schedule",
            "give exactly one of 'pattern' (cron) or 'every' (seconds)",
        ),
        (Schedule, {"scheduler_id": "", "name": "n", "every": 1}, "scheduler_id", "at least 1"),
        (Schedule, {"scheduler_id": "s", "name": "n", "every": -5}, "every", "greater than 0"),
        (
            Schedule,
            {"scheduler_id": "s", "name": "n", "every": 5, "options": {"zzz": 1}},
            "options.zzz",
            "Schedule.options.zzz is not a known JobOptions field",
        ),
    ],
)
def test_other_queue_types_refuse_bad_values(
    model: Any, kwargs: dict[str, Any], field: str, message: str
) -> None:
    error = _error(model, **kwargs)
    assert message in str(error), str(error)
    assert error.field == field


def test_model_error_places_a_model_inside_the_callers_input() -> None:
    """Adapters validating ``options={...}`` report ``options.<field>`` (Q2)."""
    import pydantic

    from portside.ports.model import model_error

    with pytest.raises(pydantic.ValidationError) as info:
        JobOptions.model_validate({"backoff": {"kind": "schedule", "delays": []}})
    error = model_error(info.value, JobOptions, "options")
    assert error.field == "options.backoff"
    assert str(error).startswith(
        "options.backoff is invalid: a schedule backoff needs at least one delay"
    )


def test_q1_priority_bound_is_node_bullmqs() -> None:
    """Q1, Q12: 2**21 - 1 is the largest priority Node BullMQ 5 accepts; one more is refused,
    naming ``options.priority``."""
    assert MAX_PRIORITY == 2_097_151
    assert JobOptions(priority=2_097_151).priority == 2_097_151
    assert coerce_options({"priority": 2_097_151}).priority == 2_097_151
    with pytest.raises(ValidationError) as info:
        coerce_options({"priority": 2_097_152})
    assert info.value.field == "options.priority"
    assert "options.priority is invalid" in str(info.value)
    assert "less than or equal to 2097151" in str(info.value)
