"""Queue contract, part 1: enqueueing (Q1) and input validation (Q2)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pydantic
import pytest

from portside.ports import Job, JobOptions, NewJob
from portside.testing.contracts.drivers import QueueDriver
from portside.testing.contracts.support import expect_invalid

__all__ = ["EnqueueContract"]


class _Invoice(pydantic.BaseModel):
    invoice_id: str
    cents: int


async def _echo(job: Job) -> Any:
    return {"name": job.name, "data": job.data}


class EnqueueContract:
    """Q1 and Q2. Needs a ``queue_driver`` fixture yielding a ``QueueDriver``."""

    pytestmark = pytest.mark.asyncio

    async def test_q1_enqueue_returns_a_ref_and_the_job_waits(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q1: enqueue returns the queue, id and name; the job waits with its payload."""
        queue = queue_driver.queue
        ref = await queue.enqueue("emails", "welcome", {"user": "u-1", "tags": ["a", "b"]})
        assert (ref.queue, ref.name) == ("emails", "welcome")
        info = await queue.get_job("emails", ref.id)
        assert info is not None
        assert info.state == "waiting"
        assert info.data == {"user": "u-1", "tags": ["a", "b"]}
        assert (await queue.counts("emails")).waiting == 1

    async def test_q1_same_job_id_twice_is_one_job(self, queue_driver: QueueDriver) -> None:
        """Q1: a caller-chosen job id makes enqueue idempotent; the first payload stays."""
        queue = queue_driver.queue
        first = await queue.enqueue(
            "orders", "charge", {"n": 1}, options=JobOptions(job_id="order-42")
        )
        second = await queue.enqueue(
            "orders", "charge", {"n": 2}, options=JobOptions(job_id="order-42")
        )
        assert first.id == second.id == "order-42"
        assert (await queue.counts("orders")).waiting == 1
        queue.consume("orders", _echo)
        outcomes = await queue_driver.drain("orders")
        assert [(o.job_id, o.status) for o in outcomes] == [("order-42", "completed")]
        assert outcomes[0].result == {"name": "charge", "data": {"n": 1}}
        again = await queue.enqueue(
            "orders", "charge", {"n": 3}, options=JobOptions(job_id="order-42")
        )
        assert again.id == "order-42"
        assert await queue_driver.drain("orders") == []

    async def test_q1_bulk_enqueue_adds_every_job_in_order(self, queue_driver: QueueDriver) -> None:
        """Q1: bulk enqueue adds all jobs; they run first in, first out."""
        queue = queue_driver.queue
        refs = await queue.enqueue_bulk(
            "bulk", [NewJob(name=f"job-{i}", data={"i": i}) for i in range(5)]
        )
        assert [ref.name for ref in refs] == [f"job-{i}" for i in range(5)]
        assert len({ref.id for ref in refs}) == 5
        queue.consume("bulk", _echo)
        outcomes = await queue_driver.drain("bulk")
        assert [o.name for o in outcomes] == [f"job-{i}" for i in range(5)]

    async def test_q1_bulk_is_validated_before_anything_is_added(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q1, Q2: one bad entry rejects the whole bulk, naming the entry and its field."""
        queue = queue_driver.queue
        jobs = [NewJob(name="ok", data={"x": 1}), NewJob(name="bad", data={"x": float("nan")})]
        with expect_invalid("jobs[1].data.x"):
            await queue.enqueue_bulk("bulk-bad", jobs)
        assert (await queue.counts("bulk-bad")).waiting == 0

    async def test_q1_namespaced_queue_names_are_separate_queues(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q1: ``agents-run:orchestrator`` is a queue of its own, apart from ``agents-run``."""
        queue = queue_driver.queue
        ref = await queue.enqueue("agents-run:orchestrator", "run", {"run_id": "r-1"})
        assert ref.queue == "agents-run:orchestrator"
        assert (await queue.counts("agents-run")).waiting == 0
        queue.consume("agents-run:orchestrator", _echo)
        outcomes = await queue_driver.drain("agents-run:orchestrator")
        assert [(o.queue, o.job_id, o.status) for o in outcomes] == [
            ("agents-run:orchestrator", ref.id, "completed")
        ]
        info = await queue.get_job("agents-run:orchestrator", ref.id)
        assert info is not None
        assert info.state == "completed"

    async def test_q1_priority_runs_unprioritised_then_lowest_number_first(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q1: BullMQ order: priority 0 (none) first in FIFO order, then 1, 2, ... (FIFO ties)."""
        queue = queue_driver.queue
        for name, priority in [("p5", 5), ("none-a", 0), ("p1-a", 1), ("none-b", 0), ("p1-b", 1)]:
            await queue.enqueue("prio", name, {}, options=JobOptions(priority=priority))
        queue.consume("prio", _echo, concurrency=1)
        outcomes = await queue_driver.drain("prio")
        assert [o.name for o in outcomes] == ["none-a", "none-b", "p1-a", "p1-b", "p5"]

    async def test_q1_dedupe_key_returns_the_unfinished_job(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q1: a second enqueue with the same dedupe key while the first is unfinished is the
        same job; once it finished, the key is free again."""
        queue = queue_driver.queue
        options = JobOptions(dedupe_key="daily-2026-01-01")
        first = await queue.enqueue("dedupe", "daily", {"n": 1}, options=options)
        second = await queue.enqueue("dedupe", "daily", {"n": 2}, options=options)
        assert second.id == first.id
        assert (await queue.counts("dedupe")).waiting == 1
        queue.consume("dedupe", _echo)
        assert [o.status for o in await queue_driver.drain("dedupe")] == ["completed"]
        third = await queue.enqueue("dedupe", "daily", {"n": 3}, options=options)
        assert third.id != first.id

    async def test_q2_non_json_payload_is_rejected_naming_the_field(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q2: a payload value JSON cannot carry fails at enqueue with its field path."""
        queue = queue_driver.queue
        with expect_invalid("data.when", "not JSON"):
            await queue.enqueue("q2", "x", {"when": datetime(2026, 1, 1, tzinfo=UTC)})
        with expect_invalid("data.score"):
            await queue.enqueue("q2", "x", {"score": float("nan")})
        with expect_invalid("data.big", "safe range"):
            await queue.enqueue("q2", "x", {"big": 2**60})
        with expect_invalid("data.items[1].at"):
            await queue.enqueue("q2", "x", {"items": [{"at": 1}, {"at": {1, 2}}]})
        with expect_invalid("data"):
            await queue.enqueue("q2", "x", cast(Any, ["not", "an", "object"]))
        assert (await queue.counts("q2")).waiting == 0

    async def test_q2_bad_options_and_names_are_rejected_naming_the_field(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q2: unknown option, negative delay, bad job id, empty name or queue: each names its
        field and nothing is enqueued."""
        queue = queue_driver.queue
        loose = cast(Any, queue)
        with expect_invalid("options.retries", "retries"):
            await loose.enqueue("q2", "x", {}, options={"retries": 3})
        with expect_invalid("options.delay"):
            await loose.enqueue("q2", "x", {}, options={"delay": -1})
        with expect_invalid("options.job_id", "':'"):
            await loose.enqueue("q2", "x", {}, options={"job_id": "a:b"})
        with expect_invalid("options.job_id", "integer"):
            await loose.enqueue("q2", "x", {}, options={"job_id": "123"})
        with expect_invalid("options"):
            await loose.enqueue("q2", "x", {}, options=5)
        with expect_invalid("name", "empty"):
            await queue.enqueue("q2", "", {})
        with expect_invalid("name"):
            await loose.enqueue("q2", 7, {})
        with expect_invalid("queue", "empty"):
            await queue.enqueue("", "x", {})
        with expect_invalid("queue"):
            await queue.enqueue("no spaces please", "x", {})
        assert (await queue.counts("q2")).waiting == 0

    async def test_q2_payload_failing_validation_in_the_worker_fails_permanently(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q2, Q4: a payload the handler's model rejects fails that job at once (no retry) and
        the next job still runs."""
        queue = queue_driver.queue

        async def bill(job: Job) -> Any:
            invoice = _Invoice.model_validate(job.data)
            return {"billed": invoice.cents}

        bad = await queue.enqueue("billing", "bill", {"invoice_id": "i-1"})
        good = await queue.enqueue("billing", "bill", {"invoice_id": "i-2", "cents": 250})
        queue.consume("billing", bill)
        outcomes = await queue_driver.drain("billing")
        assert [(o.job_id, o.status, o.failure_kind) for o in outcomes] == [
            (bad.id, "failed", "permanent"),
            (good.id, "completed", None),
        ]
        info = await queue.get_job("billing", bad.id)
        assert info is not None
        assert (info.state, info.attempts_made, info.failure_kind) == ("failed", 1, "permanent")
        assert info.failed_reason is not None
        assert "cents" in info.failed_reason
