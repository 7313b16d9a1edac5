"""Composition root: the `Infra` record and the only place adapters are installed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import TracebackType

from portside.ports import (
    CachePort,
    ConfigurationError,
    HistoryPort,
    InfraNotSetError,
    OutboxPort,
    QueuePort,
    ValidationError,
)

__all__ = ["Infra", "get_infra", "set_infra", "use_infra"]


@dataclass(frozen=True)
class Infra:
    """The adapters an application runs on.

    ``history`` (run history and dead letters) and ``cache`` are optional: the job platform asks
    for them through ``require_history()``/``require_cache()``, which say how to configure them.
    Closing an ``Infra`` closes its adapters; use it as ``async with infra: ...``.
    """

    queue: QueuePort
    outbox: OutboxPort
    name: str = field(default="custom", compare=False)
    history: HistoryPort | None = field(default=None, compare=False)
    cache: CachePort | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        ports: tuple[tuple[str, type], ...] = (
            ("queue", QueuePort),
            ("outbox", OutboxPort),
            ("history", HistoryPort),
            ("cache", CachePort),
        )
        for attr, port in ports:
            value = getattr(self, attr)
            if value is None and attr in ("history", "cache"):
                continue
            if not isinstance(value, port):
                raise ValidationError(
                    f"Infra.{attr} is a {type(value).__name__}, which does not implement "
                    f"{port.__name__}",
                    fix=f"pass an adapter implementing {port.__name__} (e.g. the in-memory fake)",
                    field=attr,
                )

    def require_history(self) -> HistoryPort:
        """The run-history and dead-letter store, or a ConfigurationError saying how to add one."""
        if self.history is None:
            raise ConfigurationError(
                f"Infra {self.name!r} has no history store, which the worker runtime and the "
                "dead-letter commands need",
                fix="build the Infra with history=... (PostgresHistory(dsn) in production, "
                "InMemoryHistory() in unit tests), or set PORTSIDE_POSTGRES_DSN for the CLI",
                field="history",
            )
        return self.history

    def require_cache(self) -> CachePort:
        """The cache, or a ConfigurationError saying how to add one."""
        if self.cache is None:
            raise ConfigurationError(
                f"Infra {self.name!r} has no cache",
                fix="build the Infra with cache=... (RedisCache(url) in production, "
                "InMemoryCache() in unit tests); portside commands: set "
                "PORTSIDE_CACHE_REDIS_URL to a redis:// server (needed when PORTSIDE_REDIS_URL "
                "is a Cluster or Sentinel URL)",
                field="cache",
            )
        return self.cache

    async def close(self) -> None:
        """Close every adapter (all of them, even if one fails; the first error is raised)."""
        first: Exception | None = None
        for adapter in (self.queue, self.outbox, self.history, self.cache):
            if adapter is None:
                continue
            try:
                await adapter.close()
            except Exception as exc:  # close the rest, then re-raise the first error
                first = first or exc
        if first is not None:
            raise first

    async def __aenter__(self) -> Infra:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


@dataclass
class _Installed:
    infra: Infra | None = None


_process = _Installed()
_scoped: ContextVar[Infra | None] = ContextVar("portside_infra", default=None)


def set_infra(infra: Infra | None) -> None:
    """Install ``infra`` for the whole process (``None`` uninstalls it).

    Prefer ``use_infra`` in tests: it is scoped to the current context.
    """
    if infra is not None and not isinstance(infra, Infra):
        raise ValidationError(
            f"set_infra() takes an Infra, got {type(infra).__name__}",
            fix="build one with Infra(queue=..., outbox=...)",
            field="infra",
        )
    _process.infra = infra


def get_infra() -> Infra:
    """The ``Infra`` of the current context, else the process-wide one."""
    infra = _scoped.get() or _process.infra
    if infra is None:
        raise InfraNotSetError(
            "no Infra is installed",
            fix="call portside.set_infra(Infra(queue=..., outbox=...)) at start-up, or wrap the "
            "code in `with portside.use_infra(infra):` (tests: use the `infra` or `fake_infra` "
            "fixture)",
        )
    return infra


@contextmanager
def use_infra(infra: Infra) -> Iterator[Infra]:
    """Install ``infra`` for the current context only (task- and test-safe)."""
    if not isinstance(infra, Infra):
        raise ValidationError(
            f"use_infra() takes an Infra, got {type(infra).__name__}",
            fix="build one with Infra(queue=..., outbox=...)",
            field="infra",
        )
    token = _scoped.set(infra)
    try:
        yield infra
    finally:
        _scoped.reset(token)
