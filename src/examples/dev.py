"""The examples as one application: what ``portside dev`` runs unless ``--app`` says otherwise.

``application`` bundles the ingestion and dataset-sync jobs, the agent runs (with their
orchestrator job) and the examples' migrations. Workers next to the API run
``portside worker --app portside.examples.dev:application``: the jobs, the orchestrator and
webhook deliveries.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from portside.app.application import Application, MainJob
from portside.examples.agents import AgentRuns, AgentRunStore
from portside.examples.ingestion import ExampleStore, SourceClient, build_registry
from portside.examples.migrations import migrate

__all__ = ["MAIN_JOB", "SAMPLE_RUN", "application", "build_application"]

MAIN_JOB = "ingest"
SAMPLE_RUN = {"input": "Summarise the energy market", "steps": 5, "stepDelayMs": 500}
"""The ``POST /runs`` body ``portside dev`` suggests."""


def _demo_ingest() -> dict[str, Any]:
    today = datetime.now(UTC).date().isoformat()
    return {"organizationId": "org-demo", "integrationId": "int-demo", "date": today}


def build_application(
    *,
    runs: AgentRunStore | None = None,
    examples: ExampleStore | None = None,
    source: SourceClient | None = None,
) -> Application:
    """The examples' application.

    Args:
        runs: Where agent runs live (Postgres by default; the API and the workers must share
            it: ``InMemoryAgentRunStore`` in unit tests).
        examples: Where the example jobs write (Postgres by default).
        source: Where they read (a ``FakeSourceClient`` by default).
    """
    return Application(
        registry=build_registry(source=source, store=examples),
        runs=AgentRuns(runs),
        migrate=migrate,
        main_job=MainJob(MAIN_JOB, _demo_ingest),
        sample_run=SAMPLE_RUN,
    )


application = build_application()
