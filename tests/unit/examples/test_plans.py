"""E1: the plan queues carry the limits, timeouts and backoff their plans ask for."""

from __future__ import annotations

import pytest

from portside.examples.dev import build_application
from portside.examples.plans import SAMPLES, build_registry
from portside.examples.plans.moderation import ReviewPayload, decide
from portside.examples.plans.phase1 import ATTEMPTS_ENV, phase1_definition, phase1_retry
from portside.ports import Backoff, RateLimit, ValidationError

PLAN_BACKOFF = Backoff.schedule(1, 5, 25)


def test_e1_each_plan_queue_has_its_limits_timeout_and_backoff() -> None:
    registry = build_registry()
    expected = {
        # name: (queue, timeout, concurrency, queue-wide cap, rate limit)
        "weather-ingestion": ("weather-ingestion", 30, 10, None, RateLimit(max=60, per=60)),
        "alert-fanout": ("alert-fanout", 10, 20, None, None),
        "color-extraction": ("color-extraction", 60, 5, 5, None),
        "moderation-review": ("moderation-review", 120, 10, None, None),
    }
    for name, (queue, timeout, concurrency, cap, rate) in expected.items():
        definition = registry.get(name)
        assert (
            definition.queue,
            definition.timeout,
            definition.concurrency,
            definition.queue_concurrency,
            definition.rate_limit,
        ) == (queue, timeout, concurrency, cap, rate), name
        assert definition.retry.backoff == PLAN_BACKOFF, name
        assert definition.retry.attempts == 4, name
    colors = registry.get("color-extraction")
    assert colors.executor is not None
    assert colors.executor.size == 5


def test_e1_analytics_jobs_run_daily() -> None:
    registry = build_registry()
    for name in ("analytics-ingest", "analytics-aggregate"):
        schedule = registry.get(name).schedule
        assert schedule is not None
        assert schedule.pattern is not None
        minute, hour, *rest = schedule.pattern.split()
        assert rest == ["*", "*", "*"], name
        assert minute.isdigit()
        assert hour.isdigit()


def test_e1_phase1_tasks_time_out_at_10_s_and_back_off_1_5_30() -> None:
    definition = phase1_definition({})
    assert (definition.queue, definition.timeout) == ("phase1-tasks", 10)
    assert definition.retry.backoff == Backoff.schedule(1, 5, 30)
    assert definition.retry.attempts == 3


def test_e1_phase1_attempts_come_from_the_environment() -> None:
    assert phase1_retry({ATTEMPTS_ENV: "7"}).attempts == 7
    for bad in ("0", "three", "-1", "101"):
        with pytest.raises(ValidationError, match=ATTEMPTS_ENV) as error:
            phase1_retry({ATTEMPTS_ENV: bad})
        assert error.value.field == ATTEMPTS_ENV


def test_e1_every_example_job_has_a_valid_sample_for_portside_dev() -> None:
    application = build_application()
    public = application.public_registry()
    missing = set(public.names()) - set(application.samples) - {"ingest"}
    assert missing == set()
    for name, sample in application.samples.items():
        public.get(name).validate(sample)
    assert set(SAMPLES) <= set(application.samples)


def test_e1_moderation_decisions() -> None:
    assert decide(ReviewPayload(itemId="a", text="nice")) == ("approve", [])
    assert decide(ReviewPayload(itemId="a", text="spam here"))[0] == "reject"
    links = "http://a http://b https://c"
    assert decide(ReviewPayload(itemId="a", text=links)) == ("escalate", ["3 links"])
