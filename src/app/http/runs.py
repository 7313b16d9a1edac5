"""``RunService``: the runs an application lets the HTTP API start, read and stream (A6, A7).

A run is a unit of work whose progress is written as outbox events on a stream of its own.
What a run *is* (its request, its row, its jobs) belongs to the application, so the service
brings its own ``POST /runs`` and ``GET /runs/{run_id}`` routes; the core serves the event
stream ``GET /runs/{run_id}/events`` (Server-Sent Events replayed from the outbox, then live)
for any service. ``create_app(..., runs=service)`` mounts both; without a service the API has
no run routes. ``portside.examples.agents.AgentRuns`` (the example agent runs) satisfies it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from portside.app.registry import Registry
from portside.infra import Infra
from portside.ports import OutboxHandler, QueuePort

if TYPE_CHECKING:
    # Workers import this module (through portside.app.application) but never the web framework.
    from fastapi import APIRouter

__all__ = ["RunPosition", "RunService"]


@dataclass(frozen=True)
class RunPosition:
    """Where a run's event stream stands: what ``GET /runs/{run_id}/events`` needs.

    Attributes:
        stream: The outbox stream that holds the run's events (e.g. the run id).
        last_seq: ``seq`` of the newest event committed for the run (0: none yet).
        finished: The run ended: its terminal event is the last one, nothing follows it.
    """

    stream: str
    last_seq: int
    finished: bool


class RunService(Protocol):
    """Runs served over HTTP; see the module docstring for who serves which route."""

    @property
    def registry(self) -> Registry:
        """Jobs the runs cause (e.g. an orchestrator): the API looks them up and reports
        their queues' health, but clients cannot enqueue them with ``POST /jobs/{name}``."""
        ...

    @property
    def terminal_events(self) -> frozenset[str]:
        """Event types that end a run's stream: the SSE response closes after one."""
        ...

    def routes(self) -> APIRouter:
        """The service's own routes, at least ``POST /runs`` and ``GET /runs/{run_id}``."""
        ...

    async def position(self, infra: Infra, run_id: str) -> RunPosition | None:
        """Where the run's stream stands, or None for an unknown run (answered with 404)."""
        ...

    def outbox_handler(self, queue: QueuePort) -> OutboxHandler:
        """A handler for published outbox events (e.g. one that queues a run's job once its
        creation is published); the API installs it when it runs the outbox publisher."""
        ...
