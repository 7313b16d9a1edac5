"""Attempt outcomes of the queue fake: the fast JobOutcome and the lists ``drain()`` fills."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from portside.adapters.memory.queue.jobs import JobRecord
from portside.ports import FailureKind, JobOutcome

__all__ = ["OutcomeCollectors", "trusted_outcome"]

_OUTCOME_FIELDS = frozenset(JobOutcome.model_fields)


def trusted_outcome(values: dict[str, Any]) -> JobOutcome:
    """A JobOutcome from values the runner built itself, without validating them again.

    ``drain()`` makes one per attempt; skipping validation keeps it above 100,000 jobs/s
    (what ``JobOutcome.model_construct`` does, without its per-field loop). A unit test pins
    that the result equals the validated model.
    """
    outcome = object.__new__(JobOutcome)
    object.__setattr__(outcome, "__dict__", values)
    object.__setattr__(outcome, "__pydantic_fields_set__", _OUTCOME_FIELDS)
    object.__setattr__(outcome, "__pydantic_extra__", None)
    object.__setattr__(outcome, "__pydantic_private__", None)
    return outcome


class OutcomeCollectors:
    """The outcome lists of the ``drain()`` calls in progress, each for one queue or all."""

    __slots__ = ("_lists",)

    def __init__(self) -> None:
        self._lists: list[tuple[str | None, list[JobOutcome]]] = []

    @contextlib.contextmanager
    def collecting(self, queue: str | None) -> Iterator[list[JobOutcome]]:
        """A list that receives every outcome of ``queue`` (or of any queue) while open."""
        entry: tuple[str | None, list[JobOutcome]] = (queue, [])
        self._lists.append(entry)
        try:
            yield entry[1]
        finally:
            # by identity: two drains of one queue may hold equal lists
            self._lists = [other for other in self._lists if other is not entry]

    def add(
        self,
        record: JobRecord,
        attempt: int,
        status: str,
        *,
        result: Any = None,
        error: str | None = None,
        failure: FailureKind | None = None,
    ) -> None:
        """Give one ended attempt to every open list that wants its queue."""
        if not self._lists:
            return
        outcome = trusted_outcome(
            {
                "queue": record.queue,
                "job_id": record.id,
                "name": record.name,
                "attempt": attempt,
                "status": status,
                "result": result,
                "error": error,
                "failure_kind": failure,
            }
        )
        queue = record.queue
        for wanted, outcomes in self._lists:
            if wanted is None or wanted == queue:
                outcomes.append(outcome)
