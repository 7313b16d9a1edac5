"""The registry workers run next to the API: the example jobs, the agent orchestrator and
webhook deliveries (``portside worker --app portside.app.http.registry:registry``)."""

from __future__ import annotations

from portside.app.agents import AgentRunStore
from portside.app.agents import build_registry as build_agent_registry
from portside.app.examples import build_registry as build_example_registry
from portside.app.examples.store import ExampleStore
from portside.app.http.webhook_job import WebhookDelivery, webhook_definition
from portside.app.registry import Registry

__all__ = ["build_worker_registry", "registry"]


def build_worker_registry(
    *,
    runs: AgentRunStore | None = None,
    examples: ExampleStore | None = None,
    delivery: WebhookDelivery | None = None,
) -> Registry:
    """Every job the API can cause: examples, ``agent-run`` and ``webhook-deliver``.

    Args:
        runs: The agent-run store (Postgres by default; the API must use the same one).
        examples: The example jobs' store (Postgres by default).
        delivery: How webhooks are sent (default: signed with ``$PORTSIDE_WEBHOOK_SECRET``).
    """
    return Registry(
        [
            *build_example_registry(store=examples),
            *build_agent_registry(store=runs),
            webhook_definition(delivery),
        ]
    )


registry = build_worker_registry()
