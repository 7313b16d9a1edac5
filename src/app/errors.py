"""Errors of the job platform, all portside errors."""

from __future__ import annotations

from collections.abc import Iterable

from portside.ports import PermanentError, ValidationError

__all__ = ["InvalidPayloadError", "UnknownJobError", "UnknownQueueError"]


def _known(names: Iterable[str]) -> str:
    listed = sorted(names)
    return ", ".join(listed) if listed else "none are registered"


class UnknownJobError(ValidationError):
    """A job name that the registry does not define."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        super().__init__(
            f"unknown job {name!r}",
            fix=f"use one of the registered jobs ({_known(known)})",
            field="job",
        )
        self.name = name


class UnknownQueueError(ValidationError):
    """A queue name that no registered job uses."""

    def __init__(self, queue: str, known: Iterable[str]) -> None:
        super().__init__(
            f"no registered job uses queue {queue!r}",
            fix=f"use one of the registry's queues ({_known(known)})",
            field="queues",
        )
        self.queue = queue


class InvalidPayloadError(PermanentError):
    """A job's data failed its payload model in the worker: the job fails at once (Q2)."""
