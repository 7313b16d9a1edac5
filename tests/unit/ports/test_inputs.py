"""Shared argument coercion (ports.inputs): the checks both the fakes and BullMQ go through."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from portside.ports import (
    JobOptions,
    NewJob,
    RateLimit,
    Schedule,
    ValidationError,
    default_classify,
)
from portside.ports.inputs import (
    CheckedJob,
    check_callable,
    check_classifier,
    check_job,
    check_lookup_id,
    check_new_job,
    check_seconds,
    check_sequence,
    coerce_model,
    coerce_options,
    coerce_rate_limit,
    coerce_schedule,
)


def _error(call: Any, *args: Any, **kwargs: Any) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        call(*args, **kwargs)
    return info.value


class _Order(BaseModel):
    order_id: int


def test_q1_options_from_an_instance_a_dict_or_none() -> None:
    """Q1: options pass as JobOptions, a dict of its fields, or None for all defaults."""
    given = JobOptions(job_id="order-1", attempts=2)
    assert coerce_options(given) is given
    assert coerce_options({"job_id": "order-1", "attempts": 2}) == given
    assert coerce_options(None) == JobOptions()


@pytest.mark.parametrize(
    ("value", "field", "message"),
    [
        ({"delay": -1}, "options.delay", "options.delay is invalid"),
        ({"colour": "red"}, "options.colour", "options.colour is not a known JobOptions field"),
        ("fast", "options", "options must be a JobOptions (or a dict of its fields), got str"),
    ],
)
def test_q2_bad_options_name_the_field(value: object, field: str, message: str) -> None:
    """Q2: a bad option names ``options.<field>``; a wrong type names ``options``."""
    error = _error(coerce_options, value)
    assert error.field == field
    assert message in str(error)


def test_q2_coerce_model_places_the_error_under_the_given_field() -> None:
    """Q2: the caller's location prefixes the model's own field path."""
    error = _error(coerce_model, {"max": 0, "per": 1}, RateLimit, "workers[2].rate_limit")
    assert error.field == "workers[2].rate_limit.max"


def test_q6_rate_limit_and_q11_schedule_from_dicts() -> None:
    """Q6, Q11: rate limits and schedules may be given as dicts; None means no rate limit."""
    assert coerce_rate_limit(None) is None
    assert coerce_rate_limit({"max": 60, "per": 60}) == RateLimit(max=60, per=60)
    assert _error(coerce_rate_limit, "60/min").field == "rate_limit"
    schedule = coerce_schedule({"scheduler_id": "s", "name": "n", "every": 60})
    assert schedule == Schedule(scheduler_id="s", name="n", every=60)
    assert _error(coerce_schedule, {"scheduler_id": "s", "name": "n"}).field == "schedule"


def test_q1_check_job_returns_name_json_payload_and_options() -> None:
    """Q1, Q2: a pydantic payload is dumped to JSON; options get their defaults."""
    checked = check_job("charge", _Order(order_id=7), {"priority": 3})
    assert checked == CheckedJob("charge", {"order_id": 7}, JobOptions(priority=3))
    assert check_job("charge", {}, None).options == JobOptions()


@pytest.mark.parametrize(
    ("args", "field", "message"),
    [
        (("", {}, None), "name", "name is empty"),
        (("x", {"n": float("nan")}, None), "data.n", "data.n is nan"),
        (("x", {}, {"delay": -1}), "options.delay", "options.delay is invalid"),
        (("", {}, None, "jobs[3]"), "jobs[3].name", "jobs[3]: name is empty"),
        (("x", [], None, "jobs[3]"), "jobs[3].data", "jobs[3].data must be a JSON object"),
        (("x", {}, {"attempts": 0}, "jobs[3]"), "jobs[3].options.attempts", "jobs[3].options"),
    ],
)
def test_q2_check_job_names_the_field_within_its_place(
    args: tuple[Any, ...], field: str, message: str
) -> None:
    """Q1, Q2: errors name the field, inside the bulk entry when the job is one."""
    error = _error(check_job, *args)
    assert error.field == field
    assert message in str(error)


def test_q1_bulk_entries_share_the_defaults_they_are_given() -> None:
    """Q1, Q3: entries without options take the bulk's defaults; their own options win."""
    defaults = JobOptions(attempts=7)
    plain = check_new_job(NewJob(name="a", data={"i": 1}), "jobs[0]", defaults)
    assert plain.options is defaults
    own = check_new_job({"name": "b", "data": {}, "options": {"attempts": 2}}, "jobs[1]", defaults)
    assert own == CheckedJob("b", {}, JobOptions(attempts=2))


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"name": "x", "data": {}, "colour": "red"}, "jobs[0].colour"),
        ("x", "jobs[0]"),
        ({"name": "x", "data": {"t": {1, 2}}}, "jobs[0].data.t"),
    ],
)
def test_q2_bad_bulk_entries_name_the_entry(item: object, field: str) -> None:
    """Q1, Q2: an unknown key, a wrong type or a non-JSON value names ``jobs[i]...``."""
    assert _error(check_new_job, item, "jobs[0]").field == field


@pytest.mark.parametrize("value", ["ab", b"ab", {"a": 1}, 3, None])
def test_q1_bulk_must_be_a_list(value: object) -> None:
    """Q1: a string or mapping is not a list of jobs."""
    error = _error(check_sequence, value, "jobs")
    assert (error.field, error.message.startswith("jobs must be a list")) == ("jobs", True)


def test_q1_bulk_list_or_tuple_passes() -> None:
    """Q1: lists and tuples are both sequences of jobs."""
    assert check_sequence((1, 2), "jobs") == (1, 2)
    assert check_sequence([], "jobs") == []


@pytest.mark.parametrize(
    ("value", "positive", "message"),
    [
        (True, False, "timeout must be a number of seconds, got bool"),
        ("5", False, "timeout must be a number of seconds, got str"),
        (-1, False, "timeout is -1. pass a finite number 0 or more"),
        (float("inf"), False, "timeout is inf"),
        (0, True, "timeout is 0. pass a finite number above 0"),
    ],
)
def test_q5_seconds_are_finite_and_not_negative(
    value: object, positive: bool, message: str
) -> None:
    """Q5: durations are finite numbers of seconds (above 0 where zero makes no sense)."""
    error = _error(check_seconds, value, "timeout", positive=positive)
    assert error.field == "timeout"
    assert message in str(error)


def test_q5_seconds_come_back_as_float() -> None:
    """Q5: an int duration is returned as float seconds."""
    assert check_seconds(0, "grace") == 0.0
    assert isinstance(check_seconds(3, "timeout", positive=True), float)


def test_q4_callables_are_checked_with_a_fix_for_their_role() -> None:
    """Q4: a handler and a classifier that cannot be called say what to pass instead."""
    handler = _error(check_callable, None, "handler")
    assert str(handler) == (
        "handler must be callable, got NoneType. pass an async function taking the job"
    )
    classify = _error(check_classifier, "permanent")
    assert classify.field == "classify"
    assert "returning 'transient' or 'permanent'" in str(classify)
    assert check_classifier(None) is None
    assert check_classifier(default_classify) is default_classify


@pytest.mark.parametrize("value", ["", 5, None])
def test_q7_lookup_ids_are_non_empty_strings(value: object) -> None:
    """Q7: get_job and friends refuse ids that cannot name a job, naming the argument."""
    assert _error(check_lookup_id, value).field == "job_id"
    error = _error(check_lookup_id, value, "scheduler_id")
    assert error.message.startswith("scheduler_id must be a non-empty string")


def test_q7_generated_ids_are_valid_lookup_ids() -> None:
    """Q7: integer ids in text (generated by Node or the fake) may be looked up."""
    assert check_lookup_id("42") == "42"
