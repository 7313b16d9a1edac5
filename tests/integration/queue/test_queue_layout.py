"""BullMQ's Redis layout as written by the adapter: keys, job hash, options, events (Q1, Q12)."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
import redis.asyncio as redis

from portside.ports import Backoff, Job, JobOptions, QueuePort

pytestmark = pytest.mark.integration


async def test_q1_q12_namespaced_queue_lives_under_the_extended_prefix(
    queue_adapter: QueuePort, raw_redis: redis.Redis, redis_prefix: str
) -> None:
    """Q1, Q12: ``agents-run:orchestrator`` keys are ``<prefix>:agents-run:orchestrator:*``,
    where Node BullMQ with prefix ``<prefix>:agents-run`` and queue ``orchestrator`` looks."""
    ref = await queue_adapter.enqueue("agents-run:orchestrator", "run", {"run_id": "r-1"})
    base = f"{redis_prefix}:agents-run:orchestrator"
    assert ":" not in ref.id
    assert not ref.id.isdigit()
    assert await raw_redis.lrange(f"{base}:wait", 0, -1) == [ref.id]
    assert await raw_redis.exists(f"{base}:{ref.id}")
    assert await raw_redis.xlen(f"{base}:events") >= 1
    assert not await raw_redis.exists(f"{redis_prefix}:agents-run:wait")


async def test_q12_job_hash_has_the_fields_node_reads(
    queue_adapter: QueuePort, raw_redis: redis.Redis, redis_prefix: str
) -> None:
    """Q12: name, JSON data and opts (attempts, backoff in ms), timestamp, delay, priority."""
    options = JobOptions(
        job_id="inv-7",
        attempts=3,
        backoff=Backoff.schedule(1, 5, 30),
        priority=4,
        timeout=20,
        dedupe_key="inv-7-day",
    )
    await queue_adapter.enqueue("billing", "charge", {"cents": 250, "note": "é"}, options=options)
    fields = await raw_redis.hgetall(f"{redis_prefix}:billing:inv-7")
    assert fields["name"] == "charge"
    assert json.loads(fields["data"]) == {"cents": 250, "note": "é"}
    opts = json.loads(fields["opts"])
    assert opts["attempts"] == 3
    assert opts["backoff"] == {"type": "schedule", "delays": [1000, 5000, 30000]}
    assert opts["priority"] == 4
    assert opts["jobId"] == "inv-7"
    assert opts["de"] == {"id": "inv-7-day"}
    assert opts["portside"] == {"timeout": 20000}
    assert int(fields["timestamp"]) > 0
    assert (fields["delay"], fields["priority"]) == ("0", "4")
    assert await raw_redis.get(f"{redis_prefix}:billing:de:inv-7-day") == "inv-7"
    assert await raw_redis.zscore(f"{redis_prefix}:billing:prioritized", "inv-7") is not None


async def test_q4_failure_reason_and_classification_are_stored_on_the_job(
    queue_adapter: QueuePort, raw_redis: redis.Redis, redis_prefix: str
) -> None:
    """Q4: BullMQ's ``failedReason`` and ``stacktrace``, plus portside's ``pskind`` field."""

    async def handler(job: Job) -> Any:
        raise PermissionError("token lacks scope read:energy")

    def classify(error: BaseException) -> Any:
        return "permanent" if isinstance(error, PermissionError) else "transient"

    ref = await queue_adapter.enqueue("sync", "pull", {}, options=JobOptions(attempts=5))
    queue_adapter.consume("sync", handler, classify=classify)
    outcomes = await queue_adapter.drain("sync")  # type: ignore[attr-defined]
    assert [(o.status, o.attempt, o.failure_kind) for o in outcomes] == [("failed", 1, "permanent")]
    fields = await raw_redis.hgetall(f"{redis_prefix}:sync:{ref.id}")
    assert fields["failedReason"] == "PermissionError: token lacks scope read:energy"
    assert fields["pskind"] == "permanent"
    assert fields["atm"] == "1"
    trace = json.loads(fields["stacktrace"])
    assert len(trace) == 1
    assert "PermissionError" in trace[0]
    assert await raw_redis.zscore(f"{redis_prefix}:sync:failed", ref.id) is not None


async def test_q8_events_stream_has_bullmq_entries_and_portside_retrying(
    queue_adapter: QueuePort, raw_redis: redis.Redis, redis_prefix: str
) -> None:
    """Q8: BullMQ's own entries (added, active, completed) plus ``retrying`` with its data."""

    async def handler(job: Job) -> Any:
        if job.attempt == 1:
            raise TimeoutError("upstream slow")
        return "ok"

    options = JobOptions(attempts=2, backoff=Backoff.fixed(0.01))
    ref = await queue_adapter.enqueue("evented", "x", {}, options=options)
    queue_adapter.consume("evented", handler)
    await queue_adapter.drain("evented")  # type: ignore[attr-defined]
    await queue_adapter.advance(0.02)  # type: ignore[attr-defined]
    await queue_adapter.drain("evented")  # type: ignore[attr-defined]
    entries: list[tuple[str, dict[str, str]]] = cast(
        Any, await raw_redis.xrange(f"{redis_prefix}:evented:events")
    )
    kinds = [fields["event"] for _, fields in entries if fields.get("jobId") == ref.id]
    assert kinds[:2] == ["added", "waiting"]
    assert "retrying" in kinds
    assert kinds[-1] == "completed"
    retrying = next(f for _, f in entries if f.get("event") == "retrying")
    assert retrying == {
        "event": "retrying",
        "jobId": ref.id,
        "name": "x",
        "attemptsMade": "1",
        "failedReason": "TimeoutError: upstream slow",
        "kind": "transient",
        "delay": "10",
    }
