"""``POST /runs`` and ``GET /runs/{run_id}`` for agent runs: ``AgentRuns.routes()``.

The core serves the third run route, the event stream ``GET /runs/{run_id}/events``, from the
outbox for any run service (``portside.app.http.runs``).
"""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import APIRouter, Depends

from portside.app.http.problems import ApiError, responses
from portside.app.http.routes_runs import RunId
from portside.app.http.state import ApiState, api_state
from portside.examples.agents.models import RunRecord, RunRequest, StartedRun
from portside.examples.agents.schemas import RunStarted, RunView
from portside.infra import Infra

__all__ = ["run_routes"]

State = Annotated[ApiState, Depends(api_state)]


class _Runs(Protocol):
    """What the routes use of ``AgentRuns`` (which imports this module lazily)."""

    async def start(self, infra: Infra, request: RunRequest) -> StartedRun: ...

    async def get(self, infra: Infra, run_id: str) -> RunRecord | None: ...


def run_routes(runs: _Runs) -> APIRouter:
    """The routes of the agent runs in ``runs``."""
    router = APIRouter(tags=["runs"])

    @router.post(
        "/runs",
        status_code=202,
        summary="Start an agent run",
        responses=responses(400, 413, 422, 503),
    )
    async def start_run(body: RunRequest, api: State) -> RunStarted:
        """Write the run and its first event (`run.created`, seq 1) in one transaction, then
        queue the orchestrator job on `agents-run:orchestrator` (A7). Follow it at
        `eventsUrl`."""
        started = await runs.start(api.infra, body)
        api.metrics.runs_started.inc()
        run_id = started.run.id
        return RunStarted(
            run_id=run_id,
            job_id=started.job.id,
            status=started.run.status,
            status_url=f"/runs/{run_id}",
            events_url=f"/runs/{run_id}/events?from_seq=1",
        )

    @router.get(
        "/runs/{run_id}",
        summary="A run's progress and outcome",
        responses=responses(404, 422, 503),
    )
    async def get_run(run_id: RunId, api: State) -> RunView:
        """Status (queued, running, completed, failed), steps done, the newest event's seq,
        and the result or error."""
        run = await runs.get(api.infra, run_id)
        if run is None:
            raise ApiError(404, f"no run with id {run_id!r}", error="unknown_run")
        return RunView.of(run)

    return router
