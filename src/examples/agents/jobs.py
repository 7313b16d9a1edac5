"""The agent job definition and registry: the orchestrator on ``agents-run:orchestrator``."""

from __future__ import annotations

from portside.app.definition import JobDefinition, RetryPolicy
from portside.app.registry import Registry
from portside.examples.agents.orchestrator import OrchestratePayload, Orchestrator
from portside.examples.agents.store import AgentRunStore, SqlAgentRunStore
from portside.ports import Backoff

__all__ = [
    "ORCHESTRATOR_JOB",
    "ORCHESTRATOR_QUEUE",
    "build_registry",
    "orchestrator_definition",
]

ORCHESTRATOR_QUEUE = "agents-run:orchestrator"
ORCHESTRATOR_JOB = "agent-run"


def orchestrator_definition(store: AgentRunStore) -> JobDefinition[OrchestratePayload]:
    """The orchestrator job, driving runs kept in ``store``.

    Three attempts with exponential backoff from 1 s; each attempt resumes at the first step
    not yet recorded. Ten minutes per attempt: a run has at most 50 steps of at most 10 s.
    """
    return JobDefinition(
        name=ORCHESTRATOR_JOB,
        queue=ORCHESTRATOR_QUEUE,
        payload=OrchestratePayload,
        handler=Orchestrator(store).run,
        retry=RetryPolicy(attempts=3, backoff=Backoff.exponential(1.0)),
        timeout=600,
        concurrency=5,
        business_keys=("runId",),
        id_keys=("runId",),
        description="Run an agent's steps, writing each step as an event on the run's stream.",
    )


def build_registry(*, store: AgentRunStore | None = None) -> Registry:
    """The agent domain's registry (the orchestrator job only).

    Args:
        store: Where runs live; ``SqlAgentRunStore`` (Postgres via the outbox) by default.
    """
    return Registry([orchestrator_definition(store or SqlAgentRunStore())])
