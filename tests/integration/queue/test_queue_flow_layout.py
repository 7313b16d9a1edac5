"""Flows and job logs in BullMQ's Redis layout, as Node's FlowProducer writes them (Q7, Q12)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis.asyncio as redis

from portside.ports import FlowJob, Job, JobOptions, QueuePort

pytestmark = pytest.mark.integration


async def test_q12_a_flow_is_laid_out_as_node_flowproducer_lays_it_out(
    queue_adapter: QueuePort, raw_redis: redis.Redis, redis_prefix: str
) -> None:
    """Q12: the parent waits in ``waiting-children`` with its children's keys in
    ``:dependencies``; each child holds ``parentKey``, ``parent`` ``{id, queueKey}`` plus its
    failure flag, and ``opts.parent`` ``{id, queue}`` (a namespaced parent queue included)."""
    ref = await queue_adapter.add_flow(
        FlowJob(
            queue="jobs:reports",
            name="report",
            options=JobOptions(job_id="r-1"),
            children=(
                FlowJob(queue="pages", name="page", options=JobOptions(job_id="p-1")),
                FlowJob(
                    queue="pages",
                    name="optional",
                    options=JobOptions(job_id="p-2"),
                    on_failure="ignore",
                ),
                FlowJob(queue="pages", name="required", on_failure="fail_parent"),
            ),
        )
    )
    parent_queue = f"{redis_prefix}:jobs:reports"
    pages = f"{redis_prefix}:pages"
    assert await raw_redis.zscore(f"{parent_queue}:waiting-children", "r-1") is not None
    assert await raw_redis.lrange(f"{parent_queue}:wait", 0, -1) == []
    required = ref.children[2].job.id
    assert await raw_redis.smembers(f"{parent_queue}:r-1:dependencies") == {
        f"{pages}:p-1",
        f"{pages}:p-2",
        f"{pages}:{required}",
    }
    flags = {"p-1": {}, "p-2": {"idof": True}, required: {"fpof": True}}
    for job_id, flag in flags.items():
        fields = await raw_redis.hgetall(f"{pages}:{job_id}")
        assert fields["parentKey"] == f"{parent_queue}:r-1"
        assert json.loads(fields["parent"]) == {"id": "r-1", "queueKey": parent_queue, **flag}
        opts = json.loads(fields["opts"])
        assert opts["parent"] == {"id": "r-1", "queue": parent_queue}
        assert {key: opts[key] for key in ("fpof", "idof", "rdof") if key in opts} == flag
    assert sorted(await raw_redis.lrange(f"{pages}:wait", 0, -1)) == sorted(
        ["p-1", "p-2", required]
    )


async def test_q7_q12_a_completed_child_leaves_its_result_in_the_parents_processed_hash(
    queue_adapter: QueuePort, raw_redis: redis.Redis, redis_prefix: str
) -> None:
    """Q7, Q12: BullMQ's ``moveToFinished`` (run by portside's worker) stores the child's
    JSON result under its key in the parent's ``:processed`` hash and moves the parent on;
    log lines are the job's ``:logs`` list, trimmed to ``opts.kl``."""

    async def handler(job: Job) -> Any:
        for line in ("one", "two", "three"):
            await job.log(line)
        return {"rows": 7}

    ref = await queue_adapter.add_flow(
        FlowJob(
            queue="parents",
            name="p",
            children=(FlowJob(queue="kids", name="k", options=JobOptions(keep_logs=2)),),
        )
    )
    child = ref.children[0].job.id
    queue_adapter.consume("kids", handler)
    await queue_adapter.drain("kids")  # type: ignore[attr-defined]
    processed = await raw_redis.hgetall(f"{redis_prefix}:parents:{ref.job.id}:processed")
    assert processed == {f"{redis_prefix}:kids:{child}": '{"rows":7}'}
    assert await raw_redis.lrange(f"{redis_prefix}:parents:wait", 0, -1) == [ref.job.id]
    assert await raw_redis.lrange(f"{redis_prefix}:kids:{child}:logs", 0, -1) == ["two", "three"]
    opts = json.loads(await raw_redis.hget(f"{redis_prefix}:kids:{child}", "opts") or "{}")
    assert opts["kl"] == 2
