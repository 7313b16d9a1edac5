"""Opening the adapter's Redis connections: one pooled client, plus dedicated ones per worker.

Replies are decoded as UTF-8, but never strictly: a job hash may hold bytes that are not
UTF-8 (another producer wrote them), and a strict decoder would turn that one job into an
error for whatever read it (``get_job``, a worker's whole connection). The pooled client
replaces such bytes with U+FFFD; worker connections keep them as lone surrogates
(``surrogateescape``) so the worker can tell a corrupt payload from a valid one and write
ids back byte for byte (see ``jobs.py``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from portside.adapters.bullmq.settings import BullMQSettings, redacted_url
from portside.adapters.bullmq.transport import cluster
from portside.adapters.bullmq.transport.migration_retry import MigrationAwareRetry
from portside.adapters.bullmq.transport.sentinel import (
    SCHEME,
    MasterConnection,
    TlsMasterConnection,
    parse_sentinel_url,
)
from portside.adapters.bullmq.transport.tls import base_scheme

__all__ = ["RedisConnector"]


class _BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """A Sentinel-backed pool whose callers wait for a free connection (as the plain one)."""


class RedisConnector:
    """Creates the adapter's Redis clients from one URL and the settings.

    A ``redis+sentinel://`` URL (S2, see ``sentinel.py``) gives pools whose every new
    connection asks the Sentinels for the current master, so a reconnect after a failover
    reaches the new master; a ``redis+cluster://`` URL (S1, ``cluster.py``) pools whose every
    new connection goes to the master owning the prefix's slot. ``rediss+...`` is the same
    over TLS (``tls.py``).
    """

    def __init__(self, url: str, settings: BullMQSettings, *, prefix: str = "bull") -> None:
        self.url = url
        self.safe_url = redacted_url(url)
        self.settings = settings
        self._cluster: cluster.ClusterUrl | None = None
        self._slot = 0
        scheme = base_scheme(url)
        if scheme == cluster.SCHEME:
            self._cluster = cluster.parse_cluster_url(url, self.safe_url)
            self._slot = cluster.prefix_slot(prefix)
        self._sentinel: Sentinel | None = None
        self._service = ""
        self._master_options: dict[str, Any] = {}
        if scheme == SCHEME:
            parsed = parse_sentinel_url(url, self.safe_url)
            self._service = parsed.service
            self._master_options = {
                "db": parsed.db,
                "connection_class": TlsMasterConnection if parsed.tls else MasterConnection,
                **parsed.master_options,
            }
            self._sentinel = Sentinel(
                list(parsed.sentinels),
                sentinel_kwargs={
                    "socket_connect_timeout": settings.connect_timeout,
                    "socket_timeout": settings.connect_timeout,
                    **parsed.sentinel_options,
                },
            )

    def _make_pool(self, pool_class: type[ConnectionPool], **options: Any) -> ConnectionPool:
        if self._cluster is not None:
            blocking_pool = pool_class is BlockingConnectionPool
            owner_class = cluster.BlockingSlotOwnerPool if blocking_pool else cluster.SlotOwnerPool
            return owner_class(
                list(self._cluster.seeds),
                self._slot,
                tls=self._cluster.tls,
                **self._cluster.options,
                **options,
            )
        if self._sentinel is None:
            return pool_class.from_url(self.url, **options)
        blocking = pool_class is BlockingConnectionPool
        sentinel_class = _BlockingSentinelPool if blocking else SentinelConnectionPool
        pool: ConnectionPool = sentinel_class(  # type: ignore[no-untyped-call]
            self._service, self._sentinel, **self._master_options, **options
        )
        return pool

    async def close(self) -> None:
        """Close the connections to the Sentinels (the pools close with their owners).

        Every Sentinel's client is closed even when closing an earlier one fails (a TLS
        shutdown that times out): the first failure is raised after all were tried.
        """
        if self._sentinel is None:
            return
        results = await asyncio.gather(
            *(client.aclose() for client in self._sentinel.sentinels), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def client(self) -> Redis:
        """The pooled client for producers and control commands (bounded retries)."""
        settings = self.settings
        # A slot being migrated (ASK/TRYAGAIN) is waited out up to command_timeout.
        retry = MigrationAwareRetry(
            base=settings.retry_backoff,
            cap=settings.max_backoff,
            retries=settings.retries,
            deadline=settings.command_timeout,
        )
        # A blocking pool: when every connection is busy (a backfill checking 100 days at
        # once), callers wait for one instead of failing with MaxConnectionsError.
        pool = self._make_pool(
            BlockingConnectionPool,
            decode_responses=True,
            encoding_errors="replace",
            socket_connect_timeout=settings.connect_timeout,
            socket_timeout=settings.command_timeout,
            retry=retry,
            retry_on_error=[RedisConnectionError, RedisTimeoutError, BusyLoadingError],
            max_connections=64,
            timeout=settings.command_timeout,
            client_name="portside",
            protocol=2,
        )
        client: Redis = Redis.from_pool(pool)
        return client

    def pool(self, client_name: str, *, keep_bytes: bool = False) -> ConnectionPool:
        """Settings for dedicated connections; replies are awaited without a socket timeout
        because the owner watches them itself.

        Args:
            keep_bytes: Decode bytes that are not UTF-8 to lone surrogates (a worker's
                connection) instead of U+FFFD.
        """
        return self._make_pool(
            ConnectionPool,
            decode_responses=True,
            encoding_errors="surrogateescape" if keep_bytes else "replace",
            socket_connect_timeout=self.settings.connect_timeout,
            socket_timeout=None,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
            client_name=client_name,
            protocol=2,
        )
