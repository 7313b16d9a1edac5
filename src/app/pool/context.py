"""`PoolContext`: what a handler running in a pool child gets besides its payload."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["PoolContext"]


@dataclass(frozen=True)
class PoolContext:
    """The running attempt, as a child process sees it.

    Attributes:
        job_id: The job id.
        name: The job's name.
        queue: The queue it runs on.
        attempt: This attempt's number, 1 for the first try.
    """

    job_id: str
    name: str
    queue: str
    attempt: int
    _send_progress: Callable[[Any], None]

    def progress(self, value: int | float | dict[str, Any]) -> None:
        """Report progress; the worker writes it to the job (readable through ``get_job``)."""
        self._send_progress(value)
