"""Response bodies of the agent-run routes (camelCase JSON), as the OpenAPI schema shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from portside.app.http.schemas import ApiModel
from portside.examples.agents.models import RunRecord, RunStatus

__all__ = ["RunStarted", "RunView"]


class RunStarted(ApiModel):
    """``POST /runs``: the run was written and its orchestrator job queued."""

    run_id: str
    job_id: str
    status: RunStatus
    status_url: str
    events_url: str


class RunView(ApiModel):
    """``GET /runs/{id}``: a run's progress and outcome."""

    run_id: str
    agent: str
    input: str
    steps: int
    status: RunStatus
    completed_steps: int
    last_seq: int = Field(description="seq of the run's newest event.")
    attempts: int
    job_id: str
    result: dict[str, Any] | None = None
    error: str | None = None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None

    @classmethod
    def of(cls, run: RunRecord) -> RunView:
        return cls(
            run_id=run.id,
            agent=run.agent,
            input=run.input,
            steps=run.steps,
            status=run.status,
            completed_steps=run.completed_steps,
            last_seq=run.last_seq,
            attempts=run.attempts,
            job_id=run.job_id,
            result=run.result,
            error=run.error,
            created_at=run.created_at,
            updated_at=run.updated_at,
            finished_at=run.finished_at,
        )
