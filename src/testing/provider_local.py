"""The ``local`` provider: private server processes (``portside.servers``), one set per worker."""

from __future__ import annotations

from typing import TypeVar

from portside.servers import (
    LocalPostgres,
    LocalRedis,
    ServerNotFoundError,
    find_postgres,
    find_redis_server,
)
from portside.testing.providers import ProviderName, ProviderUnavailable

__all__ = ["LocalProvider"]

_Server = TypeVar("_Server", LocalRedis, LocalPostgres)


class LocalProvider:
    """Starts ``valkey-server``/``redis-server`` and ``postgres`` on free ports in temp dirs.

    Each is started on first use and stopped (directory removed) by ``close``.
    """

    name: ProviderName = "local"

    def __init__(self) -> None:
        self._redis: LocalRedis | None = None
        self._postgres: LocalPostgres | None = None
        self._failed: dict[str, Exception] = {}

    def probe(self) -> str:
        try:
            redis = find_redis_server()
            postgres = find_postgres()
        except ServerNotFoundError as exc:
            raise ProviderUnavailable(exc.message, exc.fix or "") from exc
        return f"{redis.describe()}, {postgres.describe()}"

    def redis_url(self) -> str:
        if self._redis is None:
            self._redis = self._start("redis", LocalRedis())
        return self._redis.url

    def postgres_dsn(self) -> str:
        if self._postgres is None:
            self._postgres = self._start("postgres", LocalPostgres())
        return self._postgres.dsn

    def _start(self, kind: str, server: _Server) -> _Server:
        """Start ``server``; a failure is remembered and raised again without a new attempt."""
        if kind in self._failed:
            raise self._failed[kind]
        try:
            server.start()
        except Exception as exc:
            self._failed[kind] = exc
            raise
        return server

    @property
    def servers(self) -> tuple[LocalRedis | None, LocalPostgres | None]:
        """The servers started so far (for tests of the harness)."""
        return self._redis, self._postgres

    def close(self) -> None:
        for server in (self._postgres, self._redis):
            if server is not None:
                server.stop()
        self._redis = None
        self._postgres = None
