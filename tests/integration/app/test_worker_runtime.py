"""Q4, A3, A4: the worker runtime on real BullMQ and Postgres."""

from __future__ import annotations

import asyncpg
import pytest
from pydantic import BaseModel, ConfigDict

from portside.app import JobContext, JobDefinition, Registry, RetryPolicy, WorkerRuntime, dispatch
from portside.infra import Infra
from portside.ports import Backoff, PermanentError, TransientError

pytestmark = pytest.mark.integration


class Task(BaseModel):
    model_config = ConfigDict(extra="forbid")

    taskId: str
    mode: str


class SourceRevoked(Exception):
    """Mapped to permanent by the registry."""


async def run_task(payload: Task, ctx: JobContext) -> str:
    if payload.mode == "transient":
        raise TransientError(f"upstream 503 (attempt {ctx.attempt})")
    if payload.mode == "permanent":
        raise PermanentError("invalid token")
    if payload.mode == "mapped":
        raise SourceRevoked("token revoked")
    if payload.mode == "nul":
        raise PermanentError("bad byte \x00 in the source reply")
    if payload.mode == "flaky" and ctx.attempt < 3:
        raise ConnectionResetError("connection reset by peer")
    return f"done on attempt {ctx.attempt}"


def registry() -> Registry:
    return Registry(
        [
            JobDefinition(
                name="task",
                queue="platform:tasks",
                payload=Task,
                handler=run_task,
                retry=RetryPolicy(attempts=3, backoff=Backoff.schedule(1, 5)),
                classification={SourceRevoked: "permanent"},
                business_keys=("taskId",),
                concurrency=2,
            )
        ]
    )


async def run_to_the_end(infra: Infra, reg: Registry, drain_queue: object) -> None:
    """Drain, letting backoff pass, until nothing is waiting or delayed."""
    for _ in range(5):
        await drain_queue("platform:tasks")  # type: ignore[operator]
        counts = await infra.queue.counts("platform:tasks")
        if counts.delayed == 0 and counts.waiting == 0:
            return
        await infra.queue.advance(5)  # type: ignore[attr-defined]
    raise AssertionError("jobs were still pending after five drain/advance rounds")


async def test_q4_only_transient_errors_are_retried(
    platform_infra: Infra, db: asyncpg.Connection, drain_queue: object
) -> None:
    reg = registry()
    runtime = WorkerRuntime(reg, platform_infra, sample_interval=None, retention_interval=None)
    refs = {}
    async with runtime:
        for mode in ("transient", "permanent", "mapped", "flaky", "ok"):
            refs[mode] = await dispatch(
                reg, platform_infra.queue, "task", {"taskId": f"t-{mode}", "mode": mode}
            )
        await run_to_the_end(platform_infra, reg, drain_queue)

    attempts = {
        row["job_id"]: row["attempts"]
        for row in await db.fetch(
            "SELECT job_id, max(attempt) AS attempts FROM job_runs GROUP BY job_id"
        )
    }
    assert attempts[refs["transient"].id] == 3
    assert attempts[refs["flaky"].id] == 3
    assert attempts[refs["permanent"].id] == 1
    assert attempts[refs["mapped"].id] == 1
    assert attempts[refs["ok"].id] == 1
    states = {
        mode: (await platform_infra.queue.get_job("platform:tasks", ref.id)).state  # type: ignore[union-attr]
        for mode, ref in refs.items()
    }
    assert states == {
        "transient": "failed",
        "permanent": "failed",
        "mapped": "failed",
        "flaky": "completed",
        "ok": "completed",
    }


async def test_a4_permanent_failure_lands_in_job_failures_after_one_attempt(
    platform_infra: Infra, db: asyncpg.Connection, drain_queue: object
) -> None:
    reg = registry()
    runtime = WorkerRuntime(reg, platform_infra, sample_interval=None, retention_interval=None)
    async with runtime:
        ref = await dispatch(
            reg, platform_infra.queue, "task", {"taskId": "t-1", "mode": "permanent"}
        )
        await run_to_the_end(platform_infra, reg, drain_queue)

    rows = await db.fetch("SELECT * FROM job_failures")
    assert len(rows) == 1
    row = rows[0]
    assert (row["queue"], row["job_id"], row["job_name"], row["attempts"]) == (
        "platform:tasks",
        ref.id,
        "task",
        1,
    )
    assert row["failure_kind"] == "permanent"
    assert row["error"] == "PermanentError: invalid token"
    assert '"taskId": "t-1"' in row["data"]
    assert row["failed_at"] is not None


async def test_a3_run_history_rows_carry_job_id_queue_attempt_and_run_mode(
    platform_infra: Infra, db: asyncpg.Connection, drain_queue: object
) -> None:
    reg = registry()
    runtime = WorkerRuntime(reg, platform_infra, sample_interval=None, retention_interval=None)
    async with runtime:
        ref = await dispatch(reg, platform_infra.queue, "task", {"taskId": "t-2", "mode": "flaky"})
        await run_to_the_end(platform_infra, reg, drain_queue)

    rows = await db.fetch(
        "SELECT job_id, queue, job_name, attempt, run_mode, status, failure_kind, error_class,"
        " result, started_at, finished_at FROM job_runs ORDER BY attempt"
    )
    assert [(r["job_id"], r["queue"], r["attempt"], r["run_mode"], r["status"]) for r in rows] == [
        (ref.id, "platform:tasks", 1, "manual", "retrying"),
        (ref.id, "platform:tasks", 2, "manual", "retrying"),
        (ref.id, "platform:tasks", 3, "manual", "completed"),
    ]
    assert rows[0]["error_class"] == "ConnectionResetError"
    assert rows[0]["failure_kind"] == "transient"
    assert rows[2]["result"] == '"done on attempt 3"'
    assert all(r["finished_at"] >= r["started_at"] for r in rows)
    assert await db.fetchval("SELECT count(*) FROM job_failures") == 0


async def test_a4_an_error_message_with_a_nul_is_recorded_and_dead_lettered(
    platform_infra: Infra, db: asyncpg.Connection, drain_queue: object
) -> None:
    """Postgres text cannot hold NUL: the message keeps it escaped instead of losing the row."""
    reg = registry()
    runtime = WorkerRuntime(reg, platform_infra, sample_interval=None, retention_interval=None)
    async with runtime:
        ref = await dispatch(reg, platform_infra.queue, "task", {"taskId": "t-3", "mode": "nul"})
        await run_to_the_end(platform_infra, reg, drain_queue)

    run = await db.fetchrow("SELECT status, error_message FROM job_runs WHERE job_id = $1", ref.id)
    assert run is not None
    assert run["status"] == "failed"
    assert run["error_message"] == "bad byte \\x00 in the source reply"
    failure = await db.fetchrow("SELECT error FROM job_failures WHERE job_id = $1", ref.id)
    assert failure is not None
    assert failure["error"] == "PermanentError: bad byte \\x00 in the source reply"
