"""`Registry`: the single source of truth for every job of an application (A1)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

from portside.app.definition import Handler, JobDefinition
from portside.app.errors import UnknownJobError, UnknownQueueError
from portside.ports import RateLimit, Retention, ValidationError

__all__ = ["QueueSettings", "Registry"]

PayloadT = TypeVar("PayloadT", bound=BaseModel)


_SHARED = {
    "concurrency": "jobs sharing a queue share its worker",
    "rate_limit": "jobs sharing a queue share its worker",
    "queue_concurrency": "the queue-wide cap counts every job of the queue",
    "remove_on_complete": "each finished job trims the whole queue's completed jobs to its "
    "own setting",
    "remove_on_fail": "each failed job trims the whole queue's failed jobs to its own setting",
}
"""Settings every job of a queue must agree on, and why."""


@dataclass(frozen=True)
class QueueSettings:
    """How the worker consumes one queue: shared by every job on it."""

    queue: str
    concurrency: int
    rate_limit: RateLimit | None
    timeout: float
    queue_concurrency: int | None = None
    remove_on_complete: bool | int | Retention = False
    remove_on_fail: bool | int | Retention = False


class Registry:
    """Job definitions by name; invalid or conflicting definitions fail at registration.

    Jobs that share a queue share its worker and its BullMQ settings, so they must agree on
    concurrency, rate limit, the queue-wide cap and retention.
    """

    def __init__(self, definitions: Iterable[JobDefinition[Any]] = ()) -> None:
        self._jobs: dict[str, JobDefinition[Any]] = {}
        for definition in definitions:
            self.register(definition)

    def register(self, definition: JobDefinition[PayloadT]) -> JobDefinition[PayloadT]:
        """Add ``definition``; returns it.

        Raises:
            ValidationError: not a JobDefinition, a duplicate name, or a queue conflict.
        """
        if not isinstance(definition, JobDefinition):
            raise ValidationError(
                f"register() takes a JobDefinition, got {type(definition).__name__}",
                fix="build one with JobDefinition(name=..., queue=..., payload=..., handler=...)",
                field="definition",
            )
        existing = self._jobs.get(definition.name)
        if existing is not None:
            raise ValidationError(
                f"job {definition.name!r} is registered twice (queues {existing.queue!r} and "
                f"{definition.queue!r})",
                fix="job names are unique: rename one of them or drop the duplicate",
                field=f"{definition.name}.name",
            )
        for other in self.for_queue(definition.queue):
            for attr, reason in _SHARED.items():
                mine, theirs = getattr(definition, attr), getattr(other, attr)
                if mine != theirs:
                    raise ValidationError(
                        f"job {definition.name!r} sets {attr}={mine!r} but job {other.name!r} on "
                        f"the same queue {definition.queue!r} set {attr}={theirs!r}",
                        fix=f"{reason}: give them the same {attr} or put them on separate queues",
                        field=f"{definition.name}.{attr}",
                    )
        self._jobs[definition.name] = definition
        return definition

    def job(
        self, *, name: str, queue: str, payload: type[PayloadT], **options: Any
    ) -> Callable[[Handler[PayloadT]], Handler[PayloadT]]:
        """Decorator form: ``@registry.job(name="ingest", queue="ingest", payload=Ingest)``."""

        def register(handler: Handler[PayloadT]) -> Handler[PayloadT]:
            self.register(
                JobDefinition(name=name, queue=queue, payload=payload, handler=handler, **options)
            )
            return handler

        return register

    def get(self, name: str) -> JobDefinition[Any]:
        """The definition named ``name``; ``UnknownJobError`` lists the known names."""
        definition = self._jobs.get(name)
        if definition is None:
            raise UnknownJobError(name, self._jobs)
        return definition

    def find(self, name: str) -> JobDefinition[Any] | None:
        """The definition named ``name``, or None."""
        return self._jobs.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._jobs

    def __iter__(self) -> Iterator[JobDefinition[Any]]:
        return iter(sorted(self._jobs.values(), key=lambda definition: definition.name))

    def __len__(self) -> int:
        return len(self._jobs)

    def names(self) -> list[str]:
        """Registered job names, sorted."""
        return sorted(self._jobs)

    def queues(self) -> list[str]:
        """Queues that at least one job uses, sorted."""
        return sorted({definition.queue for definition in self._jobs.values()})

    def for_queue(self, queue: str) -> list[JobDefinition[Any]]:
        """The jobs of ``queue``, sorted by name."""
        return [definition for definition in self if definition.queue == queue]

    def queue_settings(self, queue: str) -> QueueSettings:
        """Consumer settings of ``queue``; timeout is the longest of its jobs."""
        jobs = self.for_queue(queue)
        if not jobs:
            raise UnknownQueueError(queue, self.queues())
        return QueueSettings(
            queue=queue,
            concurrency=jobs[0].concurrency,
            rate_limit=jobs[0].rate_limit,
            timeout=max(job.timeout for job in jobs),
            queue_concurrency=jobs[0].queue_concurrency,
            remove_on_complete=jobs[0].remove_on_complete,
            remove_on_fail=jobs[0].remove_on_fail,
        )

    def snapshot(self) -> list[dict[str, Any]]:
        """Names, queues, schedules, id keys, the queue-wide cap and retention: what must not
        change by accident (A1, Q13, Q15)."""
        rows = []
        for definition in self:
            schedule = definition.schedule
            rows.append(
                {
                    "name": definition.name,
                    "queue": definition.queue,
                    "id_keys": list(definition.id_keys),
                    "date_field": definition.date_field,
                    "queue_concurrency": definition.queue_concurrency,
                    "remove_on_complete": _keep(definition.remove_on_complete),
                    "remove_on_fail": _keep(definition.remove_on_fail),
                    "schedule": None
                    if schedule is None
                    else {
                        "pattern": schedule.pattern,
                        "every": schedule.every,
                        "timezone": schedule.timezone,
                        "data": dict(schedule.data),
                    },
                }
            )
        return rows


def _keep(value: bool | int | Retention) -> bool | int | dict[str, float]:
    """A retention setting as JSON: a Retention as its set fields (``{"count": 1000}``)."""
    if isinstance(value, Retention):
        return value.model_dump(exclude_none=True)
    return value
