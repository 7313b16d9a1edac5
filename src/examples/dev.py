"""The examples as one application: what ``portside dev`` runs unless ``--app`` says otherwise.

``application`` bundles the ingestion and dataset-sync jobs, the plans' own queues
(``portside.examples.plans``: phase 1 tasks, weather and alerts, color extraction,
moderation, analytics), the agent runs (with their orchestrator job) and the examples'
migrations; ``portside dev --list`` lists every job with a sample payload. Workers next to
the API run ``portside worker --app portside.examples.dev:application``: the jobs, the
orchestrator and webhook deliveries.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from portside.app.application import Application, MainJob
from portside.examples.agents import AgentRuns, AgentRunStore
from portside.examples.ingestion import ExampleStore, SourceClient, build_registry
from portside.examples.migrations import migrate
from portside.examples.plans import SAMPLES as PLAN_SAMPLES
from portside.examples.plans import register_plans

__all__ = ["MAIN_JOB", "SAMPLE_RUN", "application", "build_application"]

MAIN_JOB = "ingest"
SAMPLE_RUN = {"input": "Summarise the energy market", "steps": 5, "stepDelayMs": 500}
"""The ``POST /runs`` body ``portside dev`` suggests."""


INGESTION_SAMPLES: dict[str, dict[str, Any]] = {
    "aggregate": {"organizationId": "org-demo"},
    "sync-energy-wholesale-5m": {},
    "sync-energy-retail-prd-hourly": {},
    "sync-housing-abs-daily": {},
}
"""Sample payloads of the ingestion example's jobs (``ingest``'s is the main job's)."""


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
        registry=register_plans(build_registry(source=source, store=examples)),
        runs=AgentRuns(runs),
        migrate=migrate,
        main_job=MainJob(MAIN_JOB, _demo_ingest),
        sample_run=SAMPLE_RUN,
        samples={**INGESTION_SAMPLES, **PLAN_SAMPLES},
    )


application = build_application()
