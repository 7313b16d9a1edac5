"""Configuration of the HTTP API: admin token, webhooks, limits and health thresholds."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from portside.ports import ConfigurationError

__all__ = [
    "ADMIN_TOKEN_ENV",
    "API_TOKEN_ENV",
    "CONSOLE_PUBLIC_READ_ENV",
    "MAX_BODY_ENV",
    "WEBHOOK_SECRET_ENV",
    "WEBHOOK_URLS_ENV",
    "HealthThresholds",
    "HttpSettings",
]

ADMIN_TOKEN_ENV = "PORTSIDE_ADMIN_TOKEN"
API_TOKEN_ENV = "PORTSIDE_API_TOKEN"
CONSOLE_PUBLIC_READ_ENV = "PORTSIDE_CONSOLE_PUBLIC_READ"
WEBHOOK_URLS_ENV = "PORTSIDE_WEBHOOK_URLS"
WEBHOOK_SECRET_ENV = "PORTSIDE_WEBHOOK_SECRET"
MAX_BODY_ENV = "PORTSIDE_HTTP_MAX_BODY_BYTES"
MIN_SECRET_LENGTH = 16


class HealthThresholds(BaseModel):
    """When ``GET /health/queues`` raises an alert for a queue (A6, the runbook's thresholds).

    Attributes:
        max_depth: Alert when more jobs than this wait (waiting + paused + delayed).
        latency_factor: Alert when the recent mean attempt duration exceeds this multiple of
            the baseline.
        max_failure_rate: Alert when more than this share of recent attempts failed.
        window: Seconds of "recent" (failure rate and latency).
        baseline_window: Seconds over which the baseline latency is averaged.
        baseline_latency: Fixed baselines in seconds per queue, instead of the measured one.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_depth: int = Field(default=100, ge=0)
    latency_factor: float = Field(default=2.0, gt=1.0)
    max_failure_rate: float = Field(default=0.05, ge=0.0, le=1.0)
    window: float = Field(default=300.0, gt=0)
    baseline_window: float = Field(default=86_400.0, gt=0)
    baseline_latency: dict[str, float] = Field(default_factory=dict)


def _check_secret(value: SecretStr | None, name: str) -> SecretStr | None:
    if value is not None and len(value.get_secret_value()) < MIN_SECRET_LENGTH:
        raise ValueError(
            f"{name} is shorter than {MIN_SECRET_LENGTH} characters; use a random value such as "
            "the output of `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    return value


class HttpSettings(BaseModel):
    """How the API behaves. ``from_env`` reads the ``PORTSIDE_*`` variables.

    Attributes:
        admin_token: ``$PORTSIDE_ADMIN_TOKEN``; the bearer token of ``/admin``. Without it the
            admin endpoints answer 403.
        api_token: ``$PORTSIDE_API_TOKEN``; when set, the public job endpoints (enqueue,
            status, runs) need it as a bearer token. Off by default.
        console_public_read: ``$PORTSIDE_CONSOLE_PUBLIC_READ=1``: the console's pages can be
            read without logging in (every action still needs the admin token).
        webhook_urls: ``$PORTSIDE_WEBHOOK_URLS`` (comma-separated): notified when a job
            completes or fails for good.
        webhook_secret: ``$PORTSIDE_WEBHOOK_SECRET``: the HMAC key deliveries are signed with
            (workers read the same variable when they send).
        max_body_bytes: ``$PORTSIDE_HTTP_MAX_BODY_BYTES``: larger request bodies get 413.
        sse_ping_seconds: Idle seconds before an event stream sends a keep-alive comment.
        watch_queue_events: Follow the queues' events (webhooks, observed waiting ages).
        thresholds: Health alert thresholds.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    admin_token: SecretStr | None = None
    api_token: SecretStr | None = None
    console_public_read: bool = False
    webhook_urls: tuple[str, ...] = ()
    webhook_secret: SecretStr | None = None
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    sse_ping_seconds: float = Field(default=15.0, gt=0)
    watch_queue_events: bool = True
    thresholds: HealthThresholds = Field(default_factory=HealthThresholds)

    @field_validator("admin_token")
    @classmethod
    def _admin_token(cls, value: SecretStr | None) -> SecretStr | None:
        return _check_secret(value, ADMIN_TOKEN_ENV)

    @field_validator("api_token")
    @classmethod
    def _api_token(cls, value: SecretStr | None) -> SecretStr | None:
        return _check_secret(value, API_TOKEN_ENV)

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        return _check_secret(value, WEBHOOK_SECRET_ENV)

    @field_validator("webhook_urls")
    @classmethod
    def _webhook_urls(cls, urls: tuple[str, ...]) -> tuple[str, ...]:
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"webhook URL {url!r} is not an http(s) URL with a host")
        return urls

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> HttpSettings:
        """Settings from ``env`` (default ``os.environ``), then the non-None ``overrides``.

        Raises:
            ConfigurationError: a variable holds an invalid value (the message names it).
        """
        source = os.environ if env is None else env
        values: dict[str, Any] = {}
        if source.get(ADMIN_TOKEN_ENV, "").strip():
            values["admin_token"] = source[ADMIN_TOKEN_ENV].strip()
        if source.get(API_TOKEN_ENV, "").strip():
            values["api_token"] = source[API_TOKEN_ENV].strip()
        public = source.get(CONSOLE_PUBLIC_READ_ENV, "").strip().lower()
        if public:
            if public not in ("1", "true", "yes", "0", "false", "no"):
                raise ConfigurationError(
                    f"{CONSOLE_PUBLIC_READ_ENV}={public!r} is not a yes or no",
                    fix=f"set {CONSOLE_PUBLIC_READ_ENV} to 1 (pages readable without login) or 0",
                    field=CONSOLE_PUBLIC_READ_ENV,
                )
            values["console_public_read"] = public in ("1", "true", "yes")
        urls = [url.strip() for url in source.get(WEBHOOK_URLS_ENV, "").split(",") if url.strip()]
        if urls:
            values["webhook_urls"] = tuple(urls)
        if source.get(WEBHOOK_SECRET_ENV, "").strip():
            values["webhook_secret"] = source[WEBHOOK_SECRET_ENV].strip()
        raw_limit = source.get(MAX_BODY_ENV, "").strip()
        if raw_limit:
            if not raw_limit.isdigit():
                raise ConfigurationError(
                    f"{MAX_BODY_ENV}={raw_limit!r} is not a number of bytes",
                    fix=f"set {MAX_BODY_ENV} to an integer such as 1048576",
                    field=MAX_BODY_ENV,
                )
            values["max_body_bytes"] = int(raw_limit)
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls.build(**values)

    @classmethod
    def build(cls, **values: Any) -> HttpSettings:
        """Validate ``values`` into settings, raising ``ConfigurationError`` on bad input."""
        import pydantic

        try:
            settings = cls(**values)
        except pydantic.ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"]) or "settings"
            raise ConfigurationError(
                f"HTTP setting {where} is invalid: {first['msg']}",
                fix="correct the value (see docs/http.md, Configuration)",
                field=where,
            ) from exc
        if settings.webhook_urls and settings.webhook_secret is None:
            raise ConfigurationError(
                "webhook URLs are configured but no signing secret",
                fix=f"set {WEBHOOK_SECRET_ENV} (16+ random characters) for the API and the "
                "workers: every delivery is signed with it",
                field=WEBHOOK_SECRET_ENV,
            )
        return settings
