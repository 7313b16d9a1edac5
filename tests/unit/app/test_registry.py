"""A1: job definitions are validated at registration with messages that name the field."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import BaseModel

from portside.app import (
    InvalidPayloadError,
    JobDefinition,
    JobSchedule,
    Registry,
    RetryPolicy,
    UnknownJobError,
    UnknownQueueError,
)
from portside.ports import JobTimeoutError, PermanentError, RateLimit, ValidationError
from tests.unit.app.support import Item, item_job


async def handle(payload: Item, ctx: Any) -> None:
    return None


class Dated(BaseModel):
    day: dt.date
    when: dt.datetime | None = None
    label: str = ""


async def handle_dated(payload: Dated, ctx: Any) -> None:
    return None


class InvalidToken(Exception):
    pass


class RevokedToken(InvalidToken):
    pass


def test_a1_valid_definition_registers_and_is_found_by_name() -> None:
    registry = Registry([item_job(handle)])

    assert registry.names() == ["item"]
    assert registry.get("item").queue == "items"
    assert "item" in registry
    assert registry.queues() == ["items"]


def test_a1_decorator_registers_the_handler() -> None:
    registry = Registry()

    @registry.job(name="decorated", queue="ns:work", payload=Item, concurrency=3)
    async def decorated(payload: Item, ctx: Any) -> str:
        return payload.itemId

    definition = registry.get("decorated")
    assert definition.handler is decorated
    assert registry.queue_settings("ns:work").concurrency == 3


@pytest.mark.parametrize(
    ("options", "field", "words"),
    [
        ({"name": "has space"}, "name", "job name 'has space' is invalid"),
        ({"name": "dotted.name"}, "name", "job name 'dotted.name' is invalid"),
        ({"queue": "bad queue"}, "item.queue", "queue name 'bad queue' is invalid"),
        ({"payload": dict}, "item.payload", "not a pydantic model class"),
        (
            {"retry": RetryPolicy(attempts=0)},
            "item.retry.attempts",
            "retry.attempts is invalid: Input should be greater than or equal to 1 (got 0)",
        ),
        (
            {"retry": RetryPolicy(attempts=1001)},
            "item.retry.attempts",
            "less than or equal to 1000",
        ),
        ({"timeout": 0}, "item.timeout", "timeout is invalid: Input should be greater than 0"),
        ({"timeout": 86_401}, "item.timeout", "timeout is 86401"),
        (
            {"concurrency": 0},
            "item.concurrency",
            "concurrency must be an integer from 1 to 10000, got 0",
        ),
        ({"rate_limit": {"max": 1}}, "item.rate_limit", "RateLimit(max=60, per=60.0)"),
        ({"business_keys": ("orgId",)}, "item.business_keys", "'orgId' is not a field of Item"),
        ({"id_keys": ("nope",)}, "item.id_keys", "use one of its fields (itemId, value)"),
        ({"date_field": "itemId"}, "item.date_field", "Item.itemId is <class 'str'>, not a date"),
        ({"classification": {"x": "permanent"}}, "item.classification", "not an exception class"),
        (
            {"classification": {KeyError: "fatal"}},
            "item.classification",
            "KeyError maps to 'fatal'",
        ),
        (
            {"schedule": JobSchedule(pattern="0 24 * * *")},
            "item.schedule.pattern",
            "hour value 24 is outside 0-23",
        ),
        (
            {"schedule": JobSchedule(pattern="* * *")},
            "item.schedule.pattern",
            "has 3 fields",
        ),
        (
            {"schedule": JobSchedule(pattern="0 * * * *", every=60)},
            "item.schedule",
            "exactly one of 'pattern' (cron) or 'every'",
        ),
        ({"schedule": JobSchedule(every=0.5)}, "item.schedule.every", "use >= 1 second"),
        (
            {"schedule": JobSchedule(every=60, timezone="Mars/Olympus")},
            "item.schedule.timezone",
            "unknown timezone 'Mars/Olympus'",
        ),
        (
            {"schedule": JobSchedule(every=60)},
            "item.schedule.data",
            "itemId: Field required",
        ),
    ],
)
def test_a1_invalid_definitions_fail_with_a_precise_message(
    options: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        item_job(handle, **options)

    assert caught.value.field == field
    assert words in str(caught.value)


def test_a1_sync_handler_is_rejected() -> None:
    def not_async(payload: Item, ctx: Any) -> None:
        return None

    with pytest.raises(ValidationError, match="is not an async function") as caught:
        item_job(not_async)  # type: ignore[arg-type]
    assert caught.value.field == "item.handler"


def test_a1_date_field_must_be_a_date_not_a_datetime() -> None:
    ok = JobDefinition(name="d", queue="q", payload=Dated, handler=handle_dated, date_field="day")
    assert ok.date_field == "day"
    with pytest.raises(ValidationError, match="not a date"):
        JobDefinition(name="d", queue="q", payload=Dated, handler=handle_dated, date_field="when")


def test_a1_duplicate_names_fail_naming_both_queues() -> None:
    registry = Registry([item_job(handle)])

    with pytest.raises(ValidationError) as caught:
        registry.register(item_job(handle, queue="other"))

    assert "job 'item' is registered twice (queues 'items' and 'other')" in str(caught.value)


def test_a1_jobs_sharing_a_queue_must_agree_on_concurrency_and_rate_limit() -> None:
    registry = Registry([item_job(handle, name="a", concurrency=5)])

    with pytest.raises(ValidationError, match="sets concurrency=2 but job 'a'"):
        registry.register(item_job(handle, name="b", concurrency=2))
    with pytest.raises(ValidationError, match="rate_limit"):
        registry.register(
            item_job(handle, name="c", concurrency=5, rate_limit=RateLimit(max=1, per=1))
        )
    registry.register(item_job(handle, name="d", concurrency=5, timeout=300))
    assert registry.queue_settings("items").timeout == 300


def test_a1_register_rejects_other_objects() -> None:
    with pytest.raises(ValidationError, match="register\\(\\) takes a JobDefinition"):
        Registry().register({"name": "x"})  # type: ignore[arg-type]


def test_unknown_job_and_queue_errors_list_what_exists() -> None:
    registry = Registry([item_job(handle), item_job(handle, name="other", queue="q2")])

    with pytest.raises(UnknownJobError, match=r"unknown job 'nope'.*\(item, other\)"):
        registry.get("nope")
    with pytest.raises(UnknownQueueError, match=r"queue 'zz'.*\(items, q2\)"):
        registry.queue_settings("zz")


def test_q4_classification_most_specific_rule_wins_and_invalid_payload_is_permanent() -> None:
    definition = item_job(
        handle,
        classification={
            InvalidToken: "permanent",
            RevokedToken: "transient",
            ValueError: "transient",
        },
    )

    assert definition.classify(InvalidToken()) == "permanent"
    assert definition.classify(RevokedToken()) == "transient"
    assert definition.classify(JobTimeoutError()) == "transient"
    assert definition.classify(PermanentError()) == "permanent"
    assert definition.classify(RuntimeError()) == "transient"
    # pydantic errors are ValueErrors, but a bad payload never becomes retryable.
    assert definition.classify(InvalidPayloadError("bad")) == "permanent"


def test_q2_validate_gives_field_level_detail() -> None:
    definition = item_job(handle)

    with pytest.raises(ValidationError) as caught:
        definition.validate({"value": "x"})

    message = str(caught.value)
    assert "invalid payload for job 'item'" in message
    assert "itemId: Field required" in message
    assert "value: Input should be a valid integer" in message
    assert caught.value.field == "data.itemId"
    with pytest.raises(InvalidPayloadError, match="itemId: Field required"):
        definition.validate_in_worker({})


def test_business_values_come_from_raw_data_by_key() -> None:
    definition = item_job(handle)

    assert definition.business_values({"itemId": "i-1", "value": 3}) == {"itemId": "i-1"}
    assert definition.business_values({"other": 1}) == {}
