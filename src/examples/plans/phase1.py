"""The phase 1 plan: ``phase1-tasks``, enqueued over HTTP (202 and a job id), polled for its
status, notified to webhooks when it completes or fails for good.

``POST /jobs/phase1-task`` answers 202 with the job id; ``GET /jobs/{id}`` gives its state,
progress and result; ``PORTSIDE_WEBHOOK_URLS`` receivers get ``job.completed`` and
``job.failed`` (each delivery is a ``webhook-deliver`` job of its own, an httpx POST retried
with backoff); a task out of attempts is a dead letter in Postgres (``job_failures``).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from portside.app import JobContext, JobDefinition, RetryPolicy
from portside.ports import Backoff, ValidationError

__all__ = [
    "ATTEMPTS_ENV",
    "PHASE1_QUEUE",
    "Phase1Task",
    "phase1_definition",
    "phase1_retry",
    "run_task",
]

PHASE1_QUEUE = "phase1-tasks"
ATTEMPTS_ENV = "PORTSIDE_PHASE1_ATTEMPTS"
"""Attempts of a phase 1 task (default 3), read when the registry is built."""


class Phase1Task(BaseModel):
    """One task: what to do with ``text``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    taskId: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    kind: Literal["word-count", "checksum", "parse-json"]
    text: str = Field(max_length=100_000)


def phase1_retry(env: dict[str, str] | None = None) -> RetryPolicy:
    """Attempts from ``$PORTSIDE_PHASE1_ATTEMPTS`` (default 3), backoff 1 s, 5 s, 30 s.

    Raises:
        ValidationError: the variable is not a whole number from 1 to 100.
    """
    raw = (os.environ if env is None else env).get(ATTEMPTS_ENV, "").strip() or "3"
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise ValidationError(
            f"{ATTEMPTS_ENV} is {raw!r}",
            fix=f"set {ATTEMPTS_ENV} to a whole number of attempts from 1 to 100, or unset it "
            "for 3",
            field=ATTEMPTS_ENV,
        )
    return RetryPolicy(attempts=int(raw), backoff=Backoff.schedule(1, 5, 30))


async def run_task(task: Phase1Task, ctx: JobContext) -> dict[str, Any]:
    """Do the task. ``parse-json`` of text that is not JSON fails permanently (a parse error:
    no retry can fix it), so it is a dead letter at once and ``job.failed`` is notified."""
    await ctx.progress(0)
    if task.kind == "word-count":
        answer: Any = len(task.text.split())
    elif task.kind == "checksum":
        answer = hashlib.sha256(task.text.encode()).hexdigest()
    else:
        answer = json.loads(task.text)
    await ctx.progress(100)
    return {"taskId": task.taskId, "kind": task.kind, "answer": answer}


def phase1_definition(env: dict[str, str] | None = None) -> JobDefinition[Phase1Task]:
    """``phase1-task`` on ``phase1-tasks``: 10 s timeout, attempts from the environment."""
    return JobDefinition(
        name="phase1-task",
        queue=PHASE1_QUEUE,
        payload=Phase1Task,
        handler=run_task,
        retry=phase1_retry(env),
        timeout=10,
        concurrency=10,
        business_keys=("taskId",),
        id_keys=("taskId",),
        description="Run one phase 1 task (word count, checksum, JSON parse).",
    )
