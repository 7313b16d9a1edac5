"""The CLI's composition root: the only module of ``portside.app`` that imports adapters."""

from __future__ import annotations

from portside.app.application import Application
from portside.app.settings import Settings
from portside.app.tracing import instrument, resolve_tracing
from portside.infra import Infra
from portside.ports import ConfigurationError

__all__ = ["build_infra", "migrate"]


def build_infra(settings: Settings, *, name: str = "portside") -> Infra:
    """Real adapters from ``settings``: BullMQ queue (with the lock and stall tuning of
    ``settings.bullmq_tuning()``) on ``redis_url``, Redis cache on ``settings.cache_url()``
    (none when that is None), Postgres outbox and history on ``postgres_dsn``.

    Adapters connect lazily, so building is cheap; close the result (``async with``). With
    tracing on (``portside.app.tracing.resolve_tracing``), the queue and the outbox are wrapped
    to trace enqueues and appends.

    Raises:
        ConfigurationError: a URL is missing or malformed.
    """
    redis_url = settings.require_redis_url()
    cache_url, prefix = settings.cache_url(), settings.redis_prefix
    dsn = settings.require_postgres_dsn()
    # Imported here so commands that never touch a server start fast and need no extras.
    try:
        from portside.adapters.bullmq import BullMQQueue
        from portside.adapters.postgres import PostgresOutbox
        from portside.adapters.postgres.history import PostgresHistory
        from portside.adapters.redis import RedisCache
    except ImportError as exc:
        raise ConfigurationError(
            f"the real adapters cannot be imported ({exc})",
            fix="install portside with its app extra: pip install 'portside[app]'",
        ) from exc

    infra = Infra(
        queue=BullMQQueue(redis_url, prefix=prefix, **settings.bullmq_tuning()),
        outbox=PostgresOutbox(dsn),
        history=PostgresHistory(dsn, synchronous_commit=settings.history_synchronous_commit),
        # The cache may live on a Redis of its own (allkeys-lru), apart from the queues' (E2).
        cache=None if cache_url is None else RedisCache(cache_url, prefix=f"{prefix}-cache"),
        name=name,
    )
    # OBS1: traced enqueues and outbox appends when an OpenTelemetry SDK is configured.
    return instrument(infra, resolve_tracing())


async def migrate(settings: Settings, application: Application | None = None) -> list[str]:
    """Apply pending Postgres migrations: portside's (outbox, run history, dead letters), then
    the application's own (``Application.migrate``); return what was applied."""
    try:
        from portside.adapters.postgres.migrations import migrate as apply
    except ImportError as exc:
        raise ConfigurationError(
            f"the Postgres adapter cannot be imported ({exc})",
            fix="install portside with its postgres extra: pip install 'portside[postgres]'",
        ) from exc

    dsn = settings.require_postgres_dsn()
    applied = await apply(dsn)
    if application is not None and application.migrate is not None:
        applied.extend(await application.migrate(dsn))
    return applied
