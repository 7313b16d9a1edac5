"""`JobContext`: what a handler gets besides its payload."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel

from portside.infra import Infra
from portside.ports import FailureKind, Job, RunMode

__all__ = ["DefinitionView", "JobContext"]

_JOB_LOGGER = logging.getLogger("portside.job")


class DefinitionView(Protocol):
    """What a handler reads of its job's ``JobDefinition`` (which satisfies this).

    A protocol rather than ``JobDefinition`` itself: the definition names ``JobContext`` in its
    handler type, so this module stays below ``portside.app.definition``.
    """

    @property
    def name(self) -> str:
        """The job's stable name."""
        ...

    @property
    def queue(self) -> str:
        """The queue it runs on."""
        ...

    @property
    def payload(self) -> type[BaseModel]:
        """The pydantic model of its data."""
        ...

    @property
    def timeout(self) -> float:
        """Seconds one attempt may run."""
        ...

    @property
    def business_keys(self) -> tuple[str, ...]:
        """Payload fields copied into every log line."""
        ...

    @property
    def description(self) -> str:
        """One line for ``--help`` and docs."""
        ...

    def classify(self, error: BaseException) -> FailureKind:
        """Transient or permanent, as the worker will classify ``error``."""
        ...

    def job_id_for(self, payload: BaseModel) -> str:
        """The deterministic job id of ``payload``."""
        ...


@dataclass(frozen=True)
class JobContext:
    """The running attempt.

    Attributes:
        job: The queue's job (id, name, attempt, raw data, progress updates).
        definition: The job's registry entry.
        run_mode: ``scheduled``, ``manual`` or ``backfill``.
        infra: The adapters the worker runs on (also installed for ``get_infra()``).
        log_fields: job id, queue, attempt, run mode and the payload's business keys.
        now: The worker's clock.
    """

    job: Job
    definition: DefinitionView
    run_mode: RunMode
    infra: Infra
    log_fields: Mapping[str, Any]
    now: Callable[[], datetime]
    logger: logging.Logger = field(default=_JOB_LOGGER)

    @property
    def job_id(self) -> str:
        """The job id."""
        return self.job.id

    @property
    def attempt(self) -> int:
        """This attempt's number, 1 for the first try."""
        return self.job.attempt

    def log(self, event: str, level: int = logging.INFO, **fields: Any) -> None:
        """Log ``event`` as JSON with the job's fields plus ``fields``."""
        self.logger.log(level, event, extra={"portside": {**self.log_fields, **fields}})

    async def progress(self, value: int | float | dict[str, Any]) -> None:
        """Report progress, readable through ``get_job`` (and the HTTP API)."""
        await self.job.update_progress(value)
