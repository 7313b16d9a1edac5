"""Q13, Q15, Q17 in the job platform: queue-wide caps, retention and classification from the
job definitions, on the in-memory fakes."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from typing import Any, cast

import pytest
from pydantic import BaseModel

from portside.adapters.memory import InMemoryQueue
from portside.app import (
    JobContext,
    JobDefinition,
    JobSchedule,
    Registry,
    WorkerRuntime,
    dispatch,
    plan_backfill,
    sync_schedules,
)
from portside.app.definition import DEFAULT_KEEP_COMPLETED, DEFAULT_KEEP_FAILED
from portside.app.dispatching import job_options
from portside.app.logs import JsonFormatter
from portside.infra import Infra
from portside.ports import Retention, ValidationError, http_classify
from tests.unit.app.support import Captured, Item, item_job

MakeRuntime = Callable[..., WorkerRuntime]


async def ok(payload: Item, ctx: JobContext) -> str:
    return payload.itemId


def _events(captured: Captured) -> list[dict[str, Any]]:
    formatter = JsonFormatter()
    return [json.loads(formatter.format(record)) for record in captured.records]


# -- Q15: retention -----------------------------------------------------------------------


def test_q15_definitions_keep_the_last_1000_completed_and_5000_failed_by_default() -> None:
    definition = item_job(ok)

    assert definition.remove_on_complete == Retention(count=1000) == DEFAULT_KEEP_COMPLETED
    assert definition.remove_on_fail == Retention(count=5000) == DEFAULT_KEEP_FAILED
    options = job_options(definition, job_id="j-1")
    assert (options.remove_on_complete, options.remove_on_fail) == (
        Retention(count=1000),
        Retention(count=5000),
    )


def test_q15_a_definition_sets_retention_by_count_and_age() -> None:
    definition = item_job(
        ok, remove_on_complete={"count": 50, "age": 3600}, remove_on_fail=Retention(age=86_400)
    )

    assert definition.remove_on_complete == Retention(count=50, age=3600)
    options = job_options(definition)
    assert options.remove_on_complete == Retention(count=50, age=3600)
    assert options.remove_on_fail == Retention(age=86_400)


@pytest.mark.parametrize(
    ("options", "field", "words"),
    [
        ({"remove_on_complete": -1}, "item.remove_on_complete", "keep-count must be from 0"),
        ({"remove_on_fail": {"count": -3}}, "item.remove_on_fail", "remove_on_fail"),
        ({"queue_concurrency": 0}, "item.queue_concurrency", "queue_concurrency must be"),
        ({"queue_concurrency": 10_001}, "item.queue_concurrency", "from 1 to 10000 or None"),
        ({"classifier": "http"}, "item.classifier", "not a function"),
    ],
)
def test_q13_q15_q17_bad_settings_fail_naming_the_field(
    options: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        item_job(ok, **options)

    assert caught.value.field == field
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("attr", "mine", "theirs"),
    [
        ("remove_on_complete", Retention(count=10), Retention(count=1000)),
        ("remove_on_fail", True, Retention(count=5000)),
        ("queue_concurrency", 5, None),
    ],
)
def test_q13_q15_jobs_sharing_a_queue_must_agree(attr: str, mine: object, theirs: object) -> None:
    registry = Registry([item_job(ok, name="a")])

    with pytest.raises(ValidationError, match=f"sets {attr}=") as caught:
        registry.register(item_job(ok, name="b", **{attr: cast(Any, mine)}))
    assert caught.value.field == f"b.{attr}"
    assert "put them on separate queues" in str(caught.value)


async def test_q15_dispatched_jobs_are_trimmed_to_the_definitions_retention(
    app_infra: Infra, fake_queue: InMemoryQueue, make_runtime: MakeRuntime
) -> None:
    registry = Registry([item_job(ok, remove_on_complete=Retention(count=2))])
    async with make_runtime(registry):
        refs = [
            await dispatch(registry, app_infra.queue, "item", {"itemId": f"i-{n}"})
            for n in range(5)
        ]
        await fake_queue.drain("items")

    assert (await fake_queue.counts("items")).completed == 2
    kept = [await fake_queue.get_job("items", ref.id) for ref in refs]
    assert [info is not None for info in kept] == [False, False, False, True, True]


class Daily(BaseModel):
    region: str = "ALL"
    date: dt.date | None = None


async def noop(payload: Daily, ctx: JobContext) -> None:
    return None


def _daily(**options: Any) -> JobDefinition[Daily]:
    return JobDefinition(
        name="daily", queue="sync", payload=Daily, handler=noop, date_field="date", **options
    )


def test_q15_backfill_jobs_carry_the_retention() -> None:
    plan = plan_backfill(
        Registry([_daily(remove_on_fail=Retention(count=7))]),
        "daily",
        start=dt.date(2026, 1, 1),
        end=dt.date(2026, 1, 3),
    )

    assert {job.options.remove_on_fail for job in plan.jobs} == {Retention(count=7)}
    assert {job.options.remove_on_complete for job in plan.jobs} == {DEFAULT_KEEP_COMPLETED}


async def test_q15_schedules_carry_retention_and_follow_a_change(app_infra: Infra) -> None:
    scheduled = JobSchedule(every=300)
    first = await sync_schedules(Registry([_daily(schedule=scheduled)]), app_infra.queue)
    (stored,) = await app_infra.queue.list_schedules("sync")
    assert stored.options is not None
    assert stored.options.remove_on_complete == DEFAULT_KEEP_COMPLETED

    changed = Registry([_daily(schedule=scheduled, remove_on_complete=Retention(count=10))])
    second = await sync_schedules(changed, app_infra.queue)
    third = await sync_schedules(changed, app_infra.queue)

    assert (first.created, second.updated, third.unchanged) == (
        ["sync/daily"],
        ["sync/daily"],
        ["sync/daily"],
    )
    (updated,) = await app_infra.queue.list_schedules("sync")
    assert updated.options is not None
    assert updated.options.remove_on_complete == Retention(count=10)


# -- Q13: the queue-wide cap ----------------------------------------------------------------


async def test_q13_the_worker_sets_the_registry_cap_once(
    app_infra: Infra, make_runtime: MakeRuntime, captured: Captured
) -> None:
    registry = Registry([item_job(ok, concurrency=10, queue_concurrency=5)])
    assert registry.queue_settings("items").queue_concurrency == 5

    async with make_runtime(registry):
        assert await app_infra.queue.queue_concurrency("items") == 5
    async with make_runtime(registry):  # a second process starting: nothing to change
        pass

    sets = [line for line in _events(captured) if line["event"] == "queue.concurrency_set"]
    assert [(line["queue"], line["limit"], line["previous"]) for line in sets] == [
        ("items", 5, None)
    ]


async def test_q13_a_changed_cap_replaces_the_old_one(
    app_infra: Infra, make_runtime: MakeRuntime
) -> None:
    await app_infra.queue.set_queue_concurrency("items", 8)

    async with make_runtime(Registry([item_job(ok, queue_concurrency=3)])):
        assert await app_infra.queue.queue_concurrency("items") == 3


async def test_q13_a_cap_the_registry_does_not_declare_is_kept_and_logged(
    app_infra: Infra, make_runtime: MakeRuntime, captured: Captured
) -> None:
    await app_infra.queue.set_queue_concurrency("items", 4)  # say, a Node fleet's cap

    async with make_runtime(Registry([item_job(ok)])):
        assert await app_infra.queue.queue_concurrency("items") == 4

    (line,) = [line for line in _events(captured) if line["event"] == "queue.concurrency_unmanaged"]
    assert (line["queue"], line["limit"]) == ("items", 4)
    assert "set_queue_concurrency('items', None)" in line["fix"]


async def test_q13_the_cap_holds_for_two_runtimes_of_concurrency_10(
    app_infra: Infra, fake_queue: InMemoryQueue, make_runtime: MakeRuntime
) -> None:
    """Q13: two worker runtimes (two processes' worth) of concurrency 10 on a queue capped at
    3 run at most 3 jobs at once between them."""
    running = 0
    peak = 0

    async def counted(payload: Item, ctx: JobContext) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            for _ in range(3):
                await asyncio.sleep(0)  # a yield point, not a wait: a fourth could start here
        finally:
            running -= 1

    registry = Registry([item_job(counted, concurrency=10, queue_concurrency=3)])
    async with make_runtime(registry), make_runtime(registry):
        for n in range(40):
            await dispatch(registry, app_infra.queue, "item", {"itemId": f"i-{n}"})
        outcomes = await fake_queue.drain("items")

    assert len(outcomes) == 40
    assert peak == 3, f"{peak} jobs ran at once under a queue cap of 3"


# -- Q17: the definition's classifier -------------------------------------------------------


class _StatusError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.response = type("Answer", (), {"status_code": status, "headers": {}})()


def test_q17_a_definition_classifies_http_answers_with_http_classify() -> None:
    plain = item_job(ok)
    http = item_job(ok, classifier=http_classify, classification={KeyError: "permanent"})

    assert plain.classify(_StatusError(404)) == "transient"
    assert http.classify(_StatusError(404)) == "permanent"
    assert http.classify(_StatusError(503)) == "transient"
    assert http.classify(KeyError("k")) == "permanent"  # the mapping goes first
    assert http.classify(json.JSONDecodeError("bad", "{", 0)) == "permanent"
