"""Q1, Q2: hostile payloads, names, ids and options on the real BullMQ adapter."""

from __future__ import annotations

import asyncio
import itertools
import math
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Redis

from portside.adapters.bullmq import BullMQQueue
from portside.ports import Job, JobOptions, ValidationError
from tests.reliability.conftest import Figures
from tests.reliability.hostile import (
    BIG,
    JSON_CHARS,
    good_json,
    hostile_payloads,
    mostly,
    nested,
)
from tests.reliability.scale import Scale
from tests.reliability.sync_env import Loop, examples

pytestmark = pytest.mark.reliability

QUEUE = "hostile:queue"


class QueueEnv:
    """The adapter, a raw Redis client and a loop, for one synchronous test."""

    def __init__(self, loop: Loop, queue: BullMQQueue, redis: Redis) -> None:
        self.loop = loop
        # Typed loosely on purpose: these tests pass dicts, wrong types and worse.
        self.queue: Any = queue
        self.redis = redis
        self.ids = itertools.count()

    def snapshot(self, queue: str = QUEUE) -> tuple[Any, ...]:
        """Counts and events-stream length: any write by an enqueue changes one of them."""

        async def read() -> tuple[Any, ...]:
            counts = await self.queue.counts(queue)
            events = await self.redis.xlen(self.queue.bullmq_name(queue).key("events"))
            return (counts, events)

        return self.loop.run(read())

    def refused(self, call: Any) -> ValidationError:
        """Run ``call`` and return the ValidationError it must raise."""
        with pytest.raises(ValidationError) as caught:
            self.loop.run(call)
        assert caught.value.message, caught.value
        assert caught.value.fix, caught.value
        return caught.value

    def still_works(self, queue: str = QUEUE) -> None:
        """A good job enqueued after the hostile ones completes (nothing is stuck)."""

        async def handler(job: Job) -> str:
            return f"done {job.id}"

        async def check() -> None:
            ref = await self.queue.enqueue(
                queue, "good", {"ok": True}, options=JobOptions(job_id=f"good-{next(self.ids)}")
            )
            self.queue.consume(queue, handler)
            outcomes = await self.queue.drain(queue)
            assert (ref.id, "completed") in [(o.job_id, o.status) for o in outcomes]
            info = await self.queue.get_job(queue, ref.id)
            assert info is not None
            assert info.result == f"done {ref.id}"

        self.loop.run(check())


@pytest.fixture
def env(redis_url: str, redis_prefix: str) -> Iterator[QueueEnv]:
    with asyncio.Runner() as runner:
        queue = BullMQQueue(redis_url, prefix=redis_prefix)
        redis = Redis.from_url(redis_url)
        try:
            yield QueueEnv(Loop(runner), queue, redis)
        finally:
            runner.run(queue.close())
            runner.run(redis.aclose())


def test_q2_hostile_payloads_are_refused_and_write_nothing(
    env: QueueEnv, scale: Scale, figures: Figures
) -> None:
    """Oversized payloads, lone surrogates, deep nesting, NaN, huge integers, non-JSON types
    and non-objects: ``ValidationError`` naming the field under ``data``, no job, no event."""
    tried: Counter[str] = Counter()
    before = env.snapshot()

    @examples(scale, factor=2)
    @given(payload=hostile_payloads())
    def check(payload: Any) -> None:
        job_id = f"bad-{next(env.ids)}"
        error = env.refused(env.queue.enqueue(QUEUE, "job", payload, options={"job_id": job_id}))
        assert error.field is not None, error.field
        assert error.field.startswith("data"), error.field
        assert env.loop.run(env.queue.get_job(QUEUE, job_id)) is None
        tried[type(payload).__name__] += 1

    check()
    assert env.snapshot() == before
    env.still_works()
    figures.update(inputs_tried=sum(tried.values()), refused=sum(tried.values()), written=0)


@st.composite
def hostile_jobs(draw: st.DrawFn) -> dict[str, Any]:
    """A bulk entry with exactly one thing wrong: payload, name or options."""
    what = draw(st.sampled_from(["data", "name", "options"]))
    job: dict[str, Any] = {"name": "job", "data": {"n": 1}}
    if what == "data":
        job["data"] = draw(hostile_payloads())
    elif what == "name":
        job["name"] = draw(st.sampled_from(["", " ", "a\nb", "tab\tname", "x" * 201, "nul\x00"]))
    else:
        job["options"] = draw(
            st.sampled_from(
                [
                    {"attempts": 0},
                    {"delay": -1},
                    {"delay": math.nan},
                    {"priority": -1},
                    {"priority": 2**40},
                    {"job_id": "has:colon"},
                    {"job_id": "12345"},
                    {"job_id": ""},
                    {"backoff": {"kind": "schedule"}},
                    {"unknown": True},
                    {"timeout": 0},
                    {"dedupe_key": ""},
                ]
            )
        )
    return job


def test_q1_bulk_enqueue_with_one_bad_job_adds_none(
    env: QueueEnv, scale: Scale, figures: Figures
) -> None:
    """``enqueue_bulk`` validates every job before sending any: one bad entry anywhere in the
    list refuses the whole call, names ``jobs[i]``, and none of the good jobs exists."""
    tried = 0
    before = env.snapshot()

    @examples(scale)
    @given(
        good=st.lists(
            st.dictionaries(st.text(JSON_CHARS, max_size=5), good_json, max_size=3), max_size=12
        ),
        bad=hostile_jobs(),
        position=st.integers(min_value=0),
    )
    def check(good: list[dict[str, Any]], bad: dict[str, Any], position: int) -> None:
        nonlocal tried
        jobs: list[Any] = [
            {"name": "job", "data": data, "options": {"job_id": f"bulk-{next(env.ids)}"}}
            for data in good
        ]
        index = position % (len(jobs) + 1)
        jobs.insert(index, bad)
        error = env.refused(env.queue.enqueue_bulk(QUEUE, jobs))
        assert error.field is not None, error.field
        assert error.field.startswith(f"jobs[{index}]"), error.field
        for job in jobs:
            job_id = (job.get("options") or {}).get("job_id")
            if isinstance(job_id, str) and job_id.startswith("bulk-"):
                assert env.loop.run(env.queue.get_job(QUEUE, job_id)) is None
        tried += 1

    check()
    assert env.snapshot() == before
    env.still_works()
    figures.update(inputs_tried=tried, refused=tried, written=0)


durations = mostly(
    st.floats(min_value=0, max_value=1e6) | st.integers(0, 10**6),
    st.floats()
    | st.sampled_from([math.nan, math.inf, -0.0, 5e-324, -1e-9, 1e300, 2.0**31, 2.0**63])
    | st.integers(-BIG, BIG)
    | st.text(max_size=5)
    | st.none(),
)
counts = mostly(
    st.integers(0, 1000),
    st.integers(-BIG, BIG)
    | st.sampled_from([2**31, 2**63, 2**70, 2**200])
    | st.booleans()
    | st.floats(),
)
hostile_options = st.fixed_dictionaries(
    {},
    optional={
        "job_id": mostly(
            st.from_regex(r"[a-z][A-Za-z0-9._-]{0,30}", fullmatch=True),
            st.text(max_size=40) | st.integers(-BIG, BIG),
        ),
        "delay": durations,
        "priority": counts,
        "attempts": counts,
        "timeout": durations,
        "backoff": st.fixed_dictionaries(
            {"kind": st.sampled_from(["fixed", "exponential", "schedule", "linear", ""])},
            optional={"delay": durations, "delays": st.lists(durations, max_size=4)},
        ),
        "remove_on_complete": counts
        | st.fixed_dictionaries({}, optional={"count": counts, "age": durations}),
        "remove_on_fail": counts,
        "dedupe_key": st.text(max_size=250),
        "dedupe_ttl": durations,
    },
) | st.just({"surprise": 1})
queue_names = mostly(
    st.from_regex(
        r"[A-Za-z0-9][A-Za-z0-9_.-]{0,12}(:[A-Za-z0-9][A-Za-z0-9_.-]{0,12}){0,2}", fullmatch=True
    ),
    st.text(max_size=30)
    | st.sampled_from(["a::b", ":a", "a:", "x" * 201, "é", "a b", "a\x00b", "a/b", "a{b}"]),
)
job_names = mostly(
    st.text(min_size=1, max_size=40).filter(str.strip),
    st.sampled_from(["", " ", "\n", "x" * 201, "name\r", "a\tb"]),
)


def test_q1_hostile_names_ids_and_options_are_refused_or_round_trip(
    env: QueueEnv, scale: Scale, figures: Figures
) -> None:
    """Queue names, job names, job ids and options from anywhere in their domains: each
    enqueue either raises ``ValidationError`` or stores a job that reads back as given."""
    outcome: Counter[str] = Counter()
    stored: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    holders: dict[tuple[str, Any], str] = {}

    @examples(scale, factor=3)
    @given(queue=queue_names, name=job_names, options=hostile_options, data=good_json)
    def check(queue: str, name: str, options: dict[str, Any], data: Any) -> None:
        payload = {"value": data}
        ref = env.loop.run_or_refusal(env.queue.enqueue(queue, name, payload, options=options))
        if isinstance(ref, ValidationError):
            assert ref.message, ref
            assert ref.fix, ref
            outcome["refused"] += 1
            return
        outcome["accepted"] += 1
        dedupe = (queue, options.get("dedupe_key"))
        if "job_id" in options:
            # Q1: a dedupe key still held by an earlier job yields that job instead.
            assert ref.id in (options["job_id"], holders.get(dedupe)), (ref.id, options)
        if dedupe[1] is not None:
            holders[dedupe] = ref.id
        # Q1: an id used before is the same job, with the data it was first given.
        first = stored.setdefault((queue, ref.id), (name, payload))
        info = env.loop.run(env.queue.get_job(queue, ref.id))
        assert info is not None, (queue, ref)
        assert (info.name, info.data) == first

    check()
    for queue in sorted({queue for queue, _ in stored})[:3]:
        env.still_works(queue)
    env.still_works()
    figures.update(inputs_tried=sum(outcome.values()), **outcome)


@pytest.mark.parametrize(
    "options",
    [
        {"delay": math.inf},
        {"delay": 1e300},
        {"timeout": math.inf},
        {"backoff": {"kind": "fixed", "delay": math.inf}},
        {"backoff": {"kind": "schedule", "delays": [1, 1e300]}},
        {"dedupe_key": "k", "dedupe_ttl": math.inf},
        {"remove_on_complete": {"age": math.inf}},
        {"remove_on_fail": 2**70},
    ],
)
def test_q1_infinite_or_huge_option_values_are_refused(
    env: QueueEnv, options: dict[str, Any]
) -> None:
    """Durations and counts must be finite and fit BullMQ's integer milliseconds."""
    before = env.snapshot()
    env.refused(env.queue.enqueue(QUEUE, "job", {"n": 1}, options=options))
    assert env.snapshot() == before


@pytest.mark.parametrize(
    "call",
    ["enqueue with job id", "enqueue with job name", "bulk job name", "get_job"],
)
def test_q1_lone_surrogates_in_names_and_ids_are_refused(env: QueueEnv, call: str) -> None:
    """A job id or name holding a lone surrogate (invalid UTF-8) is a ValidationError."""
    text = "job-\ud800"
    queue = env.queue
    calls = {
        "enqueue with job id": lambda: queue.enqueue(QUEUE, "job", {}, options={"job_id": text}),
        "enqueue with job name": lambda: queue.enqueue(QUEUE, text, {}),
        "bulk job name": lambda: queue.enqueue_bulk(
            QUEUE, [{"name": "ok", "data": {}}, {"name": text, "data": {}}]
        ),
        "get_job": lambda: queue.get_job(QUEUE, text),
    }
    before = env.snapshot()
    if call == "get_job":
        try:
            found = env.loop.run(queue.get_job(QUEUE, text))
        except ValidationError:
            found = None
        assert found is None  # no job can have that id
    else:
        env.refused(calls[call]())
    assert env.snapshot() == before


def test_q2_integers_too_long_to_print_are_refused(env: QueueEnv) -> None:
    """A payload integer of 5,000 digits is refused like any other out-of-range integer."""
    before = env.snapshot()
    error = env.refused(env.queue.enqueue(QUEUE, "job", {"n": 10**5000}))
    assert error.field == "data.n"
    assert env.snapshot() == before


def test_q1_bulk_payload_with_a_non_string_key_is_refused(env: QueueEnv) -> None:
    """A bulk entry whose payload has a non-string key is refused, naming it; nothing added."""
    before = env.snapshot()
    error = env.refused(env.queue.enqueue_bulk(QUEUE, [{"name": "job", "data": {0: None}}]))
    assert error.field is not None
    assert error.field.startswith("jobs[0].data")
    assert env.snapshot() == before


@pytest.mark.parametrize("field", ["priority", "attempts", "delay", "remove_on_complete"])
def test_q1_option_integers_too_long_to_print_are_refused(env: QueueEnv, field: str) -> None:
    """An option given a 5,000-digit integer is refused with a readable message."""
    error = env.refused(env.queue.enqueue(QUEUE, "job", {"n": 1}, options={field: -(10**5000)}))
    assert error.field == f"options.{field}"


@pytest.mark.parametrize(
    "limit", [{"max": 2**70, "per": 1}, {"max": 5, "per": 1e300}, {"max": 5, "per": math.inf}]
)
def test_q6_infinite_or_huge_rate_limits_are_refused(env: QueueEnv, limit: dict[str, Any]) -> None:
    """A rate limit BullMQ cannot represent is refused when the worker is created."""

    async def handler(job: Job) -> None:
        return None

    async def attempt() -> None:
        await env.queue.enqueue(QUEUE, "job", {"n": 1})
        worker = env.queue.consume(QUEUE, handler, rate_limit=limit)
        try:
            await worker.start()
            await env.queue.drain(QUEUE)
        finally:
            await worker.close(1)

    env.refused(attempt())


def _schedule(**fields: Any) -> dict[str, Any]:
    return {"scheduler_id": "hostile", "name": "job", "every": 60, **fields}


@pytest.mark.parametrize(
    "schedule",
    [
        pytest.param(_schedule(every=math.inf), id="every-inf"),
        pytest.param(_schedule(every=1e300), id="every-1e300"),
        pytest.param(_schedule(every=10**30), id="every-10**30"),
        pytest.param(_schedule(data={"a": math.nan}), id="data-nan"),
        pytest.param(_schedule(data={"a": math.inf}), id="data-inf"),
        pytest.param(_schedule(data={"a": 2**60}), id="data-huge-int"),
        pytest.param(_schedule(data={"a": "\ud800"}), id="data-surrogate"),
        pytest.param(_schedule(data={"a": b"bytes"}), id="data-bytes"),
        pytest.param(_schedule(data={"deep": nested(200)}), id="data-deep"),
    ],
)
def test_q11_schedules_bullmq_cannot_store_are_refused(
    env: QueueEnv, schedule: dict[str, Any]
) -> None:
    """A schedule with an interval or data a job could not have is refused; none is stored."""
    env.refused(env.queue.upsert_schedule(QUEUE, schedule))
    assert env.loop.run(env.queue.list_schedules(QUEUE)) == []
