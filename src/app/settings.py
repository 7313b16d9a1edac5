"""Runtime configuration of the CLI and worker, from environment variables and options."""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from portside.ports import ConfigurationError

__all__ = [
    "APP_ENV",
    "LOG_LEVEL_ENV",
    "POSTGRES_DSN_ENV",
    "REDIS_PREFIX_ENV",
    "REDIS_URL_ENV",
    "Settings",
]

REDIS_URL_ENV = "PORTSIDE_REDIS_URL"
REDIS_PREFIX_ENV = "PORTSIDE_REDIS_PREFIX"
POSTGRES_DSN_ENV = "PORTSIDE_POSTGRES_DSN"
APP_ENV = "PORTSIDE_APP"
LOG_LEVEL_ENV = "PORTSIDE_LOG_LEVEL"
_REDIS_SCHEMES = ("redis", "rediss", "unix")
_POSTGRES_SCHEMES = ("postgres", "postgresql")
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class Settings(BaseModel):
    """Where the servers are and how to log. Options override environment variables.

    Attributes:
        redis_url: ``$PORTSIDE_REDIS_URL``, e.g. ``redis://127.0.0.1:6379/0``.
        redis_prefix: ``$PORTSIDE_REDIS_PREFIX``, BullMQ's key prefix (default ``bull``).
        postgres_dsn: ``$PORTSIDE_POSTGRES_DSN``, e.g. ``postgresql://postgres@127.0.0.1/app``.
        app: ``$PORTSIDE_APP``, the registry as ``module:attribute``.
        log_level: ``$PORTSIDE_LOG_LEVEL`` (default ``INFO``).
    """

    model_config = ConfigDict(frozen=True)

    redis_url: str | None = None
    redis_prefix: str = "bull"
    postgres_dsn: str | None = None
    app: str | None = None
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: str | None) -> Settings:
        """Settings from ``env`` (default ``os.environ``), then the non-None ``overrides``."""
        source = os.environ if env is None else env
        values: dict[str, str] = {}
        for field, name in (
            ("redis_url", REDIS_URL_ENV),
            ("redis_prefix", REDIS_PREFIX_ENV),
            ("postgres_dsn", POSTGRES_DSN_ENV),
            ("app", APP_ENV),
            ("log_level", LOG_LEVEL_ENV),
        ):
            if source.get(name, "").strip():
                values[field] = source[name].strip()
        values.update({key: value for key, value in overrides.items() if value is not None})
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
        for value, schemes, name in (
            (self.redis_url, _REDIS_SCHEMES, REDIS_URL_ENV),
            (self.postgres_dsn, _POSTGRES_SCHEMES, POSTGRES_DSN_ENV),
        ):
            if value is not None and urlsplit(value).scheme not in schemes:
                raise ConfigurationError(
                    f"{name} {value!r} is not a {'/'.join(schemes)} URL",
                    fix=f"use e.g. {schemes[0]}://127.0.0.1/...",
                    field=name,
                )

    def require_redis_url(self) -> str:
        """The Redis URL, or a ConfigurationError naming the variable and option."""
        if self.redis_url is None:
            raise ConfigurationError(
                "no Redis URL is configured",
                fix=f"set {REDIS_URL_ENV} or pass --redis-url redis://host:6379/0",
                field=REDIS_URL_ENV,
            )
        return self.redis_url

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
                fix=f"pass --app module:registry (e.g. portside.app.examples:registry) or set "
                f"{APP_ENV}",
                field=APP_ENV,
            )
        return self.app
