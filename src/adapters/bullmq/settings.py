"""The BullMQ adapter's settings (tuning knobs validated once) and its Redis URL."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from portside.ports import ConfigurationError

__all__ = [
    "QUEUE_URL_SCHEMES",
    "BullMQSettings",
    "check_redis_url",
    "parse_settings",
    "redacted_url",
]

QUEUE_URL_SCHEMES = (
    "redis",
    "rediss",
    "unix",
    "redis+sentinel",
    "rediss+sentinel",
    "redis+cluster",
    "rediss+cluster",
)
"""URL schemes ``BullMQQueue`` connects with: one server, Sentinel (S2) or Cluster (S1)."""


class BullMQSettings(BaseModel):
    """The ``**tuning`` keyword arguments of ``BullMQQueue``, validated (durations in seconds).

    Defaults match Node BullMQ's worker defaults where BullMQ has one.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    lock_duration: float = Field(default=30.0, gt=0)
    """How long a fetched job stays locked without renewal (BullMQ ``lockDuration``)."""
    stalled_interval: float = Field(default=30.0, gt=0)
    """How often workers look for jobs whose lock expired (BullMQ ``stalledInterval``)."""
    max_stalled_count: int = Field(default=1, ge=0)
    """Stalls tolerated before a job is failed (BullMQ ``maxStalledCount``)."""
    block_timeout: float = Field(default=5.0, gt=0, le=10)
    """Longest blocking wait for new jobs when idle (BullMQ ``drainDelay``)."""
    connect_timeout: float = Field(default=2.0, gt=0)
    """Timeout of one TCP connect to Redis."""
    command_timeout: float = Field(default=15.0, gt=0)
    """A worker connection with no reply for this long is considered dead and replaced."""
    retries: int = Field(default=2, ge=0, le=20)
    """Retries of a producer or control command after a connection error."""
    retry_backoff: float = Field(default=0.05, gt=0)
    """First delay between retries and reconnects; doubles up to ``max_backoff``."""
    max_backoff: float = Field(default=2.0, gt=0)
    """Longest delay between reconnect attempts of workers and event streams."""
    close_grace: float = Field(default=5.0, ge=0)
    """How long ``BullMQQueue.close()`` lets in-flight jobs finish before releasing them."""
    close_timeout: float = Field(default=10.0, gt=0)
    """How long ``BullMQQueue.close()`` waits, beyond ``close_grace``, for releasing jobs and
    disconnecting before it aborts the sockets and returns (a hung Redis)."""
    event_block: float = Field(default=5.0, gt=0, le=60)
    """Longest blocking ``XREAD`` of an event stream."""
    max_events: int = Field(default=10_000, ge=100)
    """Approximate length kept of the events stream for events portside adds itself."""
    worker_name: str | None = Field(default=None, min_length=1, max_length=100)
    """Name shown in Redis ``CLIENT LIST`` and Node's ``queue.getWorkers()``."""


def parse_settings(tuning: dict[str, Any]) -> BullMQSettings:
    """Build ``BullMQSettings`` from ``BullMQQueue``'s tuning keywords.

    Raises:
        ConfigurationError: naming the unknown or invalid keyword.
    """
    try:
        return BullMQSettings(**tuning)
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(part) for part in first["loc"]) or "tuning"
        known = ", ".join(BullMQSettings.model_fields)
        raise ConfigurationError(
            f"BullMQQueue tuning {name!r} is invalid: {first['msg']}",
            fix=f"pass only known tuning keywords ({known}) with valid values",
            field=name,
        ) from None


def check_redis_url(url: object) -> str:
    """Validate ``redis_url`` (``redis://``, ``rediss://``, ``unix://``,
    ``redis+sentinel://``, ``redis+cluster://``, or those two over TLS: ``rediss+...``)."""
    if not isinstance(url, str) or urlsplit(url).scheme not in QUEUE_URL_SCHEMES:
        raise ConfigurationError(
            f"redis_url {redacted_url(url)!r} is not a Redis URL",
            fix="pass a URL such as 'redis://127.0.0.1:6379/0' or "
            "'redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster'",
            field="redis_url",
        )
    return url


def redacted_url(url: object) -> str:
    """The URL without its password, for error messages and logs."""
    if not isinstance(url, str):
        return repr(url)
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]  # verbatim: a Sentinel URL lists several hosts
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))
