"""The agent-run domain: runs, their outbox event streams and the orchestrator job (A7).

``POST /runs`` (``AgentRuns.start``) writes a run row and its ``run.created`` event in one
outbox unit of work and queues the ``agent-run`` job on ``agents-run:orchestrator``; the job
(``Orchestrator``) writes every step as an event on the run's stream (the run id) and ends it
with ``run.completed`` or ``run.failed``.

``AgentRuns`` is a run service for ``create_app(..., runs=AgentRuns())``: it brings
``POST /runs`` and ``GET /runs/{run_id}`` (``routes.py``), and the core streams the run's
events at ``GET /runs/{run_id}/events``. Its tables come from ``portside.examples.migrations``.
"""

from __future__ import annotations

from portside.examples.agents.jobs import (
    ORCHESTRATOR_JOB,
    ORCHESTRATOR_QUEUE,
    build_registry,
    orchestrator_definition,
)
from portside.examples.agents.memory_store import InMemoryAgentRunStore
from portside.examples.agents.models import (
    TERMINAL_EVENTS,
    TERMINAL_STATUSES,
    NewRun,
    RunRecord,
    RunRequest,
    RunStatus,
    StartedRun,
)
from portside.examples.agents.orchestrator import OrchestratePayload, Orchestrator
from portside.examples.agents.service import AgentRuns, new_run_id
from portside.examples.agents.store import AgentRunStore, RunWriter, SqlAgentRunStore

__all__ = [
    "ORCHESTRATOR_JOB",
    "ORCHESTRATOR_QUEUE",
    "TERMINAL_EVENTS",
    "TERMINAL_STATUSES",
    "AgentRunStore",
    "AgentRuns",
    "InMemoryAgentRunStore",
    "NewRun",
    "OrchestratePayload",
    "Orchestrator",
    "RunRecord",
    "RunRequest",
    "RunStatus",
    "RunWriter",
    "SqlAgentRunStore",
    "StartedRun",
    "build_registry",
    "new_run_id",
    "orchestrator_definition",
    "registry",
]

registry = build_registry()
