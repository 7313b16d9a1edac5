"""Agent-run value types: the request that starts a run, the stored run row, event names."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from annotated_types import Ge, Le
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
)
from pydantic.alias_generators import to_camel

from portside.ports import JobRef

__all__ = [
    "EVENT_ATTEMPT_FAILED",
    "EVENT_COMPLETED",
    "EVENT_CREATED",
    "EVENT_FAILED",
    "EVENT_RESUMED",
    "EVENT_STARTED",
    "EVENT_STEP_COMPLETED",
    "EVENT_STEP_STARTED",
    "MAX_STEPS",
    "RUN_ID_PATTERN",
    "TERMINAL_EVENTS",
    "TERMINAL_STATUSES",
    "FailureMode",
    "NewRun",
    "RunRecord",
    "RunRequest",
    "RunStatus",
    "StartedRun",
]

RunStatus = Literal["queued", "running", "completed", "failed"]
FailureMode = Literal["transient", "permanent"]
TERMINAL_STATUSES: tuple[RunStatus, ...] = ("completed", "failed")

EVENT_CREATED = "run.created"
EVENT_STARTED = "run.started"
EVENT_RESUMED = "run.resumed"
EVENT_STEP_STARTED = "run.step.started"
EVENT_STEP_COMPLETED = "run.step.completed"
EVENT_ATTEMPT_FAILED = "run.attempt.failed"
EVENT_COMPLETED = "run.completed"
EVENT_FAILED = "run.failed"
TERMINAL_EVENTS = frozenset({EVENT_COMPLETED, EVENT_FAILED})
"""Event types that end a run's stream: nothing is appended after them."""

MAX_STEPS = 50
RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
_AGENT_PATTERN = r"^[a-z][a-z0-9-]{0,39}$"


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a number is expected, not true or false")
    return value


WholeNumber = Annotated[int, BeforeValidator(_not_bool)]
"""An integer that JSON ``true``/``false`` is not (pydantic's lax ``int`` takes them)."""
DEFAULT_STEPS = 3


class RunRequest(BaseModel):
    """What ``POST /runs`` takes: the agent, its input and how the simulated run behaves.

    The agent is deterministic and offline: each step "thinks" for ``stepDelayMs`` (a stand-in
    for a model or tool call) and derives its output from a hash of the input, so runs are
    reproducible. ``failAtStep`` injects a failure to show retries and dead letters.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
    )

    agent: str = Field(
        default="researcher",
        pattern=_AGENT_PATTERN,
        description="Agent name: lowercase letters, digits and '-', up to 40 characters.",
    )
    input: str = Field(
        min_length=1,
        max_length=4000,
        pattern=r"^[^\x00]*$",
        description="The task for the agent (1-4000 characters, no NUL).",
    )
    steps: WholeNumber = Field(
        default=DEFAULT_STEPS, ge=1, le=MAX_STEPS, description="How many steps the run takes."
    )
    step_delay_ms: WholeNumber = Field(
        default=0, ge=0, le=10_000, description="Milliseconds each step takes (simulated work)."
    )
    fail_at_step: Annotated[int, Ge(1), Le(MAX_STEPS), BeforeValidator(_not_bool)] | None = Field(
        default=None,
        description="Make this step fail (the first attempt only when failure is 'transient'); "
        "a step beyond `steps` is never reached, so nothing fails.",
    )
    failure: FailureMode = Field(
        default="transient",
        description="'transient': the step fails once and the job retries and resumes; "
        "'permanent': the run fails at once.",
    )

    @property
    def failing_step(self) -> int | None:
        """The step that fails, if the run reaches it (``failAtStep`` beyond ``steps``: none)."""
        step = self.fail_at_step
        return step if step is not None and step <= self.steps else None

    @field_validator("input")
    @classmethod
    def _storable_text(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("input contains a NUL character, which text columns cannot store")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValueError("input contains a lone surrogate, which is not valid UTF-8") from error
        return value


class NewRun(BaseModel):
    """A run row to insert (status ``queued``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=RUN_ID_PATTERN)
    request: RunRequest
    job_id: str
    last_seq: int = Field(ge=1)


class RunRecord(BaseModel):
    """A stored run: its request, progress and outcome.

    Attributes:
        started_step: The last step whose ``run.step.started`` event was written.
        completed_steps: The last step whose ``run.step.completed`` event was written.
        last_seq: ``seq`` of the run's newest event (its stream is the run id).
        attempts: Orchestrator attempts that began.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    agent: str
    input: str
    steps: int
    step_delay_ms: int = 0
    fail_at_step: int | None = None
    failure: FailureMode = "transient"
    status: RunStatus
    started_step: int = 0
    completed_steps: int = 0
    last_seq: int = 0
    attempts: int = 0
    job_id: str
    result: dict[str, Any] | None = None
    error: str | None = None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None

    @property
    def finished(self) -> bool:
        """Whether the run reached a terminal status (its stream has ended)."""
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_new(cls, run: NewRun, now: datetime) -> RunRecord:
        """The row ``run`` becomes once inserted at ``now``."""
        request = run.request
        return cls(
            id=run.id,
            agent=request.agent,
            input=request.input,
            steps=request.steps,
            step_delay_ms=request.step_delay_ms,
            fail_at_step=request.failing_step,
            failure=request.failure,
            status="queued",
            last_seq=run.last_seq,
            job_id=run.job_id,
            created_at=now,
            updated_at=now,
        )


class StartedRun(BaseModel):
    """A run that was written and queued."""

    model_config = ConfigDict(frozen=True)

    run: RunRecord
    job: JobRef
