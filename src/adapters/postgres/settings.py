"""Tuning knobs of the Postgres outbox, validated once at construction."""

from __future__ import annotations

from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from portside.ports import ValidationError

__all__ = ["OutboxSettings"]


class OutboxSettings(BaseModel):
    """Keyword arguments accepted by ``PostgresOutbox(dsn, **tuning)``.

    Attributes:
        pool_min_size: Connections the pool keeps open once created.
        pool_max_size: Upper bound of pooled connections (the LISTEN connection is extra).
        batch_size: Most events one publisher transaction claims and delivers.
        max_streams_per_batch: Most streams one publisher transaction claims.
        subscribe_page: Rows a subscription read returns per stream and query.
        subscriber_queue: Most events queued for one subscriber that is fed by its stream's
            shared read; one that falls further behind reads on its own until it catches up.
        purge_batch: Rows ``purge_published`` deletes per statement.
        connect_timeout: Seconds to wait for one connection attempt.
        reconnect_initial: First back-off delay (seconds) after the LISTEN connection drops.
        reconnect_max: Cap of that back-off.
        retry_initial: First delay (seconds) before a stream whose handler failed is retried.
        retry_max: Cap of that delay.
        channel: The NOTIFY channel; must match the trigger (``portside_outbox``).
        statement_cache_size: asyncpg's prepared-statement cache per pooled connection; 0
            behind pgbouncer in transaction mode without ``max_prepared_statements``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    pool_min_size: int = Field(default=1, ge=0)
    pool_max_size: int = Field(default=10, ge=1)
    batch_size: int = Field(default=500, ge=1, le=100_000)
    max_streams_per_batch: int = Field(default=64, ge=1, le=10_000)
    subscribe_page: int = Field(default=500, ge=1, le=100_000)
    subscriber_queue: int = Field(default=1_000, ge=1, le=1_000_000)
    purge_batch: int = Field(default=5_000, ge=1, le=1_000_000)
    connect_timeout: float = Field(default=10.0, gt=0)
    reconnect_initial: float = Field(default=0.05, gt=0)
    reconnect_max: float = Field(default=10.0, gt=0)
    retry_initial: float = Field(default=0.5, gt=0)
    retry_max: float = Field(default=60.0, gt=0)
    channel: str = Field(default="portside_outbox", min_length=1, max_length=63)
    statement_cache_size: int = Field(default=100, ge=0)

    @classmethod
    def from_tuning(cls, tuning: dict[str, Any]) -> OutboxSettings:
        """Build settings from ``**tuning``, turning pydantic errors into portside ones.

        Raises:
            ValidationError: An unknown knob or an out-of-range value, naming it.
        """
        try:
            settings = cls(**tuning)
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "tuning"
            raise ValidationError(
                f"PostgresOutbox tuning {field}: {first['msg']}",
                fix=f"pass a valid value or drop it; accepted knobs: {', '.join(cls.model_fields)}",
                field=field,
            ) from exc
        if settings.pool_min_size > settings.pool_max_size:
            raise ValidationError(
                f"pool_min_size {settings.pool_min_size} exceeds pool_max_size "
                f"{settings.pool_max_size}",
                fix="make pool_min_size at most pool_max_size",
                field="pool_min_size",
            )
        return settings
