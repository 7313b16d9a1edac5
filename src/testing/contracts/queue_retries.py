"""Queue contract, part 2: attempts and backoff (Q3), classification (Q4, Q17), timeouts (Q5)."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest

from portside.ports import (
    Backoff,
    FailureKind,
    Job,
    JobOptions,
    PermanentError,
    TransientError,
    http_classify,
)
from portside.ports.queue_types import ATTEMPTS_ENV
from portside.testing.contracts.drivers import QueueDriver

__all__ = ["RetryContract"]


async def _always_transient(job: Job) -> Any:
    raise TransientError(f"upstream returned 503 on attempt {job.attempt}")


async def _succeed(job: Job) -> Any:
    return None


async def _hang(job: Job) -> Any:
    await asyncio.Event().wait()  # never set: only the timeout ends this attempt


class _StatusError(Exception):
    """Shaped like ``httpx.HTTPStatusError``: the HTTP answer is on ``response``."""

    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.response = SimpleNamespace(status_code=status, headers=headers or {})


def _statuses(outcomes: list[Any]) -> list[tuple[str, int]]:
    return [(o.status, o.attempt) for o in outcomes]


class RetryContract:
    """Q3, Q4, Q5 and Q17. Needs a ``queue_driver`` fixture yielding a ``QueueDriver``."""

    pytestmark = pytest.mark.asyncio

    async def test_q3_three_attempts_by_default(
        self, queue_driver: QueueDriver, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Q3: without options a job gets 3 attempts; without backoff retries are immediate."""
        monkeypatch.delenv(ATTEMPTS_ENV, raising=False)
        queue = queue_driver.queue
        ref = await queue.enqueue("flaky", "fetch", {})
        queue.consume("flaky", _always_transient)
        outcomes = await queue_driver.drain("flaky")
        assert _statuses(outcomes) == [("retrying", 1), ("retrying", 2), ("failed", 3)]
        assert all(o.failure_kind == "transient" for o in outcomes)
        info = await queue.get_job("flaky", ref.id)
        assert info is not None
        assert (info.state, info.attempts_made, info.max_attempts) == ("failed", 3, 3)
        assert info.failed_reason == "TransientError: upstream returned 503 on attempt 3"

    async def test_q3_default_attempts_come_from_the_environment(
        self, queue_driver: QueueDriver, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Q3: ``PORTSIDE_DEFAULT_ATTEMPTS`` sets the default."""
        monkeypatch.setenv(ATTEMPTS_ENV, "5")
        queue = queue_driver.queue
        ref = await queue.enqueue("flaky-env", "fetch", {})
        queue.consume("flaky-env", _always_transient)
        outcomes = await queue_driver.drain("flaky-env")
        assert [o.attempt for o in outcomes] == [1, 2, 3, 4, 5]
        info = await queue.get_job("flaky-env", ref.id)
        assert info is not None
        assert info.max_attempts == 5

    async def test_q3_explicit_schedule_1s_5s_30s(self, queue_driver: QueueDriver) -> None:
        """Q3: retries wait 1 s, 5 s and 30 s: never earlier, and run once that time passed."""
        queue = queue_driver.queue
        options = JobOptions(attempts=4, backoff=Backoff.schedule(1, 5, 30))
        ref = await queue.enqueue("scheduled-retry", "fetch", {}, options=options)
        queue.consume("scheduled-retry", _always_transient)
        assert _statuses(await queue_driver.drain("scheduled-retry")) == [("retrying", 1)]
        for delay, attempt in ((1.0, 2), (5.0, 3), (30.0, 4)):
            await queue_driver.advance(delay - 0.5)
            assert await queue_driver.drain("scheduled-retry") == [], f"ran before {delay} s"
            info = await queue.get_job("scheduled-retry", ref.id)
            assert info is not None
            assert info.state == "delayed"
            await queue_driver.advance(1.0)
            outcomes = await queue_driver.drain("scheduled-retry")
            expected = "failed" if attempt == 4 else "retrying"
            assert _statuses(outcomes) == [(expected, attempt)], f"after {delay} s"

    async def test_q3_exponential_backoff_doubles(self, queue_driver: QueueDriver) -> None:
        """Q3: exponential backoff from 2 s waits 2 s, then 4 s."""
        queue = queue_driver.queue
        options = JobOptions(attempts=3, backoff=Backoff.exponential(2))
        await queue.enqueue("exp-retry", "fetch", {}, options=options)
        queue.consume("exp-retry", _always_transient)
        assert _statuses(await queue_driver.drain("exp-retry")) == [("retrying", 1)]
        await queue_driver.advance(1.5)
        assert await queue_driver.drain("exp-retry") == []
        await queue_driver.advance(1.0)
        assert _statuses(await queue_driver.drain("exp-retry")) == [("retrying", 2)]
        await queue_driver.advance(3.5)
        assert await queue_driver.drain("exp-retry") == []
        await queue_driver.advance(1.0)
        assert _statuses(await queue_driver.drain("exp-retry")) == [("failed", 3)]

    async def test_q3_delayed_job_runs_once_its_delay_passed(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q3, Q7: a delayed job is ``delayed`` and does not run before its delay."""
        queue = queue_driver.queue
        ref = await queue.enqueue("later", "remind", {}, options=JobOptions(delay=10))
        queue.consume("later", _succeed)
        info = await queue.get_job("later", ref.id)
        assert info is not None
        assert info.state == "delayed"
        assert (await queue.counts("later")).delayed == 1
        await queue_driver.advance(9.5)
        assert await queue_driver.drain("later") == []
        await queue_driver.advance(1.0)
        outcomes = await queue_driver.drain("later")
        assert [(o.job_id, o.status) for o in outcomes] == [(ref.id, "completed")]

    async def test_q4_permanent_error_fails_at_once(self, queue_driver: QueueDriver) -> None:
        """Q4: a PermanentError fails the job on the first attempt and records the reason."""
        queue = queue_driver.queue

        async def revoked(job: Job) -> Any:
            raise PermanentError("token revoked for integration i-9")

        ref = await queue.enqueue("sync", "pull", {}, options=JobOptions(attempts=5))
        queue.consume("sync", revoked)
        outcomes = await queue_driver.drain("sync")
        assert [(o.status, o.attempt, o.failure_kind) for o in outcomes] == [
            ("failed", 1, "permanent")
        ]
        info = await queue.get_job("sync", ref.id)
        assert info is not None
        assert (info.state, info.attempts_made, info.failure_kind) == ("failed", 1, "permanent")
        assert info.failed_reason == "PermanentError: token revoked for integration i-9"

    async def test_q4_transient_error_retries_then_succeeds(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q4: a transient failure (any unclassified exception too) is retried."""
        queue = queue_driver.queue

        async def flaky(job: Job) -> Any:
            if job.attempt == 1:
                raise ConnectionResetError("peer reset")
            return {"attempt": job.attempt}

        ref = await queue.enqueue("pull", "page", {})
        queue.consume("pull", flaky)
        outcomes = await queue_driver.drain("pull")
        assert [(o.status, o.attempt, o.failure_kind) for o in outcomes] == [
            ("retrying", 1, "transient"),
            ("completed", 2, None),
        ]
        assert outcomes[0].error == "ConnectionResetError: peer reset"
        info = await queue.get_job("pull", ref.id)
        assert info is not None
        assert (info.state, info.attempts_made, info.result) == ("completed", 2, {"attempt": 2})

    async def test_q4_custom_classifier_decides(self, queue_driver: QueueDriver) -> None:
        """Q4: ``consume(classify=...)`` overrides the default classification."""
        queue = queue_driver.queue

        def classify(error: BaseException) -> FailureKind:
            return "permanent" if isinstance(error, LookupError) else "transient"

        async def lookup(job: Job) -> Any:
            raise KeyError("organisation o-1")

        await queue.enqueue("classified", "lookup", {})
        queue.consume("classified", lookup, classify=classify)
        outcomes = await queue_driver.drain("classified")
        assert [(o.status, o.failure_kind) for o in outcomes] == [("failed", "permanent")]

    async def test_q5_worker_timeout_is_a_transient_failure(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q5: an attempt longer than the worker's timeout is interrupted and retried."""
        queue = queue_driver.queue
        ref = await queue.enqueue("slow", "crawl", {}, options=JobOptions(attempts=2))
        queue.consume("slow", _hang, timeout=0.2)
        outcomes = await queue_driver.drain("slow")
        assert [(o.status, o.attempt, o.failure_kind) for o in outcomes] == [
            ("retrying", 1, "transient"),
            ("failed", 2, "transient"),
        ]
        assert all(o.error is not None and "JobTimeoutError" in o.error for o in outcomes)
        info = await queue.get_job("slow", ref.id)
        assert info is not None
        assert info.failure_kind == "transient"

    async def test_q5_job_timeout_option_applies(self, queue_driver: QueueDriver) -> None:
        """Q5: ``options.timeout`` bounds an attempt even when the worker has no timeout, and
        a fast attempt is not affected."""
        queue = queue_driver.queue
        slow = await queue.enqueue("mixed", "slow", {}, options=JobOptions(attempts=1, timeout=0.2))
        fast = await queue.enqueue("mixed", "fast", {}, options=JobOptions(attempts=1, timeout=5))

        async def handler(job: Job) -> Any:
            if job.name == "slow":
                await _hang(job)
            return "done"

        queue.consume("mixed", handler)
        outcomes = {o.job_id: o for o in await queue_driver.drain("mixed")}
        assert (outcomes[slow.id].status, outcomes[slow.id].failure_kind) == ("failed", "transient")
        assert "JobTimeoutError" in (outcomes[slow.id].error or "")
        assert (outcomes[fast.id].status, outcomes[fast.id].result) == ("completed", "done")

    @pytest.mark.parametrize(
        ("kind", "parse"),
        [
            ("invalid JSON", lambda: json.loads("{not json")),
            ("undecodable bytes", lambda: b"\xff\xfe".decode("utf-8")),
        ],
    )
    async def test_q17_parse_errors_fail_at_once(
        self, queue_driver: QueueDriver, kind: str, parse: Any
    ) -> None:
        """Q17: a handler whose input does not parse fails for good on its first attempt, by
        the default classification (retrying reads the same bytes again)."""
        queue = queue_driver.queue

        async def read(job: Job) -> Any:
            return parse()

        await queue.enqueue("parse", "read", {}, options=JobOptions(attempts=5))
        queue.consume("parse", read)
        outcomes = await queue_driver.drain("parse")
        assert [(o.status, o.attempt, o.failure_kind) for o in outcomes] == [
            ("failed", 1, "permanent")
        ], kind

    async def test_q17_retry_after_replaces_the_backoff_for_that_retry(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q17: ``TransientError(retry_after=20)`` waits 20 s before the next attempt, not the
        1 s backoff; the retry after that follows the backoff again."""
        queue = queue_driver.queue

        async def throttled(job: Job) -> Any:
            if job.attempt == 1:
                raise TransientError("rate limited", retry_after=20)
            if job.attempt == 2:
                raise TransientError("still failing")
            return "done"

        options = JobOptions(attempts=3, backoff=Backoff.fixed(1))
        ref = await queue.enqueue("throttled", "call", {}, options=options)
        queue.consume("throttled", throttled)
        assert _statuses(await queue_driver.drain("throttled")) == [("retrying", 1)]
        await queue_driver.advance(1.5)
        assert await queue_driver.drain("throttled") == [], "retried after the backoff"
        await queue_driver.advance(18)
        assert await queue_driver.drain("throttled") == [], "retried before 20 s"
        await queue_driver.advance(1)
        assert _statuses(await queue_driver.drain("throttled")) == [("retrying", 2)]
        await queue_driver.advance(1.5)
        assert _statuses(await queue_driver.drain("throttled")) == [("completed", 3)]
        info = await queue.get_job("throttled", ref.id)
        assert info is not None
        assert info.attempts_made == 3

    async def test_q17_http_answers_by_status_and_retry_after(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q17: with ``http_classify`` a 404 fails at once, a 503 is retried after its
        ``Retry-After`` (30 s, not the 1 s backoff), a 429 without one after the backoff."""
        queue = queue_driver.queue
        answers = {
            "missing": [_StatusError(404)],
            "down": [_StatusError(503, {"Retry-After": "30"})],
            "busy": [_StatusError(429)],
        }

        async def call(job: Job) -> Any:
            if job.attempt == 1:
                raise answers[job.name][0]
            return job.name

        options = JobOptions(attempts=3, backoff=Backoff.fixed(1))
        for name in answers:
            await queue.enqueue("http", name, {}, options=options)
        queue.consume("http", call, concurrency=3, classify=http_classify)
        first = {o.name: (o.status, o.failure_kind) for o in await queue_driver.drain("http")}
        assert first == {
            "missing": ("failed", "permanent"),
            "down": ("retrying", "transient"),
            "busy": ("retrying", "transient"),
        }
        await queue_driver.advance(1.5)
        assert [(o.name, o.status) for o in await queue_driver.drain("http")] == [
            ("busy", "completed")
        ]
        await queue_driver.advance(28)
        assert await queue_driver.drain("http") == [], "the 503 was retried before 30 s"
        await queue_driver.advance(1)
        assert [(o.name, o.status) for o in await queue_driver.drain("http")] == [
            ("down", "completed")
        ]
