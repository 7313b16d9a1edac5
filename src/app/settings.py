"""Runtime configuration of the CLI and worker, from environment variables and options."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from portside.ports import ConfigurationError

__all__ = [
    "APP_ENV",
    "BULLMQ_LOCK_DURATION_ENV",
    "BULLMQ_MAX_STALLED_COUNT_ENV",
    "BULLMQ_STALLED_INTERVAL_ENV",
    "CACHE_REDIS_URL_ENV",
    "HISTORY_SYNCHRONOUS_COMMIT_ENV",
    "LOG_LEVEL_ENV",
    "OUTBOX_RETENTION_ENV",
    "POSTGRES_DSN_ENV",
    "QUEUE_SCHEMES",
    "REDIS_PREFIX_ENV",
    "REDIS_URL_ENV",
    "RUN_HISTORY_DAYS_ENV",
    "Settings",
]

REDIS_URL_ENV = "PORTSIDE_REDIS_URL"
REDIS_PREFIX_ENV = "PORTSIDE_REDIS_PREFIX"
CACHE_REDIS_URL_ENV = "PORTSIDE_CACHE_REDIS_URL"
POSTGRES_DSN_ENV = "PORTSIDE_POSTGRES_DSN"
APP_ENV = "PORTSIDE_APP"
LOG_LEVEL_ENV = "PORTSIDE_LOG_LEVEL"
BULLMQ_LOCK_DURATION_ENV = "PORTSIDE_BULLMQ_LOCK_DURATION"
BULLMQ_STALLED_INTERVAL_ENV = "PORTSIDE_BULLMQ_STALLED_INTERVAL"
BULLMQ_MAX_STALLED_COUNT_ENV = "PORTSIDE_BULLMQ_MAX_STALLED_COUNT"
RUN_HISTORY_DAYS_ENV = "PORTSIDE_RUN_HISTORY_DAYS"
DEFAULT_RUN_HISTORY_DAYS = 30
OUTBOX_RETENTION_ENV = "PORTSIDE_OUTBOX_RETENTION"
HISTORY_SYNCHRONOUS_COMMIT_ENV = "PORTSIDE_HISTORY_SYNCHRONOUS_COMMIT"
DEFAULT_OUTBOX_RETENTION_DAYS = 7
_MAX_RUN_HISTORY_DAYS = 36_500
_OFF = "off"
_MIN_SECONDS, _MAX_SECONDS = 0.1, 86_400.0
_MAX_STALLED = 1000
# Settings field -> (environment variable, BullMQQueue tuning keyword, BullMQ's default).
_TUNING: dict[str, tuple[str, str, str]] = {
    "bullmq_lock_duration": (BULLMQ_LOCK_DURATION_ENV, "lock_duration", "30"),
    "bullmq_stalled_interval": (BULLMQ_STALLED_INTERVAL_ENV, "stalled_interval", "30"),
    "bullmq_max_stalled_count": (BULLMQ_MAX_STALLED_COUNT_ENV, "max_stalled_count", "1"),
}
_CACHE_SCHEMES = ("redis", "rediss", "unix")
QUEUE_SCHEMES = (
    *_CACHE_SCHEMES,
    "redis+sentinel",
    "rediss+sentinel",
    "redis+cluster",
    "rediss+cluster",
)
"""The queue adapter's URL schemes (``portside.adapters.bullmq.settings.QUEUE_URL_SCHEMES``,
not imported: it would load the adapter in every command); the cache takes one server only."""
_POSTGRES_SCHEMES = ("postgres", "postgresql")
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class Settings(BaseModel):
    """Where the servers are and how to log. Options override environment variables.

    Attributes:
        redis_url: ``$PORTSIDE_REDIS_URL``, e.g. ``redis://127.0.0.1:6379/0``.
        redis_prefix: ``$PORTSIDE_REDIS_PREFIX``, BullMQ's key prefix (default ``bull``).
        postgres_dsn: ``$PORTSIDE_POSTGRES_DSN``, e.g. ``postgresql://postgres@127.0.0.1/app``.
        cache_redis_url: ``$PORTSIDE_CACHE_REDIS_URL``, a Redis of its own for the cache
            (configured ``maxmemory-policy allkeys-lru``, E2); the queues' Redis when unset.
        app: ``$PORTSIDE_APP``, the registry as ``module:attribute``.
        log_level: ``$PORTSIDE_LOG_LEVEL`` (default ``INFO``).
        bullmq_lock_duration: ``$PORTSIDE_BULLMQ_LOCK_DURATION``, seconds a fetched job stays
            locked without renewal (BullMQ ``lockDuration``; default 30).
        bullmq_stalled_interval: ``$PORTSIDE_BULLMQ_STALLED_INTERVAL``, seconds between
            checks for jobs whose lock expired (BullMQ ``stalledInterval``; default 30).
        bullmq_max_stalled_count: ``$PORTSIDE_BULLMQ_MAX_STALLED_COUNT``, stalls a job may
            have before it fails (BullMQ ``maxStalledCount``; default 1).
        run_history_days: ``$PORTSIDE_RUN_HISTORY_DAYS``, days the worker keeps finished
            run-history rows (default 30); ``off`` (None) keeps them forever.
        outbox_retention_days: ``$PORTSIDE_OUTBOX_RETENTION``, days the worker keeps published
            outbox events (default 7); ``off`` (None) keeps them forever.
        history_synchronous_commit: ``$PORTSIDE_HISTORY_SYNCHRONOUS_COMMIT`` (``on``/``off``,
            default ``on``): whether run-history commits wait for Postgres to flush them to
            disk; ``off`` trades the rows of the last fraction of a second before a Postgres
            crash for attempts per second (``PostgresHistory(synchronous_commit=...)``).
    """

    model_config = ConfigDict(frozen=True)

    redis_url: str | None = None
    redis_prefix: str = "bull"
    postgres_dsn: str | None = None
    cache_redis_url: str | None = None
    app: str | None = None
    log_level: str = "INFO"
    bullmq_lock_duration: float | None = None
    bullmq_stalled_interval: float | None = None
    bullmq_max_stalled_count: int | None = None
    run_history_days: int | None = DEFAULT_RUN_HISTORY_DAYS
    outbox_retention_days: int | None = DEFAULT_OUTBOX_RETENTION_DAYS
    history_synchronous_commit: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: str | None) -> Settings:
        """Settings from ``env`` (default ``os.environ``), then the non-None ``overrides``."""
        source = os.environ if env is None else env
        values: dict[str, Any] = {}
        for field, name in (
            ("redis_url", REDIS_URL_ENV),
            ("redis_prefix", REDIS_PREFIX_ENV),
            ("postgres_dsn", POSTGRES_DSN_ENV),
            ("cache_redis_url", CACHE_REDIS_URL_ENV),
            ("app", APP_ENV),
            ("log_level", LOG_LEVEL_ENV),
            ("run_history_days", RUN_HISTORY_DAYS_ENV),
            ("outbox_retention_days", OUTBOX_RETENTION_ENV),
            ("history_synchronous_commit", HISTORY_SYNCHRONOUS_COMMIT_ENV),
            *((field, spec[0]) for field, spec in _TUNING.items()),
        ):
            if source.get(name, "").strip():
                values[field] = source[name].strip()
        values.update({key: value for key, value in overrides.items() if value is not None})
        for field in _TUNING:
            if isinstance(values.get(field), str):
                values[field] = _parse_tuning(field, values[field])
        if isinstance(values.get("history_synchronous_commit"), str):
            values["history_synchronous_commit"] = _parse_switch(
                values["history_synchronous_commit"], HISTORY_SYNCHRONOUS_COMMIT_ENV
            )
        for field, name, default in _DAYS:
            if isinstance(values.get(field), str):
                values[field] = _parse_days(values[field], name, default)
        settings = cls(**values)
        settings._check()
        return settings

    def _check(self) -> None:
        if self.log_level.upper() not in _LEVELS:
            raise ConfigurationError(
                f"log level {self.log_level!r} is unknown",
                fix=f"set {LOG_LEVEL_ENV} to one of {', '.join(_LEVELS)}",
                field=LOG_LEVEL_ENV,
            )
        if not self.redis_prefix or ":" in self.redis_prefix:
            raise ConfigurationError(
                f"Redis prefix {self.redis_prefix!r} is invalid",
                fix=f"set {REDIS_PREFIX_ENV} to a non-empty name without ':' (BullMQ's is 'bull')",
                field=REDIS_PREFIX_ENV,
            )
        for field, name, default in _DAYS:
            days = getattr(self, field)
            if days is not None and not 1 <= days <= _MAX_RUN_HISTORY_DAYS:
                raise _bad_days(str(days), name, default)
        for value, schemes, name in (
            (self.redis_url, QUEUE_SCHEMES, REDIS_URL_ENV),
            (self.cache_redis_url, _CACHE_SCHEMES, CACHE_REDIS_URL_ENV),
            (self.postgres_dsn, _POSTGRES_SCHEMES, POSTGRES_DSN_ENV),
        ):
            if value is not None and urlsplit(value).scheme not in schemes:
                raise ConfigurationError(
                    f"{name} {value!r} is not a {'/'.join(schemes)} URL",
                    fix=f"use e.g. {schemes[0]}://127.0.0.1/...",
                    field=name,
                )

    def run_retention(self) -> timedelta | None:
        """How long the worker keeps finished runs (``WorkerRuntime(run_retention=...)``)."""
        return None if self.run_history_days is None else timedelta(days=self.run_history_days)

    def outbox_retention(self) -> timedelta | None:
        """How long the worker keeps published outbox events (None: forever)."""
        days = self.outbox_retention_days
        return None if days is None else timedelta(days=days)

    def lost_after(self) -> float:
        """Seconds after which a running run-history row nobody vouched for is ``lost``: the
        queue's lock duration plus its stalled-check interval (BullMQ's 30 s + 30 s unless
        set), when the job has surely been taken back."""
        lock = self.bullmq_lock_duration or float(_TUNING["bullmq_lock_duration"][2])
        stalled = self.bullmq_stalled_interval or float(_TUNING["bullmq_stalled_interval"][2])
        return lock + stalled

    def bullmq_tuning(self) -> dict[str, float | int]:
        """The BullMQ tuning keywords that are set (``BullMQQueue(..., **tuning)``)."""
        tuning: dict[str, float | int] = {}
        for field, (_, keyword, _) in _TUNING.items():
            value = getattr(self, field)
            if value is not None:
                tuning[keyword] = value
        return tuning

    def require_redis_url(self) -> str:
        """The Redis URL, or a ConfigurationError naming the variable and option."""
        if self.redis_url is None:
            raise ConfigurationError(
                "no Redis URL is configured",
                fix=f"set {REDIS_URL_ENV} or pass --redis-url redis://host:6379/0",
                field=REDIS_URL_ENV,
            )
        return self.redis_url

    def cache_url(self) -> str | None:
        """The cache's Redis: ``cache_redis_url``, else the queues' Redis when that is one
        server; None when the queues use a Cluster or Sentinel URL and no cache URL is set
        (the cache talks to one server; jobs that use it then fail naming the setting)."""
        if self.cache_redis_url is not None:
            return self.cache_redis_url
        url = self.redis_url
        return url if url is not None and urlsplit(url).scheme in _CACHE_SCHEMES else None

    def require_postgres_dsn(self) -> str:
        """The Postgres DSN, or a ConfigurationError naming the variable and option."""
        if self.postgres_dsn is None:
            raise ConfigurationError(
                "no Postgres DSN is configured",
                fix=f"set {POSTGRES_DSN_ENV} or pass --postgres-dsn postgresql://user@host/db",
                field=POSTGRES_DSN_ENV,
            )
        return self.postgres_dsn

    def require_app(self) -> str:
        """The registry spec, or a ConfigurationError naming the variable and option."""
        if self.app is None:
            raise ConfigurationError(
                "no job registry is configured",
                fix="pass --app module:registry (e.g. portside.examples.ingestion:registry) or "
                f"set {APP_ENV}",
                field=APP_ENV,
            )
        return self.app


def _parse_tuning(field: str, raw: str) -> float | int:
    """A BullMQ tuning value from its variable's text, or a ConfigurationError naming it."""
    name, _, default = _TUNING[field]
    if field == "bullmq_max_stalled_count":
        try:
            count = int(raw)
        except ValueError:
            count = -1
        if not 0 <= count <= _MAX_STALLED:
            raise ConfigurationError(
                f"{name} {raw[:50]!r} is not a whole number from 0 to {_MAX_STALLED}",
                fix=f"set {name} to how many times a job may stall before it fails, e.g. "
                f"{default} (BullMQ's default), or unset it",
                field=name,
            )
        return count
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not _MIN_SECONDS <= seconds <= _MAX_SECONDS:  # also refuses nan and inf
        raise ConfigurationError(
            f"{name} {raw[:50]!r} is not a number of seconds from {_MIN_SECONDS:g} to "
            f"{_MAX_SECONDS:g}",
            fix=f"set {name} to seconds such as {default} (BullMQ's default), or unset it",
            field=name,
        )
    return seconds


# Settings field -> (environment variable, what it keeps, default days).
_DAYS = (
    ("run_history_days", RUN_HISTORY_DAYS_ENV, DEFAULT_RUN_HISTORY_DAYS),
    ("outbox_retention_days", OUTBOX_RETENTION_ENV, DEFAULT_OUTBOX_RETENTION_DAYS),
)
_KEPT = {
    RUN_HISTORY_DAYS_ENV: "finished runs",
    OUTBOX_RETENTION_ENV: "published outbox events",
}


def _parse_switch(raw: str, name: str) -> bool:
    """``on``/``off`` (also true/false, 1/0, yes/no) from a variable, or a ConfigurationError."""
    text = raw.strip().lower()
    if text in ("on", "true", "1", "yes"):
        return True
    if text in ("off", "false", "0", "no"):
        return False
    raise ConfigurationError(
        f"{name} {raw[:50]!r} is neither on nor off",
        fix=f"set {name} to 'on' or 'off'",
        field=name,
    )


def _bad_days(raw: str, name: str, default: int) -> ConfigurationError:
    return ConfigurationError(
        f"{name} {raw[:50]!r} is not a whole number of days from 1 to {_MAX_RUN_HISTORY_DAYS}",
        fix=f"set {name} to how many days {_KEPT[name]} are kept, e.g. {default} (the "
        f"default), or to '{_OFF}' to keep them forever",
        field=name,
    )


def _parse_days(raw: str, name: str, default: int) -> int | None:
    """Days to keep from a variable's text (``off`` is None), or a ConfigurationError."""
    text = raw.strip()
    if text.lower() == _OFF:
        return None
    try:
        days = int(text)
    except ValueError:
        raise _bad_days(raw, name, default) from None
    if not 1 <= days <= _MAX_RUN_HISTORY_DAYS:
        raise _bad_days(raw, name, default)
    return days
