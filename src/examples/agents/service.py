"""``AgentRuns``: start a run (row + first event in one unit of work, then the job) and read it.

It is the run service the HTTP API serves agent runs with (``create_app(..., runs=AgentRuns())``,
``portside.app.http.runs.RunService``): its own ``POST /runs`` and ``GET /runs/{run_id}``, and
the core's event stream of the run.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING

from portside.app.dispatching import dispatch
from portside.app.http.runs import RunPosition
from portside.examples.agents.jobs import ORCHESTRATOR_JOB, build_registry
from portside.examples.agents.models import (
    EVENT_CREATED,
    RUN_ID_PATTERN,
    TERMINAL_EVENTS,
    NewRun,
    RunRecord,
    RunRequest,
    StartedRun,
)
from portside.examples.agents.orchestrator import OrchestratePayload
from portside.examples.agents.store import AgentRunStore, SqlAgentRunStore
from portside.infra import Infra
from portside.ports import JobRef, OutboxEvent, OutboxHandler, QueuePort

if TYPE_CHECKING:
    # Workers build AgentRuns too, and never load the web framework.
    from fastapi import APIRouter

__all__ = ["AgentRuns", "new_run_id"]

_RUN_ID = re.compile(RUN_ID_PATTERN)


def new_run_id() -> str:
    """A fresh run id, ``run-<32 hex digits>``; it is also the run's outbox stream."""
    return f"run-{uuid.uuid4().hex}"


class AgentRuns:
    """Starts and reads agent runs; what ``POST /runs`` and ``GET /runs/{id}`` use.

    Args:
        store: Where runs live; ``SqlAgentRunStore`` (Postgres via the outbox) by default.
            Workers must drive the same store (``build_registry(store=...)``).
    """

    terminal_events = TERMINAL_EVENTS
    """Event types that end a run's stream: ``run.completed`` and ``run.failed``."""

    def __init__(self, store: AgentRunStore | None = None) -> None:
        self.store: AgentRunStore = store or SqlAgentRunStore()
        self.registry = build_registry(store=self.store)
        """The orchestrator job that drives the runs (workers must run it)."""

    async def start(self, infra: Infra, request: RunRequest) -> StartedRun:
        """Write the run row and its ``run.created`` event in one unit of work, then queue
        the orchestrator job (idempotent job id ``agent-run.<run id>``).

        Raises:
            BackendUnavailableError: the queue could not be reached after the commit; the
                run exists and ``outbox_handler`` queues it once the event is published.
        """
        run_id = new_run_id()
        definition = self.registry.get(ORCHESTRATOR_JOB)
        job_id = definition.job_id_for(OrchestratePayload(runId=run_id))
        async with self.store.write(infra.outbox) as unit:
            event = await infra.outbox.append(
                unit.tx,
                run_id,
                EVENT_CREATED,
                {
                    "runId": run_id,
                    "jobId": job_id,
                    **request.model_dump(mode="json", by_alias=True),
                },
            )
            run = await unit.insert(
                NewRun(id=run_id, request=request, job_id=job_id, last_seq=event.seq)
            )
        job = await self.enqueue(infra.queue, run_id)
        return StartedRun(run=run, job=job)

    async def enqueue(self, queue: QueuePort, run_id: str) -> JobRef:
        """Queue the orchestrator for ``run_id``; the same run twice is one job."""
        return await dispatch(
            self.registry, queue, ORCHESTRATOR_JOB, {"runId": run_id}, deterministic_id=True
        )

    async def get(self, infra: Infra, run_id: str) -> RunRecord | None:
        """The run as last committed, or None (also for ids that cannot be run ids)."""
        # Such ids never reach the store (e.g. a NUL byte Postgres rejects).
        if not _RUN_ID.match(run_id):
            return None
        return await self.store.get(infra.outbox, run_id)

    async def position(self, infra: Infra, run_id: str) -> RunPosition | None:
        """Where the run's event stream (the run id) stands, or None for an unknown run."""
        run = await self.get(infra, run_id)
        if run is None:
            return None
        return RunPosition(stream=run.id, last_seq=run.last_seq, finished=run.finished)

    def routes(self) -> APIRouter:
        """``POST /runs`` and ``GET /runs/{run_id}`` on these runs."""
        from portside.examples.agents.routes import run_routes

        return run_routes(self)

    def outbox_handler(self, queue: QueuePort) -> OutboxHandler:
        """An outbox handler that queues the orchestrator for every published ``run.created``.

        The job id is deterministic, so this only matters when ``start`` committed the run but
        could not reach the queue: the published event queues it then (the outbox's purpose).
        """

        async def handle(event: OutboxEvent) -> None:
            if event.type == EVENT_CREATED:
                await self.enqueue(queue, event.stream)

        return handle
