"""Private Redis and Postgres server processes for tests, benchmarks and ``portside dev``."""

from __future__ import annotations

from portside.servers.binaries import (
    PostgresInstall,
    RedisBinary,
    find_postgres,
    find_redis_server,
)
from portside.servers.errors import ServerNotFoundError, ServerStartError
from portside.servers.postgres import TEST_SETTINGS, LocalPostgres
from portside.servers.redis import LocalRedis

__all__ = [
    "TEST_SETTINGS",
    "LocalPostgres",
    "LocalRedis",
    "PostgresInstall",
    "RedisBinary",
    "ServerNotFoundError",
    "ServerStartError",
    "find_postgres",
    "find_redis_server",
]
