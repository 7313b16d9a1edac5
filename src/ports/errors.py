"""The portside error hierarchy: every error says what was wrong and how to fix it."""

from __future__ import annotations

import math

__all__ = [
    "BackendUnavailableError",
    "ConfigurationError",
    "InfraNotSetError",
    "JobFailedError",
    "JobNotFoundError",
    "JobStalledError",
    "JobStateError",
    "JobTimeoutError",
    "PermanentError",
    "PortsideError",
    "TransientError",
    "ValidationError",
    "WaitTimeoutError",
]


class PortsideError(Exception):
    """Base class of every error portside raises on purpose.

    Args:
        message: What was wrong, naming the offending input.
        fix: What the caller should do about it; appended to the message.
        field: Dotted path of the input field at fault, when there is one.
    """

    def __init__(self, message: str, *, fix: str | None = None, field: str | None = None) -> None:
        self.message = message
        self.fix = fix
        self.field = field
        super().__init__(f"{message}. {fix}" if fix else message)


class ValidationError(PortsideError, ValueError):
    """An argument or payload passed to a portside entry point is invalid."""


class JobNotFoundError(ValidationError):
    """No job has this id in the queue: never added, removed, or deleted by retention.

    ``field`` is ``job_id``; ``queue`` and ``job_id`` name the job looked for.
    """

    def __init__(self, queue: str, job_id: str, *, message: str | None = None) -> None:
        self.queue = queue
        self.job_id = job_id
        super().__init__(
            message or f"queue {queue!r} has no job {job_id!r}",
            fix="check the id (from the JobRef that enqueue returned) and the queue name; "
            "finished jobs may have been removed by their retention",
            field="job_id",
        )


class JobStateError(ValidationError):
    """The job exists but its state does not allow the operation (a wrong-state error).

    ``state`` is the job's state when it was refused.
    """

    def __init__(
        self, queue: str, job_id: str, state: str, message: str, *, fix: str, field: str
    ) -> None:
        self.queue = queue
        self.job_id = job_id
        self.state = state
        super().__init__(message, fix=fix, field=field)


class ConfigurationError(PortsideError):
    """portside is wired or configured wrongly (missing infra, bad URL, unknown provider)."""


class InfraNotSetError(ConfigurationError):
    """`get_infra()` was called before any `Infra` was installed."""


class TransientError(PortsideError):
    """A failure worth retrying (network, 5xx, timeouts); raised by handlers or adapters.

    Args:
        message: What failed.
        retry_after: Seconds to wait before the next attempt instead of the retry policy's
            backoff (an HTTP ``Retry-After``); None follows the policy. The attempt still
            counts against the job's attempts (Q17).
        fix: What to do about it.
        field: The input at fault, if any.

    Raises:
        ValidationError: ``retry_after`` is not a finite number of seconds from 0.
    """

    def __init__(
        self,
        message: str = "transient failure",
        *,
        retry_after: float | None = None,
        fix: str | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message, fix=fix, field=field)
        if retry_after is not None and not _is_seconds(retry_after):
            raise ValidationError(
                f"retry_after is {retry_after!r}",
                fix="pass a finite number of seconds, 0 or more (or None for the backoff)",
                field="retry_after",
            )
        self.retry_after: float | None = None if retry_after is None else float(retry_after)


class PermanentError(PortsideError):
    """A failure that no retry can fix (invalid token, permission, bad payload).

    A job whose handler raises it fails at once and uses no further attempts.
    """

    def __init__(self, message: str = "permanent failure", **kwargs: str | None) -> None:
        super().__init__(message, **kwargs)


class JobTimeoutError(TransientError):
    """An attempt ran longer than its timeout; counted as a transient failure."""


class JobStalledError(TransientError):
    """A job stalled more often than the queue allows, so the queue failed it for good without
    running its handler again (its worker died or blocked its event loop past the lock, each
    time it held the job)."""


class BackendUnavailableError(TransientError):
    """Redis or Postgres could not be reached within the bounded retry window."""


class JobFailedError(PortsideError):
    """The job awaited with ``wait_until_finished`` failed for good.

    Attributes:
        queue: The job's queue.
        job_id: The job's id.
        failed_reason: The reason stored on the job (``JobInfo.failed_reason``).
        failure_kind: ``transient`` or ``permanent`` when known.
    """

    def __init__(
        self, queue: str, job_id: str, failed_reason: str, failure_kind: str | None = None
    ) -> None:
        self.queue = queue
        self.job_id = job_id
        self.failed_reason = failed_reason
        self.failure_kind = failure_kind
        super().__init__(
            f"job {job_id!r} of queue {queue!r} failed: {failed_reason}",
            fix=f"fix the cause, then retry it with retry_failed({queue!r}, job_id={job_id!r})",
            field="job_id",
        )


class WaitTimeoutError(PortsideError, TimeoutError):
    """A wait for a job ended at its deadline before the job finished (also a TimeoutError)."""

    def __init__(self, queue: str, job_id: str, timeout: float, state: str) -> None:
        self.queue = queue
        self.job_id = job_id
        self.state = state
        super().__init__(
            f"job {job_id!r} of queue {queue!r} did not finish within {timeout:g} s "
            f"(it was {state})",
            fix="wait longer, or check that a worker consumes the queue",
            field="timeout",
        )


def _is_seconds(value: object) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and value >= 0
    )
