"""Translate Redis client failures into portside errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.exceptions import BusyLoadingError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from portside.ports import BackendUnavailableError, PortsideError

__all__ = [
    "CONNECTION_ERRORS",
    "REDIS_ERRORS",
    "is_connection_error",
    "translate_errors",
    "unavailable",
]

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    BusyLoadingError,
    ConnectionError,
    TimeoutError,
    OSError,
)


REDIS_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, ResponseError)
"""Connection failures plus error replies: what a background duty may ride out."""


def is_connection_error(error: BaseException) -> bool:
    """Whether ``error`` means Redis could not be reached (worth a reconnect and retry)."""
    return isinstance(error, CONNECTION_ERRORS)


def unavailable(error: BaseException, url: str, operation: str) -> BackendUnavailableError:
    """A BackendUnavailableError saying which operation failed against which server."""
    return BackendUnavailableError(
        f"{operation} failed: Redis at {url} is unreachable ({type(error).__name__}: {error})",
        fix="check that Redis is running and that redis_url is right; the command was retried "
        "with backoff before giving up",
        field="redis_url",
    )


@asynccontextmanager
async def translate_errors(url: str, operation: str) -> AsyncIterator[None]:
    """Re-raise connection failures inside the block as BackendUnavailableError (a portside
    error raised inside, such as ``WaitTimeoutError``, passes as it is)."""
    try:
        yield
    except PortsideError:
        raise
    except CONNECTION_ERRORS as exc:
        raise unavailable(exc, url, operation) from exc
