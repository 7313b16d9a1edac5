"""Wire compatibility with Node BullMQ 5, both ways (Q12).

Needs ``node`` and ``npm``; npm ``bullmq@5`` is installed once into
``~/.cache/portside/node-bullmq`` (override with ``$PORTSIDE_NODE_BULLMQ``). Skipped with a
reason when that is not possible.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from portside.app import JobDefinition
from portside.app.dispatching import job_options
from portside.ports import Backoff, Job, JobOptions, QueuePort, Retention

pytestmark = [pytest.mark.integration, pytest.mark.node]


class _Empty(BaseModel):
    pass


async def test_q12_node_worker_processes_jobs_the_adapter_enqueued(
    queue_adapter: QueuePort, node_bullmq: Any, redis_url: str, redis_prefix: str
) -> None:
    """Q12: a Node BullMQ worker (prefix ``<prefix>:interop``, queue ``py2node``) runs the
    adapter's jobs with their data, attempts, backoff (the explicit list through the
    documented ``schedule`` strategy), priority and delay; portside then reads the results."""
    queue = "interop:py2node"
    scheduled = await queue_adapter.enqueue(
        queue,
        "charge",
        {"invoice": "i-1", "failTimes": 2, "text": "é"},
        options=JobOptions(attempts=3, backoff=Backoff.schedule(0.05, 0.1)),
    )
    fixed = await queue_adapter.enqueue(
        queue,
        "fixed",
        {"failTimes": 1},
        options=JobOptions(job_id="py-fixed", attempts=2, backoff=Backoff.fixed(0.05)),
    )
    urgent = await queue_adapter.enqueue(queue, "urgent", {"n": 3}, options=JobOptions(priority=1))
    later = await queue_adapter.enqueue(queue, "later", {"n": 4}, options=JobOptions(delay=0.2))
    seen = await node_bullmq.run(
        "consume.cjs", redis_url, f"{redis_prefix}:interop", "py2node", "4"
    )
    jobs = seen["jobs"]
    assert jobs[scheduled.id]["attempts"] == [1, 2, 3]
    assert jobs[scheduled.id]["data"] == {"invoice": "i-1", "failTimes": 2, "text": "é"}
    assert jobs[scheduled.id]["opts"]["attempts"] == 3
    assert seen["delays"][scheduled.id] == [50, 100]
    assert jobs[fixed.id]["attempts"] == [1, 2]
    assert jobs[fixed.id]["opts"]["backoff"] == {"type": "fixed", "delay": 50}
    assert jobs[urgent.id]["opts"]["priority"] == 1
    assert jobs[later.id]["returnvalue"] == {"by": "node", "seen": {"n": 4}}
    for ref in (scheduled, fixed, urgent, later):
        info = await queue_adapter.get_job(queue, ref.id)
        assert info is not None, ref
        assert info.state == "completed"
        assert info.result == {"by": "node", "seen": jobs[ref.id]["data"]}
    done = await queue_adapter.get_job(queue, scheduled.id)
    assert done is not None
    assert done.attempts_made == 3
    assert done.failed_reason == "planned failure 2"


async def test_q12_adapter_processes_jobs_a_node_producer_added(
    queue_adapter: QueuePort, node_bullmq: Any, redis_url: str, redis_prefix: str
) -> None:
    """Q12: jobs a Node producer adds (custom and generated ids, priority, bulk, Node's
    fixed backoff) run on the adapter, and Node reads back the adapter's results."""
    queue = "interop:node2py"
    added = await node_bullmq.run("produce.cjs", redis_url, f"{redis_prefix}:interop", "node2py")
    ids = {entry["name"]: entry["id"] for entry in added if entry["name"] != "node-bulk"}
    assert ids["node-retry"] == "node-1"
    assert ids["node-plain"].isdigit()
    runs: list[tuple[str, int]] = []

    async def handler(job: Job) -> Any:
        runs.append((job.name, job.attempt))
        if job.name == "node-retry" and job.attempt == 1:
            raise ConnectionError("first try fails")
        return {"by": "portside", "n": job.data["n"]}

    queue_adapter.consume(queue, handler)
    first = await queue_adapter.drain(queue)  # type: ignore[attr-defined]
    assert {(o.name, o.status) for o in first} == {
        ("node-retry", "retrying"),
        ("node-plain", "completed"),
        ("node-priority", "completed"),
        ("node-bulk", "completed"),
    }
    retry = next(o for o in first if o.name == "node-retry")
    assert (retry.job_id, retry.attempt, retry.failure_kind) == ("node-1", 1, "transient")
    await queue_adapter.advance(0.05)  # type: ignore[attr-defined]
    second = await queue_adapter.drain(queue)  # type: ignore[attr-defined]
    assert [(o.job_id, o.status, o.attempt) for o in second] == [("node-1", "completed", 2)]
    info = await queue_adapter.get_job(queue, "node-1")
    assert info is not None
    assert info.data == {"n": 1, "nested": {"list": [1, 2, 3], "text": "é"}}
    read = await node_bullmq.run(
        "inspect.cjs", redis_url, f"{redis_prefix}:interop", "node2py", "node-1", ids["node-plain"]
    )
    node_view = read["jobs"]["node-1"]
    assert node_view["state"] == "completed"
    assert node_view["returnvalue"] == {"by": "portside", "n": 1}
    assert node_view["attemptsMade"] == 2
    assert read["jobs"][ids["node-plain"]]["returnvalue"] == {"by": "portside", "n": 2}
    assert read["counts"]["completed"] == 4  # the bulk job with removeOnComplete is gone
    assert read["counts"]["waiting"] == 0


async def test_q13_node_reads_the_cap_python_set_and_python_reads_nodes(
    queue_adapter: QueuePort, node_bullmq: Any, redis_url: str, redis_prefix: str
) -> None:
    """Q13: ``set_queue_concurrency`` writes what Node's ``queue.getGlobalConcurrency()``
    reads (and ``isMaxed()`` counts against), and a cap Node sets reads back in Python."""
    queue = "interop:capped"
    await queue_adapter.set_queue_concurrency(queue, 5)
    seen = await node_bullmq.run(
        "global_concurrency.cjs", redis_url, f"{redis_prefix}:interop", "capped", "2"
    )
    assert seen == {"seen": 5, "maxed": False}
    assert await queue_adapter.queue_concurrency(queue) == 2


async def test_q15_node_reads_the_platform_retention_of_a_job(
    queue_adapter: QueuePort, node_bullmq: Any, redis_url: str, redis_prefix: str
) -> None:
    """Q15: a job the platform enqueues carries its definition's retention as Node BullMQ's
    own ``removeOnComplete`` / ``removeOnFail`` options (``{count}`` and ``{age, count}``)."""

    async def handler(payload: Any, ctx: Any) -> None:
        return None

    definition: JobDefinition[Any] = JobDefinition(
        name="kept",
        queue="interop:kept",
        payload=_Empty,
        handler=handler,
        remove_on_fail=Retention(count=20, age=3600),
    )
    ref = await queue_adapter.enqueue(
        "interop:kept", "kept", {}, options=job_options(definition, job_id="kept-1")
    )
    read = await node_bullmq.run(
        "inspect.cjs", redis_url, f"{redis_prefix}:interop", "kept", ref.id
    )
    opts = read["jobs"]["kept-1"]["opts"]
    assert opts["removeOnComplete"] == {"count": 1000}
    assert opts["removeOnFail"] == {"count": 20, "age": 3600}
