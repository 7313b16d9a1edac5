"""The orchestrator job: runs an agent's steps and writes every step as an outbox event (A7).

Each event is appended in the same unit of work that records the step on the run row, and
only if the row says the step has not been recorded yet. A retried or duplicated attempt
therefore resumes where the last one stopped without repeating an event: the run's stream
stays exactly-once even though the queue delivers at least once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from portside.app.context import JobContext
from portside.examples.agents.models import (
    EVENT_ATTEMPT_FAILED,
    EVENT_COMPLETED,
    EVENT_FAILED,
    EVENT_RESUMED,
    EVENT_STARTED,
    EVENT_STEP_COMPLETED,
    EVENT_STEP_STARTED,
    RUN_ID_PATTERN,
    RunRecord,
)
from portside.examples.agents.store import AgentRunStore
from portside.examples.agents.thinking import final_answer, step_output
from portside.ports import (
    JobTimeoutError,
    OutboxPort,
    PermanentError,
    TransientError,
    describe_error,
)

__all__ = ["TIMEOUT_MARGIN", "OrchestratePayload", "Orchestrator"]

TIMEOUT_MARGIN = 1.0
"""Seconds before the job's timeout at which the orchestrator stops itself, so a timed-out
attempt is still recorded on the run (the runtime's own timeout would cancel it silently)."""


class OrchestratePayload(BaseModel):
    """The orchestrator job's data: which run to drive."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    runId: str = Field(pattern=RUN_ID_PATTERN)


def _summary(run: RunRecord) -> dict[str, Any]:
    return {"runId": run.id, "status": run.status, "steps": run.steps, "lastSeq": run.last_seq}


class Orchestrator:
    """Drives runs stored in ``store``; ``run`` is the job handler."""

    def __init__(self, store: AgentRunStore) -> None:
        self._store = store

    async def run(self, payload: OrchestratePayload, ctx: JobContext) -> dict[str, Any]:
        """Run (or resume) the run's remaining steps, then write its terminal event."""
        outbox = ctx.infra.outbox
        run = await self._begin(outbox, payload.runId, ctx)
        if run.finished:
            return _summary(run)
        try:
            run = await self._steps(outbox, run, ctx)
        except Exception as error:
            await self._record_failure(outbox, run, error, ctx)
            raise
        return _summary(run)

    async def _begin(self, outbox: OutboxPort, run_id: str, ctx: JobContext) -> RunRecord:
        async with self._store.write(outbox) as unit:
            run = await unit.lock(run_id)
            if run is None:
                raise PermanentError(
                    f"run {run_id!r} does not exist",
                    fix="start runs with POST /runs, which writes the run before queueing it",
                )
            if run.finished:
                return run
            kind = EVENT_STARTED if run.status == "queued" else EVENT_RESUMED
            event = await outbox.append(
                unit.tx,
                run.id,
                kind,
                {
                    "runId": run.id,
                    "jobId": ctx.job_id,
                    "attempt": ctx.attempt,
                    "fromStep": run.completed_steps + 1,
                },
            )
            changes = {"status": "running", "attempts": run.attempts + 1, "last_seq": event.seq}
            return await unit.save(run.model_copy(update=changes))

    async def _steps(self, outbox: OutboxPort, run: RunRecord, ctx: JobContext) -> RunRecord:
        budget = max(ctx.definition.timeout - TIMEOUT_MARGIN, 0.1)
        scope = asyncio.timeout(budget)
        try:
            async with scope:
                for step in range(run.completed_steps + 1, run.steps + 1):
                    await self._step(outbox, run, step, ctx)
                result = final_answer(run.agent, run.input, run.steps)
                return await self._once(
                    outbox,
                    run.id,
                    EVENT_COMPLETED,
                    lambda row: not row.finished,
                    {"runId": run.id, "result": result},
                    {"status": "completed", "result": result, "finished_at": ctx.now()},
                )
        except TimeoutError as error:
            if scope.expired():
                raise JobTimeoutError(
                    f"run {run.id!r} did not finish within {budget:g} s",
                    fix="use fewer steps or a shorter stepDelayMs",
                ) from error
            raise

    async def _step(self, outbox: OutboxPort, run: RunRecord, step: int, ctx: JobContext) -> None:
        where = {"runId": run.id, "step": step, "of": run.steps}
        await self._once(
            outbox,
            run.id,
            EVENT_STEP_STARTED,
            lambda row: row.started_step < step,
            where,
            {"started_step": step},
        )
        if run.step_delay_ms:
            # The simulated model or tool call of this step.
            await asyncio.sleep(run.step_delay_ms / 1000)
        _injected_failure(run, step, ctx.attempt)
        output = step_output(run.agent, run.input, step, run.steps)
        await self._once(
            outbox,
            run.id,
            EVENT_STEP_COMPLETED,
            lambda row: row.completed_steps < step,
            {**where, "output": output},
            {"completed_steps": step},
        )
        await ctx.progress({"step": step, "of": run.steps})

    async def _once(
        self,
        outbox: OutboxPort,
        run_id: str,
        kind: str,
        needed: Callable[[RunRecord], bool],
        payload: Mapping[str, Any],
        changes: Mapping[str, Any],
    ) -> RunRecord:
        """Append ``kind`` and apply ``changes`` in one unit of work, unless already done."""
        async with self._store.write(outbox) as unit:
            run = await unit.lock(run_id)
            if run is None:
                raise PermanentError(
                    f"run {run_id!r} disappeared while running",
                    fix="never delete runs that are queued or running",
                )
            if run.finished or not needed(run):
                return run
            event = await outbox.append(unit.tx, run_id, kind, payload)
            return await unit.save(run.model_copy(update={**changes, "last_seq": event.seq}))

    async def _record_failure(
        self, outbox: OutboxPort, run: RunRecord, error: Exception, ctx: JobContext
    ) -> None:
        """Write ``run.attempt.failed``, or ``run.failed`` when no retry will follow."""
        kind = ctx.definition.classify(error)
        final = kind == "permanent" or ctx.attempt >= ctx.job.max_attempts
        details = {
            "runId": run.id,
            "attempt": ctx.attempt,
            "error": describe_error(error),
            "classification": kind,
        }
        try:
            if final:
                await self._once(
                    outbox,
                    run.id,
                    EVENT_FAILED,
                    lambda row: not row.finished,
                    details,
                    {"status": "failed", "error": describe_error(error), "finished_at": ctx.now()},
                )
            else:
                await self._once(
                    outbox,
                    run.id,
                    EVENT_ATTEMPT_FAILED,
                    lambda row: not row.finished,
                    {**details, "willRetry": True},
                    {},
                )
        except Exception as failure:
            # The job's own error matters more; this one is logged and the run stays running.
            ctx.log(
                "run.failure_not_recorded",
                logging.ERROR,
                run_id=run.id,
                error=describe_error(failure),
            )


def _injected_failure(run: RunRecord, step: int, attempt: int) -> None:
    if run.fail_at_step != step:
        return
    if run.failure == "permanent":
        raise PermanentError(
            f"step {step} of run {run.id!r}: the tool rejected the agent's credentials "
            "(simulated by failAtStep)",
            fix="start a new run without failAtStep",
        )
    if attempt == 1:
        raise TransientError(
            f"step {step} of run {run.id!r}: the tool timed out (simulated by failAtStep)",
            fix="nothing to do: the orchestrator retries and resumes at this step",
        )
